"""Two Lambda invocations in separate processes, in a forced order: the *late* one reads, then
its first TransactWriteItems is held at botocore's `before-call` event until the *early* one
has answered. So the late one writes on a stale read, every time, which is the interleaving a
condition expression exists for. Nothing of the code under test is patched: the hold is on the
client's event hook, outside the request.

DynamoDB Local serialises transactions, so this never produces a real `TransactionConflict`;
what it exercises is each transaction's condition on the state the other one left.
`before_each_write` forces the same kind of interleaving within one process, for the fast tier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

Call = tuple[str, dict[str, Any]]


def _status(response: dict[str, Any]) -> Any:
    return response.get("statusCode", "ok")


def _late(call: Call, reached: Any, go: Any, results: Any, hold_nth: int) -> None:
    from apikeys.store import dynamodb_client
    from tests.helpers.support import LambdaContext, load_function

    function, event = call
    handler = load_function(function).lambda_handler
    held = []

    def hold(**_: Any) -> None:
        held.append(True)
        if len(held) == hold_nth:
            reached.set()
            go.wait(timeout=120)

    dynamodb_client().meta.events.register("before-call.dynamodb.TransactWriteItems", hold)
    try:
        results.put(("late", _status(handler(event, LambdaContext(function_name=function)))))
    except Exception as exc:  # report, never hang the parent
        results.put(("late", f"error: {type(exc).__name__}: {exc}"))
    finally:
        reached.set()


def _early(call: Call, reached: Any, go: Any, results: Any) -> None:
    from tests.helpers.support import LambdaContext, load_function

    function, event = call
    handler = load_function(function).lambda_handler
    reached.wait(timeout=120)
    try:
        results.put(("early", _status(handler(event, LambdaContext(function_name=function)))))
    except Exception as exc:
        results.put(("early", f"error: {type(exc).__name__}: {exc}"))
    finally:
        go.set()


def interleave(late: Call, early: Call, hold_nth: int = 1) -> dict[str, Any]:
    """`late` reads, `early` runs to completion, then `late` writes (its `hold_nth`-th
    transaction is the one held). Returns each one's status (set_plan's is None: no HTTP)."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    reached, go, results = ctx.Event(), ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_late, args=(late, reached, go, results, hold_nth)),
        ctx.Process(target=_early, args=(early, reached, go, results)),
    ]
    for proc in procs:
        proc.start()
    try:
        return dict(results.get(timeout=180) for _ in procs)
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()


# --- In process (the fast tier, either engine) -----------------------------------------------

_TRANSACTION = "before-call.dynamodb.TransactWriteItems"


@contextmanager
def _at_each_transaction(hook: Callable[..., object]) -> Iterator[None]:
    """`hook` runs as each TransactWriteItems is about to be sent; a non-None return is its answer."""
    from apikeys.store import dynamodb_client

    events = dynamodb_client().meta.events
    events.register(_TRANSACTION, hook)
    try:
        yield
    finally:
        events.unregister(_TRANSACTION, hook)


@contextmanager
def before_each_write(action: Callable[[], object], times: int | None = 1) -> Iterator[list[int]]:
    """Run `action` just before the code under test sends each of its next `times` transactions
    (None: all), in this process: a concurrent request landing between its read and its write.
    The action's own writes pass through. Yields a one-item list: how many times it ran."""
    ran = [0]
    busy = False

    def hook(**_: object) -> None:
        nonlocal busy
        if busy or (times is not None and ran[0] >= times):
            return
        busy = True
        try:
            action()
            ran[0] += 1
        finally:
            busy = False

    with _at_each_transaction(hook):
        yield ran


@contextmanager
def conditions_always_fail() -> Iterator[list[int]]:
    """Answer every TransactWriteItems as DynamoDB does when another writer changed an item the
    transaction's conditions name (nothing written): the code's re-read-and-retry loop runs to
    its end. Yields a one-item list: how many transactions were answered so."""
    answered = [0]

    def cancel(**_: object) -> tuple[Any, dict[str, Any]]:
        answered[0] += 1
        error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
        reasons = [{"Code": "ConditionalCheckFailed"}]
        return SimpleNamespace(status_code=400, headers={}), {"Error": error, "CancellationReasons": reasons}

    with _at_each_transaction(cancel):
        yield answered
