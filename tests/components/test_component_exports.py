"""The public face of `components`: everything importable from it, nothing loaded too early.

A team writes `from components import Microservice, MicroserviceArgs`; that must work
for every component, and for every arg type the schema publishes, so their stacks are
typed as ours are. And `import components` must not make them pay for provider SDKs
they do not use: the Cloudflare SDK alone takes seconds to import.
"""

import importlib
import inspect
import json
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pulumi
import pytest

import components
from infra.component_provider import PUBLISHED_COMPONENTS, published_schema

# One worker infers the package schema (seconds) for every test of these modules.
pytestmark = pytest.mark.xdist_group("component_schema")

PROJECT_DIR = Path(__file__).resolve().parents[2]


def component_classes() -> dict[str, type[pulumi.ComponentResource]]:
    """Every ComponentResource subclass defined in a module of `components/`."""
    modules = [
        importlib.import_module(info.name)
        for info in pkgutil.iter_modules(components.__path__, "components.")
    ]
    return {
        name: value
        for module in modules
        for name, value in vars(module).items()
        if inspect.isclass(value)
        and issubclass(value, pulumi.ComponentResource)
        and value.__module__ == module.__name__
    }


def test_every_component_and_its_args_are_exported():
    classes = component_classes()
    assert len(classes) == 18
    for name, cls in classes.items():
        assert name in components.__all__
        assert getattr(components, name) is cls
        assert f"{name}Args" in components.__all__
        assert getattr(components, f"{name}Args") is inspect.get_annotations(cls.__init__)["args"]


def test_every_component_is_published():
    assert set(component_classes().values()) == set(PUBLISHED_COMPONENTS)


def test_every_type_the_schema_publishes_is_exported():
    for token in published_schema()["types"]:
        name = token.rsplit(":", 1)[1]
        assert name in components.__all__, token
        assert inspect.isclass(getattr(components, name))


def test_every_exported_name_resolves_and_nothing_else_does():
    assert sorted(components.__all__) == sorted(components._EXPORTS)
    for name in components.__all__:
        assert getattr(components, name).__name__ == name
    with pytest.raises(AttributeError, match="has no attribute 'Netwrok'"):
        _ = components.Netwrok


PROBE = textwrap.dedent(
    """
    import json, sys

    def loaded():
        return sorted(m for m in ("pulumi_aws", "pulumi_kubernetes", "pulumi_cloudflare")
                      if m in sys.modules)

    steps = {}
    import components
    steps["import components"] = loaded()
    from components import Network, Database, Microservice, Worker, VectorStore
    steps["data and compute components"] = loaded()
    cloudflare = ("Cdn", "CdnArgs", "OriginAuthentication", "OriginAuthenticationArgs")
    for name in components.__all__:
        if name not in cloudflare:
            getattr(components, name)
    import components.load_balancer
    steps["every component but the Cloudflare ones"] = loaded()
    from components import Cdn
    steps["Cdn"] = loaded()
    print(json.dumps(steps))
    """
)


@pytest.fixture(scope="module")
def loaded_after() -> dict[str, list[str]]:
    """Which provider SDKs a fresh interpreter has loaded after each step of importing."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    steps: dict[str, list[str]] = json.loads(result.stdout)
    return steps


@pytest.mark.server  # imports in a fresh interpreter
def test_importing_the_package_loads_no_provider_sdk(loaded_after: dict[str, list[str]]):
    assert loaded_after["import components"] == []


@pytest.mark.server  # imports in a fresh interpreter
def test_only_the_cloudflare_components_load_its_sdk_on_import(
    loaded_after: dict[str, list[str]],
):
    assert loaded_after["data and compute components"] == ["pulumi_aws", "pulumi_kubernetes"]
    assert loaded_after["every component but the Cloudflare ones"] == [
        "pulumi_aws",
        "pulumi_kubernetes",
    ]
    assert "pulumi_cloudflare" in loaded_after["Cdn"]
