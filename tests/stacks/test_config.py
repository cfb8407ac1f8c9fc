import json
from typing import Any

import pulumi
import pytest
from conftest import run_program

from infra.graph import SECRET_MASK
from stacks.config import ConfigError, load_secrets, load_stack_config, parse_stack_config

ZONE = "0" * 32
VALID: dict[str, Any] = {
    "aws:region": "eu-west-1",
    "eduscale:network": {"cidr": "10.20.0.0/16", "azCount": 3},
    "eduscale:edge": {"domain": "learn.example.com", "cloudflareZoneId": "0" * 32},
}


def issues_for(**changes: Any) -> list[str]:
    values = dict(VALID)
    for key, value in changes.items():
        values[key.replace("__", ":")] = value
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(values)
    return [str(issue) for issue in caught.value.issues]


def test_the_image_must_run_on_every_node_group_it_is_built_for():
    amd64_groups = {
        "nodeGroups": [
            {
                "name": "system",
                "instanceTypes": ["m7i.large"],
                "system": True,
                "amiType": "AL2023_x86_64_STANDARD",
            },
        ]
    }
    (issue,) = issues_for(eduscale__cluster=amd64_groups)
    assert issue.startswith(
        'eduscale:services.imagePlatforms = ["linux/arm64"]: must include linux/amd64'
    )
    both = parse_stack_config(
        {
            **VALID,
            "eduscale:cluster": amd64_groups,
            "eduscale:services": {"imagePlatforms": ["linux/arm64", "linux/amd64"]},
        }
    )
    assert both.services.image_platforms == ("linux/arm64", "linux/amd64")
    # A prebuilt image is the team's to build for its nodes; nothing to check here.
    prebuilt = "registry.example/eduscale:1.0@sha256:" + "a" * 64
    parsed = parse_stack_config(
        {**VALID, "eduscale:cluster": amd64_groups, "eduscale:services": {"image": prebuilt}}
    )
    assert parsed.services.image == prebuilt


def test_third_party_images_default_to_digest_pinned_releases():
    config = parse_stack_config(VALID)
    for image in (config.gateway.image, config.vector_store.image, config.analytics.image):
        assert "@sha256:" in image
    assert config.analytics.keeper_image is None  # Keeper runs from the server image
    assert config.services.image is None  # built by `pulumi up`


def test_valid_config_parses_with_secure_defaults():
    config = parse_stack_config(VALID)
    assert config.network.nat_per_az is True
    assert config.network.flow_log_retention_days == 365
    assert config.services.course.cpu_target_percent == 70


def test_structured_values_may_arrive_as_json_strings_as_the_engine_sends_them():
    values = {k: v if k == "aws:region" else json.dumps(v) for k, v in VALID.items()}
    assert parse_stack_config(values).network.az_count == 3


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"aws__region": "europe"}, "aws:region = europe: must be an AWS region code"),
        ({"eduscale__network": {"cidr": "8.8.0.0/16"}}, "eduscale:network.cidr = 8.8.0.0/16"),
        ({"eduscale__network": {"cidr": "10.0.0.0/8"}}, "allowed is /16 to /20"),
        ({"eduscale__network": {"azCount": 1}}, "eduscale:network.azCount = 1: Input should be"),
        ({"eduscale__network": {"azCount": 7}}, "less than or equal to 6"),
        ({"eduscale__network": {"natPerAz": "sometimes"}}, "eduscale:network.natPerAz = sometimes"),
        ({"eduscale__network": {"flowLogRetentionDays": 10}}, "accepts only these retention"),
        ({"eduscale__network": {"azcount": 3}}, "eduscale:network.azcount = 3: unknown field; known: azCount"),
        ({"eduscale__edge": {"domain": "Not A Host", "cloudflareZoneId": ZONE}}, "eduscale:edge.domain = Not A Host: must be a"),
        ({"eduscale__edge": {"cloudflareZoneId": ZONE}}, "eduscale:edge.domain = (not set): required"),
        ({"eduscale__edge": {"domain": "a.example.com"}}, "eduscale:edge.cloudflareZoneId = (not set): required"),
        ({"eduscale__edge": {"domain": "a.example.com", "cloudflareZoneId": "zone"}}, "eduscale:edge.cloudflareZoneId = zone"),
        ({"eduscale__edge": {"domain": "a.example.com", "cloudflareZoneId": ZONE, "cloudflareIpv4Ranges": ["0.0.0.0/0"]}}, "too wide to be a Cloudflare range"),
        ({"eduscale__ai": {"openaiBaseUrl": "http://api.openai.com/v1"}}, "eduscale:ai.openaiBaseUrl = http://api.openai.com/v1"),
        ({"eduscale__gateway": {"image": "kong"}}, "eduscale:gateway.image = kong"),
        ({"eduscale__services": {"auth": {"minReplicas": 5, "maxReplicas": 2}}}, "minReplicas (5) must not exceed maxReplicas (2)"),
        ({"eduscale__services": {"course": {"cpuTargetPercent": 99}}}, "eduscale:services.course.cpuTargetPercent = 99"),
        ({"eduscale__database": {"replicaCount": -1}}, "eduscale:database.replicaCount = -1"),
        ({"eduscale__database": {"instanceClass": "m5.large"}}, "eduscale:database.instanceClass = m5.large"),
        ({"eduscale__database": {"replicaInstanceClass": "r7g.2xlarge"}}, "eduscale:database.replicaInstanceClass = r7g.2xlarge: String should match pattern"),
        ({"eduscale__cache": {"shards": 0}}, "eduscale:cache.shards = 0"),
        ({"eduscale__kafka": {"brokers": 4}}, "eduscale:kafka.brokers = 4: must be a multiple of network.azCount (3)"),
        ({"eduscale__kafka": {"partitions": 0}}, "eduscale:kafka.partitions = 0"),
        ({"eduscale__vectorStore": {"replicas": 1, "replicationFactor": 2}}, "replicationFactor (2) cannot exceed"),
        ({"eduscale__database": {"allocatedStorageGb": 500, "maxAllocatedStorageGb": 100}}, "maxAllocatedStorageGb (100) must be at least allocatedStorageGb (500)"),
        ({"eduscale__database": {"backupRetentionDays": 0}}, "eduscale:database.backupRetentionDays = 0"),
        ({"eduscale__database": {"performanceInsightsRetentionDays": 30}}, "RDS accepts 7, a multiple of 31"),
        ({"eduscale__database": {"engineVersion": "9.6"}}, "eduscale:database.engineVersion = 9.6"),
        ({"eduscale__cache": {"replicasPerShard": 6}}, "eduscale:cache.replicasPerShard = 6"),
        ({"eduscale__kafka": {"brokers": 3, "replicationFactor": 4, "minInsyncReplicas": 2}}, "replicationFactor (4) cannot exceed brokers (3)"),
        ({"eduscale__kafka": {"replicationFactor": 3, "minInsyncReplicas": 3}}, "minInsyncReplicas (3) must be below replicationFactor (3)"),
        ({"eduscale__kafka": {"volumeSizeGb": 500, "maxVolumeSizeGb": 100}}, "maxVolumeSizeGb (100) must be at least volumeSizeGb (500)"),
        ({"eduscale__kafka": {"kafkaVersion": "latest"}}, "eduscale:kafka.kafkaVersion = latest"),
        ({"eduscale__network": "not json"}, "eduscale:network = not json: not an object"),
        ({"eduscale__netwrk": {}}, "eduscale:netwrk = {}: unknown key; known: eduscale:ai, eduscale:analytics, eduscale:cache"),
    ],
)  # fmt: skip
def test_each_bad_value_is_named_with_its_value_and_what_is_allowed(
    changes: dict[str, Any], expected: str
):
    issues = issues_for(**changes)
    assert len(issues) == 1, issues
    assert expected in issues[0]


def test_the_replicas_share_the_writers_class_unless_given_their_own():
    writer_only = {"instanceClass": "db.r7g.4xlarge"}
    shared = parse_stack_config({**VALID, "eduscale:database": writer_only}).database
    assert shared.replica_instance_class is None
    assert shared.replica_class == "db.r7g.4xlarge"
    own = parse_stack_config(
        {**VALID, "eduscale:database": {**writer_only, "replicaInstanceClass": "db.r7g.2xlarge"}}
    ).database
    assert (own.instance_class, own.replica_class) == ("db.r7g.4xlarge", "db.r7g.2xlarge")


def test_missing_region_is_reported():
    values = {k: v for k, v in VALID.items() if k != "aws:region"}
    with pytest.raises(ConfigError, match=r"aws:region = \(not set\): required"):
        parse_stack_config(values)


def test_several_bad_values_are_all_reported_at_once():
    issues = issues_for(
        aws__region="nowhere",
        eduscale__network={"azCount": 9, "cidr": "1.2.3.0/24"},
        eduscale__edge={"domain": "x", "cloudflareZoneId": ZONE},
    )
    keys = sorted(issue.split(" = ")[0] for issue in issues)
    assert keys == [
        "aws:region",
        "eduscale:edge.domain",
        "eduscale:network.azCount",
        "eduscale:network.cidr",
    ]


def test_the_program_reads_and_validates_the_runtime_config():
    seen = {}

    def body() -> None:
        seen["config"] = load_stack_config()

    run_program(
        body, config={k: json.dumps(v) if k != "aws:region" else v for k, v in VALID.items()}
    )
    assert seen["config"].edge.domain == "learn.example.com"

    bad = {**{k: json.dumps(v) for k, v in VALID.items()}, "aws:region": "x"}
    with pytest.raises(ConfigError, match="aws:region"):
        run_program(body, config=bad)


def test_secrets_are_read_as_pulumi_secrets_and_never_recorded_in_clear():
    def body() -> None:
        key = load_secrets().openai_api_key
        assert key is not None
        pulumi.export("key", key)
        pulumi.export("length", key.apply(len))

    graph = run_program(
        body, config={"eduscale:openaiApiKey": "sk-live-123"}, secret_keys=["eduscale:openaiApiKey"]
    )
    assert graph.outputs == {"key": SECRET_MASK, "length": SECRET_MASK}
    assert "sk-live-123" not in json.dumps(graph.to_json())


def test_a_secret_stored_in_plain_text_is_refused_without_echoing_it():
    def body() -> None:
        load_secrets()

    with pytest.raises(ConfigError) as caught:
        run_program(body, config={"eduscale:openaiApiKey": "sk-live-123"})
    assert "pulumi config set --secret eduscale:openaiApiKey" in str(caught.value)
    assert "sk-live-123" not in str(caught.value)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"eduscale__cluster": {"kubernetesVersion": "1.20"}}, "eduscale:cluster.kubernetesVersion = 1.20"),
        ({"eduscale__cluster": {"endpointPublicAccess": True}}, "endpointPublicAccess needs publicAccessCidrs"),
        ({"eduscale__cluster": {"endpointPublicAccess": True, "publicAccessCidrs": ["0.0.0.0/0"]}}, "must not be the whole internet"),
        ({"eduscale__cluster": {"adminPrincipalArns": ["me"]}}, "eduscale:cluster.adminPrincipalArns.0 = me"),
        ({"eduscale__cluster": {"nodeGroups": [{"name": "apps", "instanceTypes": ["c7g.large"]}]}}, "needs one group with system: true"),
        ({"eduscale__cluster": {"nodeGroups": [{"name": "system", "instanceTypes": ["m7g.large"], "system": True, "capacityType": "SPOT"}]}}, "needs one group with system: true and capacityType ON_DEMAND"),
        ({"eduscale__cluster": {"nodeGroups": [{"name": "system", "instanceTypes": ["m7g.large"], "system": True, "minSize": 3, "desiredSize": 2}]}}, "minSize <= desiredSize <= maxSize, got 3 / 2 / 6"),
        ({"eduscale__cluster": {"nodeGroups": [{"name": "system", "instanceTypes": ["m7g.large"], "system": True, "sizee": 3}]}}, "eduscale:cluster.nodeGroups.0.sizee = 3: unknown field; known: amiType"),
        ({"eduscale__services": {"imageTag": "0.1.0"}}, "eduscale:services.imageTag = 0.1.0: unknown field; known: aiOrchestrator"),
        ({"eduscale__services": {"image": "ghcr.io/acme/eduscale:1.4.2"}}, "eduscale:services.image = ghcr.io/acme/eduscale:1.4.2: must be pinned by digest"),
        ({"eduscale__services": {"image": "ghcr.io/acme/eduscale@sha256:abc"}}, "must be pinned by digest"),
        ({"eduscale__services": {"imagePlatforms": ["linux/s390x"]}}, "eduscale:services.imagePlatforms.0 = linux/s390x"),
        ({"eduscale__services": {"imagePlatforms": []}}, "eduscale:services.imagePlatforms = []"),
        ({"eduscale__services": {"keepImages": 0}}, "eduscale:services.keepImages = 0"),
        ({"eduscale__services": {"migrationDeadlineSeconds": 10}}, "eduscale:services.migrationDeadlineSeconds = 10"),
        ({"eduscale__gateway": {"image": "kong:3.9.1"}}, "eduscale:gateway.image = kong:3.9.1: must be pinned by digest"),
        ({"eduscale__analytics": {"keeperImage": "clickhouse/clickhouse-keeper:25.8"}}, "eduscale:analytics.keeperImage = clickhouse/clickhouse-keeper:25.8: must be pinned by digest"),
        ({"eduscale__services": {"course": {"memoryLimit": "1GB"}}}, "eduscale:services.course.memoryLimit = 1GB"),
        ({"eduscale__services": {"generationWorker": {"lagThreshold": 0}}}, "eduscale:services.generationWorker.lagThreshold = 0"),
        ({"eduscale__vectorStore": {"image": "qdrant/qdrant:latest"}}, "must be pinned by digest"),
        ({"eduscale__vectorStore": {"image": "qdrant/qdrant"}}, "eduscale:vectorStore.image = qdrant/qdrant"),
    ],
)  # fmt: skip
def test_compute_settings_are_validated(changes: dict[str, Any], expected: str):
    issues = issues_for(**changes)
    assert len(issues) == 1, issues
    assert expected in issues[0]
