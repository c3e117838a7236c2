"""Per-container state has one registry (`apikeys.container`) that each module registers with, so
one reset forgets it all and the layer's lowest module knows nothing above it (issue 20, item 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from apikeys import container
from tests.helpers.support import ROOT

LAYER = ROOT / "layers" / "shared" / "apikeys"


def test_a_registered_cache_state_and_reset_hook_are_forgotten_by_one_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(container, "_resets", list(container._resets))  # registrations end with the test
    built: list[int] = []

    @container.cached
    def client() -> object:
        built.append(1)
        return object()

    seen = container.state({"acct-a": "pro"})
    hooked: list[str] = []
    container.on_reset(lambda: hooked.append("reset"))

    first = client()
    assert client() is first and len(built) == 1
    container.reset()
    assert client() is not first and len(built) == 2
    assert seen == {} and hooked == ["reset"]


def test_a_reset_forgets_every_per_container_state_of_the_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    from apikeys import auth, config, keys, logic, scanning

    settings, catalogue = config.get_settings(), config.get_scope_catalogue()
    logic._remember_plan("acct-a", "pro")
    auth._last_touched["key_a"] = 1.0
    scanning._keys["id"] = object()  # type: ignore[assignment]
    keys.new_key_id()
    monkeypatch.setenv("TABLE_NAME", "another-table")

    container.reset()

    assert config.get_settings() is not settings and config.get_settings().table_name == "another-table"
    assert config.get_scope_catalogue() is not catalogue
    assert logic._plan_guess == {} and auth._last_touched == {} and scanning._keys == {}
    assert keys._last_micros == 0


def _imports_of(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports anywhere (top level or inside a function)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "apikeys":
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("apikeys."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("apikeys.")}
    return (found & modules) - {path.stem}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of `graph` as a path (first module repeated at the end), else None."""
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        for imported in sorted(graph[module]):
            found = visit(imported, [*path, module])
            if found:
                return found
        done.add(module)
        return None

    for module in sorted(graph):
        found = visit(module, [])
        if found:
            return found
    return None


def test_the_layer_has_no_import_circle_and_the_registry_imports_nothing_of_it() -> None:
    modules = {p.stem for p in LAYER.glob("*.py")} - {"__init__"}
    graph = {module: _imports_of(LAYER / f"{module}.py", modules) for module in modules}
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])
    assert graph["container"] == set() and graph["config"] <= {"container"}


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
