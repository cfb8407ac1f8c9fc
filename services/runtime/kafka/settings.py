"""Kafka client settings from environment variables, and the librdkafka configs they imply.

Locally the broker speaks PLAINTEXT; on MSK the pods authenticate with their IRSA role
over SASL_SSL/OAUTHBEARER, using AWS's signer library to mint the token (it does the
SigV4 presigning and credential chain we would otherwise write by hand). Producers are
idempotent (acks=all, no duplicates from retries) with a bounded delivery time, so a
caller learns within seconds whether a message is on the broker. Consumers store offsets
only when the application says a message is done, and rebalance cooperatively.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from services.runtime.settings import SettingsError

__all__ = ["KafkaSettings", "consumer_config", "producer_config"]

SecurityProtocol = Literal["PLAINTEXT", "SASL_SSL"]


@dataclass(frozen=True, kw_only=True)
class KafkaSettings:
    """How to reach the broker."""

    bootstrap_servers: str
    """KAFKA_BOOTSTRAP_SERVERS: comma-separated host:port list."""
    security_protocol: SecurityProtocol = "PLAINTEXT"
    """KAFKA_SECURITY_PROTOCOL: PLAINTEXT locally, SASL_SSL (IAM) on MSK."""
    aws_region: str | None = None
    """AWS_REGION: needed to sign MSK IAM tokens."""
    consumer_group: str | None = None
    """KAFKA_CONSUMER_GROUP: the group a worker joins."""
    session_timeout_ms: int = 45_000
    """KAFKA_SESSION_TIMEOUT_MS: how long a silent consumer keeps its partitions."""
    delivery_timeout_ms: int = 10_000
    """KAFKA_DELIVERY_TIMEOUT_MS: how long a producer tries before reporting a failure."""
    max_poll_interval_ms: int = 300_000
    """KAFKA_MAX_POLL_INTERVAL_MS: a consumer that does not poll for this long is evicted.

    The consumer loop polls while it handles nothing (even while paused for an open
    breaker), so only one message's handling has to fit in it.
    """
    log_level: int = 6
    """KAFKA_LOG_LEVEL: librdkafka's own log lines on stderr, a syslog level from 0 (none
    but emergencies) to 7 (debug); 6 (informational) is librdkafka's default. At 2 or less
    the `%3|...|FAIL|` lines of a broker going away are not printed (the tests use 0)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> "KafkaSettings":
        """Read the variables; `SettingsError` names a missing or malformed one."""
        bootstrap = environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
        if not bootstrap:
            raise SettingsError("KAFKA_BOOTSTRAP_SERVERS is not set: expected host:port[,...]")
        protocol = environ.get("KAFKA_SECURITY_PROTOCOL", "").strip().upper() or "PLAINTEXT"
        if protocol not in {"PLAINTEXT", "SASL_SSL"}:
            raise SettingsError(
                f"KAFKA_SECURITY_PROTOCOL={protocol!r} is not allowed: use PLAINTEXT or SASL_SSL"
            )
        region = environ.get("AWS_REGION", "").strip() or None
        if protocol == "SASL_SSL" and region is None:
            raise SettingsError("AWS_REGION is not set: SASL_SSL (MSK IAM) needs the region")
        session = _milliseconds(environ, "KAFKA_SESSION_TIMEOUT_MS", 45_000)
        max_poll = _milliseconds(environ, "KAFKA_MAX_POLL_INTERVAL_MS", 300_000)
        if max_poll < session:  # librdkafka refuses it, with a less helpful message
            raise SettingsError(
                f"KAFKA_MAX_POLL_INTERVAL_MS={max_poll} is not allowed: it must be at least "
                f"KAFKA_SESSION_TIMEOUT_MS ({session})"
            )
        return cls(
            bootstrap_servers=bootstrap,
            security_protocol=protocol,  # type: ignore[arg-type]
            aws_region=region,
            consumer_group=environ.get("KAFKA_CONSUMER_GROUP", "").strip() or None,
            session_timeout_ms=session,
            delivery_timeout_ms=_milliseconds(environ, "KAFKA_DELIVERY_TIMEOUT_MS", 10_000),
            max_poll_interval_ms=max_poll,
            log_level=_log_level(environ),
        )


def _log_level(environ: Mapping[str, str]) -> int:
    raw = environ.get("KAFKA_LOG_LEVEL", "").strip()
    if not raw:
        return 6
    if raw not in {str(level) for level in range(8)}:
        raise SettingsError(
            f"KAFKA_LOG_LEVEL={raw!r} is not allowed: use a syslog level from 0 to 7 (6: info)"
        )
    return int(raw)


def _milliseconds(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1000 <= int(raw) <= 600_000:  # noqa: PLR2004
        raise SettingsError(f"{name}={raw!r} is not allowed: use milliseconds from 1000 to 600000")
    return int(raw)


def _security(settings: KafkaSettings) -> dict[str, Any]:
    if settings.security_protocol == "PLAINTEXT":
        return {"security.protocol": "PLAINTEXT"}
    region = settings.aws_region

    def msk_token(_config: str) -> tuple[str, float]:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider  # noqa: PLC0415

        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token(region)
        return token, expiry_ms / 1000

    return {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "OAUTHBEARER",
        "oauth_cb": msk_token,
    }


def producer_config(settings: KafkaSettings, *, client_id: str) -> dict[str, Any]:
    """An idempotent producer that reports delivery within `delivery_timeout_ms`."""
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": client_id,
        "log_level": settings.log_level,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "delivery.timeout.ms": settings.delivery_timeout_ms,
        "request.timeout.ms": min(settings.delivery_timeout_ms, 5000),
        **_security(settings),
    }


def consumer_config(settings: KafkaSettings, *, group: str, client_id: str) -> dict[str, Any]:
    """An at-least-once consumer: offsets stored by the application, committed in background."""
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": client_id,
        "log_level": settings.log_level,
        "group.id": group,
        "enable.auto.offset.store": False,
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 1000,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "session.timeout.ms": settings.session_timeout_ms,
        "heartbeat.interval.ms": max(1000, settings.session_timeout_ms // 6),
        "max.poll.interval.ms": settings.max_poll_interval_ms,
        **_security(settings),
    }
