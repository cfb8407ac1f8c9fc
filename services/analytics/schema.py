"""The ClickHouse tables of learning analytics, as DDL for one node or for a cluster.

`events` holds every event, partitioned by month, ordered by (course_id, occurred_at,
event_id) so a course's range is one contiguous read, expired by a TTL. It is a
ReplacingMergeTree on that key: a duplicate that reached it (two sinks racing through a
rebalance) collapses when parts merge, and `FINAL` hides it before that.

`course_daily` is the materialized view's target: per course and UTC day, the active
learners (a `uniqExact` state, so days merge into exact weeks), lessons read, quiz attempts
and the sum of their scores. A materialized view sees every *insert*, not every distinct
row, so it would count a duplicate twice; the sink therefore never inserts an event id the
table already has (it looks the batch's ids up first, by primary key), and reports stay
exact under redelivery. See `services/analytics/sink.py`.

With a cluster, every table is created ON CLUSTER: `*_local` tables with Replicated
engines (Keeper paths per shard, `{shard}`/`{replica}` macros), and `events` and
`course_daily` become Distributed tables sharded by course, so a course's events, their
duplicates and their aggregates all live on one shard and the per-shard view is complete.
"""

from dataclasses import dataclass

from services.analytics.events import LEARNER_KINDS

__all__ = ["NO_USER", "AnalyticsSchema"]

NO_USER = "00000000-0000-0000-0000-000000000000"
"""The `user_id` of anonymous events (a catalogue view without a token): never a learner."""


@dataclass(frozen=True)
class AnalyticsSchema:
    """The DDL for `database`, on one node (`cluster=None`) or across a cluster."""

    database: str
    ttl_days: int
    cluster: str | None = None

    @property
    def events(self) -> str:
        """The table inserts go to and reports read (Distributed on a cluster)."""
        return f"{self.database}.events"

    @property
    def daily(self) -> str:
        """The daily aggregates reports read (Distributed on a cluster)."""
        return f"{self.database}.course_daily"

    @property
    def events_ttl(self) -> str:
        """The TTL clause of the raw events."""
        return f"toDateTime(occurred_at) + INTERVAL {self.ttl_days} DAY"

    def statements(self) -> list[str]:
        """Every statement, in order; each is safe to run again (IF NOT EXISTS)."""
        db = self.database
        on = f" ON CLUSTER {self.cluster}" if self.cluster else ""
        local = "_local" if self.cluster else ""
        events_engine = self._engine("ReplacingMergeTree", "events")
        daily_engine = self._engine("AggregatingMergeTree", "course_daily")
        learner_kinds = ", ".join(f"'{kind}'" for kind in LEARNER_KINDS)
        statements = [
            f"CREATE DATABASE IF NOT EXISTS {db}{on}",
            (
                f"CREATE TABLE IF NOT EXISTS {db}.events{local}{on} (\n"
                "    event_id UUID,\n"
                "    occurred_at DateTime64(3, 'UTC'),\n"
                "    course_id UUID,\n"
                "    user_id UUID,\n"
                "    kind LowCardinality(String),\n"
                "    score Nullable(Float64),\n"
                "    props String,\n"
                "    schema_version UInt8\n"
                f") ENGINE = {events_engine}\n"
                "PARTITION BY toYYYYMM(occurred_at)\n"
                "ORDER BY (course_id, occurred_at, event_id)\n"
                f"TTL {self.events_ttl}"
            ),
            (
                f"CREATE TABLE IF NOT EXISTS {db}.course_daily{local}{on} (\n"
                "    course_id UUID,\n"
                "    day Date,\n"
                "    learners AggregateFunction(uniqExact, UUID),\n"
                "    lessons_read SimpleAggregateFunction(sum, UInt64),\n"
                "    attempts SimpleAggregateFunction(sum, UInt64),\n"
                "    score_sum SimpleAggregateFunction(sum, Float64)\n"
                f") ENGINE = {daily_engine}\n"
                "PARTITION BY toYYYYMM(day)\n"
                "ORDER BY (course_id, day)\n"
                f"TTL day + INTERVAL {self.ttl_days} DAY"
            ),
            (
                f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.course_daily_mv{on}"
                f" TO {db}.course_daily{local} AS\n"
                "SELECT\n"
                "    course_id,\n"
                "    toDate(occurred_at) AS day,\n"
                "    uniqExactIfState(user_id,"
                f" kind IN ({learner_kinds}) AND user_id != toUUID('{NO_USER}')) AS learners,\n"
                "    toUInt64(countIf(kind = 'lesson_read')) AS lessons_read,\n"
                "    toUInt64(countIf(kind = 'quiz_attempted')) AS attempts,\n"
                "    sumIf(ifNull(score, 0), kind = 'quiz_attempted') AS score_sum\n"
                f"FROM {db}.events{local}\n"
                "GROUP BY course_id, day"
            ),
        ]
        if self.cluster:
            statements += [
                f"CREATE TABLE IF NOT EXISTS {db}.{table}{on} AS {db}.{table}_local\n"
                f"ENGINE = Distributed({self.cluster}, {db}, {table}_local, "
                "cityHash64(course_id))"
                for table in ("events", "course_daily")
            ]
        return statements

    def modify_ttl(self) -> str:
        """Bring an existing table's TTL to the configured number of days."""
        on = f" ON CLUSTER {self.cluster}" if self.cluster else ""
        local = "_local" if self.cluster else ""
        return f"ALTER TABLE {self.database}.events{local}{on} MODIFY TTL {self.events_ttl}"

    def _engine(self, family: str, table: str) -> str:
        if not self.cluster:
            return f"{family}"
        return (
            f"Replicated{family}('/clickhouse/tables/{{shard}}/{self.database}/{table}',"
            " '{replica}')"
        )
