"""The settings of the compute tier: the EKS cluster, the workloads and Qdrant."""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import Field, model_validator

from stacks.sections import Section

__all__ = ["Scaling", "ServicesConfig", "VectorStoreConfig"]


class Scaling(Section):
    """HPA bounds of one service or worker."""

    min_replicas: Annotated[int, Field(ge=1, le=1000)] = 2
    max_replicas: Annotated[int, Field(ge=1, le=1000)] = 10
    cpu_target_percent: Annotated[int, Field(ge=10, le=95)] = 70

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) must not exceed maxReplicas "
                f"({self.max_replicas})"
            )
        return self


class ServicesConfig(Section):
    """`eduscale:services`: HPA bounds per service and worker."""

    auth: Scaling = Scaling()
    course: Scaling = Scaling()
    ai_orchestrator: Scaling = Scaling()
    generation_worker: Scaling = Scaling()
    indexer_worker: Scaling = Scaling()


class VectorStoreConfig(Section):
    """`eduscale:vectorStore`: Qdrant on the cluster."""

    replicas: Annotated[int, Field(ge=1, le=64)] = 3
    shards: Annotated[int, Field(ge=1, le=256)] = 6
    replication_factor: Annotated[int, Field(ge=1, le=8)] = 2

    @model_validator(mode="after")
    def _fits(self) -> Self:
        if self.replication_factor > self.replicas:
            raise ValueError(
                f"replicationFactor ({self.replication_factor}) cannot exceed the number of "
                f"Qdrant replicas ({self.replicas})"
            )
        return self
