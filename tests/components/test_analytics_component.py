"""ClickHouse and its Keeper on the cluster, as both stacks declare them, and who may use them."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from conftest import PROJECT_DIR, run_program
from policy_harness import policy_cli_on, resource_violations, resources_of

from components.analytics import Analytics, AnalyticsArgs
from contracts.secret_files import secret_file
from infra.diagram import architecture_edges
from infra.graph import SECRET_MASK, Graph, RecordedResource
from infra.stack_files import load_stack
from services.runtime.kafka.settings import KafkaSettings
from stacks.compute_sections import AnalyticsConfig
from stacks.config import ConfigError, parse_stack_config

STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SECRET = "kubernetes:core/v1:Secret"
PDB = "kubernetes:policy/v1:PodDisruptionBudget"
NETPOL = "kubernetes:networking.k8s.io/v1:NetworkPolicy"
NAMESPACE = "eduscale"
HEADLESS = f"clickhouse-headless.{NAMESPACE}.svc.cluster.local"
KEEPER_HEADLESS = f"clickhouse-keeper-headless.{NAMESPACE}.svc.cluster.local"
CLIENTS = {"course", "analytics-sink"}
ANALYTICS_VARIABLES = {
    "ANALYTICS_URL", "ANALYTICS_USERNAME", "ANALYTICS_CLUSTER", "ANALYTICS_EVENTS_TTL_DAYS",
}  # fmt: skip


def settings(stack: str) -> AnalyticsConfig:
    return parse_stack_config(load_stack(PROJECT_DIR, stack).config).analytics


def named(graph: Graph, type_token: str) -> dict[str, RecordedResource]:
    return {r.inputs["metadata"]["name"]: r for r in graph.of_type(type_token)
            if "name" in r.inputs.get("metadata", {})}  # fmt: skip


def servers(graph: Graph) -> dict[str, RecordedResource]:
    return {n: s for n, s in named(graph, STATEFUL_SET).items() if n.startswith("clickhouse-shard")}


def server_container(graph: Graph, shard: int = 0) -> dict[str, Any]:
    (container,) = servers(graph)[f"clickhouse-shard{shard}"].inputs["spec"]["template"]["spec"][
        "containers"
    ]
    return dict(container)


def config_file(graph: Graph, key: str) -> ET.Element:
    (config_map,) = [c for c in graph.of_type(CONFIG_MAP) if key in c.inputs.get("data", {})]
    return ET.fromstring(config_map.inputs["data"][key])  # noqa: S314 (our own rendering)


def by_label(graph: Graph, type_token: str) -> dict[str, RecordedResource]:
    return {r.inputs["metadata"]["labels"]["app.kubernetes.io/name"]: r
            for r in graph.of_type(type_token)
            if "labels" in r.inputs.get("metadata", {})}  # fmt: skip


# -- shards x replicas, and Keeper ------------------------------------------------------


def test_one_statefulset_per_shard_with_the_configured_replicas(stack_graph: Graph):
    wanted = settings(stack_graph.stack)
    shards = servers(stack_graph)
    assert sorted(shards) == [f"clickhouse-shard{i}" for i in range(wanted.shards)]
    for statefulset in shards.values():
        spec = statefulset.inputs["spec"]
        assert spec["replicas"] == wanted.replicas_per_shard
        assert spec["serviceName"] == "clickhouse-headless"
        assert spec["podManagementPolicy"] == "Parallel"
    pods = sum(s.inputs["spec"]["replicas"] for s in shards.values())
    assert pods == wanted.shards * wanted.replicas_per_shard
    if stack_graph.stack == "prod":
        assert (wanted.shards, wanted.replicas_per_shard) == (2, 2)


def test_statefulsets_of_different_shards_never_select_each_others_pods(stack_graph: Graph):
    selectors = [s.inputs["spec"]["selector"]["matchLabels"] for s in servers(stack_graph).values()]
    shard_ids = [s["eduscale.io/clickhouse-shard"] for s in selectors]
    assert len(set(shard_ids)) == len(selectors)


def test_keeper_runs_three_members_in_both_stacks(stack_graph: Graph):
    keeper = named(stack_graph, STATEFUL_SET)["clickhouse-keeper"].inputs["spec"]
    assert keeper["replicas"] == 3
    assert keeper["podManagementPolicy"] == "Parallel"
    raft = config_file(stack_graph, "keeper_config.xml").find("keeper_server/raft_configuration")
    assert raft is not None
    members = [(s.findtext("id"), s.findtext("hostname"), s.findtext("port")) for s in raft]
    assert members == [
        (str(i + 1), f"clickhouse-keeper-{i}.{KEEPER_HEADLESS}", "9234") for i in range(3)
    ]
    (container,) = keeper["template"]["spec"]["containers"]
    # Each pod's Raft id is its ordinal + 1, matching the list above.
    assert "KEEPER_SERVER_ID=$(( ${HOSTNAME##*-} + 1 ))" in container["command"][-1]


def test_the_server_config_names_every_replica_keeper_and_the_macros(stack_graph: Graph):
    wanted = settings(stack_graph.stack)
    root = config_file(stack_graph, "server.xml")
    (cluster,) = list(root.find("remote_servers") or [])
    assert cluster.tag == stack_graph.outputs["analyticsCluster"] == "analytics"
    listed = [[r.findtext("host") for r in shard.findall("replica")]
              for shard in cluster.findall("shard")]  # fmt: skip
    assert listed == [[f"clickhouse-shard{s}-{r}.{HEADLESS}" for r in range(wanted.replicas_per_shard)]
                      for s in range(wanted.shards)]  # fmt: skip
    assert all(s.findtext("internal_replication") == "true" for s in cluster.findall("shard"))
    keeper = [(n.findtext("host"), n.findtext("port")) for n in root.findall("zookeeper/node")]
    assert keeper == [(f"clickhouse-keeper-{i}.{KEEPER_HEADLESS}", "9181") for i in range(3)]
    macros = root.find("macros")
    assert macros is not None
    assert macros.find("shard").get("from_env") == "CLICKHOUSE_SHARD"  # type: ignore[union-attr]
    assert macros.find("replica").get("from_env") == "CLICKHOUSE_REPLICA"  # type: ignore[union-attr]
    ports = {tag: root.findtext(tag) for tag in ("http_port", "tcp_port", "interserver_http_port")}
    assert ports == {"http_port": "8123", "tcp_port": "9000", "interserver_http_port": "9009"}


def test_each_pod_learns_its_shard_and_replica_from_its_statefulset(stack_graph: Graph):
    for shard in range(settings(stack_graph.stack).shards):
        env = {e["name"]: e for e in server_container(stack_graph, shard)["env"]}
        assert env["CLICKHOUSE_SHARD"]["value"] == str(shard)
        assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert env["CLICKHOUSE_REPLICA"]["value"] == "$(POD_NAME)"
        assert env["CLICKHOUSE_INTERSERVER_HOST"]["value"] == f"$(POD_NAME).{HEADLESS}"


# -- storage, disruption, placement -----------------------------------------------------


def test_every_member_keeps_its_data_on_its_own_encrypted_gp3_volume(stack_graph: Graph):
    wanted = settings(stack_graph.stack)
    statefulsets = named(stack_graph, STATEFUL_SET)
    sizes = dict.fromkeys(servers(stack_graph), wanted.storage_gb)
    sizes["clickhouse-keeper"] = wanted.keeper_storage_gb
    for name, size in sizes.items():
        (claim,) = statefulsets[name].inputs["spec"]["volumeClaimTemplates"]
        assert claim["spec"]["storageClassName"] == "gp3"
        assert claim["spec"]["resources"]["requests"]["storage"] == f"{size}Gi"
    (gp3,) = [c for c in stack_graph.of_type("kubernetes:storage.k8s.io/v1:StorageClass")
              if c.inputs["metadata"]["name"] == "gp3"]  # fmt: skip
    assert gp3.inputs["parameters"]["encrypted"] == "true"


def test_budgets_keep_every_shard_serving_and_keeper_in_quorum(stack_graph: Graph):
    budgets = named(stack_graph, PDB)
    statefulsets = named(stack_graph, STATEFUL_SET)
    for name in [*servers(stack_graph), "clickhouse-keeper"]:
        spec = budgets[name].inputs["spec"]
        assert spec["maxUnavailable"] == 1
        assert spec["selector"] == statefulsets[name].inputs["spec"]["selector"]
    members = statefulsets["clickhouse-keeper"].inputs["spec"]["replicas"]
    assert members - budgets["clickhouse-keeper"].inputs["spec"]["maxUnavailable"] > members // 2


def test_copies_never_share_a_node_and_spread_over_zones(stack_graph: Graph):
    for statefulset in [*servers(stack_graph).values(),
                        named(stack_graph, STATEFUL_SET)["clickhouse-keeper"]]:  # fmt: skip
        pod = statefulset.inputs["spec"]["template"]["spec"]
        own = statefulset.inputs["spec"]["selector"]["matchLabels"]
        (rule,) = pod["affinity"]["podAntiAffinity"][
            "requiredDuringSchedulingIgnoredDuringExecution"
        ]
        assert rule == {"topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": own}}  # fmt: skip
        zones = [c for c in pod["topologySpreadConstraints"]
                 if c["topologyKey"] == "topology.kubernetes.io/zone"]  # fmt: skip
        assert [z["whenUnsatisfiable"] for z in zones] == ["DoNotSchedule"]


def test_pods_are_restricted_pinned_sized_and_probed(stack_graph: Graph):
    wanted = settings(stack_graph.stack)
    statefulsets = named(stack_graph, STATEFUL_SET)
    images = {"clickhouse-keeper": wanted.keeper_image or wanted.image} | dict.fromkeys(
        servers(stack_graph), wanted.image
    )
    for name, image in images.items():
        pod = statefulsets[name].inputs["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 101
        assert pod["automountServiceAccountToken"] is False
        (container,) = pod["containers"]
        assert container["image"] == image
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert container["resources"]["requests"] == container["resources"]["limits"]
        assert container["readinessProbe"] != container["livenessProbe"]
    server = server_container(stack_graph)
    assert server["readinessProbe"]["httpGet"] == {"path": "/ping", "port": "http"}
    assert server["resources"]["limits"] == {"cpu": wanted.cpu, "memory": wanted.memory}


# -- credentials --------------------------------------------------------------------------


def test_credentials_live_in_a_secret_and_reach_servers_only_by_reference(stack_graph: Graph):
    secret_name = stack_graph.outputs["analyticsCredentialsSecret"]
    assert secret_name == "clickhouse-credentials"
    secret = named(stack_graph, SECRET)[secret_name].inputs["stringData"]
    assert set(secret) == {"username", "password", "password-sha256", "cluster-secret",
                           "interserver-password"}  # fmt: skip
    assert secret["password"] == secret["password-sha256"] == SECRET_MASK
    env = {e["name"]: e for e in server_container(stack_graph)["env"]}
    for variable, key in (("CLICKHOUSE_PASSWORD_SHA256", "password-sha256"),
                          ("CLICKHOUSE_CLUSTER_SECRET", "cluster-secret"),
                          ("CLICKHOUSE_INTERSERVER_PASSWORD", "interserver-password")):  # fmt: skip
        assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": secret_name, "key": key}
        assert "value" not in env[variable]


def test_the_config_holds_no_credential_and_the_default_user_is_gone(stack_graph: Graph):
    users = config_file(stack_graph, "users.xml")
    default = users.find("users/default")
    assert default is not None
    assert default.get("remove") == "remove"
    user = users.find("users/eduscale")
    assert user is not None
    (auth,) = [c for c in user if c.tag.startswith("password")]
    assert (auth.tag, auth.get("from_env"), auth.text) == (
        "password_sha256_hex", "CLICKHOUSE_PASSWORD_SHA256", None
    )  # fmt: skip
    grants = [q.text for q in user.findall("grants/query")]
    assert grants == [
        f"GRANT ALL ON {settings(stack_graph.stack).database}.*",
        "GRANT CLUSTER ON *.*",
    ]
    server = config_file(stack_graph, "server.xml")
    secrets = [server.find("remote_servers/analytics/secret"),
               server.find("interserver_http_credentials/password")]  # fmt: skip
    for element in secrets:
        assert element is not None
        assert element.get("from_env")
        assert element.text is None


# -- who may reach it ---------------------------------------------------------------------


def test_only_the_sink_and_the_course_service_reach_the_http_port(stack_graph: Graph):
    policy = named(stack_graph, NETPOL)["clickhouse"].inputs["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    clients, internal = policy["ingress"]
    names = {p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in clients["from"]}
    assert names == CLIENTS
    assert all(p["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": NAMESPACE}
               for p in clients["from"])  # fmt: skip
    assert clients["ports"] == [{"port": 8123, "protocol": "TCP"}]
    (peer,) = internal["from"]
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "server"
    assert {p["port"] for p in internal["ports"]} == {9000, 9009}
    egress_ports = {p["port"] for rule in policy["egress"] for p in rule.get("ports", [])}
    assert egress_ports == {53, 9000, 9009, 9181}


def test_keeper_admits_only_servers_and_its_own_members(stack_graph: Graph):
    policy = named(stack_graph, NETPOL)["clickhouse-keeper"].inputs["spec"]
    client, raft = policy["ingress"]
    (servers_peer,) = client["from"]
    assert servers_peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "clickhouse"
    assert client["ports"] == [{"port": 9181, "protocol": "TCP"}]
    (members,) = raft["from"]
    assert members["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "clickhouse-keeper"
    assert raft["ports"] == [{"port": 9234, "protocol": "TCP"}]


def test_the_clients_may_leave_their_namespace_fence_towards_clickhouse(stack_graph: Graph):
    for name in CLIENTS:
        egress = named(stack_graph, NETPOL)[name].inputs["spec"]["egress"]
        peers = [p["podSelector"]["matchLabels"] for rule in egress for p in rule.get("to", [])
                 if "podSelector" in p]  # fmt: skip
        assert {"app.kubernetes.io/name": "clickhouse", "app.kubernetes.io/component": "server",
                "app.kubernetes.io/part-of": "eduscale"} in peers  # fmt: skip


# -- the environment contract -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CLIENTS))
def test_course_and_the_sink_receive_the_analytics_contract(stack_graph: Graph, name: str):
    wanted = settings(stack_graph.stack)
    plain = by_label(stack_graph, CONFIG_MAP)[name].inputs["data"]
    assert plain["ANALYTICS_URL"] == (
        f"http://clickhouse.{NAMESPACE}.svc.cluster.local:8123/{wanted.database}"
    )
    assert plain["ANALYTICS_URL"].startswith(stack_graph.outputs["analyticsEndpoint"] + "/")
    assert plain["ANALYTICS_USERNAME"] == "eduscale"
    assert plain["ANALYTICS_CLUSTER"] == stack_graph.outputs["analyticsCluster"]
    assert plain["ANALYTICS_EVENTS_TTL_DAYS"] == str(wanted.raw_events_ttl_days)
    assert "ANALYTICS_PASSWORD" not in plain
    secrets = by_label(stack_graph, SECRET)
    assert name in secrets or name == "analytics-sink"  # the sink has no Secret of its own
    assert "ANALYTICS_PASSWORD" not in (
        secrets[name].inputs["stringData"] if name in secrets else {}
    )
    # The password is the analytics component's own Secret, mounted as a file, never copied.
    assert plain["ANALYTICS_PASSWORD_FILE"] == secret_file("ANALYTICS_PASSWORD")
    pod = named(stack_graph, DEPLOYMENT)[name].inputs["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "secrets"]
    sources = [s["secret"] for s in volume["projected"]["sources"]]
    (password,) = [s for s in sources if s["items"][0]["path"] == "ANALYTICS_PASSWORD"]
    assert password == {
        "name": stack_graph.outputs["analyticsCredentialsSecret"],
        "items": [{"key": "password", "path": "ANALYTICS_PASSWORD"}],
    }
    if name == "analytics-sink":  # Kafka and ClickHouse only: no PostgreSQL, no Redis
        assert not {"DATABASE_URL", "DATABASE_REPLICA_URLS", "REDIS_URL"} & set(plain)


def test_no_other_workload_learns_of_clickhouse(stack_graph: Graph):
    for name, config_map in by_label(stack_graph, CONFIG_MAP).items():
        if name in CLIENTS or "DATABASE_URL" not in config_map.inputs.get("data", {}):
            continue
        assert not ANALYTICS_VARIABLES & set(config_map.inputs["data"]), name


@pytest.mark.parametrize("name", ["course", "ai-orchestrator", "analytics-sink"])
def test_event_emitters_and_the_sink_reach_kafka_over_iam(stack_graph: Graph, name: str):
    kafka = KafkaSettings.from_env(by_label(stack_graph, CONFIG_MAP)[name].inputs["data"])
    assert kafka.security_protocol == "SASL_SSL"
    assert kafka.bootstrap_servers == stack_graph.outputs["kafkaBootstrapBrokers"]


def test_auth_is_given_no_broker_because_it_reads_none(stack_graph: Graph):
    # AuthSettings has no Kafka section (Auth emits no events yet): the stack renders only
    # what the class declares, so no KAFKA_* variable reaches the pod.
    plain = by_label(stack_graph, CONFIG_MAP)["auth"].inputs["data"]
    assert not [variable for variable in plain if variable.startswith("KAFKA_")]


def kafka_grants(graph: Graph, name: str) -> dict[str, set[str]]:
    """Topic or group name -> Kafka actions the workload's role allows on it."""
    (policy,) = [json.loads(p.inputs["policy"])
                 for p in graph.of_type("aws:iam/rolePolicy:RolePolicy")
                 if p.name == f"{name}-pods"]  # fmt: skip
    grants: dict[str, set[str]] = {}
    for statement in policy["Statement"]:
        resources = statement["Resource"]
        for arn in resources if isinstance(resources, list) else [resources]:
            if ":topic/" in arn or ":group/" in arn:
                grants.setdefault(arn.rsplit("/", 1)[-1], set()).update(statement["Action"])
    return grants


def role_actions(graph: Graph, name: str) -> set[str]:
    """Every action the workload's IRSA role allows."""
    (policy,) = [json.loads(p.inputs["policy"])
                 for p in graph.of_type("aws:iam/rolePolicy:RolePolicy")
                 if p.name == f"{name}-pods"]  # fmt: skip
    return {
        action
        for statement in policy["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str)
                       else statement["Action"])
    }  # fmt: skip


def test_each_workload_may_write_exactly_the_topics_its_job_needs(stack_graph: Graph):
    write = {"kafka-cluster:DescribeTopic", "kafka-cluster:WriteData"}
    events = {"analytics.events": write}
    assert kafka_grants(stack_graph, "auth") == {}  # it emits no events
    assert not any(a.startswith("kafka-cluster:") for a in role_actions(stack_graph, "auth"))
    assert kafka_grants(stack_graph, "course") == events
    assert kafka_grants(stack_graph, "ai-orchestrator") == {
        "generation.requested": write, "documents.uploaded": write, "analytics.events": write,
    }  # fmt: skip
    assert kafka_grants(stack_graph, "analytics-sink") == {
        "analytics.events": {"kafka-cluster:DescribeTopic", "kafka-cluster:ReadData"},
        "analytics.events.dlq": write,
        "analytics-sink": {"kafka-cluster:DescribeGroup", "kafka-cluster:AlterGroup"},
    }
    generation = kafka_grants(stack_graph, "generation-worker")
    assert generation["analytics.events"] == write
    assert "rds-db:connect" in role_actions(stack_graph, "course")
    assert "rds-db:connect" not in role_actions(stack_graph, "analytics-sink")  # no PostgreSQL
    assert "generation.requested" in generation
    assert "documents.uploaded" not in generation  # only the orchestrator queues work


def test_the_diagram_shows_clickhouse_fed_by_the_sink_and_read_by_course(stack_graph: Graph):
    labels, edges = architecture_edges(stack_graph)
    assert labels["clickhouse"] == "ClickHouse"
    assert {("course", "clickhouse"), ("analytics_sink", "clickhouse"),
            ("event_bus", "analytics_sink"), ("course", "event_bus")} <= edges  # fmt: skip
    assert not {(s, t) for s, t in edges if t == "clickhouse"} - {
        ("course", "clickhouse"), ("analytics_sink", "clickhouse"),
    }  # fmt: skip


# -- bad input, and the policy that guards the fence -------------------------------------


def component_args(**changes: Any) -> AnalyticsArgs:
    args: dict[str, Any] = {
        "namespace": "ns", "image": "clickhouse/clickhouse-server:25.8.30.16@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
        "keeper_image": "clickhouse/clickhouse-keeper:25.8.30.16@sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", "shards": 1,
        "replicas_per_shard": 2, "storage_gb": 10, "cpu": "1", "memory": "2Gi",
        "database": "analytics", "username": "app", "password": "p",
        "allowed_clients": [{"namespace": "ns", "labels": {"app.kubernetes.io/name": "c"}}],
    }  # fmt: skip
    args.update(changes)
    return args  # type: ignore[return-value]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"image": "clickhouse/clickhouse-server"}, "must be pinned"),
        ({"keeper_image": "clickhouse/clickhouse-keeper:latest"}, "must be pinned"),
        ({"image": "clickhouse/clickhouse-server:25.8.30.16"}, "must be pinned by digest"),
        ({"shards": 0}, "shards and replicas_per_shard must be at least 1"),
        ({"keeper_nodes": 4}, "keeper nodes must be odd and at least 3"),
        ({"keeper_nodes": 1}, "keeper nodes must be odd and at least 3"),
        ({"database": "analytics; DROP"}, "database 'analytics; DROP' must be a lower-case"),
    ],
)
def test_the_component_refuses_bad_args(changes: dict[str, Any], message: str):
    with pytest.raises(ValueError, match=message):
        run_program(lambda: Analytics("ch", component_args(**changes)))


def test_without_clients_no_ingress_rule_admits_anyone():
    graph = run_program(lambda: Analytics("ch", component_args(allowed_clients=[])))
    policy = named(graph, NETPOL)["ch"].inputs
    (internal,) = policy["spec"]["ingress"]
    assert {p["port"] for p in internal["ports"]} == {9000, 9009}
    assert resource_violations("k8s-network-policy-no-open-ingress", NETPOL, policy) == []


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"keeperNodes": 4}, "eduscale:analytics.keeperNodes"),
        ({"image": "clickhouse/clickhouse-server:latest"}, "eduscale:analytics.image"),
        ({"shards": 0}, "eduscale:analytics.shards"),
        ({"database": "Analytics-DB"}, "eduscale:analytics.database"),
        ({"rawEventsTtl": 30}, "eduscale:analytics.rawEventsTtl"),
    ],
)
def test_bad_analytics_config_is_named_by_its_key(changes: dict[str, Any], key: str):
    config = dict(load_stack(PROJECT_DIR, "dev").config)
    section = json.loads(config["eduscale:analytics"])
    config["eduscale:analytics"] = json.dumps({**section, **changes})
    with pytest.raises(ConfigError) as caught:
        parse_stack_config(config)
    assert [issue.key for issue in caught.value.issues] == [key]


OPEN_VARIANTS = [
    ("no source", lambda rule: rule.pop("from")),
    ("empty source", lambda rule: rule.update({"from": []})),
    (
        "the whole internet",
        lambda rule: rule.update({"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]}),
    ),
    ("every namespace", lambda rule: rule.update({"from": [{"namespaceSelector": {}}]})),
]


@pytest.mark.parametrize(("label", "open_up"), OPEN_VARIANTS, ids=[v[0] for v in OPEN_VARIANTS])
def test_the_policy_catches_a_clickhouse_fence_opened_up(
    prod_graph: Graph, tmp_path: Path, label: str, open_up: Any
):
    policy = named(prod_graph, NETPOL)["clickhouse"].inputs
    assert resource_violations("k8s-network-policy-no-open-ingress", NETPOL, policy) == []

    def mutate(document: dict[str, Any]) -> None:
        (target,) = [r for r in resources_of(document, NETPOL)
                     if r["inputs"]["metadata"]["name"] == "clickhouse"]  # fmt: skip
        open_up(target["inputs"]["spec"]["ingress"][0])

    status, rules = policy_cli_on(prod_graph, tmp_path, mutate)
    assert status != 0, label
    assert rules == {"k8s-network-policy-no-open-ingress"}
