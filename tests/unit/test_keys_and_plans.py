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
    assert ids == sorted(ids)
    assert all(re.fullmatch(r"key_[0-9A-Za-z]{20}", i) for i in ids)


@pytest.mark.parametrize(
    ("plan", "expected"),
    [
        ("pro", "Your Pro plan allows up to 3 API keys. Delete a key or upgrade to Advanced (10 keys) to create more."),
        ("advanced", "Your Advanced plan allows up to 10 API keys. Delete a key or upgrade to Agency (25 keys)"),
        ("agency", "Your Agency plan allows up to 25 API keys. Delete a key you no longer use"),
        (None, "Your account has no plan, which allows 0 API keys. Delete a key or upgrade to Pro (3 keys)"),
    ],
)
def test_limit_messages_name_plan_limit_and_next_plan(plan: str | None, expected: str) -> None:
    assert plans.limit_message(plan, LIMITS).startswith(expected)


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
