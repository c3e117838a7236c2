"""Issue 23's read side, on moto and on DynamoDB Local: GET /keys/{key_id}/usage, each key
object's `requests_30d` and `created_by`, and what GET /keys costs. Usage is seeded as the
authorizer's side writes it (tests/helpers/usage.py); days are UTC days of the service's clock,
which the tests pin and move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest

from apikeys import clock
from apikeys.config import get_settings
from tests.helpers.support import Api, CallCounter
from tests.helpers.usage import day, seed_usage

# The last millisecond of a UTC day: a moment later is another day.
MOMENT = datetime(2027, 3, 1, 23, 59, 59, 999_000, tzinfo=UTC)


@pytest.fixture
def set_clock(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Pin the service's clock at a moment (MOMENT unless moved)."""
    now = [MOMENT]
    monkeypatch.setattr(clock, "now", lambda: now[0])

    def move(moment: datetime) -> None:
        now[0] = moment

    return move


@pytest.fixture
def keys(api: Api, set_clock: Any) -> dict[str, Any]:
    """acct-a on agency with two keys, and acct-b with one."""
    api.set_plan("acct-a", "agency")
    api.set_plan("acct-b", "pro")
    first, second = api.create("acct-a", "Zapier").body, api.create("acct-a", "CI").body
    return {"a": first["id"], "b": second["id"], "other": api.create("acct-b", "Not yours").body["id"]}


def _table() -> list[dict[str, Any]]:
    items = boto3.client("dynamodb").scan(TableName=get_settings().table_name, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


def test_usage_is_exactly_n_days_oldest_first_zero_filled_and_ends_today(api: Api, keys: dict[str, Any]) -> None:
    seed_usage("acct-a", {day(MOMENT): {keys["a"]: 5, keys["b"]: 1}, day(MOMENT, 2): {keys["a"]: 3}})
    reply = api.usage("acct-a", keys["a"], 7)
    assert reply.status == 200 and reply.headers["Cache-Control"] == "no-store"
    assert reply.body == {
        "key_id": keys["a"],
        "days": [
            {"date": "2027-02-23", "requests": 0},
            {"date": "2027-02-24", "requests": 0},
            {"date": "2027-02-25", "requests": 0},
            {"date": "2027-02-26", "requests": 0},
            {"date": "2027-02-27", "requests": 3},
            {"date": "2027-02-28", "requests": 0},
            {"date": "2027-03-01", "requests": 5},
        ],
        "total": 8,
    }
    # A key never used: every day is there, each 0.
    unused = api.usage("acct-a", keys["b"], 3).body
    assert unused == {
        "key_id": keys["b"],
        "days": [
            {"date": "2027-02-27", "requests": 0},
            {"date": "2027-02-28", "requests": 0},
            {"date": "2027-03-01", "requests": 1},
        ],
        "total": 1,
    }


def test_days_default_to_30_and_go_up_to_90_and_the_last_is_today_when_the_clock_moves(
    api: Api, keys: dict[str, Any], set_clock: Any
) -> None:
    default = api.usage("acct-a", keys["a"]).body
    assert len(default["days"]) == 30 and default["days"][0]["date"] == "2027-01-31"
    assert default["days"][-1]["date"] == "2027-03-01"
    assert [d["date"] for d in default["days"]] == sorted(d["date"] for d in default["days"])
    longest = api.usage("acct-a", keys["a"], 90).body["days"]
    assert len(longest) == 90 and (longest[0]["date"], longest[-1]["date"]) == ("2026-12-02", "2027-03-01")
    assert len({d["date"] for d in longest}) == 90
    assert api.usage("acct-a", keys["a"], 1).body["days"] == [{"date": "2027-03-01", "requests": 0}]

    seed_usage("acct-a", {"2027-03-02": {keys["a"]: 4}})  # counted after midnight UTC
    assert api.usage("acct-a", keys["a"], 1).body["total"] == 0  # still 1 March: tomorrow is not in it
    set_clock(MOMENT + timedelta(milliseconds=1))
    moved = api.usage("acct-a", keys["a"], 2).body
    assert moved["days"] == [{"date": "2027-03-01", "requests": 0}, {"date": "2027-03-02", "requests": 4}]
    # The UTC day, whatever time zone the clock's value carries.
    set_clock(datetime(2027, 3, 2, 1, 0, tzinfo=UTC).astimezone(ZoneInfo("America/Denver")))  # 1 March there
    assert api.usage("acct-a", keys["a"], 1).body["days"] == [{"date": "2027-03-02", "requests": 4}]


# Not plain ASCII digits naming 1-90, or given twice (one table for all: each case would cost a setup).
BAD_DAYS: list[str | list[str]] = [
    "0", "91", "-1", "+5", " 5", "5 ", "5.0", "1e1", "0x10", "abc", "", "٣", "99999", ["5", "5"], ["5", "6"],
]  # fmt: skip


def test_a_bad_days_is_a_400_before_any_read_and_changes_nothing(
    api: Api, keys: dict[str, Any], calls: CallCounter
) -> None:
    seed_usage("acct-a", {day(MOMENT): {keys["a"]: 5}})
    before = _table()
    calls.reset()
    for days in BAD_DAYS:
        for key_id in (keys["a"], keys["other"], "key_00000000000000000000"):
            reply = api.usage("acct-a", key_id, days)
            assert reply.status == 400, (days, reply.body)
            assert reply.body["error"]["code"] == "invalid_request" and set(reply.body["error"]) == {"code", "message"}
            assert "days" in reply.body["error"]["message"], days
    assert calls.calls == []
    assert _table() == before


def test_an_unknown_query_parameter_is_a_400(api: Api, keys: dict[str, Any]) -> None:
    from tests.helpers.support import rest_event

    event = rest_event(
        "GET",
        f"/keys/{keys['a']}/usage",
        "acct-a",
        path_parameters={"key_id": keys["a"]},
        query={"day": ["7"]},
    )
    reply = api._invoke("key_usage", event)
    assert reply.status == 400 and reply.body["error"]["code"] == "invalid_request"
    assert "'day'" in reply.body["error"]["message"]


def test_another_accounts_key_an_unknown_and_a_deleted_key_are_404_as_for_get(api: Api, keys: dict[str, Any]) -> None:
    seed_usage("acct-b", {day(MOMENT): {keys["other"]: 9}})
    seed_usage("acct-a", {day(MOMENT): {keys["other"]: 9}})  # even a count under the wrong account
    assert api.delete("acct-a", keys["b"]).status == 204
    for key_id in (keys["other"], "key_00000000000000000000", keys["b"], "../keys", "key_short"):
        got, usage = api.get("acct-a", key_id), api.usage("acct-a", key_id)
        assert (usage.status, usage.body) == (got.status, got.body) == (404, got.body), key_id
        assert usage.body["error"]["code"] == "not_found"
    assert api.usage("acct-b", keys["other"]).body["total"] == 9  # its owner sees it
    assert api.usage(None, keys["a"]).status == 401


def test_requests_30d_sums_today_and_the_29_days_before_it_on_every_key_object(api: Api, keys: dict[str, Any]) -> None:
    a, b = keys["a"], keys["b"]
    seed_usage(
        "acct-a",
        {
            day(MOMENT, -1): {a: 10_000},  # tomorrow: not yet
            day(MOMENT): {a: 5},
            day(MOMENT, 1): {a: 3},
            day(MOMENT, 10): {b: 2},
            day(MOMENT, 29): {a: 7},  # the 30th day back from today included
            day(MOMENT, 30): {a: 1_000, b: 1_000},  # day 31: out
        },
    )
    seed_usage("acct-b", {day(MOMENT): {a: 50}})  # another account's partition never counts
    listed = api.list("acct-a").body
    assert {k["id"]: k["requests_30d"] for k in listed["keys"]} == {a: 15, b: 2}
    by_day = listed["requests_by_day"]
    assert len(by_day["days"]) == 30 and (by_day["days"][0], by_day["days"][-1]) == ("2027-01-31", "2027-03-01")
    assert by_day["keys"][a] == [7] + [0] * 27 + [3, 5]
    assert by_day["keys"][b] == [0] * 19 + [2] + [0] * 10
    assert set(by_day["keys"]) == {a, b}
    assert api.get("acct-a", a).body["requests_30d"] == 15
    assert api.rename("acct-a", a, "Zapier prod").body["requests_30d"] == 15
    assert api.patch("acct-a", b, {"scopes": ["whoami"]}).body["requests_30d"] == 2
    assert api.usage("acct-a", a, 30).body["total"] == 15
    assert api.usage("acct-a", a, 31).body["total"] == 1_015
    # A new key, created or rolled, has had no requests.
    assert api.create("acct-a", "New").body["requests_30d"] == 0
    assert api.roll("acct-a", a).body["requests_30d"] == 0


def test_list_is_two_queries_get_a_read_and_a_query_usage_two_queries(
    api: Api, keys: dict[str, Any], calls: CallCounter
) -> None:
    seed_usage("acct-a", {day(MOMENT, n): {keys["a"]: n + 1, keys["b"]: 1} for n in range(90)})
    calls.reset()
    assert api.list("acct-a").status == 200
    assert calls.calls == ["Query", "Query"]  # the keys and plan (one per page), then 30 days of usage
    calls.reset()
    assert api.get("acct-a", keys["a"]).status == 200
    assert calls.calls == ["GetItem", "Query"]
    calls.reset()
    assert api.usage("acct-a", keys["a"], 90).body["total"] == sum(range(1, 91))
    assert calls.calls == ["Query", "Query"]  # the key, then its days (90 days: one page)
    calls.reset()
    assert api.create("acct-a", "Another").status == 201
    assert calls.calls == ["TransactWriteItems"]  # no read added to a create


CLAIMS_CASES: list[tuple[dict[str, str], str]] = [
    ({"email": "ana@example.com", "cognito:username": "ana", "email_verified": "true"}, "ana@example.com"),
    ({"email": "ana@example.com", "cognito:username": "ana"}, "ana@example.com"),
    ({"cognito:username": "ana"}, "ana"),
    ({"email": "  ", "cognito:username": "ana"}, "ana"),
    # An address nobody verified could name anyone: the username stands in.
    ({"email": "boss@example.com", "email_verified": "false", "cognito:username": "ana"}, "ana"),
    ({}, "acct-a"),  # the sub (here also the account claim)
]


def test_created_by_comes_from_email_else_username_else_sub_on_create_and_roll(api: Api, keys: dict[str, Any]) -> None:
    for claims, expected in CLAIMS_CASES:
        created = api.create("acct-a", "Made", claims=claims).body
        assert created["created_by"] == expected, claims
        assert api.get("acct-a", created["id"]).body["created_by"] == expected
        listed = api.list("acct-a").body["keys"]
        assert next(k for k in listed if k["id"] == created["id"])["created_by"] == expected
        assert api.rename("acct-a", created["id"], "Renamed").body["created_by"] == expected  # a rename keeps it
        rolled = api.roll("acct-a", created["id"], claims=claims).body  # a roll says who rolled
        assert rolled["created_by"] == expected, claims
        assert api.get("acct-a", rolled["id"]).body["created_by"] == expected
        assert api.delete("acct-a", rolled["id"]).status == 204  # room for the next case


def test_a_roll_says_who_rolled_not_who_created(api: Api, keys: dict[str, Any]) -> None:
    made = api.create("acct-a", "Shared", claims={"email": "ana@example.com"}).body
    rolled = api.roll("acct-a", made["id"], grace=60, claims={"email": "bo@example.com"}).body
    listed = {k["id"]: k["created_by"] for k in api.list("acct-a").body["keys"]}
    assert (listed[made["id"]], listed[rolled["id"]]) == ("ana@example.com", "bo@example.com")
