"""Key format, checksum, digest and plan wording: pure functions, no I/O."""

from __future__ import annotations

import json
import re

import pytest

from apikeys import keys, plans
from apikeys.config import ConfigError, get_settings
from tests.helpers.support import PLAN_LIMITS as LIMITS


def test_generated_keys_are_prefixed_base62_with_valid_checksum_and_unique() -> None:
    generated = {keys.generate("ot_") for _ in range(2000)}
    assert len(generated) == 2000
    for key in list(generated)[:200]:
        assert re.fullmatch(r"ot_[A-Za-z0-9]{38}", key)
        assert keys.is_well_formed(key, "ot_")


def test_every_single_character_change_is_caught_offline() -> None:
    key = keys.generate("ot_")
    caught = 0
    for i in range(3, len(key)):
        for ch in "0aZ":
            if key[i] != ch:
                caught += not keys.is_well_formed(key[:i] + ch + key[i + 1 :], "ot_")
    total = sum(1 for i in range(3, len(key)) for ch in "0aZ" if key[i] != ch)
    assert caught == total


def test_digest_is_sha256_hex_and_display_reveals_at_most_8_characters() -> None:
    key = keys.generate("ot_")
    assert re.fullmatch(r"[0-9a-f]{64}", keys.digest(key))
    assert keys.digest(key) != keys.digest(keys.generate("ot_"))
    shown = keys.display(key, "ot_")
    assert shown.startswith("ot_") and len(shown.replace("ot_", "").replace("…", "")) == 8


def test_key_ids_sort_by_creation() -> None:
    ids = [keys.new_key_id() for _ in range(50)]
    assert ids == sorted(ids) and len(set(ids)) == 50
    assert all(re.fullmatch(r"key_[0-9A-Za-z]{20}", i) for i in ids)


def test_key_ids_made_in_one_microsecond_or_after_the_clock_steps_back_still_sort_by_creation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An injected clock: a frozen microsecond, then a step back, then a jump ahead."""
    monkeypatch.setattr(keys, "_last_micros", 0)  # a fresh container; restored after the test
    later = 1_795_000_000_000_000_000  # 2026-11-18 in ns
    readings = iter([later] * 20 + [later - 5_000_000_000] * 5 + [later + 1_000_000_000])
    ids = [keys.new_key_id(lambda: next(readings)) for _ in range(26)]
    assert ids == sorted(ids) and len(set(ids)) == 26
    assert ids[0][4:14] == keys._base62(later // 1000, 10)  # the clock itself while it advances
    assert ids[-1][4:14] == keys._base62(later // 1000 + 1_000_000, 10)


@pytest.mark.parametrize(
    ("plan", "count", "roll", "expected"),
    [
        (
            "pro",
            3,
            False,
            "This account has 3 API keys and the Pro plan allows 3. "
            "Delete 1 key to create a new one, or upgrade to Advanced (10 keys).",
        ),
        (
            "pro",
            10,
            False,
            "This account has 10 API keys and the Pro plan allows 3. "
            "Delete 8 keys to create a new one, or upgrade to Agency (25 keys).",
        ),
        (
            "pro",
            10,
            True,
            "This account has 10 API keys and the Pro plan allows 3. "
            "Delete 7 keys to roll a key, or upgrade to Advanced (10 keys).",
        ),
        (
            "agency",
            25,
            False,
            "This account has 25 API keys and the Agency plan allows 25. Delete 1 key to create a new one.",
        ),
        (
            None,
            0,
            False,
            "This account has 0 API keys and no plan, which allows none. Upgrade to Pro (3 keys) to create a new one.",
        ),
        (
            None,
            1,
            True,
            "This account has 1 API key and no plan, which allows none. Upgrade to Pro (3 keys) to roll a key.",
        ),
    ],
)
def test_limit_messages_state_count_limit_and_the_way_out(
    plan: str | None, count: int, roll: bool, expected: str
) -> None:
    """How many keys to delete, and the smallest plan that would allow the action now."""
    assert plans.limit_message(plan, LIMITS, count, roll=roll) == expected


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    assert settings.key_prefix == "ot_" and settings.plan_limits == LIMITS
    assert settings.default_plan is None and settings.account_id_claim == "sub"
    monkeypatch.setenv("PLAN_LIMITS", json.dumps({"big": 40, "small": 1}))
    monkeypatch.setenv("DEFAULT_PLAN", "small")
    get_settings.cache_clear()
    assert list(get_settings().plan_limits) == ["small", "big"]
    assert plans.next_plan_up("small", get_settings().plan_limits) == "big"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("PLAN_LIMITS", "nope"),
        ("PLAN_LIMITS", '{"pro": 50}'),
        ("PLAN_LIMITS", '{"pro": "3"}'),
        ("PLAN_LIMITS", "[]"),
        ("DEFAULT_PLAN", "gold"),
        ("KEY_PREFIX", "OT-"),
        ("TABLE_NAME", ""),
    ],
)
def test_bad_settings_fail_loudly(monkeypatch: pytest.MonkeyPatch, var: str, value: str) -> None:
    monkeypatch.setenv(var, value)
    get_settings.cache_clear()
    with pytest.raises(ConfigError):
        get_settings()
