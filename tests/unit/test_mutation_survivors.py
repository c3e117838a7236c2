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


@pytest.mark.parametrize(
    ("plan", "limits", "count", "roll", "message"),
    [
        # A 1-key plan is the smallest that lets a plan-less account create its first key.
        (
            None,
            {"solo": 1, "pro": 3},
            0,
            False,
            "This account has 0 API keys and no plan, which allows none. Upgrade to Solo (1 key) to create a new one.",
        ),
        # A plan whose limit is exactly what is needed fits.
        (
            "pro",
            LIMITS,
            9,
            False,
            "This account has 9 API keys and the Pro plan allows 3. "
            "Delete 7 keys to create a new one, or upgrade to Advanced (10 keys).",
        ),
        (
            "advanced",
            LIMITS,
            25,
            True,
            "This account has 25 API keys and the Advanced plan allows 10. "
            "Delete 15 keys to roll a key, or upgrade to Agency (25 keys).",
        ),
        # No plan is big enough: only the facts, no advice that cannot work.
        (None, LIMITS, 30, False, "This account has 30 API keys and no plan, which allows none."),
        (
            "agency",
            LIMITS,
            25,
            False,
            "This account has 25 API keys and the Agency plan allows 25. Delete 1 key to create a new one.",
        ),
    ],
)
def test_the_limit_message_names_the_smallest_plan_that_allows_the_action(
    plan: str | None, limits: dict[str, int], count: int, roll: bool, message: str
) -> None:
    assert plans.limit_message(plan, limits, count, roll=roll) == message


def test_the_plan_guesses_are_forgotten_once_they_hold_10000_accounts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The per-container guess of each account's plan is bounded: at 10,000 accounts it starts over."""
    from apikeys import logic

    monkeypatch.setattr(logic, "_plan_guess", {f"acct-{i}": "pro" for i in range(9_999)})
    logic._remember_plan("acct-a", "pro")
    assert len(logic._plan_guess) == 10_000
    logic._remember_plan("acct-b", "advanced")
    assert logic._plan_guess == {"acct-b": "advanced"}


def test_a_short_checksum_is_padded_with_leading_zeros() -> None:
    """The format (README, "Contract"): the last 6 characters are the CRC32 of prefix + body in
    base62, left-padded with 0. CRC32("ot_" + body) here is 8766901 = "amfd" in base62, worked by
    hand. The key is assembled in parts so no secret scanner mistakes this file for a leak."""
    body = "0" * 31 + "n"
    assert keys.is_well_formed("ot_" + body + "00amfd", "ot_")
    assert not keys.is_well_formed("ot_" + body + "amfd00", "ot_")


def test_a_key_with_a_character_outside_base62_is_malformed_whatever_its_length() -> None:
    token = keys.generate("ot_")
    for bad in ("-", "_", "é", " "):
        assert not keys.is_well_formed(token[:10] + bad + token[11:], "ot_"), bad


def test_no_plan_and_a_plan_removed_from_the_configuration_allow_no_keys() -> None:
    assert plans.limit_for("pro", LIMITS) == 3
    assert plans.limit_for(None, LIMITS) == 0
    assert plans.limit_for("enterprise", LIMITS) == 0
