"""Issue 14: a revoked key leaves its digest behind as a tombstone for 90 days. The authorizer
refuses it with its one GetItem, it never counts toward the plan limit, no plan change
touches it, and a later report of the key is recognised as ours without changing anything.
Also the public revocation API, POST /v1/credentials/revoke."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from apikeys import clock, keys, logic
from apikeys.audit import Caller
from tests.helpers.invariants import check_table, snapshot
from tests.helpers.support import Api, CallCounter

NINETY_DAYS = 90 * 86400


def _tombstone(digest: str) -> dict[str, object]:
    item = boto3.client("dynamodb").get_item(
        TableName=os.environ["TABLE_NAME"], Key={"pk": {"S": f"DIGEST#{digest}"}, "sk": {"S": "DIGEST"}}
    )
    return dict(item["Item"])


def test_delete_leaves_a_tombstone_the_authorizer_refuses_with_one_read(api: Api, calls: CallCounter) -> None:
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a").body
    assert api.delete("acct-a", created["id"]).status == 204
    tombstone = _tombstone(keys.digest(created["key"]))
    assert tombstone["revoked"] == {"BOOL": True} and tombstone["reason"] == {"S": "deleted"}
    assert "plan" not in tombstone
    assert abs(int(tombstone["ttl"]["N"]) - (time.time() + NINETY_DAYS)) < 3600
    calls.reset()
    assert api.bearer(created["key"]) is None
    assert calls.calls == ["GetItem"]
    state = check_table(os.environ["TABLE_NAME"])
    assert len(state.tombstones) == 1 and not state.digests


def test_a_tombstone_never_counts_toward_the_limit_and_survives_plan_changes(api: Api) -> None:
    api.set_plan("acct-a", "pro")  # 3 keys
    first = api.create("acct-a", "first").body
    assert api.delete("acct-a", first["id"]).status == 204
    for name in ("a", "b", "c"):
        assert api.create("acct-a", name).status == 201
    assert api.list("acct-a").body["key_count"] == 3
    assert api.create("acct-a", "d").status == 403
    api.set_plan("acct-a", "advanced")
    api.set_plan("acct-a", "pro")
    assert api.bearer(first["key"]) is None
    assert "plan" not in _tombstone(keys.digest(first["key"]))
    check_table(os.environ["TABLE_NAME"])


def test_a_roll_without_grace_leaves_a_tombstone_and_a_report_of_it_changes_nothing(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    old = api.create("acct-a").body
    assert api.roll("acct-a", old["id"]).status == 201
    before = snapshot(os.environ["TABLE_NAME"])
    assert logic.revoke_exposed(old["key"], logic.REPORTED, Caller("public-report")) is True
    assert snapshot(os.environ["TABLE_NAME"]) == before
    assert api.bearer(old["key"]) is None


def test_reporting_a_live_key_revokes_it_once_with_an_event_and_a_notice(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a", "CI deploy key").body
    assert api.revoke_credentials({"credentials": [created["key"], created["key"]]}).status == 202
    assert api.bearer(created["key"]) is None
    assert api.list("acct-a").body["key_count"] == 0
    assert _tombstone(keys.digest(created["key"]))["reason"] == {"S": "reported"}
    [notice] = api.revocations("acct-a").body["revocations"]
    assert notice["key_id"] == created["id"] and notice["name"] == "CI deploy key"
    assert notice["reason"] == "reported"
    assert api.revocations("acct-b").body == {"revocations": []}
    state = check_table(os.environ["TABLE_NAME"])
    assert list(state.notices["acct-a"]) == [created["id"]]
    events = [i for i in boto3.client("dynamodb").scan(TableName=os.environ["TABLE_NAME"])["Items"]]
    revoked = [e for e in events if e.get("detail_type", {}).get("S") == "ApiKeyRevoked"]
    assert len(revoked) == 1 and '"reason":"reported"' in revoked[0]["detail"]["S"]
    assert created["key"] not in revoked[0]["detail"]["S"]
    # A second report, or a DELETE afterwards, changes nothing.
    before = snapshot(os.environ["TABLE_NAME"])
    assert api.revoke_credentials({"credentials": [created["key"]]}).status == 202
    assert snapshot(os.environ["TABLE_NAME"]) == before
    assert api.delete("acct-a", created["id"]).status == 404


def test_a_reported_key_in_its_grace_period_is_revoked_without_touching_the_count(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    old = api.create("acct-a").body
    new = api.roll("acct-a", old["id"], grace=3600).body
    assert api.bearer(old["key"]) is not None
    assert api.revoke_credentials({"credentials": [old["key"]]}).status == 202
    assert api.bearer(old["key"]) is None and api.bearer(new["key"]) is not None
    assert api.list("acct-a").body["key_count"] == 1
    check_table(os.environ["TABLE_NAME"])


@pytest.mark.parametrize("kind", ["unknown", "malformed", "bad checksum"])
def test_revoke_answers_202_for_anything_and_changes_nothing(api: Api, kind: str) -> None:
    api.set_plan("acct-a", "pro")
    live = api.create("acct-a").body
    token = {
        "unknown": keys.generate("ot_"),
        "malformed": "ot_short",
        "bad checksum": live["key"][:-1] + ("A" if live["key"][-1] != "A" else "B"),
    }[kind]
    before = snapshot(os.environ["TABLE_NAME"])
    reply = api.revoke_credentials({"credentials": [token]})
    assert (reply.status, reply.body) == (202, {})
    assert snapshot(os.environ["TABLE_NAME"]) == before
    assert api.bearer(live["key"]) is not None


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "[]",
        "not json",
        '{"credentials": []}',
        '{"credentials": "ot_x"}',
        '{"credentials": [1]}',
        '{"credentials": ["x"], "more": 1}',
        '{"credentials": [' + ",".join(['"x"'] * 101) + "]}",
    ],
)
def test_revoke_refuses_bad_bodies_with_400(api: Api, raw: str) -> None:
    api.set_plan("acct-a", "pro")
    live = api.create("acct-a").body
    before = snapshot(os.environ["TABLE_NAME"])
    reply = api.revoke_credentials(raw_body=raw)
    assert reply.status == 400 and reply.body["error"]["code"] == "invalid_request"
    assert snapshot(os.environ["TABLE_NAME"]) == before
    assert api.bearer(live["key"]) is not None


def test_the_console_lists_the_notices_of_the_last_30_days_newest_first(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A notice exactly 30 days old is still shown; one a millisecond older is not."""
    start = datetime(2027, 3, 1, 12, 0, 0, tzinfo=UTC)
    moment = [start]
    monkeypatch.setattr(clock, "now", lambda: moment[0])
    api.set_plan("acct-a", "agency")
    names = ["too old", "30 days old", "newest"]
    created = {name: api.create("acct-a", name).body for name in names}
    for name, offset in zip(names, [timedelta(milliseconds=-1), timedelta(0), timedelta(days=5)], strict=True):
        moment[0] = start + offset
        assert api.revoke_credentials({"credentials": [created[name]["key"]]}).status == 202

    moment[0] = start + timedelta(days=30)
    notices = api.revocations("acct-a").body["revocations"]
    assert [(n["name"], n["revoked_at"]) for n in notices] == [
        ("newest", "2027-03-06T12:00:00.000Z"),
        ("30 days old", "2027-03-01T12:00:00.000Z"),
    ]


def test_a_key_whose_item_ttl_already_removed_is_still_recognised_as_ours(api: Api) -> None:
    """TTL removes a key's two items separately: with only the digest item left, a report of the
    key is still labelled ours (a true positive), and nothing is written."""
    api.set_plan("acct-a", "pro")
    key = api.create("acct-a", "Trial", expires_in_days=1).body
    table = os.environ["TABLE_NAME"]
    boto3.client("dynamodb").delete_item(
        TableName=table, Key={"pk": {"S": "ACCOUNT#acct-a"}, "sk": {"S": f"KEY#{key['id']}"}}
    )
    before = snapshot(table)
    assert logic.revoke_exposed(key["key"], logic.LEAKED, Caller("github-secret-scanning")) is True
    assert snapshot(table) == before
