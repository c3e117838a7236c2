"""Key lifecycle beyond create/delete: expiry, roll with a grace period, rename, get one,
on moto and DynamoDB Local."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from apikeys import clock
from tests.helpers.race_worker import race
from tests.helpers.support import Api, rest_event


def _parse(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def test_expiring_key_works_until_its_expiry_then_is_refused_at_once(api: Api, travel: Any) -> None:
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a", "CI token", expires_in_days=30)
    assert created.status == 201
    body = created.body
    assert body["status"] == "active"
    lifetime = _parse(body["expires_at"]) - _parse(body["created_at"])
    assert timedelta(days=30) - timedelta(seconds=1) <= lifetime <= timedelta(days=30)
    assert api.bearer(body["key"]) is not None

    travel(30 * 86400 + 1)
    assert api.bearer(body["key"]) is None  # refused without waiting for TTL to remove it
    [listed] = api.list("acct-a").body["keys"]
    assert listed["status"] == "expired" and listed["expires_at"] == body["expires_at"]
    assert api.get("acct-a", body["id"]).body["status"] == "expired"


def test_keys_without_expiry_never_expire(api: Api, travel: Any) -> None:
    api.set_plan("acct-a", "pro")
    body = api.create("acct-a").body
    assert body["expires_at"] is None
    travel(400 * 86400)
    assert api.bearer(body["key"]) is not None
    assert api.list("acct-a").body["keys"][0]["status"] == "active"


@pytest.mark.parametrize("bad", [0, 366, -1, "5", 1.5, True, [], {}])
def test_bad_expiry_is_400_and_changes_nothing(api: Api, bad: Any) -> None:
    api.set_plan("acct-a", "pro")
    reply = api.create("acct-a", "k", expires_in_days=bad)
    assert reply.status == 400
    assert reply.body["error"]["code"] == "invalid_request"
    assert "expires_in_days" in reply.body["error"]["message"]
    assert api.list("acct-a").body["key_count"] == 0


@pytest.mark.parametrize("days", [None, 1, 365])
def test_an_expiry_of_null_or_1_to_365_days_is_accepted(api: Api, days: int | None) -> None:
    """README: `expires_in_days` is optional, 1-365; an explicit null means no expiry."""
    from datetime import datetime, timedelta

    api.set_plan("acct-a", "pro")
    reply = api.create("acct-a", "k", expires_in_days=days)
    assert reply.status == 201
    if days is None:
        assert reply.body["expires_at"] is None
    else:  # `days` after creation (the expiry counts whole seconds)
        after = datetime.fromisoformat(reply.body["expires_at"]) - datetime.fromisoformat(reply.body["created_at"])
        assert timedelta(days=days, seconds=-1) < after <= timedelta(days=days)
    assert api.list("acct-a").body["key_count"] == 1


def test_get_one_key_never_shows_the_secret_and_respects_tenants(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a", "Zapier").body
    got = api.get("acct-a", created["id"])
    assert got.status == 200
    assert "key" not in got.body
    assert got.body == {k: v for k, v in created.items() if k != "key"}
    for account, key_id in (("acct-b", created["id"]), ("acct-a", "key_00000000000000000000"), ("acct-a", "x")):
        missing = api.get(account, key_id)
        assert missing.status == 404 and missing.body["error"]["code"] == "not_found"
    assert api.get(None, created["id"]).status == 401


def test_rename_uses_create_rules_and_changes_only_the_name(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a", "old name").body
    renamed = api.rename("acct-a", created["id"], "  new name  ")
    assert renamed.status == 200
    assert renamed.body == {**{k: v for k, v in created.items() if k != "key"}, "name": "new name"}
    assert api.list("acct-a").body["keys"][0]["name"] == "new name"
    assert api.bearer(created["key"]) is not None
    for raw in ('{"name": ""}', '{"name": "' + "x" * 65 + '"}', '{"name": "a\\u0000"}', "{}", "[", '{"name": 1}'):
        bad = api.rename("acct-a", created["id"], raw_body=raw)
        assert bad.status == 400 and bad.body["error"]["code"] == "invalid_request"
    assert api.rename("acct-b", created["id"], "mine now").status == 404
    assert api.get("acct-a", created["id"]).body["name"] == "new name"


def test_roll_without_grace_revokes_the_old_key_at_once_and_keeps_the_slot(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    old = api.create("acct-a", "Zapier").body
    api.create("acct-a", "second")
    api.create("acct-a", "third")  # the plan is full: a roll must still work
    rolled = api.roll("acct-a", old["id"])
    assert rolled.status == 201
    new = rolled.body
    assert new["name"] == "Zapier" and new["id"] != old["id"] and new["key"] != old["key"]
    assert new["status"] == "active"
    assert api.bearer(old["key"]) is None
    assert api.bearer(new["key"])["context"]["key_id"] == new["id"]  # type: ignore[index]
    listing = api.list("acct-a").body
    assert listing["key_count"] == 3
    assert [k["name"] for k in listing["keys"]] == ["Zapier", "third", "second"]
    assert api.roll("acct-a", old["id"]).status == 404


def test_roll_with_grace_keeps_both_keys_working_until_it_ends(api: Api, travel: Any) -> None:
    api.set_plan("acct-a", "pro")
    old = api.create("acct-a", "MCP server").body
    for i in range(2):
        api.create("acct-a", f"other {i}")
    rolled = api.roll("acct-a", old["id"], grace=60)
    assert rolled.status == 201
    new = rolled.body
    assert api.bearer(old["key"]) is not None and api.bearer(new["key"]) is not None
    listing = api.list("acct-a").body
    assert listing["key_count"] == 3
    statuses = {k["id"]: (k["status"], k["expires_at"]) for k in listing["keys"]}
    assert statuses[new["id"]] == ("active", None)
    state, grace_end = statuses[old["id"]]
    assert state == "rolling"
    assert timedelta(seconds=58) <= _parse(grace_end) - clock.now() <= timedelta(seconds=60)

    conflict = api.roll("acct-a", old["id"], grace=60)
    assert conflict.status == 409 and conflict.body["error"]["code"] == "conflict"
    assert api.create("acct-a", "no room").status == 403  # the count never changed

    travel(61)
    assert api.bearer(old["key"]) is None
    assert api.bearer(new["key"]) is not None
    listing = api.list("acct-a").body
    assert listing["key_count"] == 3
    assert {k["id"]: k["status"] for k in listing["keys"]}[old["id"]] == "expired"


def test_deleting_a_key_in_its_grace_period_does_not_free_a_slot_twice(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    old = api.create("acct-a").body
    new = api.roll("acct-a", old["id"], grace=3600).body
    assert api.delete("acct-a", old["id"]).status == 204
    assert api.bearer(old["key"]) is None and api.bearer(new["key"]) is not None
    listing = api.list("acct-a").body
    assert listing["key_count"] == 1 and [k["id"] for k in listing["keys"]] == [new["id"]]


def test_roll_keeps_the_keys_lifetime_and_grace_never_outlives_the_old_expiry(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    old = api.create("acct-a", "short", expires_in_days=1).body
    new = api.roll("acct-a", old["id"], grace=7 * 86400).body
    lifetime = _parse(new["expires_at"]) - _parse(new["created_at"])
    assert timedelta(days=1) - timedelta(seconds=1) <= lifetime <= timedelta(days=1)
    old_now = api.get("acct-a", old["id"]).body
    assert old_now["status"] == "rolling" and old_now["expires_at"] == old["expires_at"]


@pytest.mark.parametrize(
    "raw", ['{"grace_period_seconds": -1}', '{"grace_period_seconds": 604801}', '{"grace_period_seconds": "60"}', "["]
)
def test_bad_roll_bodies_are_400_and_change_nothing(api: Api, raw: str) -> None:
    api.set_plan("acct-a", "pro")
    old = api.create("acct-a").body
    reply = api.roll("acct-a", old["id"], raw_body=raw)
    assert reply.status == 400 and reply.body["error"]["code"] == "invalid_request"
    assert [k["id"] for k in api.list("acct-a").body["keys"]] == [old["id"]]
    assert api.bearer(old["key"]) is not None


def test_roll_respects_tenants_and_refuses_expired_keys(api: Api, travel: Any) -> None:
    api.set_plan("acct-a", "pro")
    old = api.create("acct-a", expires_in_days=1).body
    assert api.roll("acct-b", old["id"]).status == 404
    assert api.roll(None, old["id"]).status == 401
    travel(86401)
    expired = api.roll("acct-a", old["id"])
    assert expired.status == 409 and expired.body["error"]["code"] == "conflict"


def test_plan_change_reaches_keys_in_their_grace_period(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    old = api.create("acct-a").body
    new = api.roll("acct-a", old["id"], grace=600).body
    api.set_plan("acct-a", "agency")
    assert api.bearer(old["key"])["context"]["plan"] == "agency"  # type: ignore[index]
    assert api.bearer(new["key"])["context"]["plan"] == "agency"  # type: ignore[index]


@pytest.mark.parametrize("grace", [0, 60])
def test_concurrent_rolls_of_one_key_exactly_one_succeeds(local_db: str, grace: int) -> None:
    api = Api()
    api.set_plan("acct-roll", "pro")
    old = api.create("acct-roll", "contended").body
    events = [
        rest_event(
            "POST",
            f"/keys/{old['id']}/roll",
            "acct-roll",
            body={"grace_period_seconds": grace},
            path_parameters={"key_id": old["id"]},
        )
        for _ in range(5)
    ]
    statuses = race("roll_key", events)
    assert statuses.count(201) == 1, statuses
    assert set(statuses) <= {201, 404 if grace == 0 else 409}, statuses
    listing = api.list("acct-roll").body
    assert listing["key_count"] == 1
    assert len(listing["keys"]) == (1 if grace == 0 else 2)


def test_every_read_of_the_table_is_strongly_consistent(api: Api) -> None:
    """A deleted key is refused on the very next request only if no read can return the table
    as it was a moment ago. Both engines always answer consistently, so the request itself is
    checked: every GetItem, table Query and Scan of a key's whole life asks for a strong read."""
    from apikeys.store import dynamodb_client

    reads: list[tuple[str, object]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name in ("GetItem", "Query", "Scan") and "IndexName" not in params:
            reads.append((model.name, params.get("ConsistentRead")))

    client = dynamodb_client()
    client.meta.events.register("provide-client-params.dynamodb", record)
    try:
        api.set_plan("acct-a", "pro")
        created = api.create("acct-a", "CI").body
        api.secrets.append(created["key"])
        assert api.bearer(created["key"]) is not None
        assert api.get("acct-a", created["id"]).status == 200 and api.list("acct-a").status == 200
        rolled = api.roll("acct-a", created["id"]).body
        api.secrets.append(rolled["key"])
        assert api.delete("acct-a", rolled["id"]).status == 204
        assert api.bearer(rolled["key"]) is None
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb", record)
    assert {name for name, _ in reads} >= {"GetItem", "Query"}
    assert [read for read in reads if read[1] is not True] == []


@pytest.mark.parametrize("same", ["key", "id"])
def test_a_create_whose_new_key_collides_with_a_stored_one_writes_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch, same: str
) -> None:
    """As for a roll (tests/contract/test_patch_and_roll.py): a key or key id that collided
    would fail the create rather than overwrite the other key's items or take its slot twice."""
    from apikeys import keys

    api.set_plan("acct-a", "pro")
    other = api.create("acct-a", "other").body
    api.secrets.append(other["key"])
    with monkeypatch.context() as patched:
        if same == "key":
            patched.setattr(keys, "generate", lambda prefix: other["key"])
        else:
            patched.setattr(keys, "new_key_id", lambda: other["id"])
        refused = api.create("acct-a", "twin")
    assert refused.status == 500 and refused.body["error"]["code"] == "internal_error"  # loud: it cannot happen
    answer = api.bearer(other["key"])
    assert answer is not None and answer["context"]["key_id"] == other["id"]
    listing = api.list("acct-a").body
    assert listing["key_count"] == 1 and [k["name"] for k in listing["keys"]] == ["other"]
