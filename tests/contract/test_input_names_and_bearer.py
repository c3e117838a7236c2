"""Input that would display or parse as something else (issue 10, item 6): key names with
bidirectional controls or nothing visible, and Authorization headers split by Unicode spaces."""

from __future__ import annotations

from typing import Any

import pytest

from apikeys.auth import bearer_token
from tests.helpers.support import Api, http_api_event, request_event, token_event

ACCOUNT = "acct-names"

# Each would show in the console (and in audit logs) as something other than what it is.
SPOOFING_NAMES = [
    ("RLO override", "invoice\u202egpj.exe"),
    ("LRO override", "a\u202db"),
    ("LRE embedding", "a\u202ab"),
    ("RLE embedding", "a\u202bb"),
    ("PDF", "a\u202cb"),
    ("LRI isolate", "a\u2066b"),
    ("RLI isolate", "a\u2067b"),
    ("FSI isolate", "a\u2068b"),
    ("PDI", "a\u2069b"),
    ("LRM mark", "Production\u200e"),
    ("RLM mark", "\u200fProduction"),
    ("zero-width space only", "\u200b"),
    ("zero-width joiners and non-joiners", "\u200d\u200c\u200d"),
    ("word joiner and BOM", "\u2060\ufeff"),
    ("soft hyphen", "\u00ad"),
    ("variation selectors", "\ufe0f\ufe0e"),
    ("NBSP and ideographic space around ZWSP", "\u00a0\u200b\u3000"),
    ("hangul filler", "\u3164"),
    ("braille blank", "\u2800"),
    ("combining grapheme joiner", "\u034f"),
    ("tag characters", "\U000e0041\U000e0042"),
]
# Sequences built with ZERO WIDTH JOINER or tag characters (family, rainbow and subdivision
# flags) are refused since issue 22 item 6, like every format character: see
# tests/contract/test_names_show_what_they_say.py.
EMOJI_NAMES = [
    ("skin tone", "\U0001f44d\U0001f3fd"),
    ("flag", "\U0001f1e9\U0001f1ea"),
    ("keycap with VS16", "1\ufe0f\u20e3"),
    ("heart with VS16", "\u2764\ufe0f"),
    ("Arabic without marks", "مفتاح الإنتاج"),
    ("Arabic with marks", "مِفْتَاح"),
    ("Devanagari with marks", "कुंजी"),
]


@pytest.fixture
def api(db: Any) -> Api:
    api = Api()
    api.set_plan(ACCOUNT, "agency")
    return api


@pytest.mark.parametrize(("case", "name"), SPOOFING_NAMES, ids=[c for c, _ in SPOOFING_NAMES])
def test_names_that_display_as_something_else_are_refused(api: Api, case: str, name: str) -> None:
    created = api.create(ACCOUNT, name)
    assert created.status == 400, case
    assert created.body["error"]["code"] == "invalid_request"
    assert created.body["error"]["message"].startswith("name: ")
    assert api.list(ACCOUNT).body["key_count"] == 0

    key_id = api.create(ACCOUNT, "Visible").body["id"]
    renamed = api.rename(ACCOUNT, key_id, name)
    assert renamed.status == 400 and renamed.body["error"]["code"] == "invalid_request", case
    assert api.get(ACCOUNT, key_id).body["name"] == "Visible"


def test_the_refusal_says_why(api: Api) -> None:
    bidi = api.create(ACCOUNT, "a\u202eb").body["error"]["message"]
    blank = api.create(ACCOUNT, "\u200b\u200b").body["error"]["message"]
    assert "bidirectional" in bidi
    assert "visible" in blank
    # Also through a raw JSON body, where the escape reaches the parser as written.
    raw = api.create(ACCOUNT, raw_body='{"name": "\\u2066x"}')
    assert raw.status == 400 and "bidirectional" in raw.body["error"]["message"]


@pytest.mark.parametrize(("case", "name"), EMOJI_NAMES, ids=[c for c, _ in EMOJI_NAMES])
def test_emoji_sequences_and_other_scripts_keep_working(api: Api, case: str, name: str) -> None:
    created = api.create(ACCOUNT, name)
    assert created.status == 201, (case, created.body)
    assert created.body["name"] == name
    renamed = api.rename(ACCOUNT, created.body["id"], f"{name} 2")
    assert renamed.status == 200 and renamed.body["name"] == f"{name} 2"


# Every Unicode space but ASCII space and tab, between the scheme and the key.
UNICODE_SPACES = ["\u00a0", "\u2003", "\u2002", "\u2009", "\u202f", "\u205f", "\u3000", "\u1680", "\u0085", "\u2028"]
ASCII_OTHER = ["\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f"]


@pytest.mark.parametrize("space", UNICODE_SPACES + ASCII_OTHER, ids=lambda s: f"U+{ord(s):04X}")
def test_only_ascii_space_or_tab_separates_scheme_and_key(api: Api, space: str) -> None:
    key = api.create(ACCOUNT).body["key"]
    for header in (f"Bearer{space}{key}", f"Bearer {space}{key}", f"Bearer {key}{space}", f"{space}Bearer {key}"):
        assert bearer_token(header) is None, repr(header)
        assert api.authorize(token_event(header)) is None
        assert api.authorize(request_event({"Authorization": header})) is None
        assert api.authorize(http_api_event({"authorization": header})) == {"isAuthorized": False}
    for header in (f"Bearer {key}", f"Bearer\t{key}", f"bearer \t {key}\t", f" Bearer  {key} "):
        assert bearer_token(header) == key
        assert api.authorize(token_event(header)) is not None, repr(header)
