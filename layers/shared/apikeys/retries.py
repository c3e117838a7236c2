"""The service's one retry budget: every bound on how often, and for how long, a request retries.

Three layers retry, innermost first: botocore per DynamoDB call (throttling, 5xx, connection
errors), the store per TransactWriteItems (TransactionConflict, with full-jitter backoff), and
the domain, which re-reads and decides again when the account changed under it. Counts alone
do not bound time (ten conflicts that each take a second overrun a 10 s Lambda, and one call
whose three attempts hang takes 7.5 s), so the budget is one deadline per invocation, checked
before every attempt at every layer: each retry loop asks `retrying()` before it waits and
tries again, and hooks on the DynamoDB client (`hold_to_deadline`) refuse an HTTP attempt, or
botocore's backoff before one, that could not end by the deadline. A request that gives up
answers 503 `service_unavailable` at least `ANSWER_MARGIN` seconds before the function's
Timeout instead of being killed mid-answer. The deadline binds from the invocation's first
retry on: a first pass that has retried nothing is the request itself, never refused.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import BotoCoreError

from apikeys.errors import ServiceUnavailable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# botocore, per DynamoDB call: attempts counting the first, and socket timeouts in seconds.
CALL_ATTEMPTS, CONNECT_TIMEOUT, READ_TIMEOUT = 3, 0.5, 1.0
# The store, per TransactWriteItems cancelled by a conflict: attempts and backoff (seconds).
TX_ATTEMPTS = 10
BACKOFF_BASE, BACKOFF_CAP = 0.02, 0.5
# The domain, per request: how often it re-reads and decides again.
CREATE_PLAN_GUESSES = 4  # create: the plan guess was wrong (a plan change raced it)
DELETE_ATTEMPTS = 3  # delete: the key changed state between the read and the write
ROLL_ATTEMPTS = 6  # roll: the account's version moved between the read and the write
SET_PLAN_ATTEMPTS = 10  # set plan: the account changed between the Query and the transaction
# The Timeout of every function (template.yaml's Globals; tests/stress/test_retry_budget.py
# checks), used when the Lambda context cannot say how much time is left.
FUNCTION_TIMEOUT = 10.0
ANSWER_MARGIN = 1.0  # a request that gives up leaves at least this long before the Timeout
# What one more attempt may take before its answer: the connect and read timeouts of one HTTP
# attempt (every attempt is checked, botocore's own retries included).
ATTEMPT_RESERVE = CONNECT_TIMEOUT + READ_TIMEOUT
# botocore's standard mode waits before its retry n (after attempt n) at most
# min(2 ** (n - 1), 20) s (full jitter; throttling's 1 s scale, other errors use 25 ms), and
# up to 5 s more when the answer carries x-amz-retry-after.
_BACKOFF_LIMIT, _RETRY_AFTER_EXTRA = 20.0, 5.0

TOO_BUSY = "Too many concurrent changes to this account. Please retry."


@dataclass
class _Budget:
    deadline: float  # time.monotonic() by which the invocation stops retrying
    retried: bool = False  # from the first retry on, every attempt is held to the deadline


# The current invocation's budget; None outside an invocation (tests, background threads).
_budget: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("apikeys_budget", default=None)
# Inside `one_attempt()`: botocore sends the call once and never retries it.
_one_attempt: contextvars.ContextVar[bool] = contextvars.ContextVar("apikeys_one_attempt", default=False)


class DeadlineReached(BotoCoreError):
    """An attempt the budget refused, raised inside botocore: the store answers it like any
    call that could not be made (503)."""

    fmt = "No time left for another attempt before the invocation's deadline"


@contextlib.contextmanager
def invocation(context: object) -> Iterator[None]:
    """Set the invocation's deadline from the time Lambda says is left (else FUNCTION_TIMEOUT)."""
    remaining = FUNCTION_TIMEOUT
    left = getattr(context, "get_remaining_time_in_millis", None)
    millis = left() if callable(left) else None
    if isinstance(millis, int | float) and millis > 0:
        remaining = millis / 1000
    token = _budget.set(_Budget(time.monotonic() + remaining - ANSWER_MARGIN))
    try:
        yield
    finally:
        _budget.reset(token)


@contextlib.contextmanager
def one_attempt() -> Iterator[None]:
    """DynamoDB calls inside are sent once, never retried by botocore: for a write that is not
    idempotent (usage's ADD), which a retry after a lost answer would apply twice. The caller
    tells a refusal (not applied) from an unknown outcome by the error it gets."""
    token = _one_attempt.set(True)
    try:
        yield
    finally:
        _one_attempt.reset(token)


def time_left_for(delay: float) -> bool:
    """Whether waiting `delay` seconds and one more attempt still end before the deadline."""
    budget = _budget.get()
    return budget is None or time.monotonic() + delay + ATTEMPT_RESERVE <= budget.deadline


def retrying(delay: float = 0.0) -> bool:
    """Asked before every retry, at any layer: whether waiting `delay` and one more attempt
    still fit. From then on every attempt of the invocation is held to the deadline."""
    budget = _budget.get()
    if budget is not None:
        budget.retried = True
    return time_left_for(delay)


def backoff(attempt: int) -> float:
    """Full jitter (not a secret, so `random` is right): concurrent writers spread out."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))  # noqa: S311  # nosec B311


def attempts(limit: int, message: str = TOO_BUSY) -> Iterator[int]:
    """0 .. limit - 1 for a domain loop; raises the 503 instead of an attempt the deadline forbids.
    The loop's own code says what running out of attempts means."""
    for attempt in range(limit):
        if attempt and not retrying():
            raise ServiceUnavailable(message)
        yield attempt


def longest_backoff(retry: int, retry_after: bool = False) -> float:
    """The longest botocore's standard mode waits before its retry number `retry` (1-based)."""
    return min(2.0 ** (retry - 1), _BACKOFF_LIMIT) + (_RETRY_AFTER_EXTRA if retry_after else 0.0)


def _before_attempt(request: Any, **_: Any) -> None:
    """before-send, every HTTP attempt: refuse one that might not end by the deadline."""
    budget = _budget.get()
    if budget is None:
        return
    if request.context.get("retries", {}).get("attempt", 1) > 1:
        budget.retried = True  # botocore's own retry
    if budget.retried and not time_left_for(0):
        raise DeadlineReached()


def _before_backoff(attempts: int, response: Any = None, **_: Any) -> bool | None:
    """needs-retry, before botocore decides: False (no retry, the last error stands) inside
    `one_attempt()`, or unless its longest backoff and one more attempt fit; None lets botocore
    decide (and pick the delay)."""
    if _one_attempt.get():
        return False
    retry_after = response is not None and "x-amz-retry-after" in response[0].headers
    return None if time_left_for(longest_backoff(attempts, retry_after)) else False


def hold_to_deadline(client: DynamoDBClient) -> None:
    """Hold every HTTP attempt of `client`, botocore's retries and their backoff included, to
    the invocation's deadline. For the DynamoDB client of the store; the EventBridge client of
    audit_events shares `client_config()` but not these hooks (a stream consumer has no
    request to answer in time)."""
    service = client.meta.service_model.service_id.hyphenize()
    client.meta.events.register_first(f"before-send.{service}", _before_attempt, "apikeys-deadline-attempt")
    # botocore-stubs types every handler as returning None; a needs-retry handler's answer is its point.
    veto = cast("Callable[..., None]", _before_backoff)
    client.meta.events.register_first(f"needs-retry.{service}", veto, "apikeys-deadline-backoff")
