"""Kubernetes rules: a compliant workload passes; each control fails when wrong and when absent
(unless Kubernetes' default for absent is the safe one); stack rules match by namespace and
selector; and a broken prod graph fails through the CLI naming the rule."""

import json
from typing import Any

import pytest
from policy_harness import (
    Mutation,
    MutationCheck,
    policy_resource,
    resource_violations,
    resources_of,
    stack_violations,
)
from pulumi_policy import EnforcementLevel
from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UNKNOWN_STRING_VALUE, UnknownValueError

from infra.graph import Graph
from infra.policy_check import check_graph
from policies import kubernetes
from policies.kubernetes_pods import looks_secret
from policies.support import get

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
REPLICA_SET = "kubernetes:apps/v1:ReplicaSet"
JOB = "kubernetes:batch/v1:Job"
CRON_JOB = "kubernetes:batch/v1:CronJob"
POD_KIND = "kubernetes:core/v1:Pod"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
HPA = "kubernetes:autoscaling/v2:HorizontalPodAutoscaler"
KEDA = "kubernetes:keda.sh/v1alpha1:ScaledObject"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
LABELS = {"app.kubernetes.io/name": "app", "app.kubernetes.io/part-of": "eduscale"}
DIGEST = "sha256:" + "a" * 64
SECURE = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
}
RESOURCES = {
    "requests": {"cpu": "250m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}
CONTAINER: dict[str, Any] = {
    "name": "app",
    "image": f"ghcr.io/eduscale/app:1.0.0@{DIGEST}",
    "resources": RESOURCES,
    "securityContext": SECURE,
    "readinessProbe": {"httpGet": {"path": "/health/ready", "port": "http"}},
    "livenessProbe": {"httpGet": {"path": "/health/live", "port": "http"}},
    "env": [
        {"name": "DATABASE_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}},
        {"name": "LOG_LEVEL", "value": "info"},
    ],
}
INIT: dict[str, Any] = {"name": "migrate", "image": f"ghcr.io/eduscale/app@{DIGEST}",
                        "resources": RESOURCES, "securityContext": SECURE}  # fmt: skip
ZONE_SPREAD = [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchLabels": LABELS}}]  # fmt: skip
WORKLOAD: dict[str, Any] = {
    "metadata": {"name": "app", "namespace": "eduscale", "labels": LABELS},
    "spec": {
        "selector": {"matchLabels": LABELS},
        "template": {
            "metadata": {"labels": LABELS},
            "spec": {
                "securityContext": {"runAsNonRoot": True, "runAsUser": 10001,
                                    "seccompProfile": {"type": "RuntimeDefault"}},
                "initContainers": [INIT],
                "containers": [CONTAINER],
                "topologySpreadConstraints": ZONE_SPREAD,
            },
        },
    },
}  # fmt: skip
POD = "spec.template.spec"
C0 = f"{POD}.containers.0"
I0 = f"{POD}.initContainers.0"


def edit(props: dict[str, Any], path: str, value: Any = ..., *, delete: bool = False) -> dict[str, Any]:  # fmt: skip
    """A copy of `props` (sharing nothing) with the value at dotted `path` set (or deleted)."""
    result: dict[str, Any] = json.loads(json.dumps(props))
    *parents, last = path.split(".")
    node: Any = result
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if delete:
        del node[int(last) if isinstance(node, list) else last]
    else:
        node[int(last) if isinstance(node, list) else last] = value
    return result


POD_RULES = [
    "k8s-resources", "k8s-probes", "k8s-run-as-non-root", "k8s-no-privilege-escalation",
    "k8s-drop-all-capabilities", "k8s-seccomp-profile", "k8s-no-host-namespaces",
    "k8s-not-privileged", "k8s-readonly-root-filesystem", "k8s-image-pinned", "k8s-zone-spread",
    "k8s-no-literal-secrets",
]  # fmt: skip

BAD_VALUES = [
    ("k8s-resources", f"{C0}.resources.limits.memory", "", "resources.limits.memory"),
    (
        "k8s-probes",
        f"{C0}.livenessProbe",
        {"httpGet": {"path": "/health/ready", "port": "http"}, "periodSeconds": 30},
        "identical",
    ),
    (
        "k8s-run-as-non-root",
        f"{C0}.securityContext.runAsNonRoot",
        False,
        'container "app" sets runAsNonRoot = false',
    ),
    ("k8s-run-as-non-root", f"{POD}.securityContext.runAsUser", 0, "UID 0"),
    (
        "k8s-run-as-non-root",
        f"{I0}.securityContext.runAsUser",
        0,
        'init container "migrate" runs as UID 0',
    ),
    (
        "k8s-no-privilege-escalation",
        f"{C0}.securityContext.allowPrivilegeEscalation",
        True,
        "allowPrivilegeEscalation",
    ),
    (
        "k8s-drop-all-capabilities",
        f"{C0}.securityContext.capabilities.drop",
        ["NET_RAW"],
        "does not drop ALL",
    ),
    (
        "k8s-drop-all-capabilities",
        f"{C0}.securityContext.capabilities.add",
        ["SYS_ADMIN"],
        "adds capabilities SYS_ADMIN",
    ),
    (
        "k8s-seccomp-profile",
        f"{POD}.securityContext.seccompProfile.type",
        "Unconfined",
        "Unconfined",
    ),
    (
        "k8s-seccomp-profile",
        f"{C0}.securityContext.seccompProfile",
        {"type": "Unconfined"},
        'container "app"\'s seccomp profile is Unconfined',
    ),
    ("k8s-no-host-namespaces", f"{POD}.hostNetwork", True, "hostNetwork"),
    ("k8s-no-host-namespaces", f"{POD}.hostPID", True, "hostPID"),
    ("k8s-no-host-namespaces", f"{POD}.hostIPC", True, "hostIPC"),
    ("k8s-no-host-namespaces", f"{C0}.ports", [{"containerPort": 80, "hostPort": 80}], "hostPort"),
    ("k8s-not-privileged", f"{C0}.securityContext.privileged", True, "privileged"),
    ("k8s-not-privileged", f"{I0}.securityContext.privileged", True, 'init container "migrate"'),
    (
        "k8s-readonly-root-filesystem",
        f"{C0}.securityContext.readOnlyRootFilesystem",
        False,
        "writable root",
    ),
    ("k8s-image-pinned", f"{C0}.image", "ghcr.io/eduscale/app:latest", "latest tag"),
    ("k8s-image-pinned", f"{I0}.image", "ghcr.io/eduscale/app", "no tag and no digest"),
    (
        "k8s-image-pinned",
        f"{C0}.image",
        "ghcr.io/eduscale/app:1.0.0",
        'container "app": image ghcr.io/eduscale/app:1.0.0 is pinned by tag only',
    ),
    (
        "k8s-image-pinned",
        f"{I0}.image",
        "ghcr.io/eduscale/app:1.0.0@sha256:abc",
        'init container "migrate": image ghcr.io/eduscale/app:1.0.0@sha256:abc has a malformed digest',
    ),
    (
        "k8s-zone-spread",
        f"{POD}.topologySpreadConstraints.0.topologyKey",
        "kubernetes.io/hostname",
        "not spread over zones",
    ),
    (
        "k8s-no-literal-secrets",
        f"{C0}.env.0",
        {"name": "STRIPE_API_KEY", "value": "sk_live_x"},
        "STRIPE_API_KEY",
    ),
]
ABSENT_FAILS = [
    ("k8s-resources", f"{C0}.resources.requests.cpu"),
    ("k8s-resources", f"{I0}.resources.limits"),
    ("k8s-probes", f"{C0}.readinessProbe"),
    ("k8s-probes", f"{C0}.livenessProbe"),
    ("k8s-no-privilege-escalation", f"{I0}.securityContext.allowPrivilegeEscalation"),
    ("k8s-drop-all-capabilities", f"{C0}.securityContext.capabilities"),
    ("k8s-readonly-root-filesystem", f"{I0}.securityContext.readOnlyRootFilesystem"),
    ("k8s-image-pinned", f"{C0}.image"),
    ("k8s-zone-spread", f"{POD}.topologySpreadConstraints"),
]
"""Settings whose absence is unsafe (Kubernetes' default allows the risk)."""


@pytest.mark.parametrize("name", POD_RULES)
@pytest.mark.parametrize("kind", [DEPLOYMENT, STATEFUL_SET])
def test_a_compliant_workload_passes(name: str, kind: str):
    assert resource_violations(name, kind, WORKLOAD) == []


@pytest.mark.parametrize(("name", "path", "bad", "message"), BAD_VALUES, ids=[f"{c[0]}:{c[1]}" for c in BAD_VALUES])  # fmt: skip
def test_a_bad_value_fails(name: str, path: str, bad: object, message: str):
    found = resource_violations(name, DEPLOYMENT, edit(WORKLOAD, path, bad))
    assert len(found) == 1, found
    assert message in found[0]


@pytest.mark.parametrize(("name", "path"), ABSENT_FAILS, ids=[f"{c[0]}:{c[1]}" for c in ABSENT_FAILS])  # fmt: skip
def test_an_absent_value_fails(name: str, path: str):
    assert resource_violations(name, DEPLOYMENT, edit(WORKLOAD, path, delete=True))


@pytest.mark.parametrize(
    ("name", "path"),
    [
        ("k8s-no-host-namespaces", f"{POD}.hostNetwork"),
        ("k8s-not-privileged", f"{C0}.securityContext.privileged"),
        ("k8s-drop-all-capabilities", f"{C0}.securityContext.capabilities.add"),
    ],
)
def test_absent_host_and_privilege_flags_default_to_safe(name: str, path: str):
    assert get(WORKLOAD, path) is None
    assert resource_violations(name, DEPLOYMENT, WORKLOAD) == []


def test_run_as_non_root_is_enough_on_the_pod_or_on_every_container():
    only_containers = edit(WORKLOAD, f"{POD}.securityContext.runAsNonRoot", delete=True)
    assert resource_violations("k8s-run-as-non-root", DEPLOYMENT, only_containers) == []
    neither = edit(edit(only_containers, f"{C0}.securityContext.runAsNonRoot", delete=True),
                   f"{I0}.securityContext.runAsNonRoot", delete=True)  # fmt: skip
    assert len(resource_violations("k8s-run-as-non-root", DEPLOYMENT, neither)) == 2
    only_pod = edit(neither, f"{POD}.securityContext.runAsNonRoot", value=True)
    assert resource_violations("k8s-run-as-non-root", DEPLOYMENT, only_pod) == []
    pod_false = edit(WORKLOAD, f"{POD}.securityContext.runAsNonRoot", value=False)
    assert resource_violations("k8s-run-as-non-root", DEPLOYMENT, pod_false) == [
        "the pod sets runAsNonRoot = false"
    ]


def test_seccomp_is_enough_on_the_pod_or_on_every_container():
    no_pod = edit(WORKLOAD, f"{POD}.securityContext.seccompProfile", delete=True)
    assert len(resource_violations("k8s-seccomp-profile", DEPLOYMENT, no_pod)) == 2
    per_container = edit(edit(no_pod, f"{C0}.securityContext.seccompProfile", {"type": "RuntimeDefault"}),
                         f"{I0}.securityContext.seccompProfile", {"type": "Localhost"})  # fmt: skip
    assert resource_violations("k8s-seccomp-profile", DEPLOYMENT, per_container) == []


def test_net_bind_service_is_the_one_capability_that_may_be_added():
    props = edit(WORKLOAD, f"{C0}.securityContext.capabilities.add", ["NET_BIND_SERVICE"])
    assert resource_violations("k8s-drop-all-capabilities", DEPLOYMENT, props) == []


def test_the_cpu_limit_can_be_left_to_config():
    props = edit(WORKLOAD, f"{C0}.resources.limits.cpu", delete=True)
    assert resource_violations("k8s-resources", DEPLOYMENT, props)
    assert resource_violations("k8s-resources", DEPLOYMENT, props, {"requireCpuLimit": False}) == []


def test_probes_differing_only_in_timing_are_identical():
    props = edit(
        WORKLOAD, f"{C0}.livenessProbe", {**CONTAINER["readinessProbe"], "periodSeconds": 30}
    )
    assert "identical" in resource_violations("k8s-probes", DEPLOYMENT, props)[0]


def test_init_containers_need_no_probes():
    assert "readinessProbe" not in INIT
    assert resource_violations("k8s-probes", DEPLOYMENT, WORKLOAD) == []


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        ("app", False),
        ("app:latest", False),
        ("app:LATEST", False),
        ("registry.local:5000/app", False),
        ("registry.local:5000/app:2.1.0", False),
        ("kong:3.9.1", False),
        (f"app@{DIGEST}", True),
        (f"app:1.0@{DIGEST}", True),
        (f"registry.local:5000/team/app:2.1.0@{DIGEST}", True),
        ("app@sha256:abc", False),
        ("app@sha256:" + "A" * 64, False),
        ("app@sha512:" + "a" * 128, False),
        (f"@{DIGEST}", False),
        (f"app@{DIGEST}@{DIGEST}", False),
        ("", False),
    ],
)
def test_images_are_pinned_by_digest(image: str, pinned: bool):
    found = resource_violations(
        "k8s-image-pinned", DEPLOYMENT, edit(WORKLOAD, f"{C0}.image", image)
    )
    assert (found == []) is pinned, found


def test_required_zone_anti_affinity_also_spreads():
    anti = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"topologyKey": "topology.kubernetes.io/zone", "labelSelector": {"matchLabels": LABELS}}]}}  # fmt: skip
    props = edit(
        edit(WORKLOAD, f"{POD}.topologySpreadConstraints", delete=True), f"{POD}.affinity", anti
    )
    assert resource_violations("k8s-zone-spread", DEPLOYMENT, props) == []


def test_a_single_replica_need_not_spread():
    props = edit(
        edit(WORKLOAD, f"{POD}.topologySpreadConstraints", delete=True), "spec.replicas", 1
    )
    assert resource_violations("k8s-zone-spread", STATEFUL_SET, props) == []


def test_only_zone_spread_is_advisory():
    advisory = {
        p.name for p in kubernetes.POLICIES if p.enforcement_level == EnforcementLevel.ADVISORY
    }
    assert advisory == {"k8s-zone-spread"}


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("DB_PASSWORD", True), ("apiKey", True), ("JWT_SECRET", True), ("GITHUB_TOKEN", True),
        ("AWS_SECRET_ACCESS_KEY", True), ("OPENAI_API_KEY", True), ("client-secret", True),
        ("TOKEN_URL", False), ("SECRET_NAME", False), ("PASSWORD_FILE", False),
        ("MAX_TOKENS", False), ("PARTITION_KEY", False), ("DATABASE_HOST", False), ("kong.json", False),
    ],
)  # fmt: skip
def test_secret_looking_names(name: str, secret: bool):
    assert looks_secret(name) is secret


def test_a_literal_secret_is_named_but_never_echoed():
    props = edit(WORKLOAD, f"{I0}.env", [{"name": "DB_PASSWORD", "value": "hunter2"}])
    (message,) = resource_violations("k8s-no-literal-secrets", DEPLOYMENT, props)
    assert "DB_PASSWORD" in message
    assert "hunter2" not in message


def test_configmap_keys_that_look_secret_fail():
    config = {"metadata": {"namespace": "eduscale"}, "data": {"DATABASE_HOST": "db", "REDIS_AUTH_TOKEN": "s3cr3t"}}  # fmt: skip
    (message,) = resource_violations("k8s-no-literal-secrets", CONFIG_MAP, config)
    assert "REDIS_AUTH_TOKEN" in message
    assert "s3cr3t" not in message
    assert resource_violations("k8s-no-literal-secrets", CONFIG_MAP, {"data": {"DATABASE_HOST": "db"}}) == []  # fmt: skip


def test_other_resource_types_are_ignored():
    props = edit(WORKLOAD, f"{C0}.securityContext.privileged", value=True)
    assert resource_violations("k8s-not-privileged", "kubernetes:core/v1:Service", props) == []


def test_an_unknown_value_during_preview_is_not_a_pass():
    props = edit(WORKLOAD, f"{C0}.securityContext.readOnlyRootFilesystem", UNKNOWN_BOOLEAN_VALUE)
    with pytest.raises(UnknownValueError):
        resource_violations("k8s-readonly-root-filesystem", DEPLOYMENT, props)


# Every kind that runs pods -------------------------------------------------------------------

POD_SPEC_PATHS = {
    DEPLOYMENT: POD, STATEFUL_SET: POD, DAEMON_SET: POD, REPLICA_SET: POD, JOB: POD,
    CRON_JOB: "spec.jobTemplate.spec.template.spec", POD_KIND: "spec",
}  # fmt: skip
PER_POD_RULES = [r for r in POD_RULES if r not in {"k8s-probes", "k8s-zone-spread"}]
"""The rules every pod is held to, whatever runs it; probes and spread are for workloads."""


def shaped(kind: str, workload: dict[str, Any] = WORKLOAD) -> dict[str, Any]:
    """`workload`'s pod, as an object of `kind` declares it."""
    template: dict[str, Any] = json.loads(json.dumps(workload["spec"]["template"]))
    metadata = workload["metadata"]
    if kind in {DEPLOYMENT, STATEFUL_SET, DAEMON_SET, REPLICA_SET}:
        return edit(workload, "spec.template", template)
    template["spec"]["restartPolicy"] = "Never"
    template["spec"].pop("topologySpreadConstraints")
    for container in template["spec"]["containers"]:
        container.pop("readinessProbe")
        container.pop("livenessProbe")
    if kind == JOB:
        return {"metadata": metadata, "spec": {"backoffLimit": 2, "template": template}}
    if kind == CRON_JOB:
        job = {"spec": {"template": template}}
        return {"metadata": metadata, "spec": {"schedule": "0 3 * * *", "jobTemplate": job}}
    assert kind == POD_KIND
    return {"metadata": {**metadata, "labels": LABELS}, "spec": template["spec"]}


@pytest.mark.parametrize("name", PER_POD_RULES)
@pytest.mark.parametrize("kind", list(POD_SPEC_PATHS))
def test_every_kind_that_runs_pods_is_checked_and_a_compliant_one_passes(name: str, kind: str):
    props = shaped(kind)
    assert resource_violations(name, kind, props) == []
    path = f"{POD_SPEC_PATHS[kind]}.containers.0"
    broken = {
        "k8s-resources": edit(props, f"{path}.resources", delete=True),
        "k8s-run-as-non-root": edit(props, f"{path}.securityContext.runAsNonRoot", value=False),
        "k8s-no-privilege-escalation": edit(props, f"{path}.securityContext.allowPrivilegeEscalation", value=True),
        "k8s-drop-all-capabilities": edit(props, f"{path}.securityContext.capabilities.drop", []),
        "k8s-seccomp-profile": edit(props, f"{POD_SPEC_PATHS[kind]}.securityContext.seccompProfile.type", "Unconfined"),
        "k8s-no-host-namespaces": edit(props, f"{POD_SPEC_PATHS[kind]}.hostPID", value=True),
        "k8s-not-privileged": edit(props, f"{path}.securityContext.privileged", value=True),
        "k8s-readonly-root-filesystem": edit(props, f"{path}.securityContext.readOnlyRootFilesystem", value=False),
        "k8s-image-pinned": edit(props, f"{path}.image", "ghcr.io/eduscale/app:1.0.0"),
        "k8s-no-literal-secrets": edit(props, f"{path}.env.0", {"name": "DB_PASSWORD", "value": "x"}),
    }[name]  # fmt: skip
    assert resource_violations(name, kind, broken), (name, kind)


@pytest.mark.parametrize(
    ("kind", "field", "label"),
    [
        (JOB, "containers", 'container "app"'),
        (CRON_JOB, "containers", 'container "app"'),
        (POD_KIND, "containers", 'container "app"'),
        (JOB, "initContainers", 'init container "migrate"'),
        (CRON_JOB, "initContainers", 'init container "migrate"'),
        (POD_KIND, "initContainers", 'init container "migrate"'),
        (DAEMON_SET, "containers", 'container "app"'),
        (REPLICA_SET, "initContainers", 'init container "migrate"'),
    ],
)
def test_a_tag_only_image_fails_in_every_kind_naming_the_container(kind: str, field: str, label: str):  # fmt: skip
    props = edit(
        shaped(kind), f"{POD_SPEC_PATHS[kind]}.{field}.0.image", "ghcr.io/eduscale/app:1.0.0"
    )
    (message,) = resource_violations("k8s-image-pinned", kind, props)
    assert message.startswith(f"{label}: image ghcr.io/eduscale/app:1.0.0 is pinned by tag only")


DEBUG = {"name": "debug", "image": f"busybox:1.37@{DIGEST}", "securityContext": SECURE}


@pytest.mark.parametrize(
    ("name", "change", "message"),
    [
        ("k8s-image-pinned", {"image": "busybox:1.37"}, 'ephemeral container "debug": image busybox:1.37 is pinned by tag only'),
        ("k8s-image-pinned", {"image": "busybox@sha256:0"}, 'ephemeral container "debug": image busybox@sha256:0 has a malformed digest'),
        ("k8s-not-privileged", {"securityContext": {**SECURE, "privileged": True}}, 'ephemeral container "debug" is privileged'),
        ("k8s-run-as-non-root", {"securityContext": {**SECURE, "runAsUser": 0}}, 'ephemeral container "debug" runs as UID 0'),
        ("k8s-drop-all-capabilities", {"securityContext": {**SECURE, "capabilities": {"drop": ["ALL"], "add": ["SYS_PTRACE"]}}}, "adds capabilities SYS_PTRACE"),
    ],
)  # fmt: skip
def test_ephemeral_containers_are_held_to_the_image_and_restricted_rules(
    name: str, change: dict[str, Any], message: str
):
    pod = edit(shaped(POD_KIND), "spec.ephemeralContainers", [DEBUG])
    assert resource_violations(name, POD_KIND, pod) == []
    (found,) = resource_violations(name, POD_KIND, edit(pod, "spec.ephemeralContainers.0", {**DEBUG, **change}))  # fmt: skip
    assert message in found


def test_ephemeral_containers_need_no_resources_or_read_only_root():
    """Kubernetes refuses resources on an ephemeral container; a debugger may write."""
    pod = edit(shaped(POD_KIND), "spec.ephemeralContainers", [{"name": "debug", "image": f"busybox@{DIGEST}"}])  # fmt: skip
    assert resource_violations("k8s-resources", POD_KIND, pod) == []
    assert resource_violations("k8s-readonly-root-filesystem", POD_KIND, pod) == []


@pytest.mark.parametrize("name", ["k8s-probes", "k8s-zone-spread"])
@pytest.mark.parametrize("kind", [JOB, CRON_JOB, POD_KIND, DAEMON_SET])
def test_workload_only_rules_do_not_apply_to_jobs_pods_or_daemon_sets(name: str, kind: str):
    spec = POD_SPEC_PATHS[kind]
    unprobed = {key: value for key, value in CONTAINER.items() if not key.endswith("Probe")}
    bare = edit(edit(shaped(kind), f"{spec}.containers.0", unprobed), f"{spec}.topologySpreadConstraints", [])  # fmt: skip
    assert resource_violations(name, kind, bare) == []
    # The same pod in a Deployment fails: the kind, not the pod, is why it passes.
    assert resource_violations(name, DEPLOYMENT, edit(WORKLOAD, POD, get(bare, spec)))


@pytest.mark.parametrize("name", ["k8s-pod-disruption-budget", "k8s-deployment-autoscaled", "k8s-autoscaled-no-replicas"])  # fmt: skip
@pytest.mark.parametrize("kind", [JOB, CRON_JOB, POD_KIND, DAEMON_SET])
def test_a_job_or_pod_needs_no_pdb_or_autoscaler(name: str, kind: str):
    assert stack_violations(name, [policy_resource(kind, shaped(kind), "urn:job")]) == []


@pytest.mark.parametrize("kind", [JOB, CRON_JOB, POD_KIND, DAEMON_SET])
def test_every_pod_needs_a_network_policy(kind: str):
    job = policy_resource(kind, shaped(kind), "urn:job")
    ((message, urn),) = stack_violations("k8s-network-policy-coverage", [job])
    assert (urn, message) == ("urn:job", "no NetworkPolicy selects its pods: any pod in the cluster can reach them")  # fmt: skip
    fenced = [job, policy_resource(NETPOL, NETPOL_PROPS, "urn:netpol")]
    assert stack_violations("k8s-network-policy-coverage", fenced) == []


def test_an_unknown_image_during_preview_is_not_a_pass():
    props = edit(shaped(CRON_JOB), f"{POD_SPEC_PATHS[CRON_JOB]}.containers.0.image", UNKNOWN_STRING_VALUE)  # fmt: skip
    with pytest.raises(UnknownValueError):
        resource_violations("k8s-image-pinned", CRON_JOB, props)


# Autoscalers ---------------------------------------------------------------------------------

HPA_PROPS: dict[str, Any] = {
    "metadata": {"name": "app", "namespace": "eduscale"},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "app"},
        "minReplicas": 3,
        "maxReplicas": 10,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70},
                },
            }
        ],
    },
}
KEDA_PROPS: dict[str, Any] = {
    "metadata": {"name": "app", "namespace": "eduscale"},
    "spec": {
        "scaleTargetRef": {"name": "app"},
        "minReplicaCount": 3,
        "maxReplicaCount": 24,
        "triggers": [{"type": "kafka", "metadata": {"topic": "t"}},
                     {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}],
    },
}  # fmt: skip
HPA_RULES = ["k8s-hpa-min-replicas", "k8s-hpa-max-above-min", "k8s-hpa-cpu-target"]
HPA_CPU = "spec.metrics.0.resource.target.averageUtilization"


@pytest.mark.parametrize("name", HPA_RULES)
@pytest.mark.parametrize(("kind", "props"), [(HPA, HPA_PROPS), (KEDA, KEDA_PROPS)])
def test_compliant_autoscalers_pass(name: str, kind: str, props: dict[str, Any]):
    assert resource_violations(name, kind, props) == []


@pytest.mark.parametrize(
    ("name", "kind", "props", "message"),
    [
        ("k8s-hpa-min-replicas", HPA, edit(HPA_PROPS, "spec.minReplicas", 2), "minReplicas is 2; at least 3"),
        ("k8s-hpa-min-replicas", HPA, edit(HPA_PROPS, "spec.minReplicas", delete=True), "minReplicas is 1"),
        ("k8s-hpa-min-replicas", KEDA, edit(KEDA_PROPS, "spec.minReplicaCount", delete=True), "minReplicaCount is 0"),
        ("k8s-hpa-max-above-min", HPA, edit(HPA_PROPS, "spec.maxReplicas", 3), "maximum (3) is not above the minimum (3)"),
        ("k8s-hpa-max-above-min", HPA, edit(HPA_PROPS, "spec.maxReplicas", delete=True), "maxReplicas is not set"),
        ("k8s-hpa-max-above-min", KEDA, edit(KEDA_PROPS, "spec.maxReplicaCount", 2), "maximum (2)"),
        ("k8s-hpa-cpu-target", HPA, edit(HPA_PROPS, HPA_CPU, 95), "target is 95%; above 80%"),
        ("k8s-hpa-cpu-target", KEDA, edit(KEDA_PROPS, "spec.triggers.1.metadata.value", "95"), "target is 95%"),
        ("k8s-hpa-cpu-target", KEDA, edit(KEDA_PROPS, "spec.triggers.1.metadata.value", "lots"), "not a number"),
    ],
)  # fmt: skip
def test_bad_autoscalers_fail(name: str, kind: str, props: dict[str, Any], message: str):
    (found,) = resource_violations(name, kind, props)
    assert message in found


def test_autoscaler_thresholds_follow_the_environments_config():
    dev = edit(HPA_PROPS, "spec.minReplicas", 1)
    assert resource_violations("k8s-hpa-min-replicas", HPA, dev)
    assert resource_violations("k8s-hpa-min-replicas", HPA, dev, {"minimum": 1}) == []
    assert resource_violations("k8s-hpa-cpu-target", HPA, HPA_PROPS, {"maximumUtilization": 60})


def test_an_hpa_without_metrics_targets_kubernetes_default_of_80_percent():
    props = edit(HPA_PROPS, "spec.metrics", delete=True)
    assert resource_violations("k8s-hpa-cpu-target", HPA, props) == []
    assert resource_violations("k8s-hpa-cpu-target", HPA, props, {"maximumUtilization": 70})


def test_a_keda_autoscaler_without_maximum_has_kedas_100():
    props = edit(KEDA_PROPS, "spec.maxReplicaCount", delete=True)
    assert resource_violations("k8s-hpa-max-above-min", KEDA, props) == []


def test_an_unknown_cpu_target_is_not_a_pass():
    with pytest.raises(UnknownValueError):
        resource_violations(
            "k8s-hpa-cpu-target", HPA, edit(HPA_PROPS, HPA_CPU, UNKNOWN_STRING_VALUE)
        )


# Stack rules ---------------------------------------------------------------------------------

PDB_PROPS: dict[str, Any] = {"metadata": {"name": "app", "namespace": "eduscale"},
                             "spec": {"selector": {"matchLabels": LABELS}, "maxUnavailable": 1}}  # fmt: skip
NETPOL_PROPS: dict[str, Any] = {"metadata": {"name": "app", "namespace": "eduscale"},
                                "spec": {"podSelector": {"matchLabels": LABELS},
                                         "policyTypes": ["Ingress", "Egress"]}}  # fmt: skip


def stack(
    workload: dict[str, Any] = WORKLOAD,
    *,
    kind: str = DEPLOYMENT,
    scalers: list[tuple[str, dict[str, Any]]] | None = None,
    pdbs: list[dict[str, Any]] | None = None,
    netpols: list[dict[str, Any]] | None = None,
    scaler_depends: bool = True,
) -> list[Any]:
    app = policy_resource(kind, workload, "urn:workload")
    resources = [app]
    for i, (scaler_kind, props) in enumerate([(HPA, HPA_PROPS)] if scalers is None else scalers):
        resources.append(policy_resource(scaler_kind, props, f"urn:scaler-{i}", [app] if scaler_depends else []))  # fmt: skip
    resources += [policy_resource(PDB, p, f"urn:pdb-{i}") for i, p in enumerate([PDB_PROPS] if pdbs is None else pdbs)]  # fmt: skip
    resources += [policy_resource(NETPOL, p, f"urn:netpol-{i}") for i, p in enumerate([NETPOL_PROPS] if netpols is None else netpols)]  # fmt: skip
    return resources


STACK_RULES = ["k8s-deployment-autoscaled", "k8s-autoscaled-no-replicas",
               "k8s-pod-disruption-budget", "k8s-network-policy-coverage"]  # fmt: skip


@pytest.mark.parametrize("name", STACK_RULES)
def test_a_compliant_stack_passes(name: str):
    assert stack_violations(name, stack()) == []
    assert stack_violations(name, stack(scalers=[(KEDA, KEDA_PROPS)])) == []


def test_a_deployment_without_autoscaler_fails():
    ((message, urn),) = stack_violations("k8s-deployment-autoscaled", stack(scalers=[]))
    assert urn == "urn:workload"
    assert "no HorizontalPodAutoscaler or KEDA ScaledObject" in message


def test_a_stateful_set_need_not_be_autoscaled():
    assert stack_violations("k8s-deployment-autoscaled", stack(kind=STATEFUL_SET, scalers=[])) == []


@pytest.mark.parametrize(
    "scaler",
    [
        edit(HPA_PROPS, "spec.scaleTargetRef.name", "other"),
        edit(HPA_PROPS, "metadata.namespace", "gateway"),
        edit(HPA_PROPS, "spec.scaleTargetRef.kind", "StatefulSet"),
    ],
    ids=["other name", "other namespace", "other kind"],
)
def test_an_autoscaler_aimed_elsewhere_is_dangling_and_scales_nothing(scaler: dict[str, Any]):
    found = stack_violations("k8s-deployment-autoscaled", stack(scalers=[(HPA, scaler)]))
    assert {urn for _, urn in found} == {"urn:scaler-0", "urn:workload"}


def test_an_auto_named_deployment_is_matched_through_the_graph():
    unnamed = edit(WORKLOAD, "metadata.name", delete=True)
    assert stack_violations("k8s-deployment-autoscaled", stack(unnamed)) == []
    assert stack_violations("k8s-deployment-autoscaled", stack(unnamed, scaler_depends=False))


def test_two_autoscalers_on_one_deployment_fail():
    found = stack_violations("k8s-deployment-autoscaled", stack(scalers=[(HPA, HPA_PROPS), (KEDA, KEDA_PROPS)]))  # fmt: skip
    assert [m for m, _ in found] == ["2 autoscalers (app, app) fight over its replica count"]


def test_replicas_on_an_autoscaled_deployment_fail():
    ((message, urn),) = stack_violations("k8s-autoscaled-no-replicas", stack(edit(WORKLOAD, "spec.replicas", 3)))  # fmt: skip
    assert urn == "urn:workload"
    assert "spec.replicas is set although app scales it" in message


def test_replicas_without_autoscaler_are_fine_for_that_rule():
    props = edit(WORKLOAD, "spec.replicas", 3)
    assert stack_violations("k8s-autoscaled-no-replicas", stack(props, kind=STATEFUL_SET, scalers=[])) == []  # fmt: skip


@pytest.mark.parametrize(
    ("pdbs", "message"),
    [
        ([], "no PodDisruptionBudget selects its pods"),
        ([edit(PDB_PROPS, "metadata.namespace", "other")], "no PodDisruptionBudget"),
        ([edit(PDB_PROPS, "spec.selector.matchLabels.tier", "db")], "no PodDisruptionBudget"),
        ([edit(PDB_PROPS, "spec.selector", delete=True)], "no PodDisruptionBudget"),
        ([PDB_PROPS, PDB_PROPS], "several PodDisruptionBudgets"),
        ([edit(PDB_PROPS, "spec.maxUnavailable", 0)], "allows no disruption of 3 replica(s)"),
        ([edit(PDB_PROPS, "spec.maxUnavailable", "0%")], "allows no disruption"),
        ([edit(edit(PDB_PROPS, "spec.maxUnavailable", delete=True), "spec.minAvailable", 3)], "allows no disruption of 3"),
        ([edit(edit(PDB_PROPS, "spec.maxUnavailable", delete=True), "spec.minAvailable", "100%")], "allows no disruption"),
        ([edit(PDB_PROPS, "spec.maxUnavailable", delete=True)], "sets no minAvailable or maxUnavailable"),
    ],
)  # fmt: skip
def test_a_missing_or_blocking_pdb_fails(pdbs: list[dict[str, Any]], message: str):
    found = stack_violations("k8s-pod-disruption-budget", stack(pdbs=pdbs))
    assert any(message in m for m, _ in found), found


@pytest.mark.parametrize(
    "pdb",
    [
        edit(edit(PDB_PROPS, "spec.maxUnavailable", delete=True), "spec.minAvailable", 2),
        edit(edit(PDB_PROPS, "spec.maxUnavailable", delete=True), "spec.minAvailable", "50%"),
        edit(PDB_PROPS, "spec.maxUnavailable", "25%"),
        edit(
            PDB_PROPS,
            "spec.selector",
            {
                "matchExpressions": [
                    {"key": "app.kubernetes.io/name", "operator": "In", "values": ["app"]}
                ]
            },
        ),
        edit(PDB_PROPS, "spec.selector", {}),
    ],
    ids=[
        "minAvailable below HPA minimum",
        "50%",
        "25% rounds up",
        "matchExpressions",
        "empty selects all",
    ],
)
def test_a_pdb_allowing_one_disruption_passes(pdb: dict[str, Any]):
    assert stack_violations("k8s-pod-disruption-budget", stack(pdbs=[pdb])) == []


def test_pdb_replicas_come_from_the_workload_without_autoscaler():
    single = edit(WORKLOAD, "spec.replicas", 1)
    min_one = edit(edit(PDB_PROPS, "spec.maxUnavailable", delete=True), "spec.minAvailable", 1)
    found = stack_violations("k8s-pod-disruption-budget", stack(single, kind=STATEFUL_SET, scalers=[], pdbs=[min_one]))  # fmt: skip
    assert "allows no disruption of 1 replica(s)" in found[0][0]


@pytest.mark.parametrize(
    ("netpols", "message"),
    [
        ([], "no NetworkPolicy selects its pods"),
        ([edit(NETPOL_PROPS, "metadata.namespace", "other")], "no NetworkPolicy"),
        ([edit(NETPOL_PROPS, "spec.podSelector.matchLabels", {"app.kubernetes.io/name": "db"})], "no NetworkPolicy"),
        ([edit(NETPOL_PROPS, "spec.policyTypes", ["Egress"])], "only Egress NetworkPolicies"),
    ],
)  # fmt: skip
def test_pods_no_network_policy_isolates_fail(netpols: list[dict[str, Any]], message: str):
    ((found, urn),) = stack_violations("k8s-network-policy-coverage", stack(netpols=netpols))
    assert urn == "urn:workload"
    assert message in found


def test_an_empty_pod_selector_selects_every_pod_of_its_namespace():
    netpol = edit(NETPOL_PROPS, "spec.podSelector", {})
    assert stack_violations("k8s-network-policy-coverage", stack(netpols=[netpol])) == []


def test_a_workload_without_namespace_is_in_default():
    unscoped = edit(WORKLOAD, "metadata.namespace", delete=True)
    assert stack_violations("k8s-network-policy-coverage", stack(unscoped))
    default = edit(NETPOL_PROPS, "metadata.namespace", "default")
    assert stack_violations("k8s-network-policy-coverage", stack(unscoped, netpols=[default])) == []


def test_an_unknown_value_in_a_stack_rule_is_not_a_pass():
    props = edit(WORKLOAD, "metadata.namespace", UNKNOWN_STRING_VALUE)
    with pytest.raises(UnknownValueError):
        stack_violations("k8s-network-policy-coverage", stack(props))


GATEWAY_PEER = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "gateway"}},
                "podSelector": {"matchLabels": {"app.kubernetes.io/name": "api-gateway"}}}  # fmt: skip


@pytest.mark.parametrize(
    "sources",
    [
        [GATEWAY_PEER],
        [{"ipBlock": {"cidr": "10.0.0.0/16"}}],
        [{"namespaceSelector": {}, "podSelector": {"matchLabels": LABELS}}],  # one app, any ns
        [{"podSelector": {}}],  # every pod of its own namespace only
    ],
)
def test_ingress_rules_that_name_their_callers_pass(sources: list[dict[str, Any]]):
    netpol = edit(NETPOL_PROPS, "spec.ingress", [{"from": sources, "ports": [{"port": 8000}]}])
    assert resource_violations("k8s-network-policy-no-open-ingress", NETPOL, netpol) == []


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"ports": [{"port": 8000}]}, "ingress rule 1 names no source"),
        ({"from": []}, "ingress rule 1 names no source"),
        ({"from": [{"ipBlock": {"cidr": "::/0"}}]}, "ingress rule 1 admits ::/0"),
        ({"from": [{"namespaceSelector": {}}]}, "admits every pod of every namespace"),
    ],
)  # fmt: skip
def test_an_ingress_rule_open_to_everyone_fails(rule: dict[str, Any], message: str):
    netpol = edit(NETPOL_PROPS, "spec.ingress", [{"from": [GATEWAY_PEER]}, rule])
    (found,) = resource_violations("k8s-network-policy-no-open-ingress", NETPOL, netpol)
    assert message in found


def test_a_policy_without_ingress_rules_admits_nothing_and_passes():
    assert resource_violations("k8s-network-policy-no-open-ingress", NETPOL, NETPOL_PROPS) == []


# The recorded stacks, through the CLI --------------------------------------------------------

KUBERNETES_RULES = {p.name for p in kubernetes.POLICIES}


def test_dev_passes_with_its_one_replica_config(dev_graph: Graph):
    config = {"k8s-hpa-min-replicas": {"minimum": 1}}
    assert check_graph(dev_graph, kubernetes.POLICIES, config) == []


def test_prod_passes_every_kubernetes_rule(prod_graph: Graph):
    assert check_graph(prod_graph, kubernetes.POLICIES) == []


def deployment_named(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(r for r in resources_of(document, DEPLOYMENT) if r["inputs"]["metadata"]["name"] == name)  # fmt: skip


def hpa_cpu_95(document: dict[str, Any]) -> None:
    hpa = resources_of(document, HPA)[0]["inputs"]
    hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] = 95


def pod_spec_of(document: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
    found = next(r for r in resources_of(document, kind) if r["name"] == name)
    spec: dict[str, Any] = found["inputs"]["spec"]["template"]["spec"]
    return spec


def latest_image(document: dict[str, Any]) -> None:
    container = deployment_named(document, "course")["inputs"]["spec"]["template"]["spec"]["containers"][0]  # fmt: skip
    repository = container["image"].split("@")[0].rsplit(":", 1)[0]
    container["image"] = f"{repository}:latest"


def kong_by_tag(document: dict[str, Any]) -> None:
    container = pod_spec_of(document, DEPLOYMENT, "api-gateway-deployment")["containers"][0]
    assert container["image"].startswith("kong:3.9.1@sha256:")
    container["image"] = "kong:3.9.1"


def migration_by_tag(document: dict[str, Any]) -> None:
    container = pod_spec_of(document, JOB, "schema-migration-job")["containers"][0]
    container["image"] = container["image"].split("@")[0]


def migration_as_root(document: dict[str, Any]) -> None:
    pod_spec_of(document, JOB, "schema-migration-job")["securityContext"]["runAsUser"] = 0


def migration_unfenced(document: dict[str, Any]) -> None:
    document["resources"] = [
        r for r in document["resources"]
        if not (r["type"] == NETPOL and r["inputs"]["metadata"]["name"] == "schema-migration")
    ]  # fmt: skip


def replicas_under_hpa(document: dict[str, Any]) -> None:
    deployment_named(document, "auth")["inputs"]["spec"]["replicas"] = 3


MUTATIONS: list[Mutation] = [
    ("HPA CPU target 95%", hpa_cpu_95, "k8s-hpa-cpu-target"),
    ("image :latest", latest_image, "k8s-image-pinned"),
    ("Kong image kong:3.9.1", kong_by_tag, "k8s-image-pinned"),
    ("schema Job image by tag", migration_by_tag, "k8s-image-pinned"),
    ("schema Job as UID 0", migration_as_root, "k8s-run-as-non-root"),
    ("schema Job without NetworkPolicy", migration_unfenced, "k8s-network-policy-coverage"),
    ("replicas under an HPA", replicas_under_hpa, "k8s-autoscaled-no-replicas"),
]


@pytest.mark.parametrize("case", MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_broken_prod_graph_fails_naming_the_rule(
    case: Mutation, prod_graph_broken_by: MutationCheck
) -> None:
    prod_graph_broken_by(case, within=KUBERNETES_RULES)
