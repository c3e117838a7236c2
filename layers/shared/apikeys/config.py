"""Settings read from the environment once per container.

Why a cached function and not module constants: tests and the local server change the
environment between runs, and `reset_for_tests()` is the one reset point of every
per-container cache of the layer.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass

DEFAULT_PLAN_LIMITS = {"pro": 3, "advanced": 10, "agency": 25}
# One TransactWriteItems holds at most 100 items; a plan change rewrites the account item, its
# audit event and one item per key, counting keys in a grace period (at most one per slot): 2 * 49 + 2.
MAX_PLAN_LIMIT = 49
_PREFIX_RE = re.compile(r"[a-z][a-z0-9]{0,9}_")


class ConfigError(RuntimeError):
    """The function's environment is wrong; raised at first use, answered as a 500."""


@dataclass(frozen=True)
class Settings:
    table_name: str
    key_prefix: str
    plan_limits: dict[str, int]
    default_plan: str | None
    account_id_claim: str


def _parse_plan_limits(raw: str) -> dict[str, int]:
    try:
        limits = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"PLAN_LIMITS is not JSON: {exc}") from None
    if not isinstance(limits, dict) or not limits:
        raise ConfigError("PLAN_LIMITS must be a non-empty JSON object of plan -> key limit")
    for plan, limit in limits.items():
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", plan):
            raise ConfigError(f"PLAN_LIMITS: bad plan name {plan!r}")
        if type(limit) is not int or not 0 <= limit <= MAX_PLAN_LIMIT:
            raise ConfigError(f"PLAN_LIMITS: limit of {plan!r} must be an integer 0..{MAX_PLAN_LIMIT}")
    # Ordered by limit so "the next plan up" is well defined whatever order the JSON has.
    return dict(sorted(limits.items(), key=lambda kv: kv[1]))


@functools.cache
def get_settings() -> Settings:
    table = os.environ.get("TABLE_NAME", "")
    if not table:
        raise ConfigError("TABLE_NAME is not set")
    prefix = os.environ.get("KEY_PREFIX", "ot_")
    if not _PREFIX_RE.fullmatch(prefix):
        raise ConfigError("KEY_PREFIX must be 1-10 lowercase letters or digits followed by '_'")
    raw_limits = os.environ.get("PLAN_LIMITS", "")
    limits = _parse_plan_limits(raw_limits) if raw_limits else dict(DEFAULT_PLAN_LIMITS)
    default_plan = os.environ.get("DEFAULT_PLAN", "") or None
    if default_plan is not None and default_plan not in limits:
        raise ConfigError(f"DEFAULT_PLAN {default_plan!r} is not in PLAN_LIMITS")
    claim = os.environ.get("ACCOUNT_ID_CLAIM", "") or "sub"
    return Settings(table, prefix, limits, default_plan, claim)


@dataclass(frozen=True)
class AuditSettings:
    """Where the audit_events function publishes the outbox: EventBridge bus and source."""

    event_bus: str
    event_source: str


def get_audit_settings() -> AuditSettings:
    """Separate from `get_settings`: the stream consumer needs neither a table nor plans.
    Not cached: two environment lookups per record, as the function has always read them."""
    return AuditSettings(
        event_bus=os.environ.get("AUDIT_EVENT_BUS", "default"),
        event_source=os.environ.get("AUDIT_EVENT_SOURCE", "apikeys"),
    )


def reset_for_tests() -> None:
    """Forget every per-container cache of the layer (settings, the DynamoDB client, plan
    guesses, the last-used throttle), as a fresh Lambda container would start. Production code
    never calls it; tests call it between tests so no state leaks from one to the next."""
    from apikeys import auth, logic, store  # here, not at the top: they import this module

    get_settings.cache_clear()
    store.dynamodb_client.cache_clear()
    logic._plan_guess.clear()
    auth._last_touched.clear()
