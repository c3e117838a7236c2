"""The retry budget under sustained TransactionConflict and under an outage, against DynamoDB Local.

Every write (create, delete, rename, roll, set plan) meets a conflict on every transaction,
and every DynamoDB call takes 0.9 s of a fake clock (an answer just inside the read timeout),
which also runs botocore's and the store's backoff sleeps: no real seconds pass. The oracle is
template.yaml's `Timeout`, not the code's constants: each request must end with a 503
`service_unavailable` (Retry-After) at least one second before it, with the table unchanged.
The outage cases hang every attempt for the client's connect + read timeouts instead.
"""

from __future__ import annotations

import time
import types
from collections.abc import Callable, Iterator
from typing import Any

import botocore.endpoint
import pytest

from apikeys import retries
from apikeys import store as store_module
from apikeys.errors import ServiceUnavailable
from tests.helpers import support
from tests.helpers.faults import TRANSACTION_CONFLICT, Fault
from tests.helpers.invariants import check_table, snapshot
from tests.helpers.support import Api, load_template

pytestmark = pytest.mark.engines("dynamodb_local")  # faults at the HTTP layer need a real endpoint

ACCOUNT = "acct-budget"
CALL_SECONDS = 0.9
OPERATIONS = ("GetItem", "Query", "TransactWriteItems")


def _timeout(function: str) -> float:
    """The function's Timeout as template.yaml sets it (its own, else the Globals one)."""
    template = load_template()
    default = template["Globals"]["Function"]["Timeout"]
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        code = str(props.get("CodeUri", "")).rstrip("/")
        if resource["Type"] == "AWS::Serverless::Function" and code.endswith(f"/{function}"):
            return float(props.get("Timeout", default))
    raise AssertionError(f"no function {function} in template.yaml")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def call(self, **_: Any) -> None:
        self.now += CALL_SECONDS


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, api: Api) -> Iterator[FakeClock]:
    """Botocore's and the store's sleeps, the deadline's clock and every DynamoDB call run on it."""
    from apikeys.store import dynamodb_client

    api.set_plan(ACCOUNT, "pro")
    assert api.create(ACCOUNT, "existing").status == 201
    fake = FakeClock()
    fake_time = types.SimpleNamespace(sleep=fake.sleep, time=time.time, monotonic=fake.monotonic)
    monkeypatch.setattr(botocore.endpoint, "time", fake_time)
    monkeypatch.setattr(store_module, "time", fake_time)
    monkeypatch.setattr(retries, "time", fake_time)
    events = dynamodb_client().meta.events
    for operation in OPERATIONS:
        events.register_first(f"before-send.dynamodb.{operation}", fake.call)
    yield fake
    for operation in OPERATIONS:
        events.unregister(f"before-send.dynamodb.{operation}", fake.call)


def _writes(api: Api) -> dict[str, tuple[str, Callable[[], Any]]]:
    key_id = api.list(ACCOUNT).body["keys"][0]["id"]
    return {
        "create": ("create_key", lambda: api.create(ACCOUNT, "new key")),
        "delete": ("delete_key", lambda: api.delete(ACCOUNT, key_id)),
        "rename": ("rename_key", lambda: api.rename(ACCOUNT, key_id, "renamed")),
        "roll": ("roll_key", lambda: api.roll(ACCOUNT, key_id, grace=3600)),
        "roll without grace": ("roll_key", lambda: api.roll(ACCOUNT, key_id)),
        "set plan": ("set_plan", lambda: api.set_plan(ACCOUNT, "advanced")),
    }


def _timed(clock: FakeClock, action: Any, cleanup: Any) -> tuple[support.Reply, float]:
    """Run one request on the fake clock: its answer (a direct invoke's ServiceUnavailable as
    the 503 its invoker sees) and how long it took."""
    start = clock.now
    try:
        outcome = action()
    except ServiceUnavailable as exc:  # set plan is a direct invoke: the invoker sees the error
        outcome = support.Reply(503, {"error": {"code": exc.code, "message": exc.message}}, {"Retry-After": "1"})
    finally:
        cleanup()
    return outcome, clock.now - start


def _prepared(api: Api, monkeypatch: pytest.MonkeyPatch, write: str) -> tuple[Callable[[], Any], float, Any]:
    """A write's action, its function's Timeout, and the table before it. Lambda's context says
    how long is left: the template's Timeout at the start of the request."""
    from apikeys.config import get_settings

    function, action = _writes(api)[write]
    timeout = _timeout(function)
    monkeypatch.setattr(support.LambdaContext, "get_remaining_time_in_millis", lambda _: int(timeout * 1000))
    return action, timeout, snapshot(get_settings().table_name)


def _answered_503_in_time(name: str, outcome: support.Reply, elapsed: float, timeout: float, before: Any) -> None:
    """Every case's oracle: a 503 `service_unavailable` with Retry-After, at least one second
    before the template's Timeout, and the table exactly as it was."""
    from apikeys.config import get_settings

    assert outcome.status == 503, outcome
    assert outcome.body["error"]["code"] == "service_unavailable"
    assert outcome.headers["Retry-After"] == "1"
    assert elapsed <= timeout - 1, f"{name} answered {elapsed:.1f} s into a {timeout:.0f} s Timeout"
    table = get_settings().table_name
    assert snapshot(table) == before
    check_table(table)


@pytest.mark.parametrize("write", ["create", "delete", "rename", "roll", "roll without grace", "set plan"])
def test_sustained_conflicts_end_in_a_503_a_second_before_the_timeout(
    api: Api, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, write: str
) -> None:
    from apikeys.store import dynamodb_client

    action, timeout, before = _prepared(api, monkeypatch, write)
    conflict = Fault(dynamodb_client(), "TransactWriteItems", TRANSACTION_CONFLICT, times=None)
    outcome, elapsed = _timed(clock, action, conflict.remove)
    _answered_503_in_time(write, outcome, elapsed, timeout, before)
    assert conflict.injected >= 2  # it did retry


def test_the_fallback_deadline_is_never_past_a_functions_timeout() -> None:
    """Without a Lambda context that says how long is left, the deadline uses FUNCTION_TIMEOUT:
    the Globals' Timeout, and no function may have less (a longer one, like the secret scanning
    endpoint's 30 s for 1,000-token reports, gets its own from the context)."""
    template = load_template()
    default = template["Globals"]["Function"]["Timeout"]
    assert default == retries.FUNCTION_TIMEOUT
    for name, resource in template["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            assert resource["Properties"].get("Timeout", default) >= retries.FUNCTION_TIMEOUT, name


def test_the_worst_case_of_one_call_fits_inside_the_timeout() -> None:
    """client_config()'s arithmetic: botocore's attempts that each time out, plus its longest
    backoff before each retry, is 7.5 s, and fits inside the Globals' Timeout less the answer
    margin. The deadline hooks cut a call short anyway; this is what a first pass may cost."""
    template = load_template()
    timeout = template["Globals"]["Function"]["Timeout"]
    attempts = retries.CALL_ATTEMPTS * (retries.CONNECT_TIMEOUT + retries.READ_TIMEOUT)
    backoff = sum(retries.longest_backoff(n) for n in range(1, retries.CALL_ATTEMPTS))
    assert attempts + backoff == 7.5
    assert attempts + backoff <= timeout - retries.ANSWER_MARGIN


class Outage:
    """DynamoDB stops answering: from the first call, or from the first TransactWriteItems on
    (the reads answered in time), or from `since` on the fake clock. Every hung attempt costs
    the client's own connect and read timeouts on the fake clock and then fails as botocore's
    would; botocore's retries run."""

    def __init__(self, clock: FakeClock, hung: tuple[str, ...], since: float = 0.0) -> None:
        from apikeys.store import dynamodb_client

        self.clock = clock
        self.hung = hung
        self.since = since
        self.attempts = 0
        config = dynamodb_client().meta.config
        self.attempt_seconds = config.connect_timeout + config.read_timeout
        self.events = dynamodb_client().meta.events
        self.events.register("before-send.dynamodb", self.hang)

    def hang(self, request: Any, event_name: str, **_: Any) -> None:
        from botocore.exceptions import ReadTimeoutError

        if event_name.rsplit(".", 1)[-1] in self.hung and self.clock.now >= self.since:
            self.attempts += 1
            self.clock.now += self.attempt_seconds - CALL_SECONDS  # the 0.9 s already counted
            raise ReadTimeoutError(endpoint_url=request.url)

    def remove(self) -> None:
        self.events.unregister("before-send.dynamodb", self.hang)


WRITES = ("create", "delete", "rename", "roll", "roll without grace", "set plan")
CASES = [(r, "from the first call") for r in (*WRITES, "get", "list")] + [(w, "at the write") for w in WRITES]


@pytest.mark.parametrize(("request_", "down"), CASES)
def test_an_outage_ends_every_request_in_a_503_a_second_before_the_timeout(
    api: Api, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, request_: str, down: str
) -> None:
    """Independent of the code's constants: the template's Timeout is the oracle, botocore's
    own retries and backoff run, and a hung write after slow reads counts both."""
    from apikeys.config import get_settings

    key_id = api.list(ACCOUNT).body["keys"][0]["id"]
    actions: dict[str, tuple[str, Callable[[], Any]]] = {
        **_writes(api),
        "get": ("get_key", lambda: api.get(ACCOUNT, key_id)),
        "list": ("list_keys", lambda: api.list(ACCOUNT)),
    }
    function, action = actions[request_]
    timeout = _timeout(function)
    monkeypatch.setattr(support.LambdaContext, "get_remaining_time_in_millis", lambda _: int(timeout * 1000))
    table = get_settings().table_name
    before = snapshot(table)
    outage = Outage(clock, OPERATIONS if down == "from the first call" else ("TransactWriteItems",))
    outcome, elapsed = _timed(clock, action, outage.remove)
    _answered_503_in_time(request_, outcome, elapsed, timeout, before)
    assert outage.attempts >= 2  # botocore retried the hung call


@pytest.mark.parametrize("write", WRITES)
def test_conflicts_then_an_outage_end_in_a_503_a_second_before_the_timeout(
    api: Api, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, write: str
) -> None:
    """Both at once: every transaction meets a conflict until 4 s before the Timeout, then every
    call hangs. The conflict loop's next attempt starts with a few seconds left, which one HTTP
    attempt fits but one call (botocore's three attempts and backoff) does not: every attempt,
    botocore's own retries included, has to be checked against the deadline."""
    from apikeys.store import dynamodb_client

    action, timeout, before = _prepared(api, monkeypatch, write)
    conflict = Fault(dynamodb_client(), "TransactWriteItems", TRANSACTION_CONFLICT, times=None)
    outage = Outage(clock, OPERATIONS, since=clock.now + timeout - 4)

    def cleanup() -> None:
        conflict.remove()
        outage.remove()

    outcome, elapsed = _timed(clock, action, cleanup)
    _answered_503_in_time(write, outcome, elapsed, timeout, before)
    assert conflict.injected >= 2  # it did retry the conflicts
    assert outage.attempts >= 1  # and was still retrying when DynamoDB stopped answering
