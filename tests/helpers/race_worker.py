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
