"""Warnings before a key expires (issue 24 item 5): which keys a daily run warns, and how each
notice is sent at most once. EventBridge Scheduler starts the run (template.yaml); nothing here
keeps time.

A key is `n` days from its expiry when its expiry's UTC day is `n` days after the run's UTC day.
It is due the notice of the nearest notice day at or beyond `n` (ExpiryNoticeDays, e.g. `7,1`):
on exactly that day normally, and on the next run if it was created inside the window or a run
was missed. Each (key, expiry, notice day) is sent once: its marker is written with its outbox
event, on the condition that it is new. A deleted, rolled-out or renewed key is skipped (and the
transaction checks it is still as read). Nearest days go first; before the invocation's deadline
(retries.py) the run stops and fails, so Lambda runs it again, and a re-run sends only the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from apikeys import audit, clock, retries
from apikeys.audit import Caller
from apikeys.config import get_notice_days, get_settings
from apikeys.errors import InvalidRequest
from apikeys.logic import expires_at
from apikeys.store import NoticeStore, expiry_day


@dataclass(frozen=True)
class Notice:
    """One ApiKeyExpiring sent: `days_left` of the key, for the notice day `notice_days`."""

    account_id: str
    key_id: str
    days_left: int
    notice_days: int


@dataclass
class RunResult:
    day: date
    checked: int = 0  # keys the index listed in the window
    sent: list[Notice] = field(default_factory=list)


class RunCutShort(RuntimeError):
    """The invocation's deadline came before every key in the window was checked. The run fails,
    so Lambda runs it again (and in the end, its on-failure queue is alarmed)."""


def due_notice(days_left: int, notice_days: Sequence[int]) -> int:
    """The notice a key `days_left` days from expiry (1..max(notice_days)) is due."""
    return min(d for d in notice_days if d >= days_left)


def run_day(event: Any) -> date:
    """The UTC day a run is for: the Scheduler's `scheduled_time` (a retry hours later, past
    midnight, is still that day's run), else today."""
    raw = event.get("scheduled_time") if isinstance(event, dict) else None
    if raw is None:
        return clock.now().astimezone(UTC).date()
    try:
        moment = datetime.fromisoformat(str(raw))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise InvalidRequest(
            f"scheduled_time must be an ISO 8601 time with a zone, e.g. 2027-03-01T09:00:00Z; got {str(raw)[:40]!r}"
        )
    return moment.astimezone(UTC).date()


def send_due(day: date, sent: Callable[[Notice], None] = lambda _: None) -> RunResult:
    """Send every notice due on `day`; `sent` hears of each as it commits."""
    notice_days = get_notice_days()
    db = NoticeStore(get_settings().table_name)
    now = clock.now().timestamp()
    result = RunResult(day)
    for days_left in range(1, max(notice_days) + 1):
        notice = due_notice(days_left, notice_days)
        expiring_on = (day + timedelta(days=days_left)).isoformat()
        for account_id, key_id in db.keys_expiring_on(expiring_on):
            # Each key is one more pass of the run's loop: from here on every attempt is held to
            # the deadline, and a key is begun only if its two calls can still end before it.
            if not retries.retrying(retries.ATTEMPT_RESERVE):
                raise RunCutShort(
                    f"Expiry notices of {day}: deadline reached after {result.checked} keys "
                    f"({len(result.sent)} notices sent); the retry sends the rest."
                )
            result.checked += 1
            key = db.get_key(account_id, key_id)
            # Deleted, rolled out or renewed to another day since the index (eventually
            # consistent) listed it, or expired since the run's day began.
            if key is None or expiry_day(key) != expiring_on or (key.expires_at_epoch or 0) <= now:
                continue
            if db.notice_sent(account_id, key, notice):
                continue
            event = audit.event(
                audit.KEY_EXPIRING,
                Caller(audit.SYSTEM_ACTOR),
                account_id,
                key_id=key_id,
                key_name=key.name,
                expires_at=expires_at(key),
                days_left=days_left,
            )
            if db.put_expiry_notice(account_id, key, notice, event):
                done = Notice(account_id, key_id, days_left, notice)
                result.sent.append(done)
                sent(done)
    return result


def backfill() -> int:
    """Put keys stored before the notices existed (no `expires_on`) in the index, so they are
    warned too; a one-off migration (scripts/backfill_expiry_days.py), safe to re-run."""
    return NoticeStore(get_settings().table_name).backfill_expiry_days(int(clock.now().timestamp()))
