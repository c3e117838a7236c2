"""Fault injection on every DynamoDB call path, against DynamoDB Local.

Each path x fault runs twice: *transient* (the first attempts fail, then DynamoDB answers:
the retries must cure it and the request succeeds as if nothing happened) and *persistent*
(every attempt fails: 503 `service_unavailable` with Retry-After, and the table is exactly as
before). The invariants of the item layout are checked after every injected fault. Backoff
sleeps are recorded instead of slept, so the real retry machinery runs in milliseconds.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import botocore.endpoint
import pytest

from apikeys import store as store_module
from apikeys.errors import ServiceUnavailable
from tests.helpers import figures
from tests.helpers.faults import (
    APPLIED_THEN_TIMEOUT,
    CONNECTION_FAULTS,
    ERROR_FAULTS,
    TRANSACTION_CONFLICT,
    Fault,
)
from tests.helpers.invariants import check_table, scan, snapshot
from tests.helpers.support import Api

pytestmark = pytest.mark.engines("dynamodb_local")  # the API on DynamoDB Local only

ACCOUNT = "acct-faults"
BOTOCORE_RETRYABLE = [
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "InternalServerError",
    *CONNECTION_FAULTS,
]


@dataclass(frozen=True)
class Path:
    name: str
    operation: str  # the DynamoDB operation the fault hits
    writes: bool


PATHS = [
    Path("create", "TransactWriteItems", True),
    Path("list", "Query", False),
    Path("delete (lookup)", "GetItem", False),
    Path("delete (transaction)", "TransactWriteItems", True),
    Path("set plan (read)", "Query", False),
    Path("set plan (transaction)", "TransactWriteItems", True),
    Path("authorizer lookup", "GetItem", False),
    Path("last-used update", "UpdateItem", True),
]


def faults_for(path: Path) -> list[str]:
    kinds = list(BOTOCORE_RETRYABLE)
    if path.operation == "TransactWriteItems":
        kinds.append(TRANSACTION_CONFLICT)
    if path.operation == "UpdateItem":
        kinds.append("TransactionConflictException")  # a single write racing a transaction
    if path.writes:
        kinds.append(APPLIED_THEN_TIMEOUT)
    return kinds


CASES = [
    pytest.param(path, kind, mode, id=f"{path.name}-{kind}-{mode}")
    for path in PATHS
    for kind in faults_for(path)
    for mode in ("transient", "persistent")
]


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[float]]:
    """Record botocore's and the store's backoff delays instead of sleeping them."""
    delays: dict[str, list[float]] = {"botocore": [], "store": []}
    import time

    def fake_time(record: list[float]) -> types.SimpleNamespace:
        return types.SimpleNamespace(sleep=record.append, time=time.time, monotonic=time.monotonic)

    monkeypatch.setattr(botocore.endpoint, "time", fake_time(delays["botocore"]))
    monkeypatch.setattr(store_module, "time", fake_time(delays["store"]))
    return delays


@pytest.fixture(autouse=True)
def _existing_key(request: pytest.FixtureRequest) -> None:
    """A test that uses `api` starts with one key on a Pro account."""
    if "api" in request.fixturenames:
        api: Api = request.getfixturevalue("api")
        api.set_plan(ACCOUNT, "pro")
        assert api.create(ACCOUNT, "existing").status == 201


def _table() -> str:
    from apikeys.config import get_settings

    return get_settings().table_name


def _wait_background() -> None:
    from apikeys.usage import wait_for_last_used

    wait_for_last_used()


def _last_used(key_id: str) -> str | None:
    for item in scan(_table()):
        if item["sk"]["S"] == f"KEY#{key_id}":
            return item.get("last_used_at", {}).get("S")
    raise AssertionError("key item missing")


# What the caller reads: literals, so a message that leaks botocore's text or goes empty fails.
UNAVAILABLE = "The key service is temporarily unavailable. Please retry."
TOO_BUSY = "Too many concurrent changes to this account. Please retry."


def _action(path: Path, api: Api) -> Callable[[], Any]:
    existing_key = api.secrets[-1]
    existing_id = api.list(ACCOUNT).body["keys"][0]["id"]
    if path.name == "create":
        return lambda: api.create(ACCOUNT, "new key")
    if path.name == "list":
        return lambda: api.list(ACCOUNT)
    if path.name.startswith("delete"):
        return lambda: api.delete(ACCOUNT, existing_id)
    if path.name.startswith("set plan"):
        return lambda: api.set_plan(ACCOUNT, "advanced")
    return lambda: api.bearer(existing_key)


@pytest.mark.parametrize(("path", "kind", "mode"), CASES)
def test_fault(api: Api, sleeps: dict[str, list[float]], path: Path, kind: str, mode: str) -> None:
    from apikeys.store import dynamodb_client

    action = _action(path, api)
    existing_id = api.list(ACCOUNT).body["keys"][0]["id"]
    _wait_background()
    before = snapshot(_table())
    keys_before = len(api.list(ACCOUNT).body["keys"])

    # Transient: fail the first two attempts (botocore makes three) or three transaction
    # attempts (the store makes ten); persistent: fail every attempt.
    times = None if mode == "persistent" else (3 if kind == TRANSACTION_CONFLICT else 2)
    fault = Fault(dynamodb_client(), path.operation, kind, times)
    outcome: Any
    try:
        outcome = action()
    except ServiceUnavailable as exc:
        outcome = exc
    finally:
        _wait_background()
        fault.remove()
    assert fault.injected >= 1
    figures.add("faults injected per path (DynamoDB Local)", path.name, fault.injected)

    state = check_table(_table())  # after every injected fault: no partial write, no orphan
    figures.add("invariant checks", "after injected faults", state.checks)
    after_keys = len(api.list(ACCOUNT).body["keys"])
    cured = mode == "transient" and (kind in BOTOCORE_RETRYABLE or kind in (TRANSACTION_CONFLICT, APPLIED_THEN_TIMEOUT))
    # A write whose answer was lost after DynamoDB applied it: botocore's retry carries the
    # same ClientRequestToken, so DynamoDB does not apply it twice.
    applied = kind == APPLIED_THEN_TIMEOUT

    if path.name == "last-used update":
        # The authorization never depends on the best-effort write.
        assert outcome is not None and outcome["principalId"] == ACCOUNT, outcome
        if cured:
            assert _last_used(existing_id) is not None
        elif not applied:
            assert _last_used(existing_id) is None
        return

    if path.name == "authorizer lookup":
        if cured:
            assert outcome is not None and outcome["context"]["account_id"] == ACCOUNT
        else:
            # Fail closed: an error, never an allow, and never a 401 that says "revoked".
            assert isinstance(outcome, ServiceUnavailable), outcome
            assert snapshot(_table()) == before
        return

    if path.name.startswith("set plan"):
        if cured:
            assert outcome["plan"] == "advanced"
            assert state.accounts[ACCOUNT]["plan"]["S"] == "advanced"
        else:
            assert isinstance(outcome, ServiceUnavailable), outcome
            if not applied:
                assert snapshot(_table()) == before
        return

    # HTTP paths: create, list, delete.
    expected = {"create": 201, "list": 200}.get(path.name, 204)
    if cured:
        assert outcome.status == expected, outcome
        delta = {"create": 1, "list": 0}.get(path.name, -1)
        assert after_keys == keys_before + delta
        return
    assert outcome.status == 503, outcome
    message = TOO_BUSY if kind == TRANSACTION_CONFLICT else UNAVAILABLE
    assert outcome.body == {"error": {"code": "service_unavailable", "message": message}}
    assert outcome.headers["Retry-After"] == "1"
    if applied:
        # The write happened once (atomically) even though the caller saw a 503.
        delta = 1 if path.name == "create" else -1
        assert after_keys == keys_before + delta
    else:
        assert snapshot(_table()) == before


def test_backoff_is_jittered_and_bounded(api: Api, sleeps: dict[str, list[float]]) -> None:
    """botocore's standard mode and the store's conflict loop both wait a random, capped time."""
    from apikeys.retries import BACKOFF_CAP as _BACKOFF_CAP
    from apikeys.retries import CALL_ATTEMPTS, TX_ATTEMPTS
    from apikeys.store import dynamodb_client

    throttle = Fault(dynamodb_client(), "Query", "ThrottlingException", times=None)
    for _ in range(20):
        assert api.list(ACCOUNT).status == 503
    throttle.remove()
    assert throttle.injected == 20 * CALL_ATTEMPTS
    botocore_delays = sleeps["botocore"]
    assert len(botocore_delays) == 20 * (CALL_ATTEMPTS - 1)
    assert all(0 <= d <= 2 for d in botocore_delays) and len(set(botocore_delays)) > 30

    conflict = Fault(dynamodb_client(), "TransactWriteItems", TRANSACTION_CONFLICT, times=None)
    assert api.create(ACCOUNT, "never").status == 503
    conflict.remove()
    assert conflict.injected == TX_ATTEMPTS
    store_delays = sleeps["store"]
    # A wait before every retry, none after the last attempt.
    assert len(store_delays) == TX_ATTEMPTS - 1 and all(0 <= d <= _BACKOFF_CAP for d in store_delays)
    check_table(_table())


def test_injected_fault_kinds_cover_the_issue() -> None:
    kinds = {kind for path in PATHS for kind in faults_for(path)}
    assert {"ThrottlingException", "ProvisionedThroughputExceededException", "InternalServerError"} <= kinds
    assert {TRANSACTION_CONFLICT, "EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError"} <= kinds
    assert set(ERROR_FAULTS) <= kinds


def test_a_hung_dynamodb_fails_closed_with_real_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real black hole on 127.0.0.1 (accepts, never answers): botocore's own read timeouts
    and retries run for real, and the authorizer raises (never allows). Every other function
    under an outage: test_retry_budget.py::test_an_outage_ends_every_request_in_a_503_…"""
    import socket
    import threading
    import time

    from apikeys import keys
    from apikeys.retries import CALL_ATTEMPTS
    from tests.helpers.support import fresh_container

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{server.getsockname()[1]}")
    fresh_container()
    try:
        started = time.monotonic()
        with pytest.raises(ServiceUnavailable):
            Api().bearer(keys.generate("ot_"))
        elapsed = time.monotonic() - started
        assert len(accepted) == CALL_ATTEMPTS  # every attempt reached the socket and timed out
        figures.add("retry budget (ms)", "hung DynamoDB, authorizer fails closed after (measured)", int(elapsed * 1000))
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()
