"""Peak request rates: the workload model applied to a number of active users.

Rates are per second at the busiest minute (`peak_factor` x the busy-hour average).
Everything downstream (pods, replicas, shards) is sized from these numbers alone, so
doubling the users doubles every rate, and the plan scales with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.capacity.workload import Endpoint, WorkloadModel

__all__ = ["Traffic", "peak_traffic"]


@dataclass(frozen=True)
class Traffic:
    """Peak requests per second, per endpoint, and what they add up to per tier."""

    users: int
    per_endpoint: dict[str, float]
    model: WorkloadModel

    def endpoints(self) -> list[tuple[str, Endpoint, float]]:
        """(name, endpoint, peak req/s) for every endpoint of the model."""
        return [(n, e, self.per_endpoint[n]) for n, e in self.model.endpoints.items()]

    @property
    def total(self) -> float:
        """Requests per second through the gateway."""
        return sum(self.per_endpoint.values())

    def enqueued(self, work: str) -> float:
        """Jobs per second queued for `generation` or `document` workers."""
        return sum(rate for _, e, rate in self.endpoints() if e.enqueues == work)

    @property
    def database_reads(self) -> float:
        """Reads per second that miss the cache and reach a read replica."""
        return sum(
            rate * (1 - e.cache_hit_ratio) * e.db_reads_per_miss for _, e, rate in self.endpoints()
        )

    @property
    def database_transactions(self) -> float:
        """Write transactions per second on the primary (each once, whatever rows it writes)."""
        return sum(rate * e.db_transactions_per_request for _, e, rate in self.endpoints())

    @property
    def events(self) -> float:
        """Learning events per second, to Kafka and on to ClickHouse."""
        return sum(rate * e.events_per_request for _, e, rate in self.endpoints())

    @property
    def redis_ops(self) -> float:
        """Redis operations per second: the services' caches and the gateway's limits."""
        services = sum(rate * e.redis_ops_per_request for _, e, rate in self.endpoints())
        return services + self.total * self.model.gateway.redis_ops_per_request


def peak_traffic(users: int, model: WorkloadModel) -> Traffic:
    """Peak requests per second of each endpoint for `users` concurrently active users."""
    per_endpoint = {
        name: users * endpoint.per_user_per_minute / 60 * model.peak_factor
        for name, endpoint in model.endpoints.items()
    }
    return Traffic(users=users, per_endpoint=per_endpoint, model=model)
