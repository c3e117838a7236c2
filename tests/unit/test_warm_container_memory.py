"""What a warm container remembers between invocations stays bounded: the last-used throttle,
the plan guesses and secret scanning's unknown key identifiers each start over once they hold
10,000 entries, the authorizer's route ARNs of scoped keys once they hold 1,000, and usage
forgets the accounts it wrote a minute ago or more, so a container that sees many keys,
accounts or identifiers never grows without limit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from apikeys import clock, usage
from apikeys.records import Principal


class _NoExecutor:
    def submit(self, _: Any) -> None:
        return None


def test_the_last_used_throttle_forgets_every_key_once_it_holds_more_than_10000(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The per-container throttle's memory is bounded: past 10,000 keys it starts over."""
    monkeypatch.setattr(usage, "_executor", _NoExecutor)
    monkeypatch.setattr(usage, "_write", lambda account, days: None)
    monkeypatch.setattr(usage._state, "touched", {f"key_{i:020d}": 0.0 for i in range(10_000)})
    usage.record(Principal("acct-a", "key_a0000000000000000000", "pro"))
    assert len(usage._state.touched) == 10_001  # at 10,000 it still remembers
    usage.record(Principal("acct-a", "key_b0000000000000000000", "pro"))
    assert usage._state.touched.keys() == {"key_b0000000000000000000"}


def test_usage_forgets_accounts_written_a_minute_ago_once_it_remembers_more_than_10000(
    monkeypatch: pytest.MonkeyPatch, set_clock: Callable[[float], None]
) -> None:
    """Written a minute ago or more is as good as never written (the next count is written at
    once either way): past 10,000 accounts those are forgotten, the others kept."""
    monkeypatch.setattr(usage, "_executor", _NoExecutor)
    monkeypatch.setattr(usage, "_write", lambda account, days: None)
    set_clock(1_800_000_000)
    old = {f"acct-{i}": 1_800_000_000 - 60.0 for i in range(10_000)}
    monkeypatch.setattr(usage._state, "written", {**old, "acct-recent": 1_800_000_000 - 30.0})
    usage.record(Principal("acct-a", "key_a0000000000000000000", "pro"))
    assert usage._state.written == {"acct-recent": 1_800_000_000 - 30.0, "acct-a": clock.now().timestamp()}


def test_the_plan_guesses_are_forgotten_once_they_hold_10000_accounts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-container guess of each account's plan is bounded: at 10,000 accounts it starts over."""
    from apikeys import logic

    monkeypatch.setattr(logic, "_plan_guess", {f"acct-{i}": "pro" for i in range(9_999)})
    logic._remember_plan("acct-a", "pro")
    assert len(logic._plan_guess) == 10_000
    logic._remember_plan("acct-b", "advanced")
    assert logic._plan_guess == {"acct-b": "advanced"}


def test_unknown_key_identifiers_are_forgotten_once_they_hold_10000_or_once_a_fetch_lists_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Secret scanning remembers identifiers GitHub did not list, at most 10,000 of them; one that
    a later fetch lists is forgotten at once."""
    from datetime import UTC, datetime

    from apikeys import scanning
    from apikeys.errors import ServiceUnavailable, Unauthorized

    now = datetime(2027, 3, 1, tzinfo=UTC)
    monkeypatch.setattr(clock, "now", lambda: now)
    monkeypatch.setattr(scanning, "_last_fetch", {"attempt": now, "listed": now})  # no fetch now
    monkeypatch.setattr(scanning, "_unknown", {f"{i:064x}": now for i in range(9_999)})
    with pytest.raises(ServiceUnavailable):
        scanning._key("a" * 64)
    assert len(scanning._unknown) == 10_000  # at 10,000 it still remembers
    with pytest.raises(ServiceUnavailable):
        scanning._key("b" * 64)
    assert scanning._unknown == {"b" * 64: now}

    monkeypatch.setattr(scanning, "_last_fetch", {})
    monkeypatch.setattr(scanning, "_fetch_keys", lambda: {"b" * 64: object()})
    with pytest.raises(Unauthorized):
        scanning._key("c" * 64)
    assert scanning._unknown == {"c" * 64: now}


def test_the_authorizers_route_arns_are_forgotten_once_they_hold_1000_keys_and_stages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The authorizer remembers a scoped key's route ARNs per key and stage, at most 1,000 pairs."""
    from tests.helpers.support import load_function

    authorizer = load_function("authorizer")
    stage = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1"
    remembered = (authorizer.CATALOGUE, (), None)
    monkeypatch.setattr(authorizer, "_granted", {(("whoami",), f"{stage}{i}"): remembered for i in range(999)})
    authorizer._granted_routes(("whoami",), stage)
    assert len(authorizer._granted) == 1_000  # at 1,000 it still remembers
    authorizer._granted_routes(("mcp",), stage)
    assert list(authorizer._granted) == [(("mcp",), stage)]
