"""k8s-secrets-as-files: a container of ours that takes a Secret through its environment
fails (by secretKeyRef, by envFrom, in any container of any pod kind), one that mounts it
as a file passes, only the listed third-party images are exempt, and a prod graph that
regresses fails through the CLI naming the rule."""

import json
from pathlib import Path
from typing import Any

import pytest
from policy_harness import policy_cli_on, resource_violations, resources_of

from infra.graph import Graph
from policies.secret_files import image_repository
from policies.waivers import ENV_SECRET_IMAGES

RULE = "k8s-secrets-as-files"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
JOB = "kubernetes:batch/v1:Job"
DIGEST = "sha256:" + "a" * 64
BY_FILE: dict[str, Any] = {
    "name": "app",
    "image": f"ghcr.io/eduscale/app:1.0.0@{DIGEST}",
    "env": [{"name": "LOG_LEVEL", "value": "INFO"}],
    "envFrom": [{"configMapRef": {"name": "app-config"}}],  # holds REDIS_URL_FILE=/run/...
    "volumeMounts": [{"name": "secrets", "mountPath": "/run/secrets/eduscale", "readOnly": True}],
}
KEY_REF = {"name": "REDIS_URL", "valueFrom": {"secretKeyRef": {"name": "app-secrets", "key": "REDIS_URL"}}}  # fmt: skip


def pod(*containers: dict[str, Any], init: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    spec = {"containers": list(containers), "initContainers": list(init)}
    return {"metadata": {"namespace": "eduscale"}, "spec": {"template": {"spec": spec}}}


def with_(container: dict[str, Any], **changes: Any) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(container))
    copied.update(changes)
    return copied


def test_secrets_mounted_as_files_pass() -> None:
    assert resource_violations(RULE, DEPLOYMENT, pod(BY_FILE)) == []


def test_a_secret_key_reference_fails_naming_the_variable_and_the_fix() -> None:
    container = with_(BY_FILE, env=[*BY_FILE["env"], KEY_REF])
    (message,) = resource_violations(RULE, DEPLOYMENT, pod(container))
    assert 'container "app"' in message
    assert "REDIS_URL by secretKeyRef" in message
    assert "REDIS_URL_FILE" in message


def test_a_whole_secret_as_environment_fails() -> None:
    container = with_(
        BY_FILE, envFrom=[*BY_FILE["envFrom"], {"secretRef": {"name": "app-secrets"}}]
    )
    (message,) = resource_violations(RULE, JOB, pod(container))
    assert "envFrom secretRef app-secrets" in message


def test_init_containers_are_checked_too() -> None:
    init = with_(BY_FILE, name="migrate", env=[KEY_REF])
    (message,) = resource_violations(RULE, DEPLOYMENT, pod(BY_FILE, init=(init,)))
    assert 'init container "migrate"' in message


@pytest.mark.parametrize("image", sorted(ENV_SECRET_IMAGES))
def test_only_the_listed_third_party_images_are_exempt(image: str) -> None:
    exempt = with_(BY_FILE, name="third-party", image=f"{image}:1.0@{DIGEST}", env=[KEY_REF])
    assert resource_violations(RULE, DEPLOYMENT, pod(exempt)) == []
    lookalike = with_(exempt, image=f"ghcr.io/eduscale/{image.rsplit('/', 1)[-1]}:1.0@{DIGEST}")
    assert len(resource_violations(RULE, DEPLOYMENT, pod(lookalike))) == 1


def test_every_exemption_says_why() -> None:
    assert all(len(reason) > 40 for reason in ENV_SECRET_IMAGES.values())


@pytest.mark.parametrize(
    ("image", "repository"),
    [
        (f"qdrant/qdrant:v1.19.0-unprivileged@{DIGEST}", "qdrant/qdrant"),
        ("docker.io/library/kong:3.9.1", "kong"),
        ("registry.local:5000/team/app:1@" + DIGEST, "registry.local:5000/team/app"),
    ],
)
def test_image_repositories_drop_tag_digest_and_hub_prefix(image: str, repository: str) -> None:
    assert image_repository(image) == repository


def course_takes_redis_by_env(document: dict[str, Any]) -> None:
    course = next(
        r for r in resources_of(document, DEPLOYMENT) if r["inputs"]["metadata"]["name"] == "course"
    )
    container = course["inputs"]["spec"]["template"]["spec"]["containers"][0]
    container.setdefault("env", []).append(KEY_REF)


def test_a_prod_graph_with_a_secret_in_the_environment_fails(
    prod_graph: Graph, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, broken = policy_cli_on(prod_graph, tmp_path, course_takes_redis_by_env)
    assert status == 1
    assert f"[mandatory] {RULE}" in capsys.readouterr().out
    assert RULE in broken


def test_the_prod_graph_mounts_every_secret_of_ours_as_files(prod_graph: Graph) -> None:
    deployments = prod_graph.of_type(DEPLOYMENT)
    course = next(d for d in deployments if d.inputs["metadata"]["name"] == "course")
    spec = course.inputs["spec"]["template"]["spec"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "secrets"]
    paths = {i["path"] for s in volume["projected"]["sources"] for i in s["secret"]["items"]}
    assert {"REDIS_URL", "JWT_SECRET", "ANALYTICS_PASSWORD"} <= paths
    (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "secrets"]
    assert mount["readOnly"] is True
