"""Every rule of the pack, in one list: what `__main__.py` and `eduscale policy` both load."""

from pulumi_policy import Policy

from policies import (
    cache,
    cluster,
    database,
    dns,
    edge,
    iam,
    images,
    kubernetes,
    messaging,
    network,
    observability,
    origin,
    secret_files,
    storage,
    topology,
)

__all__ = ["ALL_POLICIES"]

ALL_POLICIES: list[Policy] = [
    *database.POLICIES,
    *dns.POLICIES,
    *cache.POLICIES,
    *messaging.POLICIES,
    *storage.POLICIES,
    *network.POLICIES,
    *edge.POLICIES,
    *origin.POLICIES,
    *cluster.POLICIES,
    *iam.POLICIES,
    *kubernetes.POLICIES,
    *observability.POLICIES,
    *images.POLICIES,
    *secret_files.POLICIES,
    *topology.POLICIES,
]
