"""`eduscale dlq` on the real broker: each dead letter is replayed once, whatever the order."""

from __future__ import annotations

from collections import Counter

import pytest
from confluent_kafka import Message
from consumer_harness import TOPIC, produce, running_loop
from kafka_broker import Broker

from infra.cli import main
from services.runtime.kafka.dlq_tool import read_dead_letters
from services.runtime.kafka.envelope import decode_generation

pytestmark = pytest.mark.anyio
DLQ = f"{TOPIC}.dlq"


@pytest.fixture
async def three_dead_letters(kafka_broker: Broker, monkeypatch: pytest.MonkeyPatch) -> Broker:
    """Dead letters 0:0, 0:1 and 0:2 (keys k0..k2), and the environment to reach them."""
    for number in range(3):
        produce(kafka_broker, f"poison {number}".encode(), key=f"k{number}".encode(), partition=0)

    async def reject(message: Message) -> None:
        decode_generation(message.value())

    async with running_loop(kafka_broker.settings(), reject) as running:
        await running.until(lambda: running.loop.dead_lettered == 3)
    for name, value in kafka_broker.environ().items():
        monkeypatch.setenv(name, value)
    return kafka_broker


def eduscale(capsys: pytest.CaptureFixture[str], *args: str) -> list[str]:
    """Run `eduscale ARGS` (in process), expect success, return its output lines."""
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out.splitlines()


def replays_sent(broker: Broker) -> Counter[str]:
    """How many times each dead letter came back to the work topic."""
    records = read_dead_letters(broker.settings(), TOPIC)
    return Counter(
        r.headers["dlq.replayed.from"] for r in records if "dlq.replayed.from" in r.headers
    )


async def test_replays_by_position_in_any_order_then_all_send_each_once(
    three_dead_letters: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert eduscale(capsys, "dlq", "replay", DLQ, "--position", "0:2")[-1] == (
        "1 message(s) replayed"
    )
    eduscale(capsys, "dlq", "replay", DLQ, "--position", "0:0")  # an earlier one after
    dry = eduscale(capsys, "dlq", "replay", DLQ, "--all", "--dry-run")
    assert dry == [f"would replay 0:1 -> {TOPIC}", "1 message(s) would replay"]
    assert eduscale(capsys, "dlq", "replay", DLQ, "--all") == [
        f"replayed 0:1 -> {TOPIC}",
        "1 message(s) replayed",
    ]
    assert eduscale(capsys, "dlq", "replay", DLQ, "--all") == ["0 message(s) replayed"]
    assert replays_sent(three_dead_letters) == {f"{DLQ}:0:{offset}": 1 for offset in range(3)}


async def test_a_position_replayed_by_all_is_not_sent_again(
    three_dead_letters: Broker, capsys: pytest.CaptureFixture[str]
) -> None:
    assert eduscale(capsys, "dlq", "replay", DLQ, "--all")[-1] == "3 message(s) replayed"
    again = eduscale(capsys, "dlq", "replay", DLQ, "--position", "0:1")
    assert again[0].startswith("0:1 was replayed at ")
    assert "not sent again" in again[0]
    assert again[-1] == "0 message(s) replayed"
    assert replays_sent(three_dead_letters) == {f"{DLQ}:0:{offset}": 1 for offset in range(3)}


@pytest.mark.usefixtures("three_dead_letters")
async def test_list_and_show_say_why_a_message_failed_and_whether_it_was_replayed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    shown = eduscale(capsys, "dlq", "show", DLQ, "0:1")
    assert shown[:4] == [f"topic: {DLQ}", "position: 0:1", "key: k1", "replayed: no"]
    assert f"header dlq.original.topic: {TOPIC}" in shown
    assert "header dlq.original.key: k1" in shown
    assert "header dlq.original.offset: 1" in shown
    assert "header dlq.error.class: PoisonMessage" in shown
    assert shown[-1] == "value: poison 1"
    eduscale(capsys, "dlq", "replay", DLQ, "--position", "0:1")
    assert eduscale(capsys, "dlq", "show", DLQ, "0:1")[3].startswith("replayed: 20")
    listing = eduscale(capsys, "dlq", "list", DLQ)
    assert listing[0] == f"3 dead-lettered message(s) on {DLQ}, 1 replayed"
    assert [line.split("\t")[:3] for line in listing[1:]] == [
        ["0:0", "pending", "k0"],
        ["0:1", "replayed", "k1"],
        ["0:2", "pending", "k2"],
    ]
