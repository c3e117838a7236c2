"""Per-container state has one registry (`apikeys.container`) that each module registers with, so
one reset forgets it all and the layer's lowest module knows nothing above it (issue 20, item 1)."""

from __future__ import annotations

import ast
import time
from pathlib import Path
from typing import Any

import pytest

from apikeys import container, retries
from tests.helpers.support import ROOT, LambdaContext

LAYER = ROOT / "layers" / "shared" / "apikeys"
FUNCTIONS = ROOT / "functions"
HELPERS = {"rest_function", "authorizer_function", "invoked_function", "stream_function"}


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
    from apikeys import config, handler, keys, logic, scanning, usage

    settings, catalogue, metrics = config.get_settings(), config.get_scope_catalogue(), handler._metrics()
    logic._remember_plan("acct-a", "pro")
    usage._state.touched["key_a"] = 1.0
    usage._state.counts["acct-a"] = {20_000: {"key_a": 3}}
    scanning._keys["id"] = object()  # type: ignore[assignment]
    keys.new_key_id()
    monkeypatch.setenv("TABLE_NAME", "another-table")

    container.reset()

    assert config.get_settings() is not settings and config.get_settings().table_name == "another-table"
    assert config.get_scope_catalogue() is not catalogue and handler._metrics() is not metrics
    assert logic._plan_guess == {} and usage._state.touched == {} and scanning._keys == {}
    assert usage._state.counts == {} and usage.pending() == 0
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


@pytest.mark.parametrize("app", sorted(FUNCTIONS.glob("*/app.py")), ids=lambda p: p.parent.name)
def test_every_function_comes_in_through_one_helper_of_apikeys_handler(app: Path) -> None:
    """`lambda_handler` is made by one helper, imported first (its import pauses the GC); no
    function file ends the cold start or injects the logger itself."""
    tree = ast.parse(app.read_text())
    imports = [node for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    first = next(node for node in imports if not (isinstance(node, ast.ImportFrom) and node.module == "__future__"))
    assert isinstance(first, ast.ImportFrom) and first.module == "apikeys.handler"
    made_by = [
        node.value.func.id
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
        and any("lambda_handler" in ast.unparse(target) for target in node.targets)
    ]
    assert len(made_by) == 1 and made_by[0] in HELPERS, made_by
    used = {ast.unparse(node) for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not used & {"coldstart.ready", "logger.inject_lambda_context"}


def test_a_stream_consumer_handles_each_record_under_the_invocations_deadline() -> None:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

    from apikeys.handler import stream_function

    deadlines: list[float | None] = []

    def handle(record: DynamoDBRecord) -> None:
        budget = retries._budget.get()
        deadlines.append(budget.deadline if budget is not None else None)

    class FiveSecondsLeft(LambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            return 5_000

    record: dict[str, Any] = {"eventID": "1", "eventName": "INSERT", "dynamodb": {"SequenceNumber": "1"}}
    started = time.monotonic()
    assert stream_function(handle)({"Records": [record, record]}, FiveSecondsLeft()) == {"batchItemFailures": []}
    assert len(deadlines) == 2
    for deadline in deadlines:
        assert deadline is not None
        assert started + 5 - retries.ANSWER_MARGIN <= deadline <= time.monotonic() + 5 - retries.ANSWER_MARGIN
    assert retries._budget.get() is None  # only for the invocation
