"""Per-container state: every cache, client and throttle a Lambda container keeps between
invocations registers here, so one call forgets them all, as a fresh container would start.

The lowest floor of the layer: it imports nothing of the package, and every module that keeps
state registers itself with it (never the other way round, which is what made import circles).
Production code never calls `reset()`; tests and the local server do, between tests or runs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

_resets: list[Callable[[], None]] = []


class _Clearable(Protocol):
    def clear(self) -> None: ...


F = TypeVar("F", bound=Callable[..., Any])
S = TypeVar("S", bound=_Clearable)


def on_reset(reset: Callable[[], None]) -> Callable[[], None]:
    """Register a function that forgets some per-container state; returns it (usable as a decorator)."""
    _resets.append(reset)
    return reset


def cached(fn: F) -> F:
    """`functools.cache` whose cache `reset()` clears: settings, clients, catalogues."""
    wrapped = functools.cache(fn)
    on_reset(wrapped.cache_clear)
    return wrapped  # type: ignore[return-value]


def state(holder: S) -> S:
    """A dict, set or other `.clear()`-able holder of per-container state, cleared by `reset()`."""
    on_reset(holder.clear)
    return holder


def reset() -> None:
    """Forget every registered per-container cache."""
    for forget in _resets:
        forget()
