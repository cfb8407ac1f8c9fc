"""The CrossGuard entry point: `pulumi preview --policy-pack policies` runs this file.

Only the pack is built here: `PolicyPack(...)` starts the analyzer's gRPC server and blocks,
so nothing else may import this module. The rules live in importable modules.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

from policies.catalogue import ALL_POLICIES

PolicyPack(
    name="eduscale",
    enforcement_level=EnforcementLevel.ADVISORY,
    policies=list(ALL_POLICIES),
)
