"""The service's one retry budget: every bound on how often, and for how long, a request retries.

Three layers retry, innermost first: botocore per DynamoDB call (throttling, 5xx, connection
errors), the store per TransactWriteItems (TransactionConflict, with full-jitter backoff), and
the domain, which re-reads and decides again when the account changed under it. Counts alone
do not bound time (ten conflicts that each take a second overrun a 10 s Lambda), so every
retry also asks `time_left_for()`: a request that cannot finish another attempt by its
deadline stops and answers 503 `service_unavailable`, at least `ANSWER_MARGIN` seconds before
the function's Timeout, instead of being killed mid-answer.
"""

from __future__ import annotations

import contextlib
import contextvars
import random
import time
from collections.abc import Iterator

from apikeys.errors import ServiceUnavailable

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
# What one more attempt may take before its answer: connect and read timeouts of one call.
ATTEMPT_RESERVE = CONNECT_TIMEOUT + READ_TIMEOUT

TOO_BUSY = "Too many concurrent changes to this account. Please retry."
# time.monotonic() by which the current invocation stops retrying; None outside an invocation.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("apikeys_deadline", default=None)


@contextlib.contextmanager
def invocation(context: object) -> Iterator[None]:
    """Set the invocation's deadline from the time Lambda says is left (else FUNCTION_TIMEOUT)."""
    remaining = FUNCTION_TIMEOUT
    left = getattr(context, "get_remaining_time_in_millis", None)
    millis = left() if callable(left) else None
    if isinstance(millis, int | float) and millis > 0:
        remaining = millis / 1000
    token = _deadline.set(time.monotonic() + remaining - ANSWER_MARGIN)
    try:
        yield
    finally:
        _deadline.reset(token)


def time_left_for(delay: float) -> bool:
    """Whether waiting `delay` seconds and one more attempt still end before the deadline."""
    deadline = _deadline.get()
    return deadline is None or time.monotonic() + delay + ATTEMPT_RESERVE <= deadline


def backoff(attempt: int) -> float:
    """Full jitter (not a secret, so `random` is right): concurrent writers spread out."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt))  # noqa: S311  # nosec B311


def attempts(limit: int, message: str = TOO_BUSY) -> Iterator[int]:
    """0 .. limit - 1 for a domain loop; raises the 503 instead of an attempt the deadline forbids.
    The loop's own code says what running out of attempts means."""
    for attempt in range(limit):
        if attempt and not time_left_for(0):
            raise ServiceUnavailable(message)
        yield attempt
