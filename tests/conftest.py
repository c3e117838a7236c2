"""Fixtures: every contract test runs on moto (unit) and on DynamoDB Local (integration)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests import figures
from tests.dynamodb_local import DynamoDBLocal
from tests.support import CallCounter, table_definition

pytest_plugins = ["tests.hygiene", "pytester"]

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


def reset_caches() -> None:
    """A fresh container: settings, client, plan guesses and last-used throttle."""
    from apikeys import auth, config, logic, store

    config.get_settings.cache_clear()
    store.dynamodb_client.cache_clear()
    logic._plan_guess.clear()
    auth._last_touched.clear()


@pytest.fixture(autouse=True)
def _fresh_container(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TABLE_NAME", f"keys-{uuid.uuid4().hex[:8]}")
    for var in ("KEY_PREFIX", "PLAN_LIMITS", "DEFAULT_PLAN", "ACCOUNT_ID_CLAIM"):
        monkeypatch.delenv(var, raising=False)
    reset_caches()
    yield
    reset_caches()


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


@pytest.fixture(params=["moto", "dynamodb_local"])
def db(request: pytest.FixtureRequest) -> Any:
    """The contract suite runs against both engines."""
    return request.getfixturevalue("moto_db" if request.param == "moto" else "local_db")


@pytest.fixture
def calls(db: Any) -> Iterator[CallCounter]:
    from apikeys.store import dynamodb_client

    counter = CallCounter(dynamodb_client())
    yield counter
    counter.close()


@pytest.fixture(scope="session")
def local_home(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The local server's state directory (signing key, server.json) for this test session."""
    return tmp_path_factory.mktemp("apikeys-local-home")


@pytest.fixture(scope="session")
def local_api(local_home: Any) -> Iterator[Any]:
    """`apikeys-local serve` as its own process on a free port, on its embedded DynamoDB."""
    from tests.local_server import start_server

    server = start_server(local_home)
    yield server
    assert server.stop() == 0, server.output()[-4000:]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Print what the hardening tests measured, so every run's output records the figures."""
    lines = figures.render()
    if lines:
        terminalreporter.section("hardening figures")
        for line in lines:
            terminalreporter.write_line(line)
