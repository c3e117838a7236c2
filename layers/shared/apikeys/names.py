"""Key names that show what they say: the rule a new name must meet, and the escaped form in which
a name stored before the rule is shown.

A name is read by people (the console, audit logs) and by models (the MCP tools). Anything that
renders as nothing or as something else lets one name carry text nobody sees: Unicode tag
characters spell hidden ASCII a model reads ("SYSTEM: ..."), zero-width characters and joiners
split or glue words, bidirectional controls reorder them, line separators break a line. So every
format character (Cf: zero-width, joiners, U+FEFF, soft hyphen, bidi controls, tags), control
(Cc), surrogate (Cs), line or paragraph separator (Zl, Zp) and private-use character (Co) is
refused, the name is stored in NFC (one spelling for what displays the same), and it must hold
a visible character (a letter, digit, punctuation or symbol that is not a blank filler: a name of
combining marks alone is refused). The price: emoji sequences built with ZERO WIDTH JOINER or tag
characters (family, rainbow flag, subdivision flags) and scripts' optional ZWNJ are refused too;
their parts and other emoji (skin tones, VS16, keycaps, country flags) stay.

Only the HTTP layer imports this module (through bodies.py and api.py); the authorizer never does.
"""

from __future__ import annotations

import unicodedata

NAME_MAX = 64

# Unicode's Bidi_Control characters (all Cf), refused with a message of their own: they reorder
# what follows, so "txt.exe" can display as "exe.txt".
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_CONTROL = frozenset({"Cc", "Cs"})
_HIDDEN = frozenset({"Cf", "Zl", "Zp", "Co"})
# Letters and symbols that render as blank space (fillers, the braille blank): not visible.
_BLANK_GRAPHICS = frozenset("\u115f\u1160\u2800\u3164\uffa0")


def _visible(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LNPS" and ch not in _BLANK_GRAPHICS


def problem(name: str) -> str | None:
    """Why `name` breaks the rule (the message of a 400, naming the code point, never the name),
    or None. The length and the NFC form are checked by `checked`, not here."""
    for ch in name:
        category = unicodedata.category(ch)
        if category in _CONTROL:
            return "must not contain control characters"
        if ch in _BIDI_CONTROLS:
            return f"must not contain bidirectional control characters such as U+202E (found U+{ord(ch):04X})"
        if category in _HIDDEN:
            return (
                "must not contain invisible format characters (zero-width, joiners, tags), line or paragraph "
                f"separators or private-use characters (found U+{ord(ch):04X})"
            )
    if not any(_visible(ch) for ch in name):
        return "must contain visible characters"
    return None


def checked(value: str) -> str:
    """The pydantic validator of a new name (already trimmed): NFC, then the rule, then the length
    again (NFC can lengthen a name: U+0958 becomes two code points)."""
    name = unicodedata.normalize("NFC", value)
    reason = problem(name)
    if reason is not None:
        raise ValueError(reason)
    if len(name) > NAME_MAX:
        raise ValueError(f"must be at most {NAME_MAX} characters")
    return name


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def shown(name: str) -> str:
    """A stored name as every response shows it. A name that meets the rule is shown as it is.
    One stored before the rule that breaks it is shown escaped, so nothing in it is hidden: each
    character that is not visible (format, control, separator, private-use, blank filler, any
    space but U+0020), a combining mark with no visible character before it, and the backslash
    itself (so an escape cannot be forged by typing one) are written as Python and JSON write them
    in a string: `\\u200b` (four hex digits), `\\U000e0041` beyond U+FFFF, `\\\\`."""
    if problem(unicodedata.normalize("NFC", name)) is None:
        return name
    out: list[str] = []
    based = False  # a combining mark may stay only on a visible character (or marks on one)
    for ch in name:
        mark = unicodedata.category(ch)[0] == "M"
        keep = ch != "\\" and (_visible(ch) or ch == " " or (mark and based))
        out.append(ch if keep else _escape(ch) if ch != "\\" else "\\\\")
        based = keep and ch != " "
    return "".join(out)
