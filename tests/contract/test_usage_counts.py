"""Usage counts (issue 23), the recording half: every authorization the authorizer grants is
counted for its key by UTC day, on every front door; denials never are; the request still makes
exactly one read, and the counts of an account are written at most once a minute per container;
what a container can lose is bounded; the items live 90 full days. On moto and DynamoDB Local,
the clock moved by the test (apikeys/clock.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import boto3
import pytest

from apikeys import clock, keys, usage
from apikeys.config import get_settings
from tests.helpers.support import (
    ROOT,
    Api,
    CallCounter,
    LambdaContext,
    fresh_container,
    http_api_event,
    load_function,
    request_event,
    token_event,
)

MIDNIGHT = 1_800_057_600  # 2027-01-16T00:00:00Z
EVENTS = ROOT / "events"


def counts(account: str, day: str) -> dict[str, int]:
    """The usage item of `account` and `day` as stored: key id -> requests (read raw: the
    read side is another module's)."""
    item = (
        boto3.client("dynamodb")
        .get_item(
            TableName=get_settings().table_name,
            Key={"pk": {"S": f"ACCOUNT#{account}"}, "sk": {"S": f"USAGE#{day}"}},
            ConsistentRead=True,
        )
        .get("Item", {})
    )
    return {name.removeprefix("n_"): int(value["N"]) for name, value in item.items() if name.startswith("n_")}


def usage_item(account: str, day: str) -> dict[str, Any]:
    key = {"pk": {"S": f"ACCOUNT#{account}"}, "sk": {"S": f"USAGE#{day}"}}
    table = get_settings().table_name
    return dict(boto3.client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True)["Item"])


def sample(name: str, key: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text().replace("ot_PASTE_A_KEY_HERE", key))
    return event


def appsync(token: str) -> dict[str, Any]:
    event = sample("authorizer_appsync.json", "")
    event["authorizationToken"] = event["requestHeaders"]["authorization"] = token
    return event


def today() -> str:
    return clock.now().date().isoformat()


def test_every_front_door_counts_a_granted_authorization_for_its_key(api: Api) -> None:
    """REST TOKEN and REQUEST, HTTP API 2.0, WebSocket `$connect`, AppSync: one each."""
    api.set_plan("acct-a", "pro")
    first, second = api.create("acct-a", "one").body, api.create("acct-a", "two").body
    doors = [
        token_event(f"Bearer {first['key']}"),
        request_event({"Authorization": f"Bearer {first['key']}"}),
        http_api_event({"authorization": f"Bearer {first['key']}"}),
        sample("authorizer_websocket.json", first["key"]),
        appsync(first["key"]),
        appsync(f"Bearer {second['key']}"),
    ]
    for event in doors:
        assert api.authorize(event) not in (None, {"isAuthorized": False})
    usage.flush()
    assert counts("acct-a", today()) == {first["id"]: 5, second["id"]: 1}


def test_denials_are_not_counted(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown, tampered, deleted and expired keys, a plan that allows no keys (an explicit Deny),
    and a scoped key outside its scopes on each front door: nothing counted. The same scoped key
    on its own route is."""
    api.set_plan("acct-a", "advanced")
    live = api.create("acct-a", "live").body
    doomed = api.create("acct-a", "doomed").body
    expiring = api.create("acct-a", "expiring", expires_in_days=1).body
    scoped = api.create("acct-a", "scoped", scopes=["whoami"]).body
    assert api.delete("acct-a", doomed["id"]).status == 204
    api.set_plan("acct-none", "pro")
    unpaid = api.create("acct-none", "unpaid").body
    load_function("set_plan").lambda_handler({"account_id": "acct-none", "plan": None}, LambdaContext())
    capabilities = api.create("acct-a", "capabilities", scopes=["keys:read"]).body  # no route at all
    tampered = live["key"][:-1] + ("A" if live["key"][-1] != "A" else "B")

    for key in (keys.generate("ot_"), tampered, doomed["key"]):
        assert api.bearer(key) is None
    assert api.bearer(unpaid["key"])["policyDocument"]["Statement"][0]["Effect"] == "Deny"  # type: ignore[index]
    assert api.bearer(capabilities["key"])["policyDocument"]["Statement"][0]["Effect"] == "Deny"  # type: ignore[index]
    elsewhere = token_event(f"Bearer {scoped['key']}")
    elsewhere["methodArn"] = elsewhere["methodArn"].replace("/GET/v1/whoami", "/GET/v1/other")
    assert api.authorize(elsewhere)["policyDocument"]["Statement"][0]["Effect"] == "Allow"  # type: ignore[index]
    outside = http_api_event({"authorization": f"Bearer {scoped['key']}"})
    outside["routeKey"], outside["rawPath"] = "GET /v1/other", "/v1/other"
    assert api.authorize(outside) == {"isAuthorized": False}
    assert api.authorize(appsync(scoped["key"]))["isAuthorized"] is False  # type: ignore[index]
    ws = api.authorize(sample("authorizer_websocket.json", scoped["key"]))
    assert ws["policyDocument"]["Statement"][0]["Effect"] == "Deny"  # type: ignore[index]
    real_now = clock.now()
    monkeypatch.setattr(clock, "now", lambda: real_now.replace(year=real_now.year + 1))
    assert api.bearer(expiring["key"]) is None
    monkeypatch.setattr(clock, "now", lambda: real_now)
    usage.flush()
    assert counts("acct-a", today()) == {} and counts("acct-none", today()) == {}

    assert api.bearer(scoped["key"]) is not None  # its own route, GET /v1/whoami: counted
    usage.flush()
    assert counts("acct-a", today()) == {scoped["id"]: 1}


def test_one_read_per_authorization_and_one_count_write_per_account_a_minute(
    api: Api, calls: CallCounter, set_clock: Callable[[float], None]
) -> None:
    """The first grant of an account in a container writes at once; the next minute's grants
    wait, whichever key they are for, and go out together with the first grant after it."""
    set_clock(MIDNIGHT + 3600)
    api.set_plan("acct-a", "pro")
    keys_ = [api.create("acct-a", f"k{i}").body for i in range(3)]
    calls.reset()
    grants = [(0, 0), (1, 0), (30, 0), (59.999, 1), (59.999, 2)]
    for seconds, which in grants:
        set_clock(MIDNIGHT + 3600 + seconds)
        assert api.bearer(keys_[which]["key"]) is not None
    reads, writes = calls.calls.count("GetItem"), [c for c in calls.calls if c != "GetItem"]
    assert reads == 5 and writes == ["UpdateItem"] * 4  # one count write, each key's first last-used
    assert counts("acct-a", "2027-01-16") == {keys_[0]["id"]: 1} and usage.pending() == 4

    calls.reset()
    set_clock(MIDNIGHT + 3600 + 60)
    assert api.bearer(keys_[0]["key"]) is not None
    assert calls.calls == ["GetItem", "UpdateItem", "UpdateItem"]  # the counts, then key 0's last-used
    assert counts("acct-a", "2027-01-16") == {keys_[0]["id"]: 4, keys_[1]["id"]: 1, keys_[2]["id"]: 1}
    assert usage.pending() == 0


def test_counts_are_per_utc_day_across_midnight_and_kept_90_full_days(
    api: Api, set_clock: Callable[[float], None]
) -> None:
    """Counted on the UTC day of the authorization, even when written after midnight; each day's
    item has that day's 00:00 UTC + 91 days as its ttl, so the oldest of 90 days is still there."""
    api.set_plan("acct-a", "pro")
    key = api.create("acct-a").body
    for seconds in (-30, -20, -1, 0, 15):  # 23:59:30 ... 00:00:15
        set_clock(MIDNIGHT + seconds)
        assert api.bearer(key["key"]) is not None
    usage.flush()
    assert counts("acct-a", "2027-01-15") == {key["id"]: 3}
    assert counts("acct-a", "2027-01-16") == {key["id"]: 2}
    for day, removable in (
        ("2027-01-15", datetime(2027, 4, 16, tzinfo=UTC)),
        ("2027-01-16", datetime(2027, 4, 17, tzinfo=UTC)),
    ):
        ttl = int(usage_item("acct-a", day)["ttl"]["N"])
        # 91 days after its own 00:00 UTC: a 90-day window that starts on that day ends 89 days
        # later (April 14th for the 15th), and the item is there until April 16th.
        assert datetime.fromtimestamp(ttl, UTC) == removable
        assert (removable.date() - date.fromisoformat(day)).days == 91


def test_a_reclaimed_container_loses_at_most_what_it_counted_in_the_minute_after_its_last_write(
    api: Api, set_clock: Callable[[float], None]
) -> None:
    """The loss bound, shown: a container that ends (fresh_container: its memory is gone) holds
    only grants from the 60 s after its last write for the account. A key used once a minute or
    less loses nothing; a grant 60 s after the last write writes everything held."""
    api.set_plan("acct-a", "pro")
    key = api.create("acct-a").body
    start = MIDNIGHT + 7200
    # A burst: written at once, then 9 grants inside the minute.
    for seconds in (0, 1, 2, 5, 10, 20, 30, 40, 50, 59.9):
        set_clock(start + seconds)
        assert api.bearer(key["key"]) is not None
    assert usage.pending() == 9  # everything counted after the write, all within its minute
    fresh_container()  # reclaimed: the 9 are lost, nothing else
    assert counts("acct-a", "2027-01-16") == {key["id"]: 1}

    # Once a minute: every use written on its own request, nothing held when the container ends.
    for minute in range(1, 4):
        set_clock(start + 60 * minute)
        assert api.bearer(key["key"]) is not None
        assert usage.pending() == 0
    fresh_container()
    assert counts("acct-a", "2027-01-16") == {key["id"]: 4}

    # A burst, then one more grant at least 60 s after the write: nothing held.
    for seconds in (0, 1, 2, 30, 60):
        set_clock(start + 600 + seconds)
        assert api.bearer(key["key"]) is not None
    assert usage.pending() == 0
    fresh_container()
    assert counts("acct-a", "2027-01-16") == {key["id"]: 9}


def test_a_quiet_accounts_counts_go_out_with_another_accounts_grant(
    api: Api, set_clock: Callable[[float], None]
) -> None:
    """A container that stays busy writes what an account that went quiet left behind: each
    grant also writes the oldest other account whose minute has passed."""
    for account in ("acct-a", "acct-b"):
        api.set_plan(account, "pro")
    a, b = api.create("acct-a").body, api.create("acct-b").body
    start = MIDNIGHT + 10_800
    for seconds, key in ((0, a), (5, a), (6, a), (61, b)):
        set_clock(start + seconds)
        assert api.bearer(key["key"]) is not None
    assert counts("acct-a", "2027-01-16") == {a["id"]: 3} and usage.pending() == 0


def test_a_usage_item_removed_by_ttl_changes_no_key_count_and_publishes_nothing(api: Api) -> None:
    """Neither stream consumer's filter lets a usage item's removal through, and either handler
    given one anyway changes nothing."""
    from moto.events.models import EventPattern

    from tests.helpers.streams import TTL_IDENTITY, remove_record
    from tests.helpers.support import load_template

    api.set_plan("acct-a", "pro")
    key = api.create("acct-a").body
    assert api.bearer(key["key"]) is not None
    usage.flush()
    before = api.list("acct-a").body
    record = remove_record(usage_item("acct-a", today()), TTL_IDENTITY)
    resources = load_template()["Resources"]
    for function in ("KeyExpiryFunction", "AuditEventsFunction"):
        (event,) = resources[function]["Properties"]["Events"].values()
        (pattern,) = event["Properties"]["FilterCriteria"]["Filters"]
        assert not EventPattern(pattern["Pattern"], json.loads(pattern["Pattern"])).matches_event(record), function
    for function in ("key_expiry", "audit_events"):
        answer = load_function(function).lambda_handler({"Records": [record]}, LambdaContext(function_name=function))
        assert answer == {"batchItemFailures": []}
    after = api.list("acct-a").body
    assert after["key_count"] == before["key_count"] == 1 and after["keys"] == before["keys"]


@pytest.mark.engines("dynamodb_local")
def test_a_full_agency_account_with_90_days_of_usage_changes_plan(api: Api, calls: CallCounter) -> None:
    """25 keys and 90 usage items in the account's partition: the plan change reads the account
    and its keys in one Query that never reaches a usage item, moves every key, and leaves the
    usage items as they were. Without the Query's bound, it would read 116 items instead of 26.
    DynamoDB Local only: moto copies the whole table for each transaction's rollback, which made
    this one test 8 s of the fast tier's minute."""
    from datetime import timedelta

    from apikeys.store import Store, dynamodb_client

    api.set_plan("acct-big", "agency")
    created = [api.create("acct-big", f"k{i}").body for i in range(25)]
    first = clock.now().date()
    table = get_settings().table_name
    assert Store(table).add_usage("acct-big", first, {k["id"]: 1 for k in created})
    # The 89 days before, as `add_usage` leaves them (tests/unit/test_item_layout.py), in batches.
    items = [
        {
            "pk": {"S": "ACCOUNT#acct-big"},
            "sk": {"S": f"USAGE#{first - timedelta(days=back)}"},
            "ttl": {"N": str(((first - timedelta(days=back)) - date(1970, 1, 1)).days * 86400 + 91 * 86400)},
            **{f"n_{k['id']}": {"N": str(back + 1)} for k in created},
        }
        for back in range(1, 90)
    ]
    client = boto3.client("dynamodb")
    for i in range(0, len(items), 25):
        client.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": item}} for item in items[i : i + 25]]})
    scanned: list[int] = []

    def record(parsed: dict[str, Any], **_: Any) -> None:
        scanned.append(parsed["ScannedCount"])

    client = dynamodb_client()
    client.meta.events.register("after-call.dynamodb.Query", record)
    try:
        for plan, limit in (("advanced", 10), ("agency", 25)):
            calls.reset()
            scanned.clear()
            assert api.set_plan("acct-big", plan)["key_limit"] == limit
            assert calls.calls == ["Query", "TransactWriteItems"] and scanned == [26]
            for key in (created[0], created[-1]):  # (set_plan's transaction moved every digest item)
                assert api.bearer(key["key"])["context"]["plan"] == plan  # type: ignore[index]
    finally:
        client.meta.events.unregister("after-call.dynamodb.Query", record)
    listing = api.list("acct-big").body
    assert listing["key_count"] == 25 == len(listing["keys"])
    assert counts("acct-big", (first - timedelta(days=89)).isoformat()) == {k["id"]: 90 for k in created}
