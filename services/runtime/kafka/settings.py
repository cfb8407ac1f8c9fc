"""Kafka client settings from environment variables, and the librdkafka configs they imply.

Locally the broker speaks PLAINTEXT; on MSK the pods authenticate with their IRSA role
over SASL_SSL/OAUTHBEARER, using AWS's signer library to mint the token (it does the
SigV4 presigning and credential chain we would otherwise write by hand). Producers are
idempotent (acks=all, no duplicates from retries) with a bounded delivery time, so a
caller learns within seconds whether a message is on the broker. Consumers store offsets
only when the application says a message is done, and rebalance cooperatively.
"""

from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, model_validator

from services.runtime.environment import EnvironmentSettings, setting

__all__ = ["KafkaSettings", "consumer_config", "producer_config"]


def _upper(value: object) -> object:
    return value.upper() if isinstance(value, str) else value


SecurityProtocol = Annotated[Literal["PLAINTEXT", "SASL_SSL"], BeforeValidator(_upper)]


def _milliseconds(env: str, default: int, description: str) -> int:
    value: int = setting(env, default, ge=1000, le=600_000, description=description)
    return value


class KafkaSettings(EnvironmentSettings):
    """How to reach the broker."""

    bootstrap_servers: str = setting(
        "KAFKA_BOOTSTRAP_SERVERS",
        description="Comma-separated host:port list of the brokers.",
        allowed="host:port[,...]",
    )
    security_protocol: SecurityProtocol = setting(
        "KAFKA_SECURITY_PROTOCOL",
        "PLAINTEXT",
        description="PLAINTEXT locally, SASL_SSL (IAM) on MSK.",
    )
    aws_region: str | None = setting(
        "AWS_REGION", None, description="Needed to sign MSK IAM tokens (SASL_SSL)."
    )
    consumer_group: str | None = setting(
        "KAFKA_CONSUMER_GROUP", None, description="The group a worker joins."
    )
    session_timeout_ms: int = _milliseconds(
        "KAFKA_SESSION_TIMEOUT_MS", 45_000, "How long a silent consumer keeps its partitions."
    )
    delivery_timeout_ms: int = _milliseconds(
        "KAFKA_DELIVERY_TIMEOUT_MS",
        10_000,
        "How long a producer tries before reporting a failure.",
    )
    max_poll_interval_ms: int = _milliseconds(
        "KAFKA_MAX_POLL_INTERVAL_MS",
        300_000,
        "A consumer that does not poll for this long is evicted. The consumer loop polls "
        "while it handles nothing (even while paused for an open breaker), so only one "
        "message's handling has to fit in it.",
    )

    log_level: int = setting(
        "KAFKA_LOG_LEVEL",
        6,
        ge=0,
        le=7,
        description="librdkafka's own log lines on stderr, a syslog level from 0 (none but "
        "emergencies) to 7 (debug); 6 (informational) is librdkafka's default. At 2 or less "
        "the `%3|...|FAIL|` lines of a broker going away are not printed (the tests use 0).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.security_protocol == "SASL_SSL" and self.aws_region is None:
            message = "AWS_REGION is not set: SASL_SSL (MSK IAM) needs the region"
            raise ValueError(message)
        if self.max_poll_interval_ms < self.session_timeout_ms:  # librdkafka refuses it
            message = (
                f"KAFKA_MAX_POLL_INTERVAL_MS={self.max_poll_interval_ms} is not allowed: it "
                f"must be at least KAFKA_SESSION_TIMEOUT_MS ({self.session_timeout_ms})"
            )
            raise ValueError(message)
        return self


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
