"""The data tier as both stacks declare it: one test per promised property."""

import json
from typing import Any

import pytest
from conftest import PROJECT_DIR, preview_stack

from contracts.topics import WORK_TOPICS
from infra.graph import SECRET_MASK, Graph, RecordedResource
from infra.stack_files import load_stack
from stacks.config import StackConfig, parse_stack_config

RDS = "aws:rds/instance:Instance"
REDIS = "aws:elasticache/replicationGroup:ReplicationGroup"
MSK = "aws:msk/cluster:Cluster"
SG = "aws:ec2/securityGroup:SecurityGroup"


def config_of(stack: str) -> StackConfig:
    return parse_stack_config(load_stack(PROJECT_DIR, stack).config)


def get(inputs: dict[str, Any], path: str) -> Any:
    value: Any = inputs
    for part in path.split("."):
        value = value[int(part)] if isinstance(value, list) else value.get(part)
        if value is None:
            return None
    return value


def writer(graph: Graph) -> RecordedResource:
    (found,) = [r for r in graph.of_type(RDS) if "replicateSourceDb" not in r.inputs]
    return found


def replicas(graph: Graph) -> list[RecordedResource]:
    return [r for r in graph.of_type(RDS) if "replicateSourceDb" in r.inputs]


def dependency(graph: Graph, resource: RecordedResource, type_token: str) -> RecordedResource:
    (found,) = [
        graph.by_urn(u) for u in resource.dependencies if graph.by_urn(u).type == type_token
    ]
    return found


def component_key(graph: Graph, resource: RecordedResource) -> RecordedResource:
    return dependency(graph, resource, "aws:kms/key:Key")


# -- Database ------------------------------------------------------------------------

WRITER_PROPERTIES = [
    ("engine", "postgres"),
    ("storageType", "gp3"),
    ("storageEncrypted", True),
    ("manageMasterUserPassword", True),
    ("publiclyAccessible", False),
    ("iamDatabaseAuthenticationEnabled", True),
    ("performanceInsightsEnabled", True),
    ("autoMinorVersionUpgrade", True),
    ("caCertIdentifier", "rds-ca-rsa2048-g1"),
    ("copyTagsToSnapshot", True),
    ("monitoringInterval", 60),
    ("backupWindow", "02:00-03:00"),
    ("maintenanceWindow", "sun:03:30-sun:04:30"),
]


@pytest.mark.parametrize(("path", "expected"), WRITER_PROPERTIES)
def test_writer_property(stack_graph: Graph, path: str, expected: object):
    assert get(writer(stack_graph).inputs, path) == expected


def test_writer_follows_config(stack_graph: Graph):
    config = config_of(stack_graph.stack).database
    inputs = writer(stack_graph).inputs
    assert inputs["engineVersion"] == config.engine_version
    assert inputs["instanceClass"] == config.instance_class
    assert inputs["multiAz"] is config.multi_az
    assert inputs["allocatedStorage"] == config.allocated_storage_gb
    assert inputs["maxAllocatedStorage"] == config.max_allocated_storage_gb
    assert inputs["maxAllocatedStorage"] > inputs["allocatedStorage"]
    assert inputs["backupRetentionPeriod"] == config.backup_retention_days


def test_prod_writer_is_multi_az_backed_up_a_week_protected_and_snapshotted(prod_graph: Graph):
    inputs = writer(prod_graph).inputs
    assert inputs["multiAz"] is True
    assert inputs["backupRetentionPeriod"] >= 7
    assert inputs["deletionProtection"] is True
    assert inputs["skipFinalSnapshot"] is False
    assert inputs["finalSnapshotIdentifier"] == "eduscale-prod-database-writer-final"


def test_no_password_literal_anywhere_near_the_database(stack_graph: Graph):
    for resource in stack_graph.of_type(RDS):
        assert "password" not in resource.inputs


def test_storage_and_insights_and_secret_use_the_components_rotating_key(stack_graph: Graph):
    db = writer(stack_graph)
    key = component_key(stack_graph, db)
    assert key.inputs["enableKeyRotation"] is True
    key_arn = db.inputs["kmsKeyId"]
    assert key_arn.startswith("arn:aws:kms:")
    assert db.inputs["performanceInsightsKmsKeyId"] == key_arn
    assert db.inputs["masterUserSecretKmsKeyId"] in key_arn


def test_logs_are_exported(stack_graph: Graph):
    assert {"postgresql", "upgrade"} <= set(
        writer(stack_graph).inputs["enabledCloudwatchLogsExports"]
    )


def test_parameter_group_forces_tls_and_logs_slow_statements(stack_graph: Graph):
    db = writer(stack_graph)
    group = dependency(stack_graph, db, "aws:rds/parameterGroup:ParameterGroup")
    assert db.inputs["parameterGroupName"] == group.inputs["name"]
    parameters = {p["name"]: p["value"] for p in group.inputs["parameters"]}
    assert parameters["rds.force_ssl"] == "1"
    assert parameters["log_min_duration_statement"] == "500"
    assert group.inputs["family"] == "postgres17"


def test_the_writer_lives_in_the_private_subnets(stack_graph: Graph):
    db = writer(stack_graph)
    subnet_group = dependency(stack_graph, db, "aws:rds/subnetGroup:SubnetGroup")
    assert db.inputs["dbSubnetGroupName"] == subnet_group.inputs["name"]
    assert subnet_group.inputs["subnetIds"] == stack_graph.outputs["privateSubnetIds"]


def test_replica_count_follows_config_and_prod_has_at_least_two(stack_graph: Graph):
    count = config_of(stack_graph.stack).database.replica_count
    assert len(replicas(stack_graph)) == count
    if stack_graph.stack == "prod":
        assert count >= 2


def test_replicas_get_their_own_class_or_the_writers(stack_graph: Graph):
    config = config_of(stack_graph.stack).database
    assert writer(stack_graph).inputs["instanceClass"] == config.instance_class
    assert {r.inputs["instanceClass"] for r in replicas(stack_graph)} == {config.replica_class}


def test_prod_replicas_are_sized_for_reads_below_the_writer_and_dev_shares_its_class(
    dev_graph: Graph, prod_graph: Graph
):
    assert writer(prod_graph).inputs["instanceClass"] == "db.r7g.4xlarge"
    assert {r.inputs["instanceClass"] for r in replicas(prod_graph)} == {"db.r7g.2xlarge"}
    dev_writer = writer(dev_graph).inputs["instanceClass"]
    assert {r.inputs["instanceClass"] for r in replicas(dev_graph)} == {dev_writer}


REPLICA_PROPERTIES = [
    ("storageEncrypted", True),
    ("performanceInsightsEnabled", True),
    ("iamDatabaseAuthenticationEnabled", True),
    ("publiclyAccessible", False),
    ("multiAz", False),
    ("autoMinorVersionUpgrade", True),
]


@pytest.mark.parametrize(("path", "expected"), REPLICA_PROPERTIES)
def test_replica_property(stack_graph: Graph, path: str, expected: object):
    for replica in replicas(stack_graph):
        assert get(replica.inputs, path) == expected, replica.name


def test_replicas_replicate_the_writer_with_its_key_and_parameters(stack_graph: Graph):
    db = writer(stack_graph)
    for replica in replicas(stack_graph):
        assert replica.inputs["replicateSourceDb"] == db.inputs["identifier"]
        assert db.urn in replica.dependencies
        assert replica.inputs["kmsKeyId"] == db.inputs["kmsKeyId"]
        assert replica.inputs["performanceInsightsKmsKeyId"] == db.inputs["kmsKeyId"]
        assert replica.inputs["parameterGroupName"] == db.inputs["parameterGroupName"]
        assert replica.inputs["vpcSecurityGroupIds"] == db.inputs["vpcSecurityGroupIds"]


def test_prod_replicas_are_spread_over_the_azs(prod_graph: Graph):
    zones = [r.inputs["availabilityZone"] for r in replicas(prod_graph)]
    per_zone = [zones.count(zone) for zone in prod_graph.outputs["availabilityZones"]]
    assert sum(per_zone) == len(zones)  # no replica outside the stack's zones
    # Losing an AZ loses at most one replica (prod's N+1): none shares a zone while
    # another zone has none.
    assert len(set(zones)) == min(len(zones), len(per_zone)) >= 2
    assert max(per_zone) - min(per_zone) <= 1


def test_the_reader_endpoint_resolves_to_replicas_only(stack_graph: Graph):
    records = stack_graph.of_type("aws:route53/record:Record")
    replica_addresses = sorted(stack_graph.outputs["databaseReaderEndpoints"])
    assert len(records) == len(replicas(stack_graph))
    assert sorted(r.inputs["records"][0] for r in records) == replica_addresses
    assert stack_graph.outputs["databaseWriterEndpoint"] not in replica_addresses
    assert {r.inputs["name"] for r in records} == {stack_graph.outputs["databaseReaderEndpoint"]}
    assert all(r.inputs["weightedRoutingPolicies"] == [{"weight": 1}] for r in records)
    zone = stack_graph.one("aws:route53/zone:Zone")
    assert zone.inputs["vpcs"] == [{"vpcId": stack_graph.outputs["vpcId"]}]


def test_database_outputs(stack_graph: Graph):
    outputs = stack_graph.outputs
    assert outputs["databaseWriterEndpoint"].endswith(".rds.amazonaws.com")
    assert outputs["databaseMasterSecretArn"].startswith("arn:aws:secretsmanager:")
    assert len(outputs["databaseReaderEndpoints"]) == len(replicas(stack_graph))


# -- Cache ---------------------------------------------------------------------------

CACHE_PROPERTIES = [
    ("engine", "redis"),
    ("transitEncryptionEnabled", True),
    ("transitEncryptionMode", "required"),
    ("atRestEncryptionEnabled", True),
    ("automaticFailoverEnabled", True),
    ("authToken", SECRET_MASK),
    ("port", 6379),
    ("autoMinorVersionUpgrade", True),
    ("logDeliveryConfigurations.0.logType", "slow-log"),
    ("logDeliveryConfigurations.0.destinationType", "cloudwatch-logs"),
]


@pytest.mark.parametrize(("path", "expected"), CACHE_PROPERTIES)
def test_cache_property(stack_graph: Graph, path: str, expected: object):
    assert get(stack_graph.one(REDIS).inputs, path) == expected


def test_cache_shape_follows_config(stack_graph: Graph):
    config = config_of(stack_graph.stack).cache
    inputs = stack_graph.one(REDIS).inputs
    assert inputs["numNodeGroups"] == config.shards
    assert inputs["replicasPerNodeGroup"] == config.replicas_per_shard
    assert inputs["nodeType"] == config.node_type
    assert inputs["multiAzEnabled"] is (config.replicas_per_shard > 0)
    assert inputs["snapshotRetentionLimit"] == config.snapshot_retention_days


def test_prod_cache_is_sharded_replicated_multi_az_and_snapshotted(prod_graph: Graph):
    inputs = prod_graph.one(REDIS).inputs
    assert inputs["numNodeGroups"] >= 2
    assert inputs["replicasPerNodeGroup"] >= 1
    assert inputs["multiAzEnabled"] is True
    assert inputs["snapshotRetentionLimit"] > 0


def test_cache_encryption_key_subnets_parameters_and_slow_log(stack_graph: Graph):
    group = stack_graph.one(REDIS)
    key = component_key(stack_graph, group)
    assert key.inputs["enableKeyRotation"] is True
    assert group.inputs["kmsKeyId"].startswith("arn:aws:kms:")
    subnets = dependency(stack_graph, group, "aws:elasticache/subnetGroup:SubnetGroup")
    assert subnets.inputs["subnetIds"] == stack_graph.outputs["privateSubnetIds"]
    parameters = dependency(stack_graph, group, "aws:elasticache/parameterGroup:ParameterGroup")
    values = {p["name"]: p["value"] for p in parameters.inputs["parameters"]}
    assert values == {"cluster-enabled": "yes", "maxmemory-policy": "allkeys-lru"}
    log_group = dependency(stack_graph, group, "aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["logDeliveryConfigurations"][0]["destination"] == log_group.inputs["name"]
    assert log_group.inputs["kmsKeyId"].startswith("arn:aws:kms:")


def test_the_auth_token_is_generated_and_never_shown(stack_graph: Graph):
    group = stack_graph.one(REDIS)
    password = dependency(stack_graph, group, "random:index/randomPassword:RandomPassword")
    assert password.inputs["length"] >= 32
    assert stack_graph.outputs["cacheAuthToken"] == SECRET_MASK


# -- EventBus ------------------------------------------------------------------------

KAFKA_PROPERTIES = [
    ("encryptionInfo.encryptionInTransit.clientBroker", "TLS"),
    ("encryptionInfo.encryptionInTransit.inCluster", True),
    ("clientAuthentication.sasl.iam", True),
    ("clientAuthentication.unauthenticated", False),
    ("brokerNodeGroupInfo.connectivityInfo.publicAccess.type", "DISABLED"),
    ("loggingInfo.brokerLogs.cloudwatchLogs.enabled", True),
    ("enhancedMonitoring", "PER_TOPIC_PER_BROKER"),
    ("openMonitoring.prometheus.jmxExporter.enabledInBroker", True),
]


@pytest.mark.parametrize(("path", "expected"), KAFKA_PROPERTIES)
def test_kafka_property(stack_graph: Graph, path: str, expected: object):
    assert get(stack_graph.one(MSK).inputs, path) == expected


def test_brokers_follow_config_as_a_multiple_of_the_azs(stack_graph: Graph):
    config = config_of(stack_graph.stack)
    inputs = stack_graph.one(MSK).inputs
    assert inputs["numberOfBrokerNodes"] == config.kafka.brokers
    assert inputs["numberOfBrokerNodes"] % config.network.az_count == 0
    assert inputs["kafkaVersion"] == config.kafka.kafka_version
    assert inputs["brokerNodeGroupInfo"]["clientSubnets"] == stack_graph.outputs["privateSubnetIds"]


def test_kafka_is_encrypted_at_rest_with_its_own_key(stack_graph: Graph):
    cluster = stack_graph.one(MSK)
    key = component_key(stack_graph, cluster)
    assert key.inputs["enableKeyRotation"] is True
    assert get(cluster.inputs, "encryptionInfo.encryptionAtRestKmsKeyArn").startswith(
        "arn:aws:kms:"
    )


def test_kafka_configuration_forbids_auto_topics_and_demands_durable_writes(stack_graph: Graph):
    config = config_of(stack_graph.stack).kafka
    cluster = stack_graph.one(MSK)
    configuration = dependency(stack_graph, cluster, "aws:msk/configuration:Configuration")
    lines = set(configuration.inputs["serverProperties"].splitlines())
    assert "auto.create.topics.enable=false" in lines
    assert f"min.insync.replicas={config.min_insync_replicas}" in lines
    assert f"default.replication.factor={config.replication_factor}" in lines
    assert cluster.inputs["configurationInfo"]["revision"] == 1


def test_prod_replicates_three_times_and_needs_two_acknowledgements(prod_graph: Graph):
    configuration = prod_graph.one("aws:msk/configuration:Configuration")
    lines = set(configuration.inputs["serverProperties"].splitlines())
    assert {"default.replication.factor=3", "min.insync.replicas=2"} <= lines


def test_broker_storage_grows_by_itself(stack_graph: Graph):
    target = stack_graph.one("aws:appautoscaling/target:Target")
    assert target.inputs["scalableDimension"] == "kafka:broker-storage:VolumeSize"
    assert target.inputs["maxCapacity"] == config_of(stack_graph.stack).kafka.max_volume_size_gb
    policy = stack_graph.one("aws:appautoscaling/policy:Policy")
    assert get(policy.inputs, "targetTrackingScalingPolicyConfiguration.targetValue") == 70


def test_every_work_topic_exists_with_a_dlq_twin_that_is_at_least_as_large_and_kept_longer(
    stack_graph: Graph,
):
    topics = {t.inputs["name"]: t.inputs for t in stack_graph.of_type("aws:msk/topic:Topic")}
    assert len(topics) == 2 * len(WORK_TOPICS)
    for work in WORK_TOPICS:
        topic, dlq = topics[work.name], topics[work.dlq]
        assert dlq["partitionCount"] >= topic["partitionCount"]
        assert int(json.loads(dlq["configs"])["retention.ms"]) > int(
            json.loads(topic["configs"])["retention.ms"]
        )
        assert topic["replicationFactor"] == config_of(stack_graph.stack).kafka.replication_factor
        assert topic["partitionCount"] == config_of(stack_graph.stack).kafka.partitions
    assert stack_graph.outputs["kafkaDeadLetterTopics"] == [w.dlq for w in WORK_TOPICS]
    assert set(stack_graph.outputs["kafkaTopics"]) == {w.name for w in WORK_TOPICS}


# -- Reachability ----------------------------------------------------------------------


@pytest.mark.parametrize(("store_type", "port"), [(RDS, 5432), (REDIS, 6379), (MSK, 9098)])
def test_each_data_store_admits_only_its_port_from_the_data_clients_group(
    stack_graph: Graph, store_type: str, port: int
):
    store = stack_graph.of_type(store_type)[0]
    group = dependency(stack_graph, store, SG)
    (rule,) = group.inputs["ingress"]
    assert (rule["protocol"], rule["fromPort"], rule["toPort"]) == ("tcp", port, port)
    assert rule["securityGroups"] == [stack_graph.outputs["dataClientsSecurityGroupId"]]
    assert not rule.get("cidrBlocks")
    assert not rule.get("ipv6CidrBlocks")
    assert rule["description"]


def test_no_security_group_admits_the_internet(stack_graph: Graph):
    for group in stack_graph.of_type(SG):
        for rule in group.inputs.get("ingress", []):
            assert not {"0.0.0.0/0", "::/0"} & set(
                rule.get("cidrBlocks", []) + rule.get("ipv6CidrBlocks", [])
            ), group.name


# -- Dev against prod ----------------------------------------------------------------


def test_dev_has_the_same_structure_as_prod_only_smaller(dev_graph: Graph, prod_graph: Graph):
    assert set(dev_graph.type_counts()) == set(prod_graph.type_counts())
    for type_token, count in dev_graph.type_counts().items():
        assert count <= prod_graph.type_counts()[type_token], type_token
    assert writer(dev_graph).inputs["instanceClass"] != writer(prod_graph).inputs["instanceClass"]
    assert dev_graph.one(REDIS).inputs["nodeType"] != prod_graph.one(REDIS).inputs["nodeType"]
    assert (
        dev_graph.one(MSK).inputs["numberOfBrokerNodes"]
        < prod_graph.one(MSK).inputs["numberOfBrokerNodes"]
    )


def test_a_dev_stack_without_replicas_has_an_empty_reader_endpoint(tmp_path):
    import shutil  # noqa: PLC0415

    import yaml  # noqa: PLC0415

    for name in ("Pulumi.yaml", "Pulumi.dev.yaml"):
        shutil.copy(PROJECT_DIR / name, tmp_path / name)
    document = yaml.safe_load((tmp_path / "Pulumi.dev.yaml").read_text())
    document["config"]["eduscale:database"]["replicaCount"] = 0
    (tmp_path / "Pulumi.dev.yaml").write_text(yaml.safe_dump(document))
    graph = preview_stack("dev", tmp_path)
    assert replicas(graph) == []
    assert graph.outputs["databaseReaderEndpoint"] == ""
    assert graph.of_type("aws:route53/record:Record") == []


def test_exported_database_logs_land_in_encrypted_log_groups_declared_first(stack_graph: Graph):
    for instance in stack_graph.of_type(RDS):
        groups = [
            stack_graph.by_urn(u)
            for u in instance.dependencies
            if stack_graph.by_urn(u).type == "aws:cloudwatch/logGroup:LogGroup"
        ]
        identifier = instance.inputs["identifier"]
        assert sorted(g.inputs["name"] for g in groups) == [
            f"/aws/rds/instance/{identifier}/postgresql",
            f"/aws/rds/instance/{identifier}/upgrade",
        ]
        assert all(g.inputs["kmsKeyId"].startswith("arn:aws:kms:") for g in groups)
