"""The stateful tiers: PostgreSQL, Redis, Kafka, Qdrant, and ClickHouse (analytics_tier.py).

None of them autoscale, so each is sized for the peak with the model's headroom:

- PostgreSQL: reads that miss the cache go to the read replicas (the measured
  `database_reads` queries per CPU-second x the replica class's vCPUs x target
  utilisation each), plus `spare_replicas` so losing one keeps
  the rest under target; write transactions go to the one primary, whose vCPUs must
  carry them (`writes_per_vcpu` is a rate of transactions, so each counts once whatever
  rows it writes).
- Redis: shards for the operations per second (the primaries serve them, at a rate per
  vCPU that Redis 7.1 reaches only on nodes of 8 vCPUs or more) or for memory (sessions and
  hot course content), whichever needs more.
- Kafka: partitions per work topic from consumers and throughput: a consumer group gives
  each partition to one consumer, so every worker pod (one consumer, however many jobs it
  keeps in flight) needs a partition, and no partition may take more than its write rate.
  Brokers hold the partition replicas (MSK's recommended count per broker type) and the
  replicated write rate (jobs and learning events), in whole multiples of the AZs.
- Qdrant: every node holds the vectors' share (raw bytes x index overhead x replication
  factor) in memory and serves searches on its vCPUs; shards keep each below
  `max_shard_gb` and give every node at least one.
"""

from __future__ import annotations

from dataclasses import dataclass

from contracts.topics import WORK_TOPICS
from infra.capacity.analytics_tier import AnalyticsTier, size_analytics
from infra.capacity.bench import BenchFigures
from infra.capacity.pods import WorkloadPods, cpu_cores, memory_mib
from infra.capacity.prices import PriceTable
from infra.capacity.requirement import Requirement, ceil_div
from infra.capacity.traffic import Traffic
from stacks.config import StackConfig

__all__ = ["DATA_FIGURES", "DataTiers", "MeasuredRates", "size_data_tiers"]

EVENT_WIRE_FIGURE = "analytics_event_wire_bytes"
"""Bytes one learning event takes on the wire as the emitters send it (benchmarks/event_wire.py)."""
DATABASE_READS_FIGURE = "database_reads"
"""Queries one PostgreSQL core serves per second on the costliest read path the services
send to replicas (benchmarks/database_reads.py)."""
DATA_FIGURES = (EVENT_WIRE_FIGURE, DATABASE_READS_FIGURE)
"""The benchmark figures the data tiers read."""


@dataclass(frozen=True)
class MeasuredRates:
    """What the data tiers take from the benchmarks instead of the workload model."""

    event_wire_bytes: float
    database_reads_per_vcpu: float

    @classmethod
    def from_figures(cls, figures: BenchFigures) -> MeasuredRates:
        """The rates of a results file (its figures were checked when it was loaded)."""
        return cls(
            event_wire_bytes=figures.value(EVENT_WIRE_FIGURE),
            database_reads_per_vcpu=figures.value(DATABASE_READS_FIGURE),
        )


_KIB_PER_GIB = 1024 * 1024
_BYTES_PER_FLOAT = 4


@dataclass(frozen=True)
class DataTiers:
    """The data tiers at peak: what the costs are computed from."""

    read_replicas: int
    cache_shards: int
    brokers: int
    vector_nodes: int
    vector_pods: WorkloadPods
    analytics: AnalyticsTier

    @property
    def pods(self) -> list[WorkloadPods]:
        """The stateful pods that run on the cluster's nodes."""
        return [self.vector_pods, self.analytics.servers, self.analytics.keepers]


def size_data_tiers(
    traffic: Traffic,
    worker_pods: dict[str, int],
    config: StackConfig,
    prices: PriceTable,
    measured: MeasuredRates,
) -> tuple[list[Requirement], DataTiers]:
    """Requirements of every data tier; `worker_pods` are the plan's worker pod counts."""
    database = _database(traffic, config, prices, measured.database_reads_per_vcpu)
    cache = _cache(traffic, config, prices)
    kafka = _kafka(traffic, worker_pods, config, prices, measured.event_wire_bytes)
    vectors, vector_pods = _vector_store(traffic, config)
    analytics, analytics_tier = size_analytics(traffic, config)
    tiers = DataTiers(
        read_replicas=database[0].needed,
        cache_shards=cache[0].needed,
        brokers=kafka[1].needed,
        vector_nodes=vectors[0].needed,
        vector_pods=vector_pods,
        analytics=analytics_tier,
    )
    return [*database, *cache, *kafka, *vectors, *analytics], tiers


def _database(
    traffic: Traffic, config: StackConfig, prices: PriceTable, reads_per_vcpu: float
) -> list[Requirement]:
    """Read replicas (of the replicas' own class), then the primary's vCPUs."""
    headroom = traffic.model.headroom
    db = traffic.model.database
    instance = prices.database(config.database.instance_class)
    replica_class = config.database.replica_class
    per_replica = reads_per_vcpu * prices.database(replica_class).vcpu * db.cpu_utilisation
    reads = traffic.database_reads
    writes = traffic.database_transactions
    per_vcpu = db.writes_per_vcpu * db.cpu_utilisation
    return [
        Requirement(
            "database",
            "read replicas",
            ceil_div(reads * headroom, per_replica) + db.spare_replicas,
            config.database.replica_count,
            "eduscale:database.replicaCount",
            f"{reads:,.0f} uncached reads/s x {headroom:g} / {per_replica:,.0f} per "
            f"{replica_class} replica, + {db.spare_replicas} spare",
        ),
        Requirement(
            "database",
            "primary vCPUs",
            ceil_div(writes * headroom, per_vcpu),
            instance.vcpu,
            "eduscale:database.instanceClass",
            f"{writes:,.0f} write transactions/s x {headroom:g} / {per_vcpu:,.0f} per vCPU",
            remedy="set eduscale:database.instanceClass to a class with at least "
            f"{ceil_div(writes * headroom, per_vcpu)} vCPUs (the price table lists them)",
        ),
    ]


def _cache(traffic: Traffic, config: StackConfig, prices: PriceTable) -> list[Requirement]:
    """Redis shards, for operations or for memory, whichever needs more."""
    headroom = traffic.model.headroom
    cache = traffic.model.cache
    node = prices.cache_node(config.cache.node_type)
    ops = traffic.redis_ops
    full_rate = node.vcpu >= cache.full_rate_min_vcpus
    per_vcpu = cache.ops_per_vcpu * (1 if full_rate else cache.below_full_rate_factor)
    per_shard = per_vcpu * node.vcpu * cache.cpu_utilisation
    by_ops = ceil_div(ops * headroom, per_shard)
    stored_gib = (
        traffic.users * (cache.session_kb_per_user + cache.hot_courses_per_user * cache.course_kb)
    ) / _KIB_PER_GIB
    usable_gib = node.memory_gib * cache.usable_memory_fraction
    by_memory = ceil_div(stored_gib * headroom, usable_gib)
    return [
        Requirement(
            "cache",
            "redis shards",
            max(by_ops, by_memory),
            config.cache.shards,
            "eduscale:cache.shards",
            f"{ops:,.0f} ops/s x {headroom:g} / {per_shard:,.0f} per shard ({node.vcpu} vCPUs "
            f"x {per_vcpu:,.0f} at {cache.cpu_utilisation:g}) -> {by_ops}; "
            f"{stored_gib:,.1f} GiB x {headroom:g} / {usable_gib:.1f} GiB usable per "
            f"{config.cache.node_type} -> {by_memory}",
        )
    ]


def _topic_write_mb(traffic: Traffic, event_wire_bytes: float) -> dict[str, float]:
    """MB/s written to each work topic at peak, before replication.

    Jobs are counted at their size (small envelopes, uncompressed); learning events at the
    bytes the emitters were measured to send per event, batched and compressed: the
    brokers store and replicate those batches as they arrive.
    """
    model = traffic.model
    return {
        "generation": traffic.enqueued("generation") * model.generation.message_kb / 1024,
        "document": traffic.enqueued("document") * model.documents.message_kb / 1024,
        "analytics": traffic.events * event_wire_bytes / 1024**2,
    }


def _kafka(
    traffic: Traffic,
    worker_pods: dict[str, int],
    config: StackConfig,
    prices: PriceTable,
    event_wire_bytes: float,
) -> list[Requirement]:
    """Partitions for consumers and throughput, then brokers for the partitions and bytes."""
    model = traffic.model
    kafka = config.kafka
    consumers = max(worker_pods.values())
    topic_mb = _topic_write_mb(traffic, event_wire_bytes)
    per_partition = model.kafka.partition_write_mb_per_second
    by_rate = {
        topic: ceil_div(mb * model.headroom, per_partition) for topic, mb in topic_mb.items()
    }
    needed = max(consumers, *by_rate.values())
    broker = prices.broker(kafka.broker_instance_type)
    # The brokers must hold the partitions the stack creates, even beyond the need.
    partitions = max(needed, kafka.partitions)
    replicas_held = partitions * len(WORK_TOPICS) * 2 * kafka.replication_factor
    by_partitions = ceil_div(replicas_held, broker.max_partitions)
    write_mb = sum(topic_mb.values()) * kafka.replication_factor
    by_throughput = ceil_div(
        write_mb * model.headroom,
        model.kafka.broker_write_mb_per_second * model.kafka.utilisation,
    )
    azs = config.network.az_count
    brokers = ceil_div(max(by_partitions, by_throughput, kafka.replication_factor), azs) * azs
    consumers_text = ", ".join(f"{n} {name}" for name, n in worker_pods.items())
    rates_text = ", ".join(f"{topic} {topic_mb[topic]:,.2f} -> {n}" for topic, n in by_rate.items())
    return [
        Requirement(
            "kafka",
            "partitions per work topic",
            needed,
            kafka.partitions,
            "eduscale:kafka.partitions",
            f"a partition per consumer pod ({consumers_text}); MB/s x {model.headroom:g} / "
            f"{per_partition:g} MB/s per partition ({rates_text})",
        ),
        Requirement(
            "kafka",
            "brokers",
            brokers,
            kafka.brokers,
            "eduscale:kafka.brokers",
            f"{partitions} partitions x {len(WORK_TOPICS)} topics x 2 (with .dlq) x "
            f"RF {kafka.replication_factor} = {replicas_held:,} replicas / "
            f"{broker.max_partitions} per {kafka.broker_instance_type} -> {by_partitions}; "
            f"{write_mb:,.2f} MB/s replicated -> {by_throughput}; in multiples of {azs} AZs",
        ),
    ]


def _vector_store(traffic: Traffic, config: StackConfig) -> tuple[list[Requirement], WorkloadPods]:
    """Qdrant nodes for memory and searches, shards for size and spread; its pods."""
    model = traffic.model
    vectors_model = model.vectors
    store = config.vector_store
    documents = traffic.users * vectors_model.documents_per_user
    chunks = documents * model.documents.chunks_per_document
    cached = traffic.users * vectors_model.semantic_cache_entries_per_user
    vectors = chunks + cached
    raw_bytes = (
        chunks * store.vector_size + cached * vectors_model.semantic_cache_dimensions
    ) * _BYTES_PER_FLOAT
    data_gib = raw_bytes * vectors_model.index_overhead / 1024**3
    node_memory_gib = memory_mib(store.memory) / 1024
    usable_gib = node_memory_gib * vectors_model.memory_utilisation
    node_cpu = cpu_cores(store.cpu)
    by_memory = ceil_div(data_gib * store.replication_factor, usable_gib)
    searches = traffic.enqueued("generation") * vectors_model.searches_per_generation
    by_searches = ceil_div(
        searches * model.headroom,
        vectors_model.searches_per_vcpu * node_cpu * vectors_model.cpu_utilisation,
    )
    nodes = max(by_memory, by_searches, store.replication_factor)
    shards = max(
        ceil_div(data_gib, vectors_model.max_shard_gb),
        ceil_div(nodes, store.replication_factor),
    )
    requirements = [
        Requirement(
            "vector store",
            "qdrant nodes",
            nodes,
            store.replicas,
            "eduscale:vectorStore.replicas",
            f"{vectors / 1e6:,.1f} M vectors = {data_gib:,.0f} GiB with the index x RF "
            f"{store.replication_factor} / {usable_gib:,.1f} GiB usable per node -> "
            f"{by_memory}; {searches:,.0f} searches/s -> {by_searches}",
        ),
        Requirement(
            "vector store",
            "qdrant shards",
            shards,
            store.shards,
            "eduscale:vectorStore.shards",
            f"{data_gib:,.0f} GiB / {vectors_model.max_shard_gb:g} GiB per shard, and at least "
            f"one shard replica per node ({nodes} nodes / RF {store.replication_factor})",
        ),
    ]
    pods = WorkloadPods(
        name="qdrant",
        pods=max(nodes, store.replicas),
        cpu=node_cpu,
        memory_mib=memory_mib(store.memory),
        interruptible=False,
    )
    return requirements, pods
