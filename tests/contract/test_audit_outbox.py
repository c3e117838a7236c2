"""The audit event each change writes (docs/audit-events.md, linked from the README): exactly one outbox
item per change, with the documented `detail`. The expected details are literals taken from that
table, never built from the code, so a field lost, renamed or filled with the wrong value fails."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from apikeys import clock
from apikeys.config import get_settings
from tests.helpers.streams import ttl_removes
from tests.helpers.support import Api, LambdaContext, load_function

MOMENT = datetime(2027, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
TIME = "2027-03-01T12:00:00.250Z"  # ISO 8601 UTC, milliseconds, as every timestamp of the API
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


class _AnyUuid:
    """Equal to a UUID string: API Gateway's request id, generated per request by the tests."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and _UUID.fullmatch(other) is not None

    def __repr__(self) -> str:
        return "<a request id>"


REQUEST_ID = _AnyUuid()


class Outbox:
    """The outbox items written since the last look, as (detail-type, detail) pairs. Checks the
    fields every event has: `event_id` (its item's key, so a redelivery is recognisable) and `time`."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def new(self) -> list[tuple[str, dict[str, Any]]]:
        items = boto3.client("dynamodb").scan(TableName=get_settings().table_name, ConsistentRead=True)["Items"]
        fresh = [i for i in items if i["pk"]["S"].startswith("EVENT#") and i["pk"]["S"] not in self.seen]
        self.seen |= {i["pk"]["S"] for i in fresh}
        events = []
        for item in fresh:
            detail = json.loads(item["detail"]["S"])
            event_id = detail.pop("event_id")
            assert _UUID.fullmatch(event_id), event_id
            removal = f"EVENT#removed#{detail['account_id']}#{detail.get('key_id')}"
            assert item["pk"]["S"] in (f"EVENT#{event_id}", removal)
            assert detail.pop("time") == TIME
            events.append((item["detail_type"]["S"], detail))
        return events


@pytest.fixture
def outbox(monkeypatch: pytest.MonkeyPatch) -> Outbox:
    monkeypatch.setattr(clock, "now", lambda: MOMENT)
    return Outbox()


def test_each_change_to_a_key_writes_its_documented_event(api: Api, outbox: Outbox) -> None:
    api.set_plan("acct-a", "pro")
    assert outbox.new() == [
        (
            "AccountPlanChanged",
            {"account_id": "acct-a", "plan": "pro", "key_limit": 3, "actor": "billing", "request_id": REQUEST_ID},
        )
    ]
    key = api.create("acct-a", "Zapier", claims={"email": "ana@example.com", "cognito:username": "ana"}).body
    mine = {"account_id": "acct-a", "key_id": key["id"], "actor": "acct-a", "request_id": REQUEST_ID}
    assert outbox.new() == [("ApiKeyCreated", {**mine, "key_name": "Zapier", "created_by": "ana@example.com"})]

    assert api.rename("acct-a", key["id"], "Zapier prod").status == 200
    assert outbox.new() == [("ApiKeyRenamed", {**mine, "key_name": "Zapier prod", "previous_name": "Zapier"})]

    assert api.patch("acct-a", key["id"], {"scopes": ["mcp", "whoami"]}).status == 200
    scoped = {
        "key_name": "Zapier prod",
        "previous_name": "Zapier prod",
        "scopes": ["whoami", "mcp"],
        "previous_scopes": ["*"],
    }
    assert outbox.new() == [("ApiKeyScopesChanged", {**mine, **scoped})]

    assert api.patch("acct-a", key["id"], {"name": "Zapier", "scopes": ["*"]}).status == 200
    both = {"key_name": "Zapier", "previous_name": "Zapier prod", "scopes": ["*"], "previous_scopes": ["whoami", "mcp"]}
    assert outbox.new() == [("ApiKeyScopesChanged", {**mine, **both})]

    rolled = api.roll("acct-a", key["id"], grace=60, claims={"cognito:username": "bo"}).body
    new = {**mine, "key_id": rolled["id"], "key_name": "Zapier"}
    assert outbox.new() == [
        ("ApiKeyRolled", {**new, "previous_key_id": key["id"], "grace_period_seconds": 60, "created_by": "bo"})
    ]

    assert api.delete("acct-a", rolled["id"]).status == 204
    assert outbox.new() == [("ApiKeyDeleted", new)]


def test_a_reported_key_is_revoked_with_its_event(api: Api, outbox: Outbox) -> None:
    api.set_plan("acct-a", "pro")
    key = api.create("acct-a", "CI").body
    outbox.new()
    assert api.revoke_credentials({"credentials": [key["key"]]}).status == 202
    revoked = {
        "account_id": "acct-a",
        "key_id": key["id"],
        "key_name": "CI",
        "reason": "reported",
        "url": "",
        "source": "",
    }
    assert outbox.new() == [("ApiKeyRevoked", {**revoked, "actor": "public-report", "request_id": REQUEST_ID})]


def test_a_ttl_removal_writes_expired_or_grace_period_ended_as_the_system(
    api: Api, outbox: Outbox, capfd: pytest.CaptureFixture[str]
) -> None:
    """Exactly once, however often the stream delivers it: the event, and the slot given back
    (an expired key's; a rolled-out key gave its own at the roll)."""
    expiry = load_function("key_expiry").lambda_handler
    api.set_plan("acct-a", "pro")
    expiring = api.create("acct-a", "Trial", expires_in_days=1).body
    old = api.create("acct-a", "Prod").body
    assert api.roll("acct-a", old["id"], grace=60).status == 201
    outbox.new()

    records = [ttl_removes("acct-a", expiring["id"]), ttl_removes("acct-a", old["id"])]
    assert api.list("acct-a").body["key_count"] == 2
    capfd.readouterr()
    assert expiry({"Records": records}, LambdaContext()) == {"batchItemFailures": []}
    system = {"account_id": "acct-a", "actor": "system", "request_id": ""}
    assert sorted(outbox.new(), key=lambda event: event[1]["key_name"]) == [
        ("ApiKeyExpired", {**system, "key_id": old["id"], "key_name": "Prod", "reason": "grace_period_ended"}),
        ("ApiKeyExpired", {**system, "key_id": expiring["id"], "key_name": "Trial", "reason": "expired"}),
    ]
    assert api.list("acct-a").body["key_count"] == 1

    def first_deliveries() -> list[bool]:
        lines = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]
        return [line["first_delivery"] for line in lines if line.get("message") == "expired key removed"]

    assert first_deliveries() == [True, True]
    assert expiry({"Records": records}, LambdaContext()) == {"batchItemFailures": []}  # delivered again
    assert first_deliveries() == [False, False]
    assert outbox.new() == [] and api.list("acct-a").body["key_count"] == 1


def test_a_key_near_its_expiry_is_warned_by_the_daily_run_as_the_system(
    api: Api, outbox: Outbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXPIRY_NOTICE_DAYS", "7,1")
    run = load_function("expiry_notices").lambda_handler
    api.set_plan("acct-a", "pro")
    key = api.create("acct-a", "Trial", expires_in_days=7).body
    outbox.new()

    assert run({"scheduled_time": "2027-03-01T09:00:00Z"}, LambdaContext())["sent"] == 1
    notice = {"account_id": "acct-a", "key_id": key["id"], "key_name": "Trial", "actor": "system", "request_id": ""}
    assert outbox.new() == [("ApiKeyExpiring", {**notice, "expires_at": "2027-03-08T12:00:00.000Z", "days_left": 7})]
    assert run({"scheduled_time": "2027-03-07T09:00:00Z"}, LambdaContext())["sent"] == 1
    assert outbox.new() == [("ApiKeyExpiring", {**notice, "expires_at": "2027-03-08T12:00:00.000Z", "days_left": 1})]
