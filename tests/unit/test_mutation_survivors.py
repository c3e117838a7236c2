"""Unit tests that kill mutants `make mutation` found surviving (docs/testing.md lists them)."""

from __future__ import annotations

from typing import Any

import pytest

from apikeys import auth, keys, plans
from apikeys.records import Principal
from tests.helpers.support import PLAN_LIMITS as LIMITS


def test_the_largest_plan_has_no_plan_up() -> None:
    """Survivor apikeys.plans.x_next_plan_up__mutmut_9 (`if bigger or True`): min() of nothing."""
    assert plans.next_plan_up("agency", LIMITS) is None
    assert plans.next_plan_up(None, LIMITS) == "pro"
    assert plans.next_plan_up("pro", LIMITS) == "advanced"


def test_an_authorization_header_of_8_kb_is_read_and_one_byte_more_is_refused() -> None:
    """SECURITY.md: a header over 8 KB is refused before hashing or I/O (8192 bytes is 8 KB)."""
    token = keys.generate("ot_")
    header = f"Bearer {token}".ljust(8192)  # trailing spaces are allowed around the token
    assert auth.bearer_token(header) == token
    assert auth.bearer_token(header + " ") is None


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
