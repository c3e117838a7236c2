"""What a customer reads when a key change cannot happen: each status, code and message exactly
as written here (the messages are part of the contract: the console shows them as they are).
The races run in process: `before_each_write` lands a second request between a change's read
and its write, as a concurrent request would."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from apikeys import clock, logic
from apikeys.audit import Caller
from apikeys.errors import InvalidRequest
from tests.helpers.interleave import before_each_write, conditions_always_fail
from tests.helpers.support import Api, LambdaContext, counting_calls, load_function, rest_event

MOMENT = datetime(2027, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
TOO_BUSY = {"code": "service_unavailable", "message": "Too many concurrent changes to this account. Please retry."}


@pytest.fixture
def set_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[timedelta], None]:
    """The service's clock at MOMENT plus an offset."""
    offset = [timedelta(0)]
    monkeypatch.setattr(clock, "now", lambda: MOMENT + offset[0])
    return lambda delta: offset.__setitem__(0, delta)


def _not_found(key_id: str) -> dict[str, str]:
    return {"code": "not_found", "message": f"No API key with id '{key_id}'."}


def test_a_change_with_neither_name_nor_scopes_is_invalid_and_changes_nothing(api: Api) -> None:
    """The HTTP body model refuses `{}` first (tests/contract/test_lifecycle.py); the domain keeps
    its own rule for any other caller."""
    api.set_plan("acct-a", "pro")
    key = api.create("acct-a", "Zapier").body
    with pytest.raises(InvalidRequest) as refused:
        logic.rename_key("acct-a", key["id"], None, Caller("acct-a"))
    assert refused.value.message == "Give a new name, new scopes, or both."
    assert api.get("acct-a", key["id"]).body["name"] == "Zapier"


def test_an_unknown_or_malformed_key_id_is_404_naming_it(api: Api) -> None:
    """A malformed id is refused before any read, and the message quotes only its first 40
    characters (it is the caller's input, echoed back)."""
    api.set_plan("acct-a", "pro")
    api.create("acct-a", "kept")
    unknown = "key_08DvhMrIRPhP1gmjzwRL"
    for reply in (api.get("acct-a", unknown), api.delete("acct-a", unknown)):
        assert (reply.status, reply.body) == (404, {"error": _not_found(unknown)})
    malformed = "k" * 39 + "0123456789"
    with counting_calls() as calls:
        reply = api.get("acct-a", malformed)
    assert (reply.status, reply.body) == (404, {"error": _not_found("k" * 39 + "0")})
    assert calls.calls == []
    assert api.list("acct-a").body["key_count"] == 1


@pytest.mark.parametrize("body", [{"name": "renamed"}, {"scopes": ["whoami"]}], ids=["name", "scopes"])
def test_a_change_that_read_the_key_before_its_delete_is_404(api: Api, body: dict[str, object]) -> None:
    api.set_plan("acct-a", "pro")
    key = api.create("acct-a", "doomed").body
    with before_each_write(lambda: api.delete("acct-a", key["id"])) as ran:
        reply = api.patch("acct-a", key["id"], body)
    assert ran == [1]
    assert (reply.status, reply.body) == (404, {"error": _not_found(key["id"])})
    assert api.list("acct-a").body["keys"] == []


def test_rolling_a_key_that_does_not_exist_is_404(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    api.create("acct-a", "kept")
    missing = "key_08DvhMrIRPhP1gmjzwRL"
    reply = api.roll("acct-a", missing)
    assert (reply.status, reply.body) == (404, {"error": _not_found(missing)})


def test_a_key_in_its_grace_period_cannot_be_rolled_again(api: Api, set_clock: Callable[[timedelta], None]) -> None:
    api.set_plan("acct-a", "pro")
    old = api.create("acct-a", "Prod").body
    assert api.roll("acct-a", old["id"], grace=60).status == 201
    set_clock(timedelta(seconds=59))
    reply = api.roll("acct-a", old["id"])
    message = "This key is already being rolled; its grace period ends at 2027-03-01T12:01:00.000Z."
    assert (reply.status, reply.body) == (409, {"error": {"code": "conflict", "message": message}})


def test_an_expired_key_cannot_be_rolled(api: Api, set_clock: Callable[[timedelta], None]) -> None:
    api.set_plan("acct-a", "pro")
    key = api.create("acct-a", "Trial", expires_in_days=1).body
    set_clock(timedelta(days=1))
    reply = api.roll("acct-a", key["id"])
    message = "This key has expired and cannot be rolled; create a new key instead."
    assert (reply.status, reply.body) == (409, {"error": {"code": "conflict", "message": message}})
    assert api.list("acct-a").body["key_count"] == 1


def test_a_roll_outpaced_by_other_changes_on_every_attempt_is_a_retryable_503(api: Api) -> None:
    """Each scope change bumps the account's version, so each of the roll's attempts writes on a
    stale read; after its last attempt the customer is told to retry, and nothing was rolled."""
    api.set_plan("acct-a", "pro")
    key = api.create("acct-a", "Prod").body
    other = api.create("acct-a", "Other").body
    flip = iter([["whoami"], ["mcp"]] * 10)
    with before_each_write(lambda: api.patch("acct-a", other["id"], {"scopes": next(flip)}), times=None) as ran:
        reply = api.roll("acct-a", key["id"])
    assert (reply.status, reply.body) == (503, {"error": TOO_BUSY})
    assert reply.headers["Retry-After"] == "1"
    assert ran[0] >= 2
    assert {k["id"] for k in api.list("acct-a").body["keys"]} == {key["id"], other["id"]}


def test_a_report_that_loses_every_race_is_a_retryable_503_and_revokes_nothing(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    key = api.create("acct-a", "CI").body
    with conditions_always_fail() as answered:
        reply = api.revoke_credentials({"credentials": [key["key"]]})
    assert answered[0] >= 2
    assert (reply.status, reply.body) == (503, {"error": TOO_BUSY})
    assert reply.headers["Retry-After"] == "1"
    assert api.bearer(key["key"]) is not None


def test_a_create_whose_plan_changes_before_every_attempt_is_a_retryable_503(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    flip = itertools.cycle(["advanced", "pro"])
    with before_each_write(lambda: api.set_plan("acct-a", next(flip)), times=None) as ran:
        reply = api.create("acct-a", "racing billing")
    message = "The account's plan is changing. Please retry."
    assert (reply.status, reply.body) == (503, {"error": {"code": "service_unavailable", "message": message}})
    assert reply.headers["Retry-After"] == "1"
    assert ran[0] >= 2
    assert api.list("acct-a").body["keys"] == []


class _NearlyOutOfTime(LambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return 1_000  # retries.ANSWER_MARGIN: no time for a second attempt


def test_a_create_out_of_time_after_a_wrong_plan_guess_answers_503_before_the_timeout(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    handler = load_function("create_key").lambda_handler
    event = rest_event("POST", "/keys", "acct-a", body={"name": "late"})
    with before_each_write(lambda: api.set_plan("acct-a", "advanced")) as ran:
        reply = handler(event, _NearlyOutOfTime(function_name="create_key"))
    message = "The account's plan is changing. Please retry."
    assert (reply["statusCode"], json.loads(reply["body"])) == (
        503,
        {"error": {"code": "service_unavailable", "message": message}},
    )
    assert reply["multiValueHeaders"]["Retry-After"] == ["1"]
    assert ran == [1]
    assert api.list("acct-a").body["keys"] == []


def test_an_account_nobody_gave_a_plan_is_told_how_to_get_one(api: Api) -> None:
    reply = api.create("acct-unknown", "first")
    message = "This account has 0 API keys and no plan, which allows none. Upgrade to Pro (3 keys) to create a new one."
    assert (reply.status, reply.body) == (403, {"error": {"code": "key_limit_reached", "message": message}})
    assert api.list("acct-unknown").body["key_count"] == 0


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (
            {"account_id": "acct\x00", "plan": "pro"},
            "account_id must be a string of 1-128 characters without control characters.",
        ),
        (
            {"account_id": "acct-a", "plan": "p" * 39 + "0123456789"},
            f"Unknown plan '{'p' * 39}0'; valid plans: pro, advanced, agency or null.",
        ),
    ],
    ids=["account_id", "plan"],
)
def test_the_billing_call_is_refused_with_what_was_wrong_and_changes_nothing(
    api: Api, event: dict[str, str], message: str
) -> None:
    api.set_plan("acct-a", "advanced")
    with pytest.raises(InvalidRequest) as refused:
        load_function("set_plan").lambda_handler(event, LambdaContext())
    assert refused.value.message == message
    assert api.list("acct-a").body["plan"] == "advanced"


def test_a_delete_that_loses_every_race_is_404_and_removes_nothing(api: Api) -> None:
    """Each attempt re-reads the key; when its write loses every time, the key is answered as
    gone, which is what the winning concurrent delete makes true in practice."""
    api.set_plan("acct-a", "pro")
    key = api.create("acct-a", "contested").body
    with conditions_always_fail() as answered:
        reply = api.delete("acct-a", key["id"])
    assert answered[0] == 3  # retries.DELETE_ATTEMPTS
    assert (reply.status, reply.body) == (404, {"error": _not_found(key["id"])})
    assert api.bearer(key["key"]) is not None


def test_a_plan_change_that_loses_every_race_tries_ten_times_or_until_out_of_time_then_is_unavailable(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each attempt re-reads the account and its keys; billing sees a failed invocation (it
    retries), and no digest item is left on another plan than the account's."""
    from apikeys import retries
    from apikeys.errors import ServiceUnavailable

    api.set_plan("acct-a", "pro")
    key = api.create("acct-a", "CI").body
    change = {"account_id": "acct-a", "plan": "advanced"}
    with conditions_always_fail() as answered, pytest.raises(ServiceUnavailable, match=r"^Too many concurrent"):
        load_function("set_plan").lambda_handler(change, LambdaContext())
    assert answered[0] == retries.SET_PLAN_ATTEMPTS == 10
    monkeypatch.setattr(retries, "retrying", lambda delay=0.0: False)  # the invocation's time is up
    with conditions_always_fail() as answered, pytest.raises(ServiceUnavailable, match=r"^Too many concurrent"):
        load_function("set_plan").lambda_handler(change, LambdaContext())
    assert answered[0] == 1
    assert api.list("acct-a").body["plan"] == "pro"
    assert api.bearer(key["key"])["context"]["plan"] == "pro"  # type: ignore[index]
