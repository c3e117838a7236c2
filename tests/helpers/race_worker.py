"""Runs in a fresh process (a cold Lambda container): import the handler, wait for the
others at the barrier, invoke once, report the status code."""

from __future__ import annotations

from typing import Any


def invoke_once(function: str, event: dict[str, Any], barrier: Any, results: Any) -> None:
    from tests.helpers.support import LambdaContext, load_function

    handler = load_function(function).lambda_handler
    barrier.wait(timeout=120)
    try:
        response = handler(event, LambdaContext(function_name=function))
        results.put(response.get("statusCode", "ok"))
    except Exception as exc:  # report, never hang the parent
        results.put(f"error: {type(exc).__name__}")


def race(function: str, events: list[dict[str, Any]]) -> list[Any]:
    """Invoke `function` once per event, each in its own process, all released at once."""
    return race_mixed([(function, event) for event in events])


def race_mixed(calls: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Each (function, event) in its own process, all released at once; results unordered."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(calls))
    results = ctx.Queue()
    procs = [ctx.Process(target=invoke_once, args=(fn, event, barrier, results)) for fn, event in calls]
    for proc in procs:
        proc.start()
    try:
        return [results.get(timeout=180) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()


def authorize_then_flush(tokens: list[str], start: float, step: float, barrier: Any, results: Any) -> None:
    """A container of the authorizer: authorize each token (REST TOKEN) on a clock that starts
    at `start` and moves `step` seconds per request (so the container writes the counts it
    holds whenever its minute passes), then write what it still holds, as a test or the bench
    ends a container. Reports how many it granted."""
    from datetime import UTC, datetime

    from apikeys import clock, usage
    from tests.helpers.support import LambdaContext, load_function, token_event

    handler = load_function("authorizer").lambda_handler
    moment = [start]
    clock.now = lambda: datetime.fromtimestamp(moment[0], UTC)  # this process's clock only
    barrier.wait(timeout=120)
    granted = 0
    try:
        for token in tokens:
            try:
                handler(token_event(f"Bearer {token}"), LambdaContext(function_name="authorizer"))
                granted += 1
            except Exception as exc:
                if str(exc) != "Unauthorized":
                    raise
            moment[0] += step
        usage.flush()
        results.put(granted)
    except Exception as exc:  # report, never hang the parent
        results.put(f"error: {type(exc).__name__}: {exc}")
