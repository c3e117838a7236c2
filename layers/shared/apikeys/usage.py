"""A key was used: its `last_used_at` and its count of granted authorizations per UTC day
(issue 23). The authorizer calls `record` for every authorization it grants, on every front
door (REST TOKEN and REQUEST, HTTP API 2.0, WebSocket `$connect`, AppSync); a denial is never
recorded. The request still makes exactly one DynamoDB read: counting is a few dictionary
updates in the container's memory.

**Counts** are kept per account, UTC day and key in the container, and written as one
`UpdateItem … ADD` per account and day (`Store.add_usage`) on the granted request that finds
this container's last write for that account a minute old or more (or none yet), carrying
everything counted since: at most one count write per account, so per key, per container per
minute. That request also writes at most one other account whose minute has passed, so a busy
container writes what quiet accounts left behind. The write is made on the request itself,
not on a thread: Lambda freezes a container between invocations, and a write left to a thread
runs when the container is next invoked, or never. The ADD has no condition (a count never
depends on what another container wrote) and is sent once: botocore does not retry it, because
an ADD applied twice counts twice.

**Last used** is as it was: at most once a minute per key per container, conditional so that
it is once a minute across containers, best effort, on the worker thread.

**What can be late or lost, and how much** (docs/design.md, "Usage counts"):

- Late: counted requests wait in the container until its first granted request at least 60 s
  after its last write for that account (theirs, or another account's, which also writes the
  oldest due one).
- Lost when a container ends (Lambda reclaims an idle container, scales in, deploys): what it
  held, that is, for each account it served, at most what it granted in the 60 s after its
  last write for that account. An account whose requests reach a container at least a minute
  apart loses nothing (each is written on its own request); a burst loses at most its last
  minute: a job sending 50 requests in 10 s once an hour has the first written at once, and the
  other 49 wait for the container's next request, lost if the container is reclaimed before it.
- Lost when a write fails: one DynamoDB refused (throttled, or no connection was made) goes
  back to the pile for the next write (so while DynamoDB refuses, a container holds more than a
  minute, and the bound above counts from its last write that was applied); one whose outcome
  is unknown (a timeout after sending, a 5xx) is dropped and logged as `usage not written`,
  never sent twice: at most one minute of that account in that container.
- Never counted twice, never counted for a denial. The day is the UTC day of the container's
  clock at the authorization.

Tests and the benchmark call `flush()` to write everything now and wait for last-used; the
local server calls it after every invocation of a container, so counts show at once there.
"""

from __future__ import annotations

import functools
import heapq
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime, timedelta

from apikeys import clock, container
from apikeys.config import get_settings
from apikeys.observability import make_logger
from apikeys.records import Principal
from apikeys.store import Store

INTERVAL = 60.0  # seconds: one account's counts, and one key's last-used, per container
LAST_USED_EVERY = timedelta(seconds=INTERVAL)
_MEMORY = 10_000  # entries a warm container remembers of accounts written and keys touched
_EPOCH = date(1970, 1, 1)

Days = dict[int, dict[str, int]]  # UTC day (days since 1970-01-01) -> key id -> requests


class _State:
    """What a container holds between invocations; cleared as a fresh container would start."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.counts: dict[str, Days] = {}  # account -> counted, not yet written
        self.written: dict[str, float] = {}  # account -> when this container last wrote its counts
        self.touched: dict[str, float] = {}  # key id -> when this container last wrote its last-used
        # (moment its counts are due, account) of accounts holding counts; stale entries skipped.
        self.due: list[tuple[float, str]] = []


_state = container.state(_State())
_lock = threading.Lock()


@container.cached
def _store() -> Store:
    return Store(get_settings().table_name)


def record(principal: Principal) -> None:
    """Count one granted authorization of `principal`'s key, write the counts that are due, and
    touch its last-used once a minute. Never raises: the authorization stands whatever happens."""
    moment = clock.now()
    now = moment.timestamp()
    account, key_id = principal.account_id, principal.key_id
    state = _state
    with _lock:
        days = state.counts.get(account)
        last = state.written.get(account)
        if days is None:
            days = state.counts[account] = {}
            if last is not None and now - last < INTERVAL:
                heapq.heappush(state.due, (last + INTERVAL, account))
        day = int(now // 86400)
        keys = days.get(day)
        if keys is None:
            keys = days[day] = {}
        keys[key_id] = keys.get(key_id, 0) + 1
        due = state.due
        due_now = last is None or now - last >= INTERVAL or (due and due[0][0] <= now)
        writes = _take_due(state, account, now) if due_now else ()
        touched = state.touched.get(key_id)
        touch = touched is None or now - touched >= INTERVAL
        if touch:
            if len(state.touched) > _MEMORY:
                state.touched.clear()
            state.touched[key_id] = now
    for due_account, due_days in writes:
        _write(due_account, due_days)
    if touch:
        _touch(principal, moment)


def _take_due(state: _State, account: str, now: float) -> tuple[tuple[str, Days], ...]:
    """Under the lock: the counts to write now (this account's if its minute has passed, and
    the oldest other one that is due), taken out of the pile and marked written."""
    taken: list[str] = []
    last = state.written.get(account)
    if last is None or now - last >= INTERVAL:
        taken.append(account)
    while state.due and state.due[0][0] <= now:
        _, other = heapq.heappop(state.due)
        since = state.written.get(other)
        if other != account and other in state.counts and since is not None and now - since >= INTERVAL:
            taken.append(other)
            break
    if len(state.written) > _MEMORY:  # those a minute old are as good as never written
        state.written = {a: t for a, t in state.written.items() if now - t < INTERVAL or a in state.counts}
    for name in taken:
        state.written[name] = now
    return tuple((name, state.counts.pop(name)) for name in taken)


def _write(account: str, days: Days) -> None:
    """One ADD per day. Refused (not applied): back to the pile for the next write. Unknown
    outcome: dropped, never sent twice."""
    for day, counts in days.items():
        when = _EPOCH + timedelta(days=day)
        try:
            if _store().add_usage(account, when, counts):
                continue
        except Exception:  # noqa: BLE001 - best effort: the authorization stands, the loss is logged
            extra = {"account_id": account, "day": when.isoformat(), "requests": sum(counts.values())}
            make_logger().warning("usage not written", extra=extra)
            continue
        _put_back(account, day, counts)


def _put_back(account: str, day: int, counts: dict[str, int]) -> None:
    with _lock:
        state = _state
        days = state.counts.get(account)
        if days is None:
            days = state.counts[account] = {}
            heapq.heappush(state.due, (state.written.get(account, 0.0) + INTERVAL, account))
        pile = days.setdefault(day, {})
        for key_id, n in counts.items():
            pile[key_id] = pile.get(key_id, 0) + n


# Not registered with `container`: a worker thread, not state. A reset would orphan the thread and
# its pending updates, which `flush` would then no longer wait for.
@functools.cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="last-used")


# A forked child (a pre-forking server, mutmut's workers) inherits the executor but not its
# thread, so its updates would never run: give the child a fresh one.
os.register_at_fork(after_in_child=_executor.cache_clear)


def _touch(principal: Principal, moment: datetime) -> Future[None]:
    """last_used_at off the request path; the store's condition makes it once a minute per key
    across containers."""
    store = _store()

    def touch() -> None:
        try:
            store.touch_last_used(
                principal.account_id, principal.key_id, clock.iso(moment), clock.iso(moment - LAST_USED_EVERY)
            )
        except Exception:  # noqa: BLE001 - best effort by contract; a failure only loses a timestamp
            return

    return _executor().submit(touch)


def wait_for_last_used() -> None:
    """Let pending last-used writes finish. For tests, which read `last_used_at` or count calls
    right after a request (and must not race in-process moto with the worker thread)."""
    _executor().submit(lambda: None).result(timeout=10)


def flush() -> None:
    """Write every count this container holds now, whatever its minute, and wait for last-used:
    the end of a test's or the benchmark's container, and of every local invocation."""
    with _lock:
        state = _state
        writes = list(state.counts.items())
        now = clock.now().timestamp()
        state.counts = {}
        state.due = []
        for account, _ in writes:
            state.written[account] = now
    for account, days in writes:
        _write(account, days)
    wait_for_last_used()


def pending() -> int:
    """Requests counted and not yet written (tests show the loss bound with it)."""
    with _lock:
        return sum(n for days in _state.counts.values() for keys in days.values() for n in keys.values())
