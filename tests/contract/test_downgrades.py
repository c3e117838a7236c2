"""Downgrades and cancelled plans (issue 10, item 2), on moto and DynamoDB Local.

Over its limit an account keeps every key working but may neither create nor roll one; a
plan that allows 0 keys (`"plan": null` without DEFAULT_PLAN, or a plan whose limit is 0)
means no API access: the authorizer answers an explicit Deny, and the keys are kept."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from apikeys.config import get_settings
from apikeys.errors import InvalidRequest
from tests.helpers.support import (
    Api,
    CallCounter,
    LambdaContext,
    http_api_event,
    load_function,
    request_event,
    token_event,
)


@pytest.fixture
def api(db: Any) -> Iterator[Api]:
    client = Api()
    yield client
    from apikeys.usage import wait_for_last_used

    wait_for_last_used()


def _set_plan(event: dict[str, Any]) -> dict[str, Any]:
    return load_function("set_plan").lambda_handler(event, LambdaContext())  # type: ignore[no-any-return]


def _deny(principal: dict[str, Any] | None, account: str) -> bool:
    """An explicit Deny of the stage for this account (API Gateway: 403 ACCESS_DENIED)."""
    if principal is None:
        return False
    (statement,) = principal["policyDocument"]["Statement"]
    return (
        principal["principalId"] == account
        and statement["Effect"] == "Deny"
        and statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abc123/v1/*/*"]
    )


def test_over_limit_keys_keep_working_but_create_and_roll_are_refused(api: Api) -> None:
    """Before: after Agency -> Pro every key still rolled (201) and the message named no count."""
    api.set_plan("acct-down", "agency")
    created = [api.create("acct-down", f"k{i}").body for i in range(10)]
    assert api.set_plan("acct-down", "pro")["key_limit"] == 3
    for key in created:
        allowed = api.bearer(key["key"])
        assert allowed is not None and allowed["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    listing = api.list("acct-down").body
    assert (listing["key_count"], listing["key_limit"], len(listing["keys"])) == (10, 3, 10)

    refused = api.create("acct-down", "one more")
    assert (refused.status, refused.body["error"]["code"]) == (403, "key_limit_reached")
    assert refused.body["error"]["message"] == (
        "This account has 10 API keys and the Pro plan allows 3. "
        "Delete 8 keys to create a new one, or upgrade to Agency (25 keys)."
    )
    roll = api.roll("acct-down", created[0]["id"], grace=60)
    assert (roll.status, roll.body["error"]["code"]) == (403, "key_limit_reached")
    assert roll.body["error"]["message"] == (
        "This account has 10 API keys and the Pro plan allows 3. "
        "Delete 7 keys to roll a key, or upgrade to Advanced (10 keys)."
    )
    assert api.bearer(created[0]["key"]) is not None  # a refused roll changed nothing
    assert api.list("acct-down").body["key_count"] == 10

    for key in created[3:]:
        assert api.delete("acct-down", key["id"]).status == 204
    assert api.roll("acct-down", created[0]["id"]).status == 201  # at the limit a roll keeps the count
    at_limit = api.create("acct-down", "still full")
    assert at_limit.status == 403
    assert "Delete 1 key to create a new one" in at_limit.body["error"]["message"]


def test_plan_null_without_default_plan_denies_every_key_until_a_plan_returns(api: Api, calls: CallCounter) -> None:
    """Before: "plan": null was refused as an unknown plan, so a cancelled account kept its access."""
    api.set_plan("acct-gone", "pro")
    kept = [api.create("acct-gone", name).body for name in ("a", "b")]
    assert _set_plan({"account_id": "acct-gone", "plan": None}) == {
        "account_id": "acct-gone",
        "plan": None,
        "key_limit": 0,
    }
    header = f"Bearer {kept[0]['key']}"
    calls.reset()
    assert _deny(api.authorize(token_event(header)), "acct-gone")
    assert calls.calls == ["GetItem"]  # still exactly one read, and no last-used write
    assert _deny(api.authorize(request_event({"Authorization": header})), "acct-gone")
    assert api.authorize(http_api_event({"authorization": header})) == {"isAuthorized": False}

    listing = api.list("acct-gone").body
    assert (listing["plan"], listing["key_limit"], listing["key_count"], len(listing["keys"])) == (None, 0, 2, 2)
    refused = api.create("acct-gone", "c")
    assert refused.body["error"]["message"] == (
        "This account has 2 API keys and no plan, which allows none. Upgrade to Pro (3 keys) to create a new one."
    )
    assert api.roll("acct-gone", kept[0]["id"]).status == 403

    api.set_plan("acct-gone", "advanced")  # paying again: the very next request works
    for key in kept:
        allowed = api.bearer(key["key"])
        assert allowed is not None and allowed["policyDocument"]["Statement"][0]["Effect"] == "Allow"
        assert allowed["context"]["plan"] == "advanced"
    assert api.authorize(http_api_event({"authorization": header}))["isAuthorized"] is True  # type: ignore[index]


def test_plan_null_falls_back_to_the_default_plan(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEFAULT_PLAN", "pro")
    get_settings.cache_clear()
    api.set_plan("acct-cancel", "agency")
    key = api.create("acct-cancel", "a").body
    assert _set_plan({"account_id": "acct-cancel", "plan": None}) == {
        "account_id": "acct-cancel",
        "plan": "pro",
        "key_limit": 3,
    }
    assert api.bearer(key["key"])["context"]["plan"] == "pro"  # type: ignore[index]
    assert api.list("acct-cancel").body["plan"] == "pro"


def test_a_plan_whose_limit_is_zero_means_no_api_access(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: keys of an account moved to a 0-key plan were still allowed."""
    monkeypatch.setenv("PLAN_LIMITS", json.dumps({"suspended": 0, "pro": 3}))
    get_settings.cache_clear()
    api.set_plan("acct-zero", "pro")
    key = api.create("acct-zero", "a").body
    assert api.set_plan("acct-zero", "suspended") == {"account_id": "acct-zero", "plan": "suspended", "key_limit": 0}
    assert _deny(api.bearer(key["key"]), "acct-zero")
    assert api.authorize(http_api_event({"authorization": f"Bearer {key['key']}"})) == {"isAuthorized": False}
    message = api.create("acct-zero", "b").body["error"]["message"]
    assert message == (
        "This account has 1 API key and the Suspended plan allows none. Upgrade to Pro (3 keys) to create a new one."
    )


def test_set_plan_requires_the_plan_field(api: Api) -> None:
    """A billing call that forgot the field must not cancel the plan."""
    api.set_plan("acct-keep", "pro")
    with pytest.raises(InvalidRequest, match="plan is required"):
        _set_plan({"account_id": "acct-keep"})
    assert api.list("acct-keep").body["plan"] == "pro"


def test_a_plan_change_leaves_the_digest_items_of_expired_keys_to_ttl(
    api: Api, set_clock: Callable[[float], None]
) -> None:
    """An expired key is refused whatever plan its digest item carries, and TTL removes the item
    (maybe in the middle of the change): the change writes only the live keys' digest items. A
    key is expired from its expiry's very second."""
    import boto3

    from apikeys import keys

    set_clock(1_800_000_000)
    api.set_plan("acct-a", "pro")
    live = api.create("acct-a", "live").body
    expired = api.create("acct-a", "expired", expires_in_days=1).body
    set_clock(1_800_000_000 + 86400)
    assert _set_plan({"account_id": "acct-a", "plan": "advanced"})["plan"] == "advanced"

    def plan_of(key: str) -> str:
        digest = {"pk": {"S": f"DIGEST#{keys.digest(key)}"}, "sk": {"S": "DIGEST"}}
        item = boto3.client("dynamodb").get_item(TableName=get_settings().table_name, Key=digest)["Item"]
        return str(item["plan"]["S"])

    assert (plan_of(live["key"]), plan_of(expired["key"])) == ("advanced", "pro")
