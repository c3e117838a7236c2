"""Bearer-token validation for the authorizer. Kept free of pydantic and the HTTP resolver:
this import path is the cold start of every API that attaches the authorizer. What a granted
authorization records (last used, the day's count) is `usage.py`'s: only the authorizer knows
whether the request it checks is granted."""

from __future__ import annotations

import re

from apikeys import clock, keys, plans
from apikeys.config import get_settings
from apikeys.records import Principal
from apikeys.store import Store

MAX_HEADER_BYTES = 8192


# RFC 7235 separates scheme and credentials with ASCII spaces (tabs tolerated); str.split()
# would also accept NBSP, U+2003 and every other Unicode space. The token is visible ASCII.
_BEARER = re.compile(r"[ \t]*bearer[ \t]+([!-~]+)[ \t]*", re.IGNORECASE | re.ASCII)


def bearer_token(header: str | None) -> str | None:
    """`Bearer <token>`, scheme case-insensitive, exactly one token; anything else is None."""
    if not header or len(header) > MAX_HEADER_BYTES:
        return None
    match = _BEARER.fullmatch(header)
    return match[1] if match else None


def authorize(token: str | None) -> Principal | None:
    """The principal of a live key, or None. Malformed and tampered keys cost no I/O;
    a well-formed key costs exactly one strongly consistent GetItem. Store errors propagate:
    the caller must fail closed."""
    settings = get_settings()
    if token is None or not keys.is_well_formed(token, settings.key_prefix):
        return None
    principal = Store(settings.table_name).get_principal(keys.digest(token))
    if principal is None:
        return None
    # Expired (or past its roll grace period) from this second on, whenever TTL removes it.
    if principal.expires_at_epoch is not None and clock.now().timestamp() >= principal.expires_at_epoch:
        return None
    return principal


def has_api_access(principal: Principal) -> bool:
    """A plan that allows 0 keys (no plan, a cancelled one, or one since removed from
    PLAN_LIMITS) allows no API calls. Decided from the plan on the digest item, so it costs
    no read beyond the one GetItem; the keys are kept and work again once a plan allows them."""
    return plans.limit_for(principal.plan or None, get_settings().plan_limits) > 0
