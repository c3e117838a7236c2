"""Bearer-token validation for the authorizer. Kept free of pydantic and the HTTP resolver:
this import path is the cold start of every API that attaches the authorizer."""

from __future__ import annotations

import functools
import os
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

from apikeys import clock, container, keys, plans
from apikeys.config import get_settings
from apikeys.records import Principal
from apikeys.store import Store

MAX_HEADER_BYTES = 8192
LAST_USED_EVERY = timedelta(minutes=1)
_last_touched: dict[str, float] = container.state({})  # key id -> when this container last recorded its use
_touch_lock = threading.Lock()


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
    if has_api_access(principal):
        _record_use(settings.table_name, principal)
    return principal


def has_api_access(principal: Principal) -> bool:
    """A plan that allows 0 keys (no plan, a cancelled one, or one since removed from
    PLAN_LIMITS) allows no API calls. Decided from the plan on the digest item, so it costs
    no read beyond the one GetItem; the keys are kept and work again once a plan allows them."""
    return plans.limit_for(principal.plan or None, get_settings().plan_limits) > 0


# Not registered with `container`: a worker thread, not state. A reset would orphan the thread and
# its pending updates, which `wait_for_background_updates` would then no longer wait for.
@functools.cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="last-used")


# A forked child (a pre-forking server, mutmut's workers) inherits the executor but not its
# thread, so its updates would never run: give the child a fresh one.
os.register_at_fork(after_in_child=_executor.cache_clear)


def _record_use(table_name: str, principal: Principal) -> Future[None] | None:
    """Update last_used_at off the request path, at most once a minute per key per container
    (the store's condition makes it once a minute across containers). Never raises."""
    now = clock.now()
    with _touch_lock:
        last = _last_touched.get(principal.key_id)
        if last is not None and now.timestamp() - last < LAST_USED_EVERY.total_seconds():
            return None
        if len(_last_touched) > 10_000:
            _last_touched.clear()
        _last_touched[principal.key_id] = now.timestamp()

    def touch() -> None:
        try:
            Store(table_name).touch_last_used(
                principal.account_id,
                principal.key_id,
                clock.iso(now),
                clock.iso(now - LAST_USED_EVERY),
            )
        except Exception:  # noqa: BLE001 - best effort by contract; a failure only loses a timestamp
            return

    return _executor().submit(touch)


def wait_for_background_updates() -> None:
    """Let pending last-used updates finish. For tests and the benchmark, which read last_used_at
    or count DynamoDB calls right after a request; production never waits for them."""
    _executor().submit(lambda: None).result(timeout=10)
