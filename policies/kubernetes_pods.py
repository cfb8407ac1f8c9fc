"""Rules for the pods every pod-bearing object runs, wherever its kind keeps the pod spec.

Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers and Jobs keep it
in `spec.template.spec`, a CronJob in `spec.jobTemplate.spec.template.spec`, a bare Pod in
`spec` (`POD_TEMPLATES`). Each rule reads one concern of the pod: resources, probes, the
restricted Pod Security Standard split into one rule per control (so a failure names the
control), the read-only root filesystem, image pinning by digest, zone spread, and secrets
written as literals.

Which kinds a rule checks: what holds for any pod (resources, the restricted controls, the
read-only root, the image, literal secrets) is checked on every pod-bearing kind, so a
migration Job or a CronJob is held to what a Deployment is. What only makes sense for a
long-running, replicated, served workload (probes, zone spread; and in `kubernetes`, the
autoscaler, PodDisruptionBudget rules) is checked on Deployments and StatefulSets
(`WORKLOADS`) only: a Job's pod runs to completion, and one pod of a DaemonSet runs on
every node. Init containers are checked wherever Kubernetes applies the setting to them too
(everything but probes); ephemeral containers by the restricted controls (Pod Security
admission checks them too), the image and literal secrets, not for resources (Kubernetes
refuses them there) or a read-only root (a debugger may need to write). The namespaces of
this platform also enforce `restricted` at admission; these rules catch a breach at preview,
before a rollout stalls on rejected pods.
"""

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pulumi_policy import ResourceValidationArgs, Severity

from policies.support import config_value, get, resource_rule

__all__ = [
    "CONFIG_MAP",
    "CRON_JOB",
    "DAEMON_SET",
    "DEPLOYMENT",
    "JOB",
    "POD",
    "POD_KINDS",
    "POD_TEMPLATES",
    "POLICIES",
    "REPLICATION_CONTROLLER",
    "REPLICA_SET",
    "STATEFUL_SET",
    "WORKLOADS",
    "containers",
    "image_problem",
    "kind_of",
    "looks_secret",
    "namespace_of",
    "plain",
    "pod_labels",
    "pod_spec",
]

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
REPLICA_SET = "kubernetes:apps/v1:ReplicaSet"
REPLICATION_CONTROLLER = "kubernetes:core/v1:ReplicationController"
JOB = "kubernetes:batch/v1:Job"
CRON_JOB = "kubernetes:batch/v1:CronJob"
POD = "kubernetes:core/v1:Pod"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
POD_TEMPLATES: dict[str, str] = {
    DEPLOYMENT: "spec.template",
    STATEFUL_SET: "spec.template",
    DAEMON_SET: "spec.template",
    REPLICA_SET: "spec.template",
    REPLICATION_CONTROLLER: "spec.template",
    JOB: "spec.template",
    CRON_JOB: "spec.jobTemplate.spec.template",
    POD: "",
}
"""Where each pod-bearing kind keeps its pod (metadata and spec); a Pod is its own."""
POD_KINDS = tuple(POD_TEMPLATES)
"""Every kind that runs pods: what the per-pod rules check."""
WORKLOADS = (DEPLOYMENT, STATEFUL_SET)
"""Long-running, replicated, served: what probes, spread, autoscalers and PDBs apply to."""
ZONE_KEY = "topology.kubernetes.io/zone"
GOOD_SECCOMP = frozenset({"RuntimeDefault", "Localhost"})
PROBE_HANDLERS = ("httpGet", "tcpSocket", "exec", "grpc")


def plain(value: Any) -> Any:
    """`value` as plain JSON (dicts and lists), reading, and so checking, every leaf."""
    if isinstance(value, Mapping):
        return {key: plain(value[key]) for key in value}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(item) for item in value]
    return value


def namespace_of(props: Mapping[str, Any]) -> str:
    """The object's namespace; Kubernetes puts an object without one in `default`."""
    return str(get(props, "metadata.namespace") or "default")


def _pod_path(resource_type: str, field: str) -> str:
    template = POD_TEMPLATES.get(resource_type, POD_TEMPLATES[DEPLOYMENT])
    return f"{template}.{field}" if template else field


def pod_spec(props: Mapping[str, Any], resource_type: str = DEPLOYMENT) -> Any:
    """The pod spec an object of `resource_type` runs (`{}` when it declares none)."""
    return get(props, _pod_path(resource_type, "spec")) or {}


def pod_labels(props: Mapping[str, Any], resource_type: str = DEPLOYMENT) -> dict[str, str]:
    """The labels the object's pods carry (what selectors are matched against)."""
    labels = plain(get(props, _pod_path(resource_type, "metadata.labels")) or {})
    return {str(key): str(value) for key, value in labels.items()}


def kind_of(resource_type: str) -> str:
    """The Kubernetes kind of a Pulumi type (`kubernetes:batch/v1:Job` -> `Job`)."""
    return resource_type.rsplit(":", 1)[-1]


def containers(
    props: Mapping[str, Any],
    *,
    resource_type: str = DEPLOYMENT,
    init: bool = True,
    ephemeral: bool = False,
) -> list[tuple[str, Any]]:
    """(label for messages, container) for each container of an object's pod.

    Init containers first (unless `init` is false), then the app containers, then the
    ephemeral ones if `ephemeral` is true.
    """
    spec = pod_spec(props, resource_type)
    fields = (
        ("initContainers", "init container", init),
        ("containers", "container", True),
        ("ephemeralContainers", "ephemeral container", ephemeral),
    )
    return [
        (f'{label} "{get(container, "name")}"', container)
        for field, label, wanted in fields
        if wanted
        for container in get(spec, field) or []
    ]


_REFERENCE_SUFFIXES = frozenset({
    "ARN", "NAME", "REF", "PATH", "FILE", "URL", "URI", "ENDPOINT", "HOST", "PORT", "TTL", "TYPE",
    "HEADER", "EXPIRY", "LENGTH",
})  # fmt: skip
"""Last words of names that point at a secret rather than hold one."""
_SECRET_WORDS = frozenset({
    "PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "SECRETS", "TOKEN", "CREDENTIAL", "CREDENTIALS",
    "APIKEY", "PRIVATEKEY",
})  # fmt: skip
_SECRET_PAIRS = frozenset({
    ("API", "KEY"), ("ACCESS", "KEY"), ("PRIVATE", "KEY"), ("AUTH", "KEY"), ("SIGNING", "KEY"),
    ("ENCRYPTION", "KEY"), ("MASTER", "KEY"),
})  # fmt: skip


def looks_secret(name: str) -> bool:
    """Whether a variable or key name says it holds a credential (`DB_PASSWORD`, `apiKey`).

    Names that only point at a secret (`TOKEN_URL`, `SECRET_NAME`, `PASSWORD_FILE`) do not.
    """
    words = re.split(r"[^A-Z0-9]+", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).upper())
    words = [w for w in words if w]
    if not words or words[-1] in _REFERENCE_SUFFIXES:
        return False
    return bool(_SECRET_WORDS.intersection(words)) or any(
        pair in _SECRET_PAIRS for pair in itertools.pairwise(words)
    )


def _every_container(args: ResourceValidationArgs) -> list[tuple[str, Any]]:
    """Every container of the pod: init, app and ephemeral ones.

    Pod Security admission checks them all, and an ephemeral container's image runs on the
    node like any other.
    """
    return containers(args.props, resource_type=args.resource_type, ephemeral=True)


def _resources(args: ResourceValidationArgs) -> Iterable[str]:
    wanted = ["requests.cpu", "requests.memory", "limits.memory"]
    if config_value(args, "requireCpuLimit", default=True):
        wanted.append("limits.cpu")
    for label, container in containers(args.props, resource_type=args.resource_type):
        missing = [w for w in wanted if not get(container, f"resources.{w}")]
        if missing:
            yield f"{label} sets no resources.{', resources.'.join(missing)}"


def _handler(probe: Any) -> dict[str, Any]:
    return {key: plain(get(probe, key)) for key in PROBE_HANDLERS if get(probe, key) is not None}


def _probes(args: ResourceValidationArgs) -> Iterable[str]:
    for label, container in containers(args.props, resource_type=args.resource_type, init=False):
        readiness, liveness = get(container, "readinessProbe"), get(container, "livenessProbe")
        if readiness is None:
            yield f"{label} has no readinessProbe: traffic reaches it before it can serve"
        if liveness is None:
            yield f"{label} has no livenessProbe: a hung process is never restarted"
        both = readiness is not None and liveness is not None
        if both and _handler(readiness) == _handler(liveness):
            yield f"{label} has identical readiness and liveness checks: a busy pod is killed"


def _run_as_non_root(args: ResourceValidationArgs) -> Iterable[str]:
    pod = get(pod_spec(args.props, args.resource_type), "securityContext") or {}
    if get(pod, "runAsNonRoot") is False:
        yield "the pod sets runAsNonRoot = false"
    if get(pod, "runAsUser") == 0:
        yield "the pod runs as UID 0 (securityContext.runAsUser)"
    for label, container in _every_container(args):
        own = get(container, "securityContext.runAsNonRoot")
        if own is False:
            yield f"{label} sets runAsNonRoot = false"
        elif own is not True and get(pod, "runAsNonRoot") is not True:
            yield f"{label} may run as root: runAsNonRoot is set neither on it nor on the pod"
        if get(container, "securityContext.runAsUser") == 0:
            yield f"{label} runs as UID 0 (securityContext.runAsUser)"


def _no_privilege_escalation(args: ResourceValidationArgs) -> Iterable[str]:
    for label, container in _every_container(args):
        if get(container, "securityContext.allowPrivilegeEscalation") is not False:
            yield f"{label} does not set allowPrivilegeEscalation = false (the default allows it)"


def _drop_all_capabilities(args: ResourceValidationArgs) -> Iterable[str]:
    for label, container in _every_container(args):
        dropped = plain(get(container, "securityContext.capabilities.drop") or [])
        if "ALL" not in dropped:
            yield f"{label} does not drop ALL capabilities"
        added = set(plain(get(container, "securityContext.capabilities.add") or []))
        if added - {"NET_BIND_SERVICE"}:
            yield f"{label} adds capabilities {', '.join(sorted(added - {'NET_BIND_SERVICE'}))}"


def _seccomp(args: ResourceValidationArgs) -> Iterable[str]:
    spec = pod_spec(args.props, args.resource_type)
    pod = get(spec, "securityContext.seccompProfile.type")
    if pod is not None and pod not in GOOD_SECCOMP:
        yield f"the pod's seccomp profile is {pod}, not RuntimeDefault"
    for label, container in _every_container(args):
        own = get(container, "securityContext.seccompProfile.type")
        if own is not None and own not in GOOD_SECCOMP:
            yield f"{label}'s seccomp profile is {own}, not RuntimeDefault"
        elif own is None and pod is None:
            yield f"{label} has no seccomp profile: set RuntimeDefault on the pod or container"


def _no_host_namespaces(args: ResourceValidationArgs) -> Iterable[str]:
    spec = pod_spec(args.props, args.resource_type)
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        if get(spec, flag) is True:
            yield f"the pod shares the node's namespace ({flag} = true)"
    for label, container in _every_container(args):
        if any(get(port, "hostPort") for port in get(container, "ports") or []):
            yield f"{label} binds a hostPort on the node"


def _not_privileged(args: ResourceValidationArgs) -> Iterable[str]:
    for label, container in _every_container(args):
        if get(container, "securityContext.privileged") is True:
            yield f"{label} is privileged: it has root on the node"


def _read_only_root(args: ResourceValidationArgs) -> Iterable[str]:
    for label, container in containers(args.props, resource_type=args.resource_type):
        if get(container, "securityContext.readOnlyRootFilesystem") is not True:
            yield f"{label} has a writable root filesystem (readOnlyRootFilesystem is not true)"


_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_NAME = re.compile(r"[^\s@]+")


def image_problem(image: Any) -> str | None:
    """Why `image` is not pinned by digest (`name[:tag]@sha256:<64 hex>`), or None if it is.

    A tag names whatever was pushed under it last: it can be pushed again (a registry that
    refuses that is a setting, not a property of the reference), so only the digest, the
    hash of the image's manifest, makes every node of every rollout run the same bytes.
    """
    if not isinstance(image, str) or not image:
        return "has no image"
    name, at, digest = image.partition("@")
    if at:
        if not _NAME.fullmatch(name) or not _DIGEST.fullmatch(digest):
            return (
                f"image {image} has a malformed digest (expected name[:tag]@sha256: and 64 "
                "lowercase hex digits)"
            )
        return None
    last = name.rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else ""
    if not tag:
        return f"image {image} has no tag and no digest, so it pulls whatever latest is"
    if tag.lower() == "latest":
        return f"image {image} uses the moving latest tag and no digest"
    return (
        f"image {image} is pinned by tag only: the tag can be pushed again with other bytes; "
        "pin it by digest (@sha256:...)"
    )


def _image_pinned(args: ResourceValidationArgs) -> Iterable[str]:
    for label, container in _every_container(args):
        problem = image_problem(get(container, "image"))
        if problem:
            yield f"{label}: {problem}"


def _zone_spread(args: ResourceValidationArgs) -> Iterable[str]:
    replicas = get(args.props, "spec.replicas")
    if isinstance(replicas, int) and replicas < 2:  # noqa: PLR2004
        return  # one pod cannot be spread
    spec = pod_spec(args.props, args.resource_type)
    spread = get(spec, "topologySpreadConstraints") or []
    anti = get(spec, "affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution")
    if not any(get(term, "topologyKey") == ZONE_KEY for term in [*spread, *(anti or [])]):
        yield f"pods are not spread over zones: nothing spreads them on {ZONE_KEY}"


def _no_literal_secrets(args: ResourceValidationArgs) -> Iterable[str]:
    if args.resource_type == CONFIG_MAP:
        for field in ("data", "binaryData"):
            for key in get(args.props, field) or {}:
                if looks_secret(str(key)):
                    yield f"ConfigMap key {key} looks like a secret: ConfigMaps are not encrypted"
        return
    for label, container in _every_container(args):
        for variable in get(container, "env") or []:
            name = str(get(variable, "name") or "")
            if looks_secret(name) and get(variable, "value") not in (None, ""):
                yield f"{label} sets {name} as a literal value; use valueFrom.secretKeyRef"


_CONTAINER_FIX = "in the container's securityContext (components/workload.py builds it)"

POLICIES = [
    resource_rule(
        "k8s-resources",
        "Without requests the scheduler overcommits nodes; without limits one pod can starve "
        "or OOM its neighbours.",
        types=POD_KINDS, severity=Severity.MEDIUM, mandatory=True, check=_resources,
        fix="Set resources.requests and resources.limits (cpu, memory) on every container "
        "and initContainer.",
        scanners=["CKV_K8S_10", "CKV_K8S_11", "CKV_K8S_12", "CKV_K8S_13", "KSV-0011",
                  "KSV-0015", "KSV-0016", "KSV-0018", "polaris:cpuLimitsMissing",
                  "polaris:memoryLimitsMissing", "kube-score:container-resources",
                  "kube-linter:unset-cpu-requirements", "kube-linter:unset-memory-requirements"],
        config={"requireCpuLimit": {"type": "boolean", "default": True}},
    ),
    resource_rule(
        "k8s-probes",
        "Readiness keeps traffic off pods that cannot serve; liveness restarts hung ones. The "
        "two must differ, or a slow dependency restarts every pod at once.",
        types=WORKLOADS, severity=Severity.MEDIUM, mandatory=True, check=_probes,
        fix="Give each container a readinessProbe and a livenessProbe on different endpoints "
        "(e.g. /health/ready and /health/live).",
        scanners=["CKV_K8S_8", "CKV_K8S_9", "polaris:readinessProbeMissing",
                  "polaris:livenessProbeMissing", "kube-score:pod-probes",
                  "kube-score:pod-probes-identical"],
    ),
    resource_rule(
        "k8s-run-as-non-root",
        "A container running as root turns any escape or mount mistake into root on the node.",
        types=POD_KINDS, severity=Severity.HIGH, mandatory=True, check=_run_as_non_root,
        fix="Set runAsNonRoot = true (and a non-zero runAsUser) on the pod securityContext.",
        scanners=["pss:check_runAsNonRoot", "pss:check_runAsUser", "CKV_K8S_23", "KSV-0012",
                  "KSV-0105", "polaris:runAsRootAllowed", "kube-linter:run-as-non-root"],
    ),
    resource_rule(
        "k8s-no-privilege-escalation",
        "setuid binaries must not be able to gain more privileges than the process started with.",
        types=POD_KINDS, severity=Severity.HIGH, mandatory=True, check=_no_privilege_escalation,
        fix=f"Set allowPrivilegeEscalation = false {_CONTAINER_FIX}.",
        scanners=["pss:check_allowPrivilegeEscalation", "CKV_K8S_20", "KSV-0001",
                  "polaris:privilegeEscalationAllowed",
                  "kube-linter:privilege-escalation-container"],
    ),
    resource_rule(
        "k8s-drop-all-capabilities",
        "Linux capabilities (NET_RAW, SYS_ADMIN...) widen what a compromised process can do; "
        "services need none of them.",
        types=POD_KINDS, severity=Severity.HIGH, mandatory=True, check=_drop_all_capabilities,
        fix=f"Set capabilities.drop = [ALL] and add at most NET_BIND_SERVICE {_CONTAINER_FIX}.",
        scanners=["pss:check_capabilities_restricted", "CKV_K8S_28", "CKV_K8S_37", "KSV-0003"],
    ),
    resource_rule(
        "k8s-seccomp-profile",
        "The runtime's default seccomp profile blocks the syscalls most container escapes use.",
        types=POD_KINDS, severity=Severity.HIGH, mandatory=True, check=_seccomp,
        fix="Set securityContext.seccompProfile.type = RuntimeDefault on the pod.",
        scanners=["pss:check_seccompProfile_restricted", "CKV_K8S_31", "KSV-0030"],
    ),
    resource_rule(
        "k8s-no-host-namespaces",
        "A pod in the node's network, PID or IPC namespace (or on a host port) sees and reaches "
        "everything on the node.",
        types=POD_KINDS, severity=Severity.CRITICAL, mandatory=True, check=_no_host_namespaces,
        fix="Remove hostNetwork, hostPID, hostIPC and hostPort; expose ports through a Service.",
        scanners=["pss:check_hostNamespaces", "pss:check_hostPorts", "CKV_K8S_17", "CKV_K8S_18",
                  "CKV_K8S_19", "KSV-0008", "KSV-0009", "KSV-0010", "KSV-0024"],
    ),
    resource_rule(
        "k8s-not-privileged",
        "A privileged container is root on the node with every device: no isolation is left.",
        types=POD_KINDS, severity=Severity.CRITICAL, mandatory=True, check=_not_privileged,
        fix=f"Remove privileged: true {_CONTAINER_FIX}.",
        scanners=["pss:check_privileged", "CKV_K8S_16", "KSV-0017", "polaris:runAsPrivileged",
                  "kube-linter:privileged-container"],
    ),
    resource_rule(
        "k8s-readonly-root-filesystem",
        "A read-only root filesystem stops an attacker from dropping tools or changing the "
        "image's code; writable scratch goes to an emptyDir. Not part of PSS restricted.",
        types=POD_KINDS, severity=Severity.MEDIUM, mandatory=True, check=_read_only_root,
        fix=f"Set readOnlyRootFilesystem = true {_CONTAINER_FIX}; mount an emptyDir on /tmp.",
        scanners=["CKV_K8S_22", "KSV-0014", "polaris:notReadOnlyRootFilesystem",
                  "kube-score:container-security-context-readonlyrootfilesystem",
                  "kube-linter:no-read-only-root-fs"],
    ),
    resource_rule(
        "k8s-image-pinned",
        "Every container runs an image pinned by digest (name[:tag]@sha256:...): a tag can be "
        "pushed again, so the pods of one rollout, or a rollback, could run other bytes than "
        "the ones reviewed and scanned. Checked on every kind that runs pods, init and "
        "ephemeral containers included.",
        types=POD_KINDS, severity=Severity.HIGH, mandatory=True, check=_image_pinned,
        fix="Reference every image as name[:tag]@sha256:<digest> (components/workload.py "
        "refuses other images; ContainerImage.image_ref is already pinned).",
        scanners=["CKV_K8S_43", "CKV_K8S_14", "KSV-0013", "polaris:tagNotSpecified",
                  "kube-score:container-image-tag", "kube-linter:latest-tag",
                  "KICS:7c81d34c-8e5a-402b-9798-9f442630e678"],
    ),
    resource_rule(
        "k8s-zone-spread",
        "Replicas packed into one availability zone all go down with it.",
        types=WORKLOADS, severity=Severity.MEDIUM, mandatory=False, check=_zone_spread,
        fix=f"Add a topologySpreadConstraint on {ZONE_KEY} (maxSkew 1).",
        scanners=["kube-score:pod-topology-spread-constraints", "kube-linter:no-anti-affinity",
                  "polaris:topologySpreadConstraint"],
    ),
    resource_rule(
        "k8s-no-literal-secrets",
        "A credential written as a literal env value or ConfigMap entry is stored unencrypted, "
        "shown by kubectl describe, and kept in the Pulumi state in plain text.",
        types=[*POD_KINDS, CONFIG_MAP], severity=Severity.HIGH, mandatory=True,
        check=_no_literal_secrets,
        fix="Put the value in a Secret and mount it as a read-only file (<NAME>_FILE; see "
        "k8s-secrets-as-files).",
        scanners=["kube-linter:env-var-secret", "polaris:sensitiveContainerEnvVar",
                  "polaris:sensitiveConfigmapContent"],
    ),
]  # fmt: skip
