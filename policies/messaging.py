"""Rules for the event bus (MSK): encryption, access, layout, durability, dead letters.

The bus carries generation requests and uploaded-document events between services; a lost
or leaked message is user data lost or leaked, so every rule here is mandatory except broker
logging. Where AWS's default for an absent setting is the safe one (TLS client traffic,
in-cluster encryption, no public access, no unauthenticated access once IAM is on), absent
passes; the durability properties must be declared, because MSK's defaults for them depend
on the AZ count (two AZs give replication factor 2 and min.insync.replicas 1), and whether a
custom configuration inherits MSK's or Apache Kafka's defaults is not something to bet on.
"""

import json
from collections.abc import Iterable, Mapping
from typing import Any

from pulumi_policy import PolicyResource, ResourceValidationArgs, Severity, StackValidationArgs

from policies.support import config_value, get, is_true, resource_rule, stack_rule

__all__ = ["POLICIES"]

CLUSTER = "aws:msk/cluster:Cluster"
CONFIGURATION = "aws:msk/configuration:Configuration"
TOPIC = "aws:msk/topic:Topic"
DLQ_SUFFIX = ".dlq"
LOG_SINKS = ("cloudwatchLogs", "firehose", "s3")


def _tls_only(args: ResourceValidationArgs) -> Iterable[str]:
    transit = "encryptionInfo.encryptionInTransit"
    broker = get(args.props, f"{transit}.clientBroker")
    if broker is not None and broker != "TLS":
        yield f"client traffic allows plain text (clientBroker is {broker}, not TLS)"
    if get(args.props, f"{transit}.inCluster") is False:
        yield "traffic between brokers is not encrypted (inCluster is false)"


def _at_rest_cmk(args: ResourceValidationArgs) -> Iterable[str]:
    if not get(args.props, "encryptionInfo.encryptionAtRestKmsKeyArn"):
        yield "data at rest is encrypted with the AWS-managed key, not a customer-managed KMS key"


def _iam_auth(args: ResourceValidationArgs) -> Iterable[str]:
    if not is_true(args.props, "clientAuthentication.sasl.iam"):
        yield "IAM client authentication is off (clientAuthentication.sasl.iam is not true)"
    if get(args.props, "clientAuthentication.unauthenticated") is True:
        yield "unauthenticated client access is on"


def _logging(args: ResourceValidationArgs) -> Iterable[str]:
    if not any(is_true(args.props, f"loggingInfo.brokerLogs.{sink}.enabled") for sink in LOG_SINKS):
        yield "broker logs are not delivered anywhere (no loggingInfo.brokerLogs sink enabled)"


def _private(args: ResourceValidationArgs) -> Iterable[str]:
    access = get(args.props, "brokerNodeGroupInfo.connectivityInfo.publicAccess.type")
    if access not in {None, "DISABLED"}:
        yield f"brokers are reachable from the internet (publicAccess type is {access})"


def _brokers(args: ResourceValidationArgs) -> Iterable[str]:
    minimum = int(config_value(args, "minimumBrokers", default=3))
    brokers = get(args.props, "numberOfBrokerNodes")
    count = brokers if isinstance(brokers, int) else 0
    if count < minimum:
        yield f"{count} broker(s); at least {minimum} required"
        return
    zones = len(get(args.props, "brokerNodeGroupInfo.clientSubnets") or [])
    if count and zones and count % zones:
        yield f"{count} brokers do not spread evenly over {zones} client subnets (AZs)"


def _configuration_of(
    cluster: PolicyResource, configurations: list[PolicyResource]
) -> PolicyResource | None:
    """The Configuration resource `cluster` uses: by dependency, else by the ARN's name."""
    linked = cluster.property_dependencies.get("configurationInfo") or cluster.dependencies
    for resource in linked:
        if resource.resource_type == CONFIGURATION:
            return resource
    arn = get(cluster.props, "configurationInfo.arn") or ""
    name = arn.partition(":configuration/")[2].split("/")[0]
    return next((c for c in configurations if name and get(c.props, "name") == name), None)


def _server_properties(text: str) -> dict[str, str]:
    """`key=value` (or `key: value`) lines of a Kafka properties file; comments skipped."""
    found: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        cut = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if cut > 0:
            found[line[:cut].strip()] = line[cut + 1 :].strip()
    return found


def _whole(value: str | None) -> int | None:
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def _shown(value: int | None) -> str:
    return "not set" if value is None else str(value)


def _durability_problems(
    properties: Mapping[str, str], minimum_rf: int, minimum_isr: int
) -> Iterable[str]:
    if properties.get("auto.create.topics.enable", "").lower() != "false":
        yield "auto.create.topics.enable is not false: a typo in a topic name creates a topic"
    rf = _whole(properties.get("default.replication.factor"))
    isr = _whole(properties.get("min.insync.replicas"))
    if rf is None or rf < minimum_rf:
        yield f"default.replication.factor is {_shown(rf)}; at least {minimum_rf} required"
    if isr is None or isr < minimum_isr:
        yield f"min.insync.replicas is {_shown(isr)}; at least {minimum_isr} required"
    elif rf is not None and isr >= rf:
        yield (
            f"min.insync.replicas ({isr}) is not below the replication factor ({rf}): "
            "one broker down stops every write"
        )


def _durability(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    minimum_rf = int(config_value(args, "minimumReplicationFactor", default=3))
    minimum_isr = int(config_value(args, "minimumInsyncReplicas", default=2))
    configurations = [r for r in args.resources if r.resource_type == CONFIGURATION]
    for cluster in (r for r in args.resources if r.resource_type == CLUSTER):
        if get(cluster.props, "configurationInfo") is None:
            message = "no configuration: MSK's defaults depend on the AZ count; declare one"
            yield message, cluster.urn
            continue
        configuration = _configuration_of(cluster, configurations)
        if configuration is None:
            yield (
                "its configuration is not declared in this stack and cannot be checked",
                cluster.urn,
            )
            continue
        properties = _server_properties(get(configuration.props, "serverProperties") or "")
        for problem in _durability_problems(properties, minimum_rf, minimum_isr):
            yield f"its configuration: {problem}", cluster.urn


def _cluster_key(topic: PolicyResource) -> str:
    """Which cluster a topic lives on: the Cluster it depends on, else its clusterArn."""
    linked = topic.property_dependencies.get("clusterArn") or topic.dependencies
    for resource in linked:
        if resource.resource_type == CLUSTER:
            return resource.urn
    return str(get(topic.props, "clusterArn"))


def _retention(topic: PolicyResource) -> int | None:
    """retention.ms from the topic's JSON `configs` (-1 is forever); None when not declared.

    Raises `ValueError` or `TypeError` when `configs` is not a JSON object with a numeric
    retention.ms.
    """
    raw = get(topic.props, "configs")
    if not raw:
        return None
    configs: Any = json.loads(raw)
    if not isinstance(configs, dict):
        raise TypeError("configs is not a JSON object")
    value = configs.get("retention.ms")  # a plain dict: "retention.ms" is one key, not a path
    return None if value is None else int(value)


def _keeps_as_long(dlq: int | None, work: int | None) -> bool:
    if dlq in {-1, work}:
        return True
    return dlq is not None and work is not None and work != -1 and dlq >= work


def _dead_letter_twins(args: StackValidationArgs) -> Iterable[tuple[str, str | None]]:
    topics = [r for r in args.resources if r.resource_type == TOPIC]
    by_name = {(_cluster_key(t), get(t.props, "name")): t for t in topics}
    for topic in topics:
        name = get(topic.props, "name")
        if not isinstance(name, str) or name.endswith(DLQ_SUFFIX):
            continue
        dlq = by_name.get((_cluster_key(topic), name + DLQ_SUFFIX))
        if dlq is None:
            yield f"topic {name} has no {name}{DLQ_SUFFIX} on its cluster", topic.urn
            continue
        partitions = get(topic.props, "partitionCount") or 0
        if (get(dlq.props, "partitionCount") or 0) < partitions:
            yield f"{name}{DLQ_SUFFIX} has fewer partitions than {name} ({partitions})", dlq.urn
        try:
            kept = _keeps_as_long(_retention(dlq), _retention(topic))
        except (TypeError, ValueError):
            yield (
                f"{name} or its DLQ has configs that are not JSON with a numeric retention.ms",
                dlq.urn,
            )
            continue
        if not kept:
            yield (
                f"{name}{DLQ_SUFFIX} does not keep messages as long as {name} (retention.ms)",
                dlq.urn,
            )


POLICIES = [
    resource_rule(
        "msk-tls-only",
        "Events carry user data and IAM-signed requests; clients and brokers must only ever "
        "talk TLS (absent means TLS, AWS's default).",
        types=[CLUSTER], severity=Severity.HIGH, mandatory=True, check=_tls_only,
        fix="Set encryptionInfo.encryptionInTransit.clientBroker = 'TLS' and leave inCluster true.",
        scanners=["CKV_AWS_81", "AWS-0073"],
    ),
    resource_rule(
        "msk-at-rest-cmk",
        "Broker volumes must be encrypted with our own KMS key, so access to the log can be "
        "audited and revoked.",
        types=[CLUSTER], severity=Severity.HIGH, mandatory=True, check=_at_rest_cmk,
        fix="Set encryptionInfo.encryptionAtRestKmsKeyArn to the EventBus component's key.",
        scanners=["AWS-0179", "KICS:6db52fa6-d4da-4608-908a-89f0c59e743e"],
    ),
    resource_rule(
        "msk-iam-auth",
        "Every producer and consumer authenticates with its IAM role, so each topic grant is "
        "per service; an unauthenticated listener bypasses all of it.",
        types=[CLUSTER], severity=Severity.CRITICAL, mandatory=True, check=_iam_auth,
        fix="Set clientAuthentication.sasl.iam = true and unauthenticated = false.",
        scanners=["derived"],
    ),
    resource_rule(
        "msk-broker-logging",
        "Broker logs record authorization failures and broker errors; without them an "
        "incident on the bus cannot be reconstructed.",
        types=[CLUSTER], severity=Severity.MEDIUM, mandatory=False, check=_logging,
        fix="Enable loggingInfo.brokerLogs.cloudwatchLogs with the component's log group.",
        scanners=["CKV_AWS_80", "AWS-0074"],
    ),
    resource_rule(
        "msk-private",
        "Brokers must only be reachable from inside the VPC, never from the internet.",
        types=[CLUSTER], severity=Severity.CRITICAL, mandatory=True, check=_private,
        fix="Set brokerNodeGroupInfo.connectivityInfo.publicAccess.type = 'DISABLED'.",
        scanners=["CKV_AWS_291"],
    ),
    resource_rule(
        "msk-broker-count",
        "Replication factor 3 needs at least 3 brokers, and brokers spread evenly over the "
        "AZs so one AZ outage removes the same share of every partition's replicas.",
        types=[CLUSTER], severity=Severity.HIGH, mandatory=True, check=_brokers,
        fix="Set eduscale:kafka.brokers to a multiple of the AZ count, at least minimumBrokers.",
        scanners=["derived"],
        config={"minimumBrokers": {"type": "integer", "default": 3, "minimum": 1}},
    ),
    stack_rule(
        "msk-configuration-durability",
        "An acknowledged write must survive a broker loss (replication factor and "
        "min.insync.replicas, below the factor so one broker down still accepts writes), "
        "and topics exist only by declaration (no auto-creation).",
        severity=Severity.HIGH, mandatory=True, check=_durability,
        fix="In the cluster's aws.msk.Configuration set auto.create.topics.enable=false and "
        "eduscale:kafka.replicationFactor / minInsyncReplicas (isr < rf).",
        scanners=["derived"],
        config={
            "minimumReplicationFactor": {"type": "integer", "default": 3, "minimum": 1},
            "minimumInsyncReplicas": {"type": "integer", "default": 2, "minimum": 1},
        },
    ),
    stack_rule(
        "msk-topic-dlq",
        "A message that cannot be processed goes to <topic>.dlq on the same partition and is "
        "kept at least as long as the original, or it blocks the partition or is lost.",
        severity=Severity.HIGH, mandatory=True, check=_dead_letter_twins,
        fix="Declare each work topic through the EventBus component, which creates its .dlq "
        "twin with as many partitions and dlq_retention_ms >= retention_ms.",
        scanners=["derived"],
    ),
]  # fmt: skip
