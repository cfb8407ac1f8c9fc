"""Learning events: what happened, to which course, by whom, when. Typed and versioned.

Every event is one msgspec struct tagged by `kind`, with the same envelope (schema
version, id, time, user, course) and typed `props` per kind, so a producer cannot send a
quiz attempt without its score, and the sink decodes exactly the kinds and versions it
knows: anything else is a `PoisonMessage` and goes to the dead-letter topic.

Events about a durable thing (an attempt, a job, an indexing run) take a deterministic
id from that thing, so emitting the same fact twice (a retried request, a redelivered
job) is one event once stored. Views and reads are new facts each time: random ids.
"""

import random
import uuid
from datetime import UTC, datetime
from typing import Literal

import msgspec

from services.runtime.kafka.envelope import PoisonMessage

__all__ = [
    "EVENT_KINDS",
    "LEARNER_KINDS",
    "CourseViewed",
    "DocumentIndexed",
    "DocumentIndexedProps",
    "Event",
    "GenerationFinished",
    "GenerationFinishedProps",
    "GenerationProps",
    "GenerationRequested",
    "LessonRead",
    "LessonReadProps",
    "QuizAttempted",
    "QuizAttemptedProps",
    "decode_event",
    "encode_event",
    "stable_event_id",
]

_NAMESPACE = uuid.UUID("5b0f7c3e-9a51-4c53-9f0e-2f6f3f1d8a11")
"""Namespace of deterministic event ids (uuid5); changing it would re-count old facts."""


def _now() -> datetime:
    return datetime.now(UTC)


_random_bits = random.getrandbits
_V4_CLEAR = ~(0xC000 << 48) & ~(0xF000 << 64)
_V4_SET = (0x8000 << 48) | (4 << 76)


def _random_id() -> uuid.UUID:
    """A random version-4 UUID, as `uuid.uuid4()` makes, for half its cost on a hot read.

    An event id must be unique (the sink stores each once), not unpredictable: the
    process's Mersenne Twister, seeded from the OS and reseeded in every forked worker
    (the `random` module does both), gives 122 random bits without `uuid4`'s system call.
    """
    return uuid.UUID(int=(_random_bits(128) & _V4_CLEAR) | _V4_SET)


def stable_event_id(kind: str, *parts: object) -> uuid.UUID:
    """The id of the event `kind` about `parts`: the same fact always gets the same id."""
    return uuid.uuid5(_NAMESPACE, ":".join([kind, *map(str, parts)]))


class _Event(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    forbid_unknown_fields=True,
    tag_field="kind",
):
    schema_version: Literal[1] = 1
    event_id: uuid.UUID = msgspec.field(default_factory=_random_id)
    occurred_at: datetime = msgspec.field(default_factory=_now)
    """UTC; naive times are refused (`__post_init__`)."""
    user_id: uuid.UUID | None
    """Who did it; None for an anonymous catalogue view."""
    course_id: uuid.UUID

    def __post_init__(self) -> None:
        offset = self.occurred_at.utcoffset()
        if offset is None or offset.total_seconds() != 0:
            raise ValueError("occurred_at must be a UTC time")


class _NoProps(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Nothing beyond the envelope."""


class CourseViewed(_Event, frozen=True, tag="course_viewed"):
    """Someone opened a course's page (requests that reach the service)."""

    props: _NoProps = _NoProps()


class LessonReadProps(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which lesson."""

    lesson_id: uuid.UUID


class LessonRead(_Event, frozen=True, tag="lesson_read"):
    """A signed-in user read a lesson."""

    props: LessonReadProps


class QuizAttemptedProps(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which quiz, and how it went."""

    quiz_id: uuid.UUID
    attempt_id: uuid.UUID
    score: int
    total: int

    def __post_init__(self) -> None:
        if self.total < 1 or not 0 <= self.score <= self.total:
            raise ValueError("a quiz attempt needs 0 <= score <= total and total >= 1")


class QuizAttempted(_Event, frozen=True, tag="quiz_attempted"):
    """A learner answered a quiz; id from the attempt."""

    props: QuizAttemptedProps

    @property
    def fraction(self) -> float:
        """The share of questions answered right, 0 to 1 (what reports average)."""
        return self.props.score / self.props.total


class GenerationProps(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which job, of what kind."""

    job_id: uuid.UUID
    generation_kind: str


class GenerationRequested(_Event, frozen=True, tag="generation_requested"):
    """An instructor or learner asked for a generation; id from the job."""

    props: GenerationProps


class GenerationFinishedProps(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which job, and how it ended."""

    job_id: uuid.UUID
    generation_kind: str
    outcome: Literal["succeeded", "dead_lettered"]


class GenerationFinished(_Event, frozen=True, tag="generation_finished"):
    """The generation worker finished a job (or gave up on it); id from the job."""

    props: GenerationFinishedProps


class DocumentIndexedProps(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Which document, and how big it was."""

    document_id: uuid.UUID
    job_id: uuid.UUID
    pages: int
    chunks: int


class DocumentIndexed(_Event, frozen=True, tag="document_indexed"):
    """The indexer made a course document searchable; id from the indexing job."""

    props: DocumentIndexedProps


Event = (
    CourseViewed
    | LessonRead
    | QuizAttempted
    | GenerationRequested
    | GenerationFinished
    | DocumentIndexed
)
"""Any event the platform emits (schema version 1)."""

EVENT_KINDS: tuple[str, ...] = (
    "course_viewed",
    "lesson_read",
    "quiz_attempted",
    "generation_requested",
    "generation_finished",
    "document_indexed",
)
LEARNER_KINDS: tuple[str, ...] = ("course_viewed", "lesson_read", "quiz_attempted")
"""The kinds that make their user an active learner of the course that day."""

_decoder = msgspec.json.Decoder(Event)
_encoder = msgspec.json.Encoder()


def encode_event(event: Event) -> bytes:
    """The wire bytes of an event (JSON)."""
    return _encoder.encode(event)


def decode_event(value: bytes | None) -> Event:
    """Decode one `analytics.events` value, or raise `PoisonMessage` saying why not."""
    if not value:
        raise PoisonMessage("empty message value")
    try:
        event: Event = _decoder.decode(value)  # the common case: one pass
    except msgspec.DecodeError as error:
        raise _why_not(value, error) from None
    return event


def _why_not(value: bytes, error: msgspec.DecodeError) -> PoisonMessage:
    """The reason a value is not an event we read, in the order a producer would fix it."""
    try:
        version = msgspec.json.decode(value, type=dict[str, object]).get("schema_version")
    except msgspec.DecodeError as malformed:
        return PoisonMessage(f"not a JSON object: {malformed}")
    if version != 1:
        return PoisonMessage(f"unknown schema_version {version!r}; this sink reads 1")
    return PoisonMessage(f"invalid analytics event v1: {error}")
