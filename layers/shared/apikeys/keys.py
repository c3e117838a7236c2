"""API key format: prefix + 32 base62 random characters + 6 base62 CRC32 checksum.

The checksum (as in GitHub's token format) lets the authorizer reject typos and malformed
keys offline, before any I/O, and lets secret scanners match the pattern with few false
positives. It is not a secret: a forged key with a valid CRC32 costs one GetItem, a cost the
API's stage throttling (and optional WAF) bounds.
Keys carry ~190 bits from the CSPRNG, so a fast SHA-256 digest is enough at rest: a slow
password hash protects low-entropy secrets, and these cannot be guessed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import string
import threading
import time
import zlib
from collections.abc import Callable

from apikeys import container

ALPHABET = string.digits + string.ascii_uppercase + string.ascii_lowercase  # ASCII-sorted
RANDOM_LEN = 32  # 32 * log2(62) ~ 190 bits of entropy
CHECKSUM_LEN = 6  # 62**6 > 2**32, so any CRC32 fits
_ALPHABET_SET = frozenset(ALPHABET)
# A key id as `new_key_id` makes it: the one definition, used by the domain's check and by the
# handlers' OpenAPI path parameters (anchored there, as JSON Schema patterns are searches).
KEY_ID_PATTERN = r"^key_[0-9A-Za-z]{20}$"
_KEY_ID_RE = re.compile(KEY_ID_PATTERN)


def _base62(number: int, width: int) -> str:
    chars = []
    while number:
        number, rem = divmod(number, 62)
        chars.append(ALPHABET[rem])
    return "".join(reversed(chars)).rjust(width, "0")


# Every two base62 digits, "00" .. "zz": a CRC32 (< 62**6 = 3844**3) is three of them.
_PAIRS = tuple(a + b for a in ALPHABET for b in ALPHABET)


def _checksum(prefix: str, body: str) -> str:
    """`_base62(crc32, 6)`, two digits at a time: the authorizer checks one per request, and the
    digit loop was its largest piece of CPU (docs/performance.md; a test compares the two)."""
    high, low = divmod(zlib.crc32(f"{prefix}{body}".encode()), 3844)
    high, middle = divmod(high, 3844)
    return _PAIRS[high] + _PAIRS[middle] + _PAIRS[low]


def generate(prefix: str) -> str:
    """A new full key. It is returned to the caller once and never stored."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LEN))
    return f"{prefix}{body}{_checksum(prefix, body)}"


_BODY_RE = re.compile(f"[0-9A-Za-z]{{{RANDOM_LEN + CHECKSUM_LEN}}}")


def is_well_formed(token: str, prefix: str) -> bool:
    """Format and checksum check: cheap, constant work, no I/O. Tampered keys fail here."""
    if len(token) != len(prefix) + RANDOM_LEN + CHECKSUM_LEN or not token.startswith(prefix):
        return False
    rest = token[len(prefix) :]
    if not _BODY_RE.fullmatch(rest):
        return False
    body, check = rest[:RANDOM_LEN], rest[RANDOM_LEN:]
    return secrets.compare_digest(check, _checksum(prefix, body))


def digest(token: str) -> str:
    """SHA-256 of the full key: the only form of the key that is ever stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def display(token: str, prefix: str) -> str:
    """Masked form for listings: prefix, first 4 and last 4 characters (8 of 38 revealed)."""
    rest = token[len(prefix) :]
    return f"{prefix}{rest[:4]}…{rest[-4:]}"


# The last microsecond stamp this container gave out: ids made in the same microsecond (or after
# the wall clock stepped back) still sort in creation order, as the listing relies on it.
_last_micros = 0
_id_lock = threading.Lock()


def new_key_id(clock_ns: Callable[[], int] = time.time_ns) -> str:
    """Public key id, sortable by creation time (microseconds) so listings are newest first.
    Strictly increasing per container: a repeated or earlier clock reading takes last + 1."""
    global _last_micros
    with _id_lock:
        _last_micros = max(clock_ns() // 1000, _last_micros + 1)
        micros = _last_micros
    return "key_" + _base62(micros, 10) + "".join(secrets.choice(ALPHABET) for _ in range(10))


@container.on_reset
def _forget_last_id() -> None:
    """A fresh container has given out no id yet."""
    global _last_micros
    _last_micros = 0


def is_key_id(value: str) -> bool:
    """Whether `value` can be a key id at all; anything else is answered 404 without I/O."""
    return _KEY_ID_RE.fullmatch(value) is not None
