"""Settings read from the environment once per container.

Why cached functions and not module constants: tests change the environment between tests,
and `container.reset()` forgets these caches with every other per-container state.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass

from apikeys import container

DEFAULT_PLAN_LIMITS = {"pro": 3, "advanced": 10, "agency": 25}
# One TransactWriteItems holds at most 100 items; a plan change rewrites the account item, its
# audit event and one item per key, counting keys in a grace period (at most one per slot): 2 * 49 + 2.
MAX_PLAN_LIMIT = 49
_PREFIX_RE = re.compile(r"[a-z][a-z0-9]{0,9}_")
DEFAULT_KEY_SCOPES = '{"whoami": ["GET /v1/whoami"], "mcp": ["POST /mcp"], "keys:read": []}'
SCOPE_NAME_RE = re.compile(r"[a-z][a-z0-9_.:-]{0,63}")
FULL_ACCESS = "*"
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*"})
# Not an HTTP method: `APPSYNC /<api id>` (or `APPSYNC /*`) grants the AppSync API of that id. A
# scoped key is refused on AppSync unless a route of this form grants it (issue 22 item 4).
APPSYNC = "APPSYNC"
# A literal path segment: no IAM wildcard (`*`, `?`) and nothing API Gateway would not route.
_SEGMENT_RE = re.compile(r"[A-Za-z0-9._~!$&'()+,;=:@%-]+")
# The template's AccountIdClaim AllowedPattern, exactly (a test compares them): only claims a user
# cannot set for themselves. `email` would let a user who changes their email claim another account.
ACCOUNT_ID_CLAIM_RE = re.compile(r"^(sub|custom:[A-Za-z0-9_]{1,20})$")
MAX_SCOPE_ROUTES = 100  # bounds the policy the authorizer returns (API Gateway caps its size)


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


@dataclass(frozen=True)
class ScopeRoute:
    """One `METHOD /path` pattern of a scope: `*` as METHOD or as a segment is a wildcard, and a
    trailing `/*` means anything below the path. `APPSYNC /<api id>` is AppSync's, not HTTP's."""

    method: str
    segments: tuple[str, ...]

    @property
    def pattern(self) -> str:
        return f"{self.method} /{'/'.join(self.segments)}"


# Scope name -> its routes, in the catalogue's order (the order every key object lists them in).
Catalogue = dict[str, tuple[ScopeRoute, ...]]


def _parse_route(scope: str, raw: object) -> ScopeRoute:
    if not isinstance(raw, str):
        raise ConfigError(f"KEY_SCOPES: routes of {scope!r} must be strings like 'GET /v1/whoami'")
    method, _, path = raw.partition(" ")
    if method == APPSYNC:
        api_id = path[1:]
        if not path.startswith("/") or not (api_id == "*" or re.fullmatch(r"[A-Za-z0-9]{1,64}", api_id)):
            raise ConfigError(f"KEY_SCOPES: route {raw!r} of {scope!r} is not 'APPSYNC /<api id>' or 'APPSYNC /*'")
        return ScopeRoute(method, (api_id,))
    if method not in _METHODS or not path.startswith("/"):
        raise ConfigError(f"KEY_SCOPES: route {raw!r} of {scope!r} is not 'METHOD /path' (METHOD an HTTP method or *)")
    segments = tuple(path[1:].split("/")) if path != "/" else ()
    if any(seg != "*" and not _SEGMENT_RE.fullmatch(seg) for seg in segments):
        raise ConfigError(f"KEY_SCOPES: path of route {raw!r} of {scope!r} has an empty or invalid segment")
    return ScopeRoute(method, segments)


def parse_scope_catalogue(raw: str) -> Catalogue:
    """KEY_SCOPES: a JSON object of scope name -> list of route patterns. A scope with no routes
    is a capability backends check (the authorizer context names it). Any flaw is a ConfigError."""
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"KEY_SCOPES is not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise ConfigError("KEY_SCOPES must be a JSON object of scope name -> list of 'METHOD /path' routes")
    catalogue: Catalogue = {}
    for name, routes in parsed.items():
        if not SCOPE_NAME_RE.fullmatch(name):
            raise ConfigError(f"KEY_SCOPES: bad scope name {name!r} (must match ^[a-z][a-z0-9_.:-]{{0,63}}$)")
        if not isinstance(routes, list):
            raise ConfigError(f"KEY_SCOPES: routes of {name!r} must be a list")
        catalogue[name] = tuple(_parse_route(name, route) for route in routes)
    if sum(len(routes) for routes in catalogue.values()) > MAX_SCOPE_ROUTES:
        raise ConfigError(f"KEY_SCOPES: at most {MAX_SCOPE_ROUTES} routes in all")
    return catalogue


@container.cached
def get_scope_catalogue() -> Catalogue:
    """The catalogue, parsed once per container. The entry point of every function that uses it
    parses it at import (`handler.py`), so a malformed KEY_SCOPES fails that function's cold start
    (an init error) instead of every request."""
    return parse_scope_catalogue(os.environ.get("KEY_SCOPES", "") or DEFAULT_KEY_SCOPES)


def account_id_claim() -> str:
    """ACCOUNT_ID_CLAIM (default `sub`), checked by the template's own rule. Every function's
    entry point calls this at import (`handler.py`), so a deployment or emulator that bypassed
    the template's AllowedPattern fails its cold start instead of trusting a writable claim."""
    claim = os.environ.get("ACCOUNT_ID_CLAIM", "") or "sub"
    if not ACCOUNT_ID_CLAIM_RE.fullmatch(claim):
        raise ConfigError("ACCOUNT_ID_CLAIM must be sub or custom:<name>: a claim users cannot set for themselves")
    return claim


@container.cached
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
    return Settings(table, prefix, limits, default_plan, account_id_claim())


@dataclass(frozen=True)
class AuditSettings:
    """Where the audit_events function publishes the outbox: EventBridge bus and source."""

    event_bus: str
    event_source: str


def get_audit_settings() -> AuditSettings:
    """Separate from `get_settings`: the stream consumer needs neither a table nor plans.
    Not cached: two environment lookups cost nothing next to the PutEvents call each record
    makes, and a value read afresh is one less per-container state to forget."""
    return AuditSettings(
        event_bus=os.environ.get("AUDIT_EVENT_BUS", "default"),
        event_source=os.environ.get("AUDIT_EVENT_SOURCE", "apikeys"),
    )


MAX_NOTICE_DAYS = 365  # a key lives at most 365 days (expires_in_days, OAuthAccessTokenTtl)


def parse_notice_days(raw: str) -> tuple[int, ...]:
    """EXPIRY_NOTICE_DAYS: days before a key's expiry its owner is warned, comma-separated
    ("7", "7,1"), each 1..MAX_NOTICE_DAYS; returned distinct, nearest first."""
    parts = raw.split(",")
    if not all(re.fullmatch(r"[1-9][0-9]{0,2}", part) for part in parts):
        raise ConfigError(f"EXPIRY_NOTICE_DAYS must be whole days separated by commas, e.g. 7,1; got {raw!r}")
    days = {int(part) for part in parts}
    if not all(d <= MAX_NOTICE_DAYS for d in days):
        raise ConfigError(f"EXPIRY_NOTICE_DAYS: each day must be 1..{MAX_NOTICE_DAYS}; got {raw!r}")
    return tuple(sorted(days))


@container.cached
def get_notice_days() -> tuple[int, ...]:
    """The ExpiryNoticeDays parameter of ExpiryNoticesFunction (default 7)."""
    return parse_notice_days(os.environ.get("EXPIRY_NOTICE_DAYS", "") or "7")
