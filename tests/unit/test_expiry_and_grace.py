"""Expiry and grace periods, to the second: a key works one second before its `expires_at` and
is refused at it, a rolled-out key works until the last second of its grace, at most the plan's
key limit of keys are in a grace period at once, and the expiry handler frees a slot only for
DynamoDB's TTL removal, never for a customer's delete. In process on moto; the clock is
injected, never waited on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3
import pytest

from apikeys.config import get_settings
from tests.helpers.streams import TTL_IDENTITY, key_item, remove_record
from tests.helpers.support import Api, LambdaContext, load_function

pytestmark = pytest.mark.engines("moto")


def _iso_epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


# --- Expiry at the second -------------------------------------------------------------------


def test_a_key_works_one_second_before_its_expiry_and_is_refused_at_it(
    api: Api, set_clock: Callable[[float], None]
) -> None:
    set_clock(1_800_000_000)
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a", "expiring", expires_in_days=1).body
    expires = _iso_epoch(created["expires_at"])
    assert expires == 1_800_000_000 + 86400  # the contract: created_at + days, to the second

    set_clock(expires - 1)
    allowed = api.bearer(created["key"])
    assert allowed is not None and allowed["context"]["key_id"] == created["id"]
    assert api.get("acct-a", created["id"]).body["status"] == "active"

    set_clock(expires)
    refused = api.bearer(created["key"])  # not inside the assert: a failure must not print the key
    assert refused is None, "allowed at expires_at"
    assert api.get("acct-a", created["id"]).body["status"] == "expired"


def test_status_turns_expired_exactly_at_expires_at() -> None:
    from apikeys.logic import status
    from apikeys.records import KeyRecord

    record = KeyRecord("key_x", "n", "d", "2026-01-01T00:00:00.000Z", None, "digest", 1_000, 1)
    assert status(record, 999) == "active"
    assert status(record, 999.999) == "active"
    assert status(record, 1_000) == "expired"
    rolling = KeyRecord("key_y", "n", "d", "2026-01-01T00:00:00.000Z", None, "digest", 1_000, None, rolling=True)
    assert status(rolling, 999) == "rolling"
    assert status(rolling, 1_000) == "expired"


def test_a_rolled_out_key_works_until_the_last_second_of_its_grace(
    api: Api, set_clock: Callable[[float], None]
) -> None:
    set_clock(1_800_000_000)
    api.set_plan("acct-a", "pro")
    old = api.create("acct-a", "old").body
    assert api.roll("acct-a", old["id"], grace=60).status == 201
    set_clock(1_800_000_000 + 59)
    assert api.bearer(old["key"]) is not None
    set_clock(1_800_000_000 + 60)
    refused = api.bearer(old["key"])
    assert refused is None, "allowed at the end of its grace period"


# --- Grace-period cap ---------------------------------------------------------------------


def test_at_most_key_limit_keys_are_in_a_grace_period_at_once(api: Api) -> None:
    api.set_plan("acct-a", "pro")  # Pro allows 3 keys, so 3 grace periods at once
    ids = [api.create("acct-a", f"k{i}").body["id"] for i in range(3)]
    new_ids = []
    for key_id in ids:
        rolled = api.roll("acct-a", key_id, grace=3600)
        assert rolled.status == 201, rolled.body
        new_ids.append(rolled.body["id"])

    refused = api.roll("acct-a", new_ids[0], grace=3600)
    assert refused.status == 409, refused.body
    assert refused.body["error"] == {
        "code": "conflict",
        "message": "At most 3 keys may be in a grace period at once on this plan.",
    }
    listing = api.list("acct-a").body
    assert sorted(k["status"] for k in listing["keys"]) == ["active"] * 3 + ["rolling"] * 3
    # Without a grace period the roll holds no grace slot, so it is still allowed.
    assert api.roll("acct-a", new_ids[0]).status == 201


# --- The expiry handler frees a slot for a TTL removal only ----------------------------------


def _events(detail_type: str) -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=get_settings().table_name, ConsistentRead=True)["Items"]
    return [i for i in items if i.get("detail_type", {}).get("S") == detail_type]


def test_the_expiry_handler_ignores_a_user_delete_and_counts_a_ttl_delete(api: Api) -> None:
    handler = load_function("key_expiry").lambda_handler
    api.set_plan("acct-a", "pro")
    deleted = api.create("acct-a", "deleted by the user").body
    expired = api.create("acct-a", "removed by TTL").body
    user_item = key_item("acct-a", deleted["id"])
    ttl_item = key_item("acct-a", expired["id"])

    # A customer's delete (its own transaction already gave the slot back): no second decrement.
    assert api.delete("acct-a", deleted["id"]).status == 204
    assert handler({"Records": [remove_record(user_item, None)]}, LambdaContext()) == {"batchItemFailures": []}
    other_identity = {"type": "Service", "principalId": "lambda.amazonaws.com"}
    handler({"Records": [remove_record(user_item, other_identity)]}, LambdaContext())
    assert api.list("acct-a").body["key_count"] == 1
    assert _events("ApiKeyExpired") == []

    # DynamoDB's TTL removed the other key: its slot comes back, once, with one audit event.
    client = boto3.client("dynamodb")
    client.delete_item(TableName=get_settings().table_name, Key={"pk": ttl_item["pk"], "sk": ttl_item["sk"]})
    for _ in range(2):  # a stream delivers at least once
        handler({"Records": [remove_record(ttl_item, TTL_IDENTITY)]}, LambdaContext())
    assert api.list("acct-a").body["key_count"] == 0
    assert len(_events("ApiKeyExpired")) == 1
