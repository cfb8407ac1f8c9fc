"""The Kafka topic catalogue: every work topic and its dead-letter twin, in one place.

The infrastructure creates exactly these topics (`EventBus` gets them from here, as
`aws.msk.Topic` resources) and the services produce to and consume from the same names,
so a renamed topic cannot leave a producer writing where no consumer reads. This module
imports nothing from Pulumi: services load it at run time.

Every work topic `T` has a dead-letter topic `T.dlq` with at least as many partitions (a
failed record keeps its partition, so ordering per key survives a replay) and a longer
retention (an operator needs time to inspect and replay before anything expires).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ANALYTICS_EVENTS",
    "DLQ_SUFFIX",
    "DOCUMENT_UPLOADED",
    "GENERATION_REQUESTED",
    "WORK_TOPICS",
    "WorkTopic",
    "dlq_name",
]

DLQ_SUFFIX = ".dlq"
_HOUR_MS = 3_600_000


def dlq_name(topic: str) -> str:
    """The dead-letter topic of `topic`."""
    return f"{topic}{DLQ_SUFFIX}"


@dataclass(frozen=True)
class WorkTopic:
    """A topic that carries jobs, and how long it and its dead letters are kept."""

    name: str
    purpose: str
    retention_hours: int
    dlq_retention_hours: int

    def __post_init__(self) -> None:
        if self.dlq_retention_hours < self.retention_hours:
            raise ValueError(
                f"{self.name}: dead letters must be kept at least as long as the work "
                f"({self.dlq_retention_hours} h < {self.retention_hours} h)"
            )

    @property
    def dlq(self) -> str:
        """The name of this topic's dead-letter topic."""
        return dlq_name(self.name)

    @property
    def retention_ms(self) -> int:
        """`retention.ms` of the work topic."""
        return self.retention_hours * _HOUR_MS

    @property
    def dlq_retention_ms(self) -> int:
        """`retention.ms` of the dead-letter topic."""
        return self.dlq_retention_hours * _HOUR_MS


GENERATION_REQUESTED = WorkTopic(
    name="generation.requested",
    purpose="LLM generation jobs (quizzes, summaries) accepted by the AI orchestrator",
    retention_hours=7 * 24,
    dlq_retention_hours=28 * 24,
)
DOCUMENT_UPLOADED = WorkTopic(
    name="documents.uploaded",
    purpose="course PDFs waiting to be chunked, embedded and indexed into Qdrant",
    retention_hours=7 * 24,
    dlq_retention_hours=28 * 24,
)

ANALYTICS_EVENTS = WorkTopic(
    name="analytics.events",
    purpose="learning events (views, reads, attempts, generations) on their way to ClickHouse",
    # The sink keeps up in seconds; three days cover a long ClickHouse outage and a weekend.
    retention_hours=3 * 24,
    dlq_retention_hours=28 * 24,
)

WORK_TOPICS: tuple[WorkTopic, ...] = (GENERATION_REQUESTED, DOCUMENT_UPLOADED, ANALYTICS_EVENTS)
"""Every work topic the platform runs; each has a `.dlq` twin."""
