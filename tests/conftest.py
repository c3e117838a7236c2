"""Tiers, engines and fixtures of the whole suite.

Each folder is a tier with a marker of the same name, applied here by folder, so a new file
gets its tier by where it lives: unit (in process, moto or pure; `make unit`), contract (the
API's behaviour on moto and on DynamoDB Local), local (the local server over HTTP, the CLI, the
browser) and stress (races, storms, injected faults, fuzzing, the bench). Helpers live in
tests/helpers. A test that uses `api` or `db` runs once per engine: moto and DynamoDB Local, or
only the engines its `engines` marker names. Its moto run is also in the unit tier.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from apikeys import clock
from tests.helpers import figures
from tests.helpers.dynamodb_local import DynamoDBLocal
from tests.helpers.github_keys import GitHubKeys
from tests.helpers.support import Api, CallCounter, counting_calls, fresh_container, table_definition

pytest_plugins = ["tests.helpers.hygiene", "pytester"]

# No real AWS is reachable or wanted: fake credentials, fixed region, set before any client.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_SERVICE_NAME="apikeys",
    POWERTOOLS_METRICS_NAMESPACE="ApiKeys",
    POWERTOOLS_DEV="false",
)
for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
    os.environ.pop(var, None)


def _share_botocore_data_loader() -> None:
    """One botocore data loader for every session of the test process. moto gives each test a
    new default session, and each new session parsed endpoints.json and the service models
    again: 94 ms per moto table fixture, 17.5 ms with the shared loader (the fast tier makes
    hundreds). botocore already shares a loader's parsed, read-only data between the clients of
    one session; this shares it between sessions. The code under test is unchanged."""
    import botocore.loaders
    import botocore.session

    loader = botocore.loaders.create_loader()

    def register(session: botocore.session.Session) -> None:
        session._components.lazy_register_component("data_loader", lambda: loader)  # type: ignore[attr-defined]

    botocore.session.Session._register_data_loader = register  # type: ignore[attr-defined]


_share_botocore_data_loader()


TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "contract", "local", "stress")
ENGINES = ("moto", "dynamodb_local")


def pytest_configure(config: pytest.Config) -> None:
    """The tiers' markers are registered in pyproject.toml (--strict-markers); check they match."""
    registered = {line.split(":", 1)[0] for line in config.getini("markers")}
    assert set(TIERS) <= registered, f"register every tier's marker in pyproject.toml: {TIERS}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test with its folder's tier; the moto run of a two-engine test is also unit."""
    for item in items:
        folder = Path(str(item.path)).resolve().relative_to(TESTS).parts[0]
        if folder not in TIERS:
            raise pytest.UsageError(f"{item.nodeid}: tests live in a tier folder, one of {TIERS}")
        item.add_marker(folder)
        callspec = getattr(item, "callspec", None)
        if folder != "unit" and callspec is not None and callspec.params.get("db") == "moto":
            item.add_marker("unit")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every test that uses `db` (the `api` fixture does) on each engine it may use."""
    if "db" not in metafunc.fixturenames:
        return
    marker = metafunc.definition.get_closest_marker("engines")
    engines = marker.args if marker else ENGINES
    assert set(engines) <= set(ENGINES), f"unknown engine in {engines}"
    metafunc.parametrize("db", engines, indirect=True)


@pytest.fixture(autouse=True)
def _fresh_container(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts as a fresh Lambda container on a table of its own."""
    monkeypatch.setenv("TABLE_NAME", f"keys-{uuid.uuid4().hex[:8]}")
    for var in ("KEY_PREFIX", "PLAN_LIMITS", "DEFAULT_PLAN", "ACCOUNT_ID_CLAIM"):
        monkeypatch.delenv(var, raising=False)
    fresh_container()
    yield
    fresh_container()


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[DynamoDBLocal]:
    server = DynamoDBLocal().start()
    yield server
    server.stop()


def _create_table() -> None:
    client = boto3.client("dynamodb")
    client.create_table(**table_definition(os.environ["TABLE_NAME"]))
    client.get_waiter("table_exists").wait(TableName=os.environ["TABLE_NAME"])


@pytest.fixture
def moto_db() -> Iterator[None]:
    with mock_aws():
        _create_table()
        yield


@pytest.fixture
def local_db(dynamodb_local: DynamoDBLocal, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local.endpoint)
    _create_table()
    return dynamodb_local.endpoint


@pytest.fixture
def db(request: pytest.FixtureRequest) -> Any:
    """A fresh table on one engine; `pytest_generate_tests` runs the test once per engine."""
    return request.getfixturevalue("moto_db" if request.param == "moto" else "local_db")


@pytest.fixture
def api(db: Any, capfd: pytest.CaptureFixture[str]) -> Iterator[Api]:
    """The API called in process, and after the test: no full key it ever showed appears in any
    output. The output is written back, so pytest and the suite-wide hygiene check still see it."""
    from apikeys.usage import wait_for_last_used

    client = Api()
    yield client
    wait_for_last_used()
    out, err = capfd.readouterr()
    sys.stdout.write(out)
    sys.stderr.write(err)
    for secret in client.secrets:
        assert secret not in out and secret not in err, "a full API key reached the logs"
        assert secret[3:20] not in out + err


@pytest.fixture
def calls(db: Any) -> Iterator[CallCounter]:
    with counting_calls() as counter:
        yield counter


@pytest.fixture(scope="session")
def local_home(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The local server's state directory (signing key, server.json) for this test session."""
    return tmp_path_factory.mktemp("apikeys-local-home")


@pytest.fixture(scope="session")
def local_api(local_home: Any) -> Iterator[Any]:
    """`apikeys-local serve` as its own process on a free port, on its embedded DynamoDB."""
    from tests.helpers.local_server import start_server

    server = start_server(local_home)
    yield server
    assert server.stop() == 0, server.output()[-4000:]


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A pytest-xdist worker hands its figures to the controller, which prints them."""
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["figures"] = {section: dict(counts) for section, counts in figures.FIGURES.items()}


def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist's hook, on the controller: a worker finished; keep its figures."""
    figures.merge(getattr(node, "workeroutput", {}).get("figures", {}))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print what the hardening tests measured, so every run's output records the figures."""
    lines = figures.render()
    if lines:
        terminalreporter.section("hardening figures")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture
def set_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Pin the service's clock to an exact epoch second (expiry is decided to the second)."""
    moment = [clock.now()]
    monkeypatch.setattr(clock, "now", lambda: moment[0])

    def to(epoch: float) -> None:
        moment[0] = datetime.fromtimestamp(epoch, UTC)

    return to


@pytest.fixture
def travel(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Move the service's clock forward by some seconds (expiry and grace are wall-clock)."""
    real_now = clock.now
    offset = timedelta(0)

    def now() -> datetime:
        return real_now() + offset

    def advance(seconds: float) -> None:
        nonlocal offset
        offset += timedelta(seconds=seconds)

    monkeypatch.setattr(clock, "now", now)
    return advance


@pytest.fixture
def github(monkeypatch: pytest.MonkeyPatch) -> Iterator[GitHubKeys]:
    """GitHub's secret scanning public keys, generated here and served in GitHub's JSON shape;
    the functions in this process fetch them from SECRET_SCANNING_KEYS_URL."""
    server = GitHubKeys()
    monkeypatch.setenv("SECRET_SCANNING_KEYS_URL", server.url)
    yield server  # the keys fetched from it are per-container state: `_fresh_container` forgets them
    server.close()


@pytest.fixture(scope="module")
def github_server() -> Iterator[GitHubKeys]:
    """The same key server for a local server's whole module (given to it as a template parameter)."""
    server = GitHubKeys()
    yield server
    server.close()
