"""Dead-letter records: the original message, on `<topic>.dlq`, with why it failed.

The record keeps the original key, value, headers and partition, and adds `dlq.*`
headers (original topic, partition, offset and key, error class and message, attempts,
first and last failure) so `eduscale dlq` can show it and put it back. The key travels
twice, as the record's key and as `dlq.original.key`, so the failure headers alone tell
where a message came from, whatever a later copy of the record does with its key.
Publishing waits for the broker's acknowledgement; when it fails the caller must not
store the original offset, so the message comes back instead of being lost.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from contracts.topics import dlq_name

__all__ = [
    "DLQ_HEADERS",
    "DeadLetterError",
    "Failure",
    "dlq_headers",
    "publish_dead_letter",
    "strip_dlq_headers",
]

DLQ_HEADERS = (
    "dlq.original.topic",
    "dlq.original.partition",
    "dlq.original.offset",
    "dlq.original.key",
    "dlq.error.class",
    "dlq.error.message",
    "dlq.attempts",
    "dlq.first.failure",
    "dlq.last.failure",
)
_MAX_ERROR_CHARS = 2000

Headers = list[tuple[str, str | bytes | None]]


class DeadLetterError(RuntimeError):
    """The dead-letter record could not be written; keep the original message."""


@dataclass(frozen=True)
class Failure:
    """Why a message is being dead-lettered."""

    error_class: str
    message: str
    attempts: int
    first_failure: datetime
    last_failure: datetime

    @classmethod
    def of(cls, error: BaseException, attempts: int, first_failure: datetime) -> "Failure":
        """The failure record of `error` after `attempts` attempts."""
        return cls(
            type(error).__name__,
            str(error)[:_MAX_ERROR_CHARS],
            attempts,
            first_failure,
            datetime.now(UTC),
        )


def dlq_headers(message: Message, failure: Failure) -> Headers:
    """The original headers (minus earlier dlq.* ones) plus this failure's."""
    kept = strip_dlq_headers(message.headers() or [])
    values: tuple[bytes | None, ...] = (
        (message.topic() or "").encode(),
        str(message.partition()).encode(),
        str(message.offset()).encode(),
        message.key(),  # the raw bytes (None for an unkeyed message)
        failure.error_class.encode(),
        failure.message.encode(),
        str(failure.attempts).encode(),
        failure.first_failure.isoformat().encode(),
        failure.last_failure.isoformat().encode(),
    )
    return kept + list(zip(DLQ_HEADERS, values, strict=True))


def strip_dlq_headers(
    headers: Sequence[tuple[str, str | bytes | None]] | dict[str, str | bytes | None],
) -> Headers:
    """Headers without our `dlq.*` ones (for a replay, or before adding fresh ones)."""
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    return [(name, value) for name, value in pairs if not name.startswith("dlq.")]


def publish_dead_letter(
    producer: Producer, message: Message, failure: Failure, *, timeout: float
) -> None:
    """Write the record to `<topic>.dlq` (same key and partition) and wait for the ack."""
    errors: list[KafkaError] = []
    delivered: list[bool] = []

    def on_delivery(error: KafkaError | None, _record: Message) -> None:
        if error is not None:
            errors.append(error)
        else:
            delivered.append(True)

    topic = message.topic() or ""
    try:
        producer.produce(
            dlq_name(topic),
            key=message.key(),
            value=message.value(),
            partition=max(message.partition() or 0, 0),
            headers=dlq_headers(message, failure),
            on_delivery=on_delivery,
        )
    except (BufferError, KafkaException) as error:
        raise DeadLetterError(f"cannot queue the dead-letter record: {error}") from error
    producer.flush(timeout)
    if errors or not delivered:
        reason = errors[0].str() if errors else f"no acknowledgement within {timeout} s"
        raise DeadLetterError(f"the dead-letter record for {topic} was not written: {reason}")
