"""Key format, checksum, digest, the Authorization header's size limit, plan limits and their
wording: pure functions, no I/O."""

from __future__ import annotations

import json
import re

import pytest

from apikeys import auth, keys, plans
from apikeys.config import ConfigError, get_settings
from apikeys_local.template import load_stack
from tests.helpers.support import PLAN_LIMITS as LIMITS
from tests.helpers.support import ROOT


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


def test_a_short_checksum_is_padded_with_leading_zeros() -> None:
    """The format (docs/leaks.md): the last 6 characters are the CRC32 of prefix + body in
    base62, left-padded with 0. CRC32("ot_" + body) here is 8766901 = "amfd" in base62, worked by
    hand. The key is assembled in parts so no secret scanner mistakes this file for a leak."""
    body = "0" * 31 + "n"
    assert keys.is_well_formed("ot_" + body + "00amfd", "ot_")
    assert not keys.is_well_formed("ot_" + body + "amfd00", "ot_")


@pytest.mark.parametrize("crc", [0, 1, 61, 62, 3843, 3844, 3844**2 - 1, 3844**2, 8766901, 2**31, 2**32 - 1])
def test_the_checksum_is_the_crc32_in_six_base62_digits(crc: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two digits at a time gives what the digit-by-digit encoding gives, at every boundary."""
    monkeypatch.setattr(keys.zlib, "crc32", lambda _: crc)
    assert keys._checksum("ot_", "x") == keys._base62(crc, keys.CHECKSUM_LEN)


def test_a_key_with_a_character_outside_base62_is_malformed_whatever_its_length() -> None:
    token = keys.generate("ot_")
    for bad in ("-", "_", "é", " "):
        assert not keys.is_well_formed(token[:10] + bad + token[11:], "ot_"), bad


def test_an_authorization_header_of_8_kb_is_read_and_one_byte_more_is_refused() -> None:
    """SECURITY.md: a header over 8 KB is refused before hashing or I/O (8192 bytes is 8 KB)."""
    token = keys.generate("ot_")
    header = f"Bearer {token}".ljust(8192)  # trailing spaces are allowed around the token
    assert auth.bearer_token(header) == token
    assert auth.bearer_token(header + " ") is None


def test_digest_is_sha256_hex_and_display_reveals_at_most_8_characters() -> None:
    key = keys.generate("ot_")
    assert re.fullmatch(r"[0-9a-f]{64}", keys.digest(key))
    assert keys.digest(key) != keys.digest(keys.generate("ot_"))
    shown = keys.display(key, "ot_")
    assert shown.startswith("ot_") and len(shown.replace("ot_", "").replace("…", "")) == 8


def test_the_stored_digest_of_a_fixed_key_is_pinned() -> None:
    """What outlives a deploy: the digest item's key of a fixed key, computed outside the code
    (`printf %s <key> | sha256sum`). Hashing anything but the whole key (say, without its
    prefix: 354addf4…) would lock every existing key out; changing it needs a migration. The
    key is the checksum test's, assembled in parts so no secret scanner mistakes it for a leak."""
    from apikeys import store

    key = "ot_" + "0" * 31 + "n" + "00amfd"
    expected = "21c08ad1a206f3301111d19c1a7b9305cad7a99f0d8225b316305084ef262987"
    assert keys.is_well_formed(key, "ot_")
    assert keys.digest(key) == expected
    assert store._digest_key(keys.digest(key)) == {"pk": {"S": f"DIGEST#{expected}"}, "sk": {"S": "DIGEST"}}
    assert keys.display(key, "ot_") == "ot_0000…amfd"


def test_key_ids_sort_by_creation() -> None:
    ids = [keys.new_key_id() for _ in range(50)]
    assert ids == sorted(ids) and len(set(ids)) == 50
    assert all(re.fullmatch(r"key_[0-9A-Za-z]{20}", i) for i in ids)  # the id shape every route accepts


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


def test_the_next_plan_up_is_the_smallest_bigger_plan_and_none_above_the_largest() -> None:
    assert plans.next_plan_up("agency", LIMITS) is None
    assert plans.next_plan_up(None, LIMITS) == "pro"
    assert plans.next_plan_up("pro", LIMITS) == "advanced"


def test_no_plan_and_a_plan_removed_from_the_configuration_allow_no_keys() -> None:
    assert plans.limit_for("pro", LIMITS) == 3
    assert plans.limit_for(None, LIMITS) == 0
    assert plans.limit_for("enterprise", LIMITS) == 0


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    assert settings.key_prefix == "ot_" and settings.plan_limits == LIMITS
    assert settings.default_plan is None and settings.account_id_claim == "sub"
    monkeypatch.setenv("PLAN_LIMITS", json.dumps({"big": 40, "small": 1}))
    monkeypatch.setenv("DEFAULT_PLAN", "small")
    get_settings.cache_clear()
    assert list(get_settings().plan_limits) == ["small", "big"]
    assert plans.next_plan_up("small", get_settings().plan_limits) == "big"


def test_the_layer_the_bench_and_the_local_server_run_with_the_templates_plan_limits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """template.yaml's PlanLimits default is what every runner gives the service: the layer's
    own fallback (no PLAN_LIMITS set), the bench's environment, and each function of the stack
    the local server builds from the template."""
    from bench.run import FUNCTION_ENV

    assert get_settings().plan_limits == LIMITS
    stack = load_stack(ROOT, "unused").functions
    environments = {"bench": FUNCTION_ENV} | {name: f.environment for name, f in stack.items()}
    configured = {name: env["PLAN_LIMITS"] for name, env in environments.items() if "PLAN_LIMITS" in env}
    assert {"bench", "CreateKeyFunction", "AuthorizerFunction", "SetPlanFunction"} <= set(configured)
    for name, limits in configured.items():
        monkeypatch.setenv("PLAN_LIMITS", limits)
        get_settings.cache_clear()
        assert get_settings().plan_limits == LIMITS, name


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
