"""The key lifecycle: what create, list, delete and set-plan mean, independent of HTTP.

Plan limits are decided by DynamoDB's transaction condition, never by a read in Python;
this module only supplies the plan it expects the account to be on and reacts to the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from apikeys import clock, keys, plans
from apikeys.config import get_settings
from apikeys.errors import InvalidRequest, KeyLimitReached, NotFound, ServiceUnavailable
from apikeys.store import AccountMismatch, KeyRecord, Store

_KEY_ID_RE = re.compile(r"key_[0-9A-Za-z]{20}")
_ACCOUNT_ID_RE = re.compile(r"[^\x00-\x1f\x7f]{1,128}")
# Per-container guess of each account's plan, so a create needs no read: DynamoDB checks
# the guess inside the transaction and returns the real plan when it is wrong.
_plan_guess: dict[str, str | None] = {}
_PLAN_GUESS_MAX = 10_000


@dataclass(frozen=True)
class CreatedKey:
    record: KeyRecord
    secret: str  # the full key: returned once to the caller, never stored or logged


@dataclass(frozen=True)
class KeyListing:
    plan: str | None
    key_limit: int
    key_count: int
    keys: list[KeyRecord]


@dataclass(frozen=True)
class PlanChange:
    account_id: str
    plan: str
    key_limit: int


def store() -> Store:
    return Store(get_settings().table_name)


def _remember_plan(account_id: str, plan: str | None) -> None:
    if len(_plan_guess) >= _PLAN_GUESS_MAX:
        _plan_guess.clear()
    _plan_guess[account_id] = plan


def create_key(account_id: str, name: str) -> CreatedKey:
    settings = get_settings()
    prefix, limits = settings.key_prefix, settings.plan_limits
    secret = keys.generate(prefix)
    record = KeyRecord(
        key_id=keys.new_key_id(),
        name=name,
        display=keys.display(secret, prefix),
        created_at=clock.now_iso(),
        last_used_at=None,
        digest=keys.digest(secret),
    )
    plan = _plan_guess.get(account_id, settings.default_plan)
    # A guess can be wrong at most a few times in a row (a plan change racing this create).
    for _ in range(4):
        try:
            store().insert_key(
                account_id,
                record,
                plan=plan,
                limit=plans.limit_for(plan, limits),
                may_create_account=plan is not None and plan == settings.default_plan,
            )
        except AccountMismatch as mismatch:
            account = mismatch.account
            actual = account.plan if account is not None else settings.default_plan
            if actual == plan:
                _remember_plan(account_id, plan)
                raise KeyLimitReached(plans.limit_message(plan, limits)) from None
            plan = actual
            continue
        _remember_plan(account_id, plan)
        return CreatedKey(record, secret)
    raise ServiceUnavailable("The account's plan is changing. Please retry.")


def list_keys(account_id: str) -> KeyListing:
    settings = get_settings()
    account, records = store().load_account(account_id)
    plan = account.plan if account is not None else settings.default_plan
    _remember_plan(account_id, plan)
    return KeyListing(
        plan=plan,
        key_limit=plans.limit_for(plan, settings.plan_limits),
        key_count=account.key_count if account is not None else 0,
        keys=records,
    )


def delete_key(account_id: str, key_id: str) -> None:
    """Revoke a key. Another account's key id is indistinguishable from an unknown one."""
    missing = NotFound(f"No API key with id {key_id[:40]!r}.")
    if not _KEY_ID_RE.fullmatch(key_id):
        raise missing
    db = store()
    record = db.get_key(account_id, key_id)
    if record is None or not db.delete_key(account_id, record):
        raise missing


def set_plan(account_id: object, plan: object) -> PlanChange:
    """Called by the billing system. A downgrade keeps existing keys; creates are refused
    until the count is under the new limit, because the create condition is `count < limit`."""
    limits = get_settings().plan_limits
    if not isinstance(account_id, str) or not _ACCOUNT_ID_RE.fullmatch(account_id):
        raise InvalidRequest("account_id must be a string of 1-128 characters without control characters.")
    if not isinstance(plan, str) or plan not in limits:
        raise InvalidRequest(f"Unknown plan {str(plan)[:40]!r}; valid plans: {', '.join(limits)}.")
    store().set_plan(account_id, plan)
    _remember_plan(account_id, plan)
    return PlanChange(account_id, plan, limits[plan])
