"""What a warm container remembers between invocations stays bounded: the last-used throttle
and the plan guesses each start over once they hold 10,000 entries, so a container that sees
many keys or accounts never grows without limit."""

from __future__ import annotations

from typing import Any

import pytest

from apikeys import auth
from apikeys.records import Principal


class _NoExecutor:
    def submit(self, _: Any) -> None:
        return None


def test_the_last_used_throttle_forgets_every_key_once_it_holds_more_than_10000(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The per-container throttle's memory is bounded: past 10,000 keys it starts over."""
    monkeypatch.setattr(auth, "_executor", _NoExecutor)
    monkeypatch.setattr(auth, "_last_touched", {f"key_{i:020d}": 0.0 for i in range(10_000)})
    auth._record_use("table", Principal("acct-a", "key_a0000000000000000000", "pro"))
    assert len(auth._last_touched) == 10_001  # at 10,000 it still remembers
    auth._record_use("table", Principal("acct-a", "key_b0000000000000000000", "pro"))
    assert auth._last_touched.keys() == {"key_b0000000000000000000"}


def test_the_plan_guesses_are_forgotten_once_they_hold_10000_accounts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-container guess of each account's plan is bounded: at 10,000 accounts it starts over."""
    from apikeys import logic

    monkeypatch.setattr(logic, "_plan_guess", {f"acct-{i}": "pro" for i in range(9_999)})
    logic._remember_plan("acct-a", "pro")
    assert len(logic._plan_guess) == 10_000
    logic._remember_plan("acct-b", "advanced")
    assert logic._plan_guess == {"acct-b": "advanced"}
