"""Warnings before a key expires (issue 24 item 5), driven day by day with the service's clock
moved: ExpiryNoticesFunction is run as the Scheduler runs it, once or more a day, and the
ApiKeyExpiring events it leaves in the audit outbox are read straight from the table."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from apikeys import clock, container, retries
from apikeys.config import get_settings
from apikeys.store import NoticeStore
from tests.helpers.invariants import check_table
from tests.helpers.support import Api, CallCounter, LambdaContext, load_function

START = datetime(2027, 3, 1, 12, 0, 0, 250_000, tzinfo=UTC)
DAY = 86400


class Calendar:
    """The service's clock, pinned and moved by hand; `run()` is one scheduled run today."""

    def __init__(self) -> None:
        self.now = START

    def advance(self, days: float) -> None:
        self.now += timedelta(days=days)

    def run(self, fresh_container: bool = False) -> dict[str, Any]:
        if fresh_container:
            container.reset()
        result: dict[str, Any] = load_function("expiry_notices").lambda_handler({}, LambdaContext())
        return result


@pytest.fixture
def calendar(monkeypatch: pytest.MonkeyPatch) -> Calendar:
    monkeypatch.setenv("EXPIRY_NOTICE_DAYS", "7,1")
    days = Calendar()
    monkeypatch.setattr(clock, "now", lambda: days.now)
    return days


def warnings() -> list[dict[str, Any]]:
    """Every ApiKeyExpiring in the outbox, oldest notice first, without its id and time."""
    table = get_settings().table_name
    items = boto3.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]
    found = []
    for item in items:
        if item["pk"]["S"].startswith("EVENT#") and item["detail_type"]["S"] == "ApiKeyExpiring":
            detail = json.loads(item["detail"]["S"])
            del detail["event_id"], detail["time"]
            found.append(detail)
    return sorted(found, key=lambda d: (d["key_name"], -d["days_left"]))


def warned(name: str, key: dict[str, Any], days_left: int) -> dict[str, Any]:
    return {
        "account_id": "acct-a",
        "key_id": key["id"],
        "key_name": name,
        "expires_at": key["expires_at"],
        "days_left": days_left,
        "actor": "system",
        "request_id": "",
    }


def test_each_notice_day_warns_a_key_once_however_often_the_run_repeats(api: Api, calendar: Calendar) -> None:
    api.set_plan("acct-a", "pro")
    trial = api.create("acct-a", "Trial", expires_in_days=10).body
    assert trial["expires_at"] == "2027-03-11T12:00:00.000Z"
    api.create("acct-a", "Forever")  # no expiry: never warned
    sent_per_day = []
    for _ in range(12):
        sent_per_day.append(calendar.run()["sent"])
        assert calendar.run()["sent"] == 0  # a second run the same day
        assert calendar.run(fresh_container=True)["sent"] == 0  # and one in a new container
        calendar.advance(1)
    #      03-01 ... 03-04 (7 days left)        03-10 (1 day left), 03-11 expired
    assert sent_per_day == [0, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0]
    assert warnings() == [warned("Trial", trial, 7), warned("Trial", trial, 1)]
    check_table(get_settings().table_name)


def test_a_deleted_or_rolled_key_is_never_warned_and_a_replacement_is_for_its_own_date(
    api: Api, calendar: Calendar
) -> None:
    api.set_plan("acct-a", "pro")
    deleted = api.create("acct-a", "Deleted", expires_in_days=7).body
    graced = api.create("acct-a", "Graced", expires_in_days=7).body
    rolled = api.create("acct-a", "Rolled", expires_in_days=7).body
    assert api.delete("acct-a", deleted["id"]).status == 204
    # Rolled out with a grace period (working a day more) and at once: each replaced by a new key
    # of the same lifetime, expiring a day later than the key it replaced.
    calendar.advance(1)
    new_graced = api.roll("acct-a", graced["id"], grace=DAY).body
    new_rolled = api.roll("acct-a", rolled["id"]).body
    assert [api.get("acct-a", graced["id"]).body["status"], new_graced["expires_at"]] == [
        "rolling",
        "2027-03-09T12:00:00.000Z",
    ]
    assert calendar.run()["sent"] == 2  # 03-02: the replacements are 7 days from expiry
    calendar.advance(5)
    assert calendar.run()["sent"] == 0  # 03-07: the old keys would be 1 day from expiry, the new ones 2
    assert warnings() == [warned("Graced", new_graced, 7), warned("Rolled", new_rolled, 7)]
    check_table(get_settings().table_name)  # the rolled-out key left the index


def test_a_key_without_expiry_is_never_warned(api: Api, calendar: Calendar) -> None:
    api.set_plan("acct-a", "pro")
    api.create("acct-a", "Forever")
    for _ in range(3):
        assert calendar.run() == {"day": calendar.now.date().isoformat(), "checked": 0, "sent": 0}
        calendar.advance(180)
    assert warnings() == []


def test_a_key_made_inside_the_window_or_missed_by_a_run_is_warned_on_the_next_run(
    api: Api, calendar: Calendar
) -> None:
    api.set_plan("acct-a", "pro")
    short = api.create("acct-a", "Short", expires_in_days=3).body  # already inside the 7-day window
    later = api.create("acct-a", "Missed", expires_in_days=9).body
    assert calendar.run()["sent"] == 1  # 03-01: Short, 3 days left (due the 7-day notice)
    calendar.advance(3)
    assert calendar.run()["sent"] == 1  # 03-04: the runs of 03-02 and 03-03 never happened
    assert warnings() == [warned("Missed", later, 6), warned("Short", short, 3)]


def test_a_key_renewed_to_a_new_date_is_warned_for_that_date(api: Api, calendar: Calendar) -> None:
    """No route renews a key today; a renewal rewrites the key item with its new expiry, as every
    Put of a key item does (the store's one key layout), and the run follows the new date."""
    from apikeys.store import _key_item

    api.set_plan("acct-a", "pro")
    key = api.create("acct-a", "Renewed", expires_in_days=10).body
    db = NoticeStore(get_settings().table_name)
    record = db.get_key("acct-a", key["id"])
    assert record is not None and record.expires_at_epoch is not None
    renewed = record.__class__(**{**vars(record), "expires_at_epoch": record.expires_at_epoch + 20 * DAY})
    db.client.put_item(TableName=db.table, Item=_key_item("acct-a", renewed))
    calendar.advance(3)
    assert calendar.run()["sent"] == 0  # 03-04: 7 days from the old date, 27 from the new one
    calendar.advance(20)
    assert calendar.run()["sent"] == 1  # 03-24: 7 days from the new date
    assert warnings() == [warned("Renewed", {**key, "expires_at": "2027-03-31T12:00:00.000Z"}, 7)]


def test_a_key_rolled_after_the_run_read_it_gets_no_notice(api: Api, calendar: Calendar) -> None:
    """The notice's transaction checks the key is as the run read it."""
    from apikeys import audit

    api.set_plan("acct-a", "pro")
    key = api.create("acct-a", "Raced", expires_in_days=7).body
    db = NoticeStore(get_settings().table_name)
    record = db.get_key("acct-a", key["id"])
    assert record is not None
    assert api.roll("acct-a", key["id"], grace=60).status == 201
    event = audit.event(audit.KEY_EXPIRING, audit.Caller(), "acct-a", key_id=key["id"], key_name="Raced")
    assert db.put_expiry_notice("acct-a", record, 7, event) is False
    assert warnings() == []


def test_a_key_already_warned_costs_a_repeated_run_a_read_and_no_write(
    api: Api, calendar: Calendar, calls: CallCounter
) -> None:
    """The run reads the notice's marker before it writes: the day's second run finds it."""
    api.set_plan("acct-a", "pro")
    api.create("acct-a", "Warned", expires_in_days=7)
    assert calendar.run()["sent"] == 1
    calls.reset()
    assert calendar.run()["sent"] == 0
    assert "GetItem" in calls.calls and "TransactWriteItems" not in calls.calls


def test_two_runs_that_both_read_a_key_before_either_wrote_warn_it_once(
    api: Api, calendar: Calendar, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The marker's condition, not the run's read of it, is what makes a notice unique."""
    api.set_plan("acct-a", "pro")
    api.create("acct-a", "Raced", expires_in_days=7)
    monkeypatch.setattr(NoticeStore, "notice_sent", lambda *_: False)  # as if both read first
    assert [calendar.run()["sent"], calendar.run(fresh_container=True)["sent"]] == [1, 0]
    assert len(warnings()) == 1


@pytest.fixture
def deadline_after(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """The invocation's budget runs out after n more keys (a fake of `retries.retrying`)."""
    left: list[int] = [10**9]
    real = retries.retrying

    def retrying(delay: float = 0.0) -> bool:
        left[0] -= 1
        return left[0] >= 0 and real(delay)

    monkeypatch.setattr(retries, "retrying", retrying)

    def set_left(n: int) -> None:
        left[0] = n

    return set_left


def test_a_run_cut_short_by_its_deadline_fails_and_its_rerun_sends_only_the_rest(
    api: Api, calendar: Calendar, deadline_after: Callable[[int], None]
) -> None:
    from apikeys.expiry_notices import RunCutShort

    api.set_plan("acct-a", "advanced")
    made = [api.create("acct-a", f"Key {n}", expires_in_days=7).body for n in range(5)]
    deadline_after(2)
    with pytest.raises(RunCutShort, match="after 2 keys"):
        calendar.run()
    assert len(warnings()) == 2
    deadline_after(10**9)
    assert calendar.run() == {"day": "2027-03-01", "checked": 5, "sent": 3}
    assert sorted(w["key_id"] for w in warnings()) == sorted(k["id"] for k in made)


def _written_before_the_index(table: str) -> list[dict[str, Any]]:
    """The key items, as the one-off backfill finds them: without `expires_on` (removed here, as
    items written before issue 24 never had it), in the order a Scan returns them."""
    db = boto3.client("dynamodb")
    items = [i for i in db.scan(TableName=table, ConsistentRead=True)["Items"] if i["sk"]["S"].startswith("KEY#")]
    for item in items:
        db.update_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]}, UpdateExpression="REMOVE expires_on")
    return [i for i in db.scan(TableName=table, ConsistentRead=True)["Items"] if i["sk"]["S"].startswith("KEY#")]


def _expires_on(table: str, item: dict[str, Any]) -> str | None:
    key = {"pk": item["pk"], "sk": item["sk"]}
    found = boto3.client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    return found["expires_on"]["S"] if "expires_on" in found else None


def _set_ttl(table: str, item: dict[str, Any], ttl: int) -> None:
    key = {"pk": item["pk"], "sk": item["sk"]}
    boto3.client("dynamodb").update_item(
        TableName=table, Key=key, UpdateExpression="SET #t = :t", ExpressionAttributeNames={"#t": "ttl"},
        ExpressionAttributeValues={":t": {"N": str(ttl)}},
    )  # fmt: skip


def test_the_backfill_skips_a_key_expiring_this_second_and_adds_the_keys_after_it(api: Api, calendar: Calendar) -> None:
    api.set_plan("acct-a", "pro")
    for name in ("One", "Two", "Three"):
        api.create("acct-a", name, expires_in_days=30)
    table = get_settings().table_name
    first, *rest = _written_before_the_index(table)
    now = int(calendar.now.timestamp())
    _set_ttl(table, first, now)  # expires this very second: no notice is due it any more
    assert NoticeStore(table).backfill_expiry_days(now) == 2
    assert [_expires_on(table, item) for item in (first, *rest)] == [None, "2027-03-31", "2027-03-31"]


def test_the_backfill_reads_every_page_and_leaves_a_key_renewed_since_its_scan_alone(
    api: Api, calendar: Calendar
) -> None:
    """Its Scan read a page at a time (one item each here), and a key whose expiry changed
    between the Scan and the Update is not added with the day it no longer expires on."""
    api.set_plan("acct-a", "pro")
    for name in ("One", "Two", "Three"):
        api.create("acct-a", name, expires_in_days=30)
    table = get_settings().table_name
    items = _written_before_the_index(table)
    renewed = items[1]
    client = boto3.client("dynamodb")

    class OnePageAtATime:
        """The store's client, with a page of one item and the renewal slipped in before the Update."""

        def scan(self, **kwargs: Any) -> Any:
            return client.scan(**kwargs, Limit=1)

        def update_item(self, **kwargs: Any) -> Any:
            if kwargs["Key"] == {"pk": renewed["pk"], "sk": renewed["sk"]}:
                _set_ttl(table, renewed, int(calendar.now.timestamp()) + 60 * DAY)
            return client.update_item(**kwargs)

    notices = NoticeStore(table, OnePageAtATime())  # type: ignore[arg-type]
    assert notices.backfill_expiry_days(int(calendar.now.timestamp())) == 2
    assert [_expires_on(table, item) for item in items] == ["2027-03-31", None, "2027-03-31"]
