"""Kafka client settings: what the environment says, and the librdkafka configs it gives."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from confluent_kafka import Consumer, Producer
from conftest import PROJECT_DIR
from kafka_broker import free_port

from services.runtime.kafka.settings import KafkaSettings, consumer_config, producer_config
from services.runtime.settings import SettingsError

LOCAL = {"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}
MSK = {
    "KAFKA_BOOTSTRAP_SERVERS": "b-1.events.kafka.eu-west-1.amazonaws.com:9098",
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "AWS_REGION": "eu-west-1",
}


def test_producers_are_idempotent_and_wait_for_every_replica() -> None:
    settings = KafkaSettings.from_env({**LOCAL, "KAFKA_DELIVERY_TIMEOUT_MS": "4000"})
    config = producer_config(settings, client_id="relay")
    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"
    assert config["delivery.timeout.ms"] == 4000  # a failure is known within it
    assert config["security.protocol"] == "PLAINTEXT"
    assert not any(name.startswith("sasl") for name in config)
    Producer(config)  # librdkafka accepts every key


def test_consumers_store_offsets_themselves_and_rebalance_cooperatively() -> None:
    settings = KafkaSettings.from_env({**LOCAL, "KAFKA_SESSION_TIMEOUT_MS": "6000"})
    config = consumer_config(settings, group="generation-worker", client_id="w-1")
    assert config["group.id"] == "generation-worker"
    assert config["enable.auto.offset.store"] is False  # stored only when a message is done
    assert config["enable.auto.commit"] is True  # what was stored is committed in background
    assert config["partition.assignment.strategy"] == "cooperative-sticky"
    assert config["auto.offset.reset"] == "earliest"  # a new group misses nothing
    assert config["session.timeout.ms"] == 6000
    assert config["max.poll.interval.ms"] == 300_000
    Consumer(config).close()


def test_the_poll_interval_is_a_setting_no_shorter_than_the_session() -> None:
    settings = KafkaSettings.from_env({**LOCAL, "KAFKA_MAX_POLL_INTERVAL_MS": "60000"})
    config = consumer_config(settings, group="g", client_id="c")
    assert config["max.poll.interval.ms"] == 60_000
    with pytest.raises(SettingsError, match=r"KAFKA_MAX_POLL_INTERVAL_MS=5000 .*SESSION"):
        KafkaSettings.from_env(
            {**LOCAL, "KAFKA_MAX_POLL_INTERVAL_MS": "5000", "KAFKA_SESSION_TIMEOUT_MS": "6000"}
        )


def test_msk_clients_authenticate_with_a_signed_iam_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Stub credentials, and no other source: the signer signs locally, with no network.
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDTESTONLY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-a-real-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    settings = KafkaSettings.from_env({**MSK, "KAFKA_SECURITY_PROTOCOL": "sasl_ssl"})
    for config in (
        producer_config(settings, client_id="relay"),
        consumer_config(settings, group="g", client_id="c"),
    ):
        assert config["security.protocol"] == "SASL_SSL"
        assert config["sasl.mechanism"] == "OAUTHBEARER"
    token, expiry = producer_config(settings, client_id="relay")["oauth_cb"]("")
    url = urlsplit(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
    query = parse_qs(url.query)
    assert url.hostname == "kafka.eu-west-1.amazonaws.com"
    assert query["Action"] == ["kafka-cluster:Connect"]
    assert query["X-Amz-Credential"][0].startswith("AKIDTESTONLY/")
    assert "/eu-west-1/kafka-cluster/" in query["X-Amz-Credential"][0]
    assert query["X-Amz-Signature"]
    # librdkafka wants the expiry in seconds since the epoch, and refreshes before it.
    assert time.time() < expiry < time.time() + 3600


@pytest.mark.parametrize("value", ["SSL", "SASL_PLAINTEXT", "plain text"])
def test_an_unsupported_security_protocol_is_refused_by_name(value: str) -> None:
    with pytest.raises(SettingsError) as refused:
        KafkaSettings.from_env({**LOCAL, "KAFKA_SECURITY_PROTOCOL": value})
    message = str(refused.value)
    assert message.startswith("KAFKA_SECURITY_PROTOCOL=")
    assert "PLAINTEXT or SASL_SSL" in message


def test_an_empty_security_protocol_means_plaintext() -> None:
    settings = KafkaSettings.from_env({**LOCAL, "KAFKA_SECURITY_PROTOCOL": " "})
    assert settings.security_protocol == "PLAINTEXT"


def test_msk_without_a_region_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match=r"^AWS_REGION is not set"):
        KafkaSettings.from_env({**MSK, "AWS_REGION": ""})


@pytest.mark.server  # the CLI in a process of its own
def test_the_command_line_reports_a_bad_protocol_in_one_line() -> None:
    env = {**os.environ, **LOCAL, "KAFKA_SECURITY_PROTOCOL": "SSL"}
    done = subprocess.run(
        [sys.executable, "-m", "infra.cli", "dlq", "list", "generation.requested.dlq"],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "eduscale: KAFKA_SECURITY_PROTOCOL='SSL' is not allowed: use PLAINTEXT or SASL_SSL"
    ]


def test_the_log_level_reaches_every_client_and_is_checked() -> None:
    assert KafkaSettings.from_env(LOCAL).log_level == 6  # librdkafka's own default
    settings = KafkaSettings.from_env({**LOCAL, "KAFKA_LOG_LEVEL": "0"})
    assert producer_config(settings, client_id="p")["log_level"] == 0
    assert consumer_config(settings, group="g", client_id="c")["log_level"] == 0
    for value in ("8", "-1", "info", "2.5"):
        with pytest.raises(SettingsError) as refused:
            KafkaSettings.from_env({**LOCAL, "KAFKA_LOG_LEVEL": value})
        assert str(refused.value).startswith(f"KAFKA_LOG_LEVEL={value!r} is not allowed")


# A producer whose broker is gone, as at every test's teardown: librdkafka reports the
# refused connection on stderr (`%3|...|FAIL|...`) unless KAFKA_LOG_LEVEL says otherwise.
_UNREACHABLE_PRODUCER = """
import os, sys
from confluent_kafka import Producer
from services.runtime.kafka.settings import KafkaSettings, producer_config
settings = KafkaSettings.from_env({**os.environ, "KAFKA_BOOTSTRAP_SERVERS": sys.argv[1]})
producer = Producer(producer_config(settings, client_id="noise"))
producer.produce("t", b"x")
producer.flush(2)
"""


@pytest.mark.server  # a process of its own, for its stderr
@pytest.mark.parametrize(("level", "noisy"), [("", True), ("0", False)])
def test_a_quiet_client_prints_no_broker_failures_on_stderr(level: str, noisy: bool) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _UNREACHABLE_PRODUCER, f"127.0.0.1:{free_port()}"],
        cwd=PROJECT_DIR,
        env={**os.environ, "KAFKA_LOG_LEVEL": level},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert ("|FAIL|" in done.stderr) is noisy, done.stderr
    if not noisy:
        assert done.stderr == ""
