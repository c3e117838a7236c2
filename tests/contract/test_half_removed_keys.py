"""DynamoDB's TTL removes a key's two items (`KEY#` and `DIGEST#`) independently, in any
order, possibly days apart. Every operation must work while one of them is gone. On DynamoDB
Local, which runs no TTL: the test removes one item with the raw client, as TTL would."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from apikeys.config import get_settings
from tests.contract.test_streams import Stream, _expire
from tests.helpers.streams import TTL_IDENTITY
from tests.helpers.support import Api

ACCOUNT = "acct-half"


@pytest.fixture
def api(local_db: str) -> Api:
    return Api()


def _items(key_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The raw keys of a key's `KEY#` item and its `DIGEST#` item."""
    client = boto3.client("dynamodb")
    key = {"pk": {"S": f"ACCOUNT#{ACCOUNT}"}, "sk": {"S": f"KEY#{key_id}"}}
    item = client.get_item(TableName=get_settings().table_name, Key=key)["Item"]
    return key, {"pk": {"S": f"DIGEST#{item['digest']['S']}"}, "sk": {"S": "DIGEST"}}


def _ttl_removes_one(key_id: str, which: str) -> None:
    """TTL's first step for a key: one of its two items gone, the other still there."""
    key_item, digest_item = _items(key_id)
    boto3.client("dynamodb").delete_item(
        TableName=get_settings().table_name, Key=digest_item if which == "digest" else key_item
    )


@pytest.fixture(params=["digest", "key"])
def half_removed(request: pytest.FixtureRequest, api: Api, travel: Any) -> dict[str, Any]:
    """A Pro account with one live key, one expired key and one rolled-out key past its grace
    period, the last two with one item removed by TTL (`request.param` says which)."""
    api.set_plan(ACCOUNT, "pro")
    live = api.create(ACCOUNT, "live").body
    expired = api.create(ACCOUNT, "expired", expires_in_days=1).body
    rolled = api.create(ACCOUNT, "rolled").body
    replacement = api.roll(ACCOUNT, rolled["id"], grace=60).body
    travel(2 * 86400)
    for key in (expired, rolled):
        _ttl_removes_one(key["id"], request.param)
    return {"gone": request.param, "live": live, "expired": expired, "rolled": rolled, "new": replacement}


def test_plan_change_skips_items_ttl_already_removed(api: Api, half_removed: dict[str, Any]) -> None:
    """Before: SetPlanFunction failed with 'Too many concurrent changes' on every call."""
    assert api.set_plan(ACCOUNT, "advanced") == {"account_id": ACCOUNT, "plan": "advanced", "key_limit": 10}
    for key in ("live", "new"):
        allowed = api.bearer(half_removed[key]["key"])
        assert allowed is not None and allowed["context"]["plan"] == "advanced"
    for key in ("expired", "rolled"):
        assert api.bearer(half_removed[key]["key"]) is None
    assert api.list(ACCOUNT).body["plan"] == "advanced"
    assert api.set_plan(ACCOUNT, "pro")["plan"] == "pro"
    assert api.bearer(half_removed["live"]["key"])["context"]["plan"] == "pro"  # type: ignore[index]


def test_list_get_rename_and_delete_work_with_one_item_missing(api: Api, half_removed: dict[str, Any]) -> None:
    expired_id = half_removed["expired"]["id"]
    listing = api.list(ACCOUNT).body
    listed = {k["id"]: k["status"] for k in listing["keys"]}
    assert listed[half_removed["live"]["id"]] == "active"
    if half_removed["gone"] == "digest":  # the key item is still there: shown as expired
        assert listed[expired_id] == "expired" and listed[half_removed["rolled"]["id"]] == "expired"
        assert api.get(ACCOUNT, expired_id).body["status"] == "expired"
        assert api.rename(ACCOUNT, expired_id, "old one").status == 200
        count = listing["key_count"]
        assert api.delete(ACCOUNT, expired_id).status == 204
        assert api.delete(ACCOUNT, half_removed["rolled"]["id"]).status == 204
        assert api.list(ACCOUNT).body["key_count"] == count - 1  # the rolled-out key had given its slot
    else:  # the key item is gone: the key no longer exists for the API
        assert expired_id not in listed and half_removed["rolled"]["id"] not in listed
        assert api.get(ACCOUNT, expired_id).status == 404
        assert api.rename(ACCOUNT, expired_id, "old one").status == 404
        assert api.delete(ACCOUNT, expired_id).status == 404
    assert api.rename(ACCOUNT, half_removed["live"]["id"], "still live").status == 200
    assert api.delete(ACCOUNT, half_removed["live"]["id"]).status == 204
    assert api.bearer(half_removed["live"]["key"]) is None


def test_roll_works_with_one_item_missing(api: Api, half_removed: dict[str, Any]) -> None:
    rolled = api.roll(ACCOUNT, half_removed["live"]["id"], grace=60)
    assert rolled.status == 201
    assert api.bearer(rolled.body["key"]) is not None and api.bearer(half_removed["live"]["key"]) is not None
    stale = api.roll(ACCOUNT, half_removed["expired"]["id"])
    assert stale.status == (409 if half_removed["gone"] == "digest" else 404)


def test_expiry_handler_counts_a_half_removed_key_once(api: Api, half_removed: dict[str, Any], local_db: str) -> None:
    """Whichever item TTL removes first, the key item's removal gives the slot back once."""
    assert api.list(ACCOUNT).body["key_count"] == 3  # live, expired, replacement; not the rolled-out one
    if half_removed["gone"] == "digest":  # TTL now removes the key items left behind
        for key in ("expired", "rolled"):
            key_item, _ = _items(half_removed[key]["id"])
            boto3.client("dynamodb").delete_item(TableName=get_settings().table_name, Key=key_item)
    removals = [
        {**r, "userIdentity": TTL_IDENTITY}
        for r in Stream(local_db).read()
        if r["eventName"] == "REMOVE" and r["dynamodb"]["Keys"]["sk"]["S"].startswith("KEY#")
    ]
    assert len(removals) == 2
    assert _expire(removals + removals) == {"batchItemFailures": []}  # delivered at least once
    listing = api.list(ACCOUNT).body
    assert listing["key_count"] == 2 == len(listing["keys"])
    assert api.set_plan(ACCOUNT, "agency")["plan"] == "agency"


def test_plan_change_skips_a_missing_digest_item_even_before_its_key_expires(api: Api) -> None:
    """TTL's clock may run ahead of ours: a digest item already gone for a key our clock still
    calls live is left out, and never recreated as a stub the authorizer would trip over."""
    api.set_plan(ACCOUNT, "pro")
    kept = api.create(ACCOUNT, "kept").body
    skewed = api.create(ACCOUNT, "skewed", expires_in_days=1).body
    _, digest_item = _items(skewed["id"])
    _ttl_removes_one(skewed["id"], "digest")
    assert api.set_plan(ACCOUNT, "agency")["plan"] == "agency"
    assert api.bearer(kept["key"])["context"]["plan"] == "agency"  # type: ignore[index]
    assert "Item" not in boto3.client("dynamodb").get_item(TableName=get_settings().table_name, Key=digest_item)


def test_rolled_out_keys_past_their_grace_hold_no_grace_slot(api: Api, travel: Any) -> None:
    """Until TTL removes them, keys whose grace period ended must not block the next roll."""
    api.set_plan(ACCOUNT, "pro")
    created = [api.create(ACCOUNT, f"k{i}").body for i in range(3)]
    replacements = [api.roll(ACCOUNT, key["id"], grace=60).body for key in created]
    travel(120)
    again = api.roll(ACCOUNT, replacements[0]["id"], grace=60)
    assert again.status == 201, again.body
