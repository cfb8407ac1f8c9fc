"""`contracts` is what both sides import, so it may bring nothing but the standard library.

import-linter (scripts/check) keeps the project's own packages out of it; a third-party
import would pass that check yet put a dependency under the Pulumi components and the
pods alike, so this test reads every import statement of the package.
"""

import ast
import sys

from conftest import PROJECT_DIR


def imported_roots(source: str) -> set[str]:
    roots: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_contracts_import_only_the_standard_library():
    modules = sorted((PROJECT_DIR / "contracts").glob("*.py"))
    assert len(modules) >= 5  # __init__, topics, routes, vector_layout, gateway
    outside = {
        module.name: sorted(imported_roots(module.read_text()) - sys.stdlib_module_names)
        for module in modules
    }
    assert all(roots in ([], ["contracts"]) for roots in outside.values()), outside


def test_the_check_finds_a_third_party_import():
    assert imported_roots("import pulumi\nfrom msgspec import Struct\n") == {"pulumi", "msgspec"}
