"""The key lifecycle: what create, list, delete and set-plan mean, independent of HTTP.

Plan limits are decided by DynamoDB's transaction condition, never by a read in Python;
this module only supplies the plan it expects the account to be on and reacts to the answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from apikeys import audit, clock, container, keys, plans, retries, scopes
from apikeys.audit import Caller
from apikeys.config import get_scope_catalogue, get_settings
from apikeys.errors import Conflict, InvalidRequest, KeyLimitReached, NotFound, ServiceUnavailable
from apikeys.observability import count
from apikeys.records import KeyRecord, Revocation
from apikeys.store import AccountMismatch, Store

_ACCOUNT_ID_RE = re.compile(r"[^\x00-\x1f\x7f]{1,128}")
# Per-container guess of each account's plan, so a create needs no read: DynamoDB checks
# the guess inside the transaction and returns the real plan when it is wrong.
_plan_guess: dict[str, str | None] = container.state({})
_PLAN_GUESS_MAX = 10_000


@dataclass(frozen=True)
class CreatedKey:
    record: KeyRecord
    secret: str  # the full key: returned once to the caller, never stored or logged


def status(record: KeyRecord, now: float | None = None) -> str:
    """`expired` from the second its expiry passes (even before DynamoDB removes it),
    `rolling` while a rolled-out key is in its grace period, else `active`."""
    moment = clock.now().timestamp() if now is None else now
    if record.expires_at_epoch is not None and moment >= record.expires_at_epoch:
        return "expired"
    return "rolling" if record.rolling else "active"


def expires_at(record: KeyRecord) -> str | None:
    if record.expires_at_epoch is None:
        return None
    return clock.iso(datetime.fromtimestamp(record.expires_at_epoch, UTC))


@dataclass(frozen=True)
class RecentRequests:
    """The account's usage over the last RECENT_DAYS UTC days (oldest first, today last): what
    every key object's `requests_30d` sums, from one Query (issue 23)."""

    days: list[str]  # YYYY-MM-DD
    by_day: dict[str, dict[str, int]]  # as Store.usage answers: day -> key id -> count

    def of(self, key_id: str) -> list[int]:
        """The key's count on each of `days`, 0 on a day without one."""
        return [self.by_day.get(day, {}).get(key_id, 0) for day in self.days]

    def total(self, key_id: str) -> int:
        return sum(self.of(key_id))


@dataclass(frozen=True)
class KeyListing:
    plan: str | None
    key_limit: int
    key_count: int
    keys: list[KeyRecord]
    recent: RecentRequests


@dataclass(frozen=True)
class KeyUsage:
    """GET /keys/{key_id}/usage: the key's count on each of the last N UTC days, oldest first."""

    key_id: str
    days: list[tuple[str, int]]  # (YYYY-MM-DD, requests)

    @property
    def total(self) -> int:
        return sum(count for _, count in self.days)


@dataclass(frozen=True)
class PlanChange:
    account_id: str
    plan: str | None
    key_limit: int


def store() -> Store:
    return Store(get_settings().table_name)


def _remember_plan(account_id: str, plan: str | None) -> None:
    if len(_plan_guess) >= _PLAN_GUESS_MAX:
        _plan_guess.clear()
    _plan_guess[account_id] = plan


def listed_scopes(record: KeyRecord) -> list[str]:
    """The key object's `scopes`: catalogue order, or ["*"] for full access."""
    return scopes.listed(record.scopes, get_scope_catalogue())


def new_key(
    name: str,
    expires_in_days: int | None,
    key_scopes: scopes.Scopes = None,
    lifetime_seconds: int | None = None,
    created_by: str | None = None,
) -> CreatedKey:
    """A new key and its record, not yet stored. It lives `expires_in_days` days, or exactly
    `lifetime_seconds` when given (an OAuth connection's key), else until deleted."""
    prefix = get_settings().key_prefix
    secret = keys.generate(prefix)
    created = clock.now()
    if lifetime_seconds is None and expires_in_days:
        lifetime_seconds = expires_in_days * 86400
    record = KeyRecord(
        key_id=keys.new_key_id(),
        name=name,
        display=keys.display(secret, prefix),
        created_at=clock.iso(created),
        last_used_at=None,
        digest=keys.digest(secret),
        expires_at_epoch=int(created.timestamp()) + lifetime_seconds if lifetime_seconds else None,
        expires_in_days=expires_in_days,
        scopes=key_scopes,
        created_by=created_by,
    )
    return CreatedKey(record, secret)


def create_key(
    account_id: str,
    name: str,
    expires_in_days: int | None,
    caller: Caller,
    requested_scopes: Sequence[str] | None = None,
) -> CreatedKey:
    """`requested_scopes` None (omitted) or ["*"] is full access; anything invalid is a 400
    before any I/O."""
    settings = get_settings()
    limits = settings.plan_limits
    key_scopes = scopes.normalize(requested_scopes, get_scope_catalogue())
    created = new_key(name, expires_in_days, key_scopes, created_by=caller.created_by)
    record = created.record
    event = audit.event(
        audit.KEY_CREATED, caller, account_id, key_id=record.key_id, key_name=record.name, created_by=record.created_by
    )
    plan = _plan_guess.get(account_id, settings.default_plan)
    # A guess can be wrong at most a few times in a row (a plan change racing this create).
    for _ in retries.attempts(retries.CREATE_PLAN_GUESSES, "The account's plan is changing. Please retry."):
        try:
            store().insert_key(
                account_id,
                record,
                plan=plan,
                limit=plans.limit_for(plan, limits),
                may_create_account=plan is not None and plan == settings.default_plan,
                event=event,
            )
        except AccountMismatch as mismatch:
            account = mismatch.account
            actual = account.plan if account is not None else settings.default_plan
            if actual == plan:
                _remember_plan(account_id, plan)
                count = account.key_count if account is not None else 0
                raise KeyLimitReached(plans.limit_message(plan, limits, count)) from None
            plan = actual
            continue
        _remember_plan(account_id, plan)
        return created
    raise ServiceUnavailable("The account's plan is changing. Please retry.")


def list_keys(account_id: str) -> KeyListing:
    """The account's keys and plan (one Query per page) and their last 30 days of usage (one
    more Query): the two reads of GET /keys."""
    settings = get_settings()
    account, records = store().load_account(account_id)
    plan = account.plan if account is not None else settings.default_plan
    _remember_plan(account_id, plan)
    return KeyListing(
        plan=plan,
        key_limit=plans.limit_for(plan, settings.plan_limits),
        key_count=account.key_count if account is not None else 0,
        keys=records,
        recent=recent_requests(account_id),
    )


# -- usage, the read side (issue 23) --------------------------------------------------------------
# The authorizer counts each key's granted authorizations per UTC day (apikeys/usage.py); these
# read them back. Days are UTC days of the service's clock (`clock.now`), today included.

RECENT_DAYS = 30  # the key object's `requests_30d`
USAGE_DAYS_DEFAULT = 30
USAGE_DAYS_MAX = 90  # usage items live 90 days
_DAYS_MESSAGE = f"days must be a whole number from 1 to {USAGE_DAYS_MAX} (default {USAGE_DAYS_DEFAULT})."
_DIGITS = re.compile(r"[0-9]{1,4}")


def utc_days(count: int) -> list[str]:
    """The last `count` UTC days as YYYY-MM-DD, oldest first, today last."""
    today = clock.now().astimezone(UTC).date()
    return [(today - timedelta(days=back)).isoformat() for back in range(count - 1, -1, -1)]


def recent_requests(account_id: str) -> RecentRequests:
    """Every key's counts over the last RECENT_DAYS days, in one Query."""
    days = utc_days(RECENT_DAYS)
    return RecentRequests(days, store().usage(account_id, days[0], days[-1]))


def requests_30d(account_id: str, key_id: str) -> int:
    """One key's `requests_30d` (the usage Query of a single-key answer: GET and PATCH)."""
    return recent_requests(account_id).total(key_id)


def usage_days(raw: str | None) -> int:
    """The `days` of a usage request: absent is the default; anything but plain digits naming
    1..USAGE_DAYS_MAX is a 400 (no sign, space, fraction or exponent)."""
    if raw is None:
        return USAGE_DAYS_DEFAULT
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= USAGE_DAYS_MAX:
        raise InvalidRequest(_DAYS_MESSAGE)
    return int(raw)


def key_usage(account_id: str, key_id: str, days: int) -> KeyUsage:
    """A key's requests on each of the last `days` UTC days, zero-filled: two Queries (the key,
    so an unknown or another account's key is a 404 as for GET /keys/{key_id}; then its days).
    A bad `days` is refused before any I/O."""
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= USAGE_DAYS_MAX:
        raise InvalidRequest(_DAYS_MESSAGE)
    _require_key_id(key_id)
    db = store()
    if db.find_key(account_id, key_id) is None:
        raise NotFound(f"No API key with id {key_id!r}.")
    window = utc_days(days)
    counts = db.usage(account_id, window[0], window[-1])
    return KeyUsage(key_id, [(day, counts.get(day, {}).get(key_id, 0)) for day in window])


def _require_key_id(key_id: str) -> None:
    """A malformed id cannot name a key: 404 before any I/O (the message truncates it)."""
    if not keys.is_key_id(key_id):
        raise NotFound(f"No API key with id {key_id[:40]!r}.")


def get_key(account_id: str, key_id: str) -> KeyRecord:
    """One key of the caller's. Another account's key id is indistinguishable from an unknown one."""
    _require_key_id(key_id)
    record = store().get_key(account_id, key_id)
    if record is None:
        raise NotFound(f"No API key with id {key_id!r}.")
    return record


def delete_key(account_id: str, key_id: str, caller: Caller) -> None:
    """Revoke a key: the authorizer refuses it on the very next request."""
    db = store()
    for _ in retries.attempts(retries.DELETE_ATTEMPTS):
        record = get_key(account_id, key_id)
        event = audit.event(audit.KEY_DELETED, caller, account_id, key_id=key_id, key_name=record.name)
        if db.delete_key(account_id, record, event):
            return
    # Gone (a concurrent delete won) or changed state under us on every attempt.
    raise NotFound(f"No API key with id {key_id!r}.")


LEAKED = "leaked"  # found in public by a secret scanner
REPORTED = "reported"  # sent to the public revocation API
NOTICE_DAYS = 30


def revoke_exposed(token: str, reason: str, caller: Caller, url: str = "", source: str = "") -> bool:
    """Revoke a key found in public, through DELETE's transaction (count decremented exactly
    once, rolled-out keys in their grace period included, a tombstone left behind), and tell
    the account (audit event, console notice). True if `token` is or was a key of ours; a
    malformed token costs no I/O, and a revoked one changes nothing."""
    settings = get_settings()
    if not keys.is_well_formed(token, settings.key_prefix):
        return False
    digest = keys.digest(token)
    db = store()
    for _ in retries.attempts(retries.DELETE_ATTEMPTS):
        found = db.find_digest(digest)
        if found is None:
            return False
        account_id, key_id, revoked = found
        if revoked:
            return True
        record = db.get_key(account_id, key_id)
        if record is None:
            return True  # expired and half-removed by TTL: ours, and already refused
        revoked_at = clock.now_iso()
        event = audit.event(
            audit.KEY_REVOKED,
            caller,
            account_id,
            key_id=key_id,
            key_name=record.name,
            reason=reason,
            url=url,
            source=source,
        )
        notice = Revocation(key_id, record.name, reason, revoked_at, url, source)
        if db.delete_key(account_id, record, event, reason=reason, notice=notice):
            # A security signal (alarmed): a spike of leaked or reported keys means a key dump.
            count("LeakedKeyRevoked" if reason == LEAKED else "ReportedKeyRevoked")
            return True
        # A concurrent delete or report won, or the key was rolled: read again.
    raise ServiceUnavailable(retries.TOO_BUSY)


def recent_revocations(account_id: str) -> list[Revocation]:
    """Keys revoked as leaked or reported in the last NOTICE_DAYS days, newest first."""
    cutoff = clock.now_iso(timedelta(days=NOTICE_DAYS))
    notices = [n for n in store().list_revocations(account_id) if n.revoked_at >= cutoff]
    return sorted(notices, key=lambda n: n.revoked_at, reverse=True)


def _refused_patch(account_id: str, key_id: str) -> Conflict | NotFound:
    """Why a PATCH's conditional write failed, from a fresh read: the key is gone (deleted,
    expired, rolled without grace) or was rolled out since it was read."""
    current = store().get_key(account_id, key_id)
    if current is not None and current.rolling:
        return _rolling_conflict(current)
    return NotFound(f"No API key with id {key_id!r}.")


def _patchable(account_id: str, key_id: str) -> KeyRecord:
    record = get_key(account_id, key_id)
    if record.rolling:
        raise _rolling_conflict(record)
    return record


def _rolling_conflict(record: KeyRecord) -> Conflict:
    return Conflict(
        f"This key is being rolled out (it stops working at {expires_at(record)}); it can no longer be renamed "
        "or rescoped. Change the key that replaced it instead."
    )


def rename_key(
    account_id: str,
    key_id: str,
    name: str | None,
    caller: Caller,
    requested_scopes: Sequence[str] | None = None,
) -> KeyRecord:
    """Rename a key and/or change its scopes (`None`: unchanged). A scope change is written with
    the digest item in one transaction: the very next authorization uses the new scopes.

    A key being rolled out is refused (409): its successor was made with the name and scopes
    the roll read, so a change to the old key would be lost with it. Both writes are conditional
    on what each read: this one on the key not being rolled out (a roll that commits between
    the read and the write makes it fail, and 409), the roll on the account's `version`, which
    this write bumps (a change that commits first makes the roll re-read and copy it)."""
    if requested_scopes is None:
        if name is None:
            raise InvalidRequest("Give a new name, new scopes, or both.")
        record = _patchable(account_id, key_id)
        event = audit.event(
            audit.KEY_RENAMED,
            caller,
            account_id,
            key_id=key_id,
            key_name=name,
            previous_name=record.name,
        )
        if not store().rename_key(account_id, key_id, name, event):
            raise _refused_patch(account_id, key_id)
        return replace(record, name=name)
    catalogue = get_scope_catalogue()
    new_scopes = scopes.normalize(requested_scopes, catalogue)
    record = _patchable(account_id, key_id)
    new_name = record.name if name is None else name
    event = audit.event(
        audit.KEY_SCOPES_CHANGED,
        caller,
        account_id,
        key_id=key_id,
        key_name=new_name,
        previous_name=record.name,
        scopes=scopes.listed(new_scopes, catalogue),
        previous_scopes=scopes.listed(record.scopes, catalogue),
    )
    if store().update_key(account_id, record, new_name, new_scopes, event):
        return replace(record, name=new_name, scopes=new_scopes)
    raise _refused_patch(account_id, key_id)


def roll_key(account_id: str, key_id: str, grace_period_seconds: int, caller: Caller) -> CreatedKey:
    """Replace a key by a new one with the same name, in the same slot. With a grace period
    both work until it ends, so an integration can switch without downtime, even on a full plan."""
    _require_key_id(key_id)
    settings = get_settings()
    db = store()
    for _ in retries.attempts(retries.ROLL_ATTEMPTS):
        account, records = db.load_account(account_id)
        old = next((r for r in records if r.key_id == key_id), None)
        if account is None or old is None:
            raise NotFound(f"No API key with id {key_id!r}.")
        now = clock.now().timestamp()
        state = status(old, now)
        if state == "rolling":
            raise Conflict("This key is already being rolled; its grace period ends at " + f"{expires_at(old)}.")
        if state == "expired":
            raise Conflict("This key has expired and cannot be rolled; create a new key instead.")
        plan = account.plan
        limit = plans.limit_for(plan, settings.plan_limits)
        # A downgrade keeps every key working but no roll may renew a key above the limit;
        # the account's version condition below makes a concurrent plan change re-decide this.
        if account.key_count > limit:
            raise KeyLimitReached(plans.limit_message(plan, settings.plan_limits, account.key_count, roll=True))
        # Rolled-out keys whose grace has ended hold no grace slot, whenever TTL removes them.
        if grace_period_seconds and sum(status(r, now) == "rolling" for r in records) >= limit:
            raise Conflict(f"At most {limit} keys may be in a grace period at once on this plan.")
        grace_until = None
        if grace_period_seconds:
            grace_until = int(now) + grace_period_seconds
            if old.expires_at_epoch is not None:
                grace_until = min(grace_until, old.expires_at_epoch)
        created = new_key(old.name, old.expires_in_days, old.scopes, created_by=caller.created_by)
        # A connection's key stays that connection's (issue 21): its refresh token then fails
        # (it names the old key), so the client reconnects, but the key still says who holds it.
        created = CreatedKey(replace(created.record, connection=old.connection), created.secret)
        event = audit.event(
            audit.KEY_ROLLED,
            caller,
            account_id,
            key_id=created.record.key_id,
            key_name=old.name,
            previous_key_id=old.key_id,
            grace_period_seconds=grace_period_seconds,
            created_by=created.record.created_by,
        )
        if db.roll_key(account, old, created.record, grace_until, event):
            return created
    raise ServiceUnavailable(retries.TOO_BUSY)


def record_ttl_removal(account_id: str, record: KeyRecord) -> bool:
    """DynamoDB's TTL removed an expired or rolled-out key: keep key_count exact and audit it.
    Idempotent, since a stream delivers at least once. False if already recorded."""
    event = audit.event(
        audit.KEY_EXPIRED,
        Caller(audit.SYSTEM_ACTOR),
        account_id,
        key_id=record.key_id,
        key_name=record.name,
        reason="grace_period_ended" if record.rolling else "expired",
    )
    return store().record_removal(account_id, record, event)


def set_plan(account_id: object, plan: object, caller: Caller) -> PlanChange:
    """Called by the billing system. A downgrade keeps existing keys working; creates and rolls
    are refused while the count is above the new limit (creates also at it: `count < limit`).
    `None` (a cancelled subscription) puts the account on DEFAULT_PLAN, resolved now so the
    digest items the authorizer reads never depend on later configuration; without a default
    the account has no plan, its limit is 0, and the authorizer refuses its keys (kept, not
    deleted, so a new plan makes them work again on the next request)."""
    settings = get_settings()
    limits = settings.plan_limits
    if not isinstance(account_id, str) or not _ACCOUNT_ID_RE.fullmatch(account_id):
        raise InvalidRequest("account_id must be a string of 1-128 characters without control characters.")
    if plan is None:
        plan = settings.default_plan
    elif not isinstance(plan, str) or plan not in limits:
        raise InvalidRequest(f"Unknown plan {str(plan)[:40]!r}; valid plans: {', '.join(limits)} or null.")
    limit = plans.limit_for(plan, limits)
    event = audit.event(audit.PLAN_CHANGED, caller, account_id, plan=plan, key_limit=limit)
    store().set_plan(account_id, plan, event)
    _remember_plan(account_id, plan)
    return PlanChange(account_id, plan, limit)
