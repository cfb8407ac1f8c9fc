"""The capacity plan (`eduscale capacity`): measured per-pod figures -> the stack's sizes.

How the numbers are made, end to end:

1. Traffic: the workload model (workload.yaml, every number with its source) gives each
   endpoint's requests per active user per minute; x users / 60 x `peak_factor` is the
   peak rate per second (traffic.py).
2. Pods: a benchmark figure is requests/s of ONE server process on one core. A pod with a
   CPU request of R cores, held by its HPA at T % (70 % by default), does R x T/100 cores
   of work, so it serves `figure x R x T/100` req/s. A cacheable endpoint costs
   `hit/cached_figure + miss/uncached_figure` core-seconds per request. Pods = total
   core-seconds/s x `headroom` / (R x T/100). The generation worker waits on the LLM, so
   it is sized by jobs in flight (rate x LLM latency, Little's law, less the semantic
   cache's measured share) over the stack's `workerConcurrency`; the indexer by indexing
   time per PDF; Kong by a published rate per core (pods.py).
3. Nodes: pods x requests, packed onto each node group's instance type after the
   kubelet's reservation and the DaemonSets (nodes.py).
4. Data tiers: read replicas from uncached reads/s, the primary's vCPUs from write
   transactions/s (each once, whatever rows it writes),
   Redis shards from ops/s (a rate per vCPU, Redis 7.1's full rate only on nodes of 8 vCPUs
   or more) and memory, Kafka partitions from consumer pods and write rate
   and brokers from partition replicas and write rate (jobs and learning events), Qdrant
   nodes from vector memory and searches (data_tiers.py), ClickHouse storage per replica
   from the events kept (analytics_tier.py).
5. Cost: the sized items at the dated on-demand prices of prices.yaml (costs.py); apart,
   the month's LLM tokens at the dated per-token prices of llm_prices.yaml (llm.py).

Each requirement names the stack key that bounds it (HPA maxReplicas, node group maxSize,
replicaCount, shards, partitions, brokers...), so a plan that does not fit says which key to
change and to what.
"""
