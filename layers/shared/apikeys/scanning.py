"""GitHub secret scanning partner reports: signature check, report parsing, labels.

Imported only by SecretScanningFunction, which ships `cryptography` in its own requirements:
the authorizer's import path never loads it. GitHub signs the raw request body with ECDSA
(NIST P-256, SHA-256) and names the key in `Github-Public-Key-Identifier`; the public keys
come from SECRET_SCANNING_KEYS_URL, cached per container.

Nobody can make us hammer GitHub (its unauthenticated rate limit would then refuse our fetches,
and fresh containers could not judge real reports): an identifier not shaped as GitHub's (64
hex digits) is refused before any fetch; an unknown identifier refetches the list at most once
per REFETCH_INTERVAL per container, whatever the identifiers (inside the interval: 503, so
GitHub retries a report signed with a key it has just rotated in); an identifier that a fetch
made after its first sighting did not list is remembered and refused without a fetch. A known
key never waits for a fetch, so a failing key host blocks no report signed with it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from apikeys import clock, container, logic
from apikeys.audit import Caller
from apikeys.errors import InvalidRequest, ServiceUnavailable, Unauthorized

DEFAULT_KEYS_URL = "https://api.github.com/meta/public_keys/secret_scanning"
FETCH_TIMEOUT_SECONDS = 3.0  # inside the function's timeout, with time left to revoke
MAX_ENTRIES = 1000
MAX_REPORT_BYTES = 1024 * 1024
MAX_KEYS_DOCUMENT_BYTES = 256 * 1024
ACTOR = "github-secret-scanning"

REFETCH_INTERVAL = timedelta(minutes=5)  # at most one fetch of the key list per container per interval
MAX_REMEMBERED_UNKNOWN = 10_000  # bounds the memory of identifiers GitHub does not list
IDENTIFIER_RE = re.compile(r"[0-9a-f]{64}")  # GitHub's key identifiers: a SHA-256, lowercase hex

_keys: dict[str, ec.EllipticCurvePublicKey] = container.state({})  # GitHub's public keys, per container
# "attempt": when the list was last asked for; "listed": when the list now held was asked for.
_last_fetch: dict[str, datetime] = container.state({})
_unknown: dict[str, datetime] = container.state({})  # identifier -> first seen, for those not listed
_lock = threading.Lock()  # one fetch at a time where a process serves requests on threads (local server)


@dataclass(frozen=True)
class Finding:
    token: str
    type: str
    url: str
    source: str


def _keys_url() -> str:
    url = os.environ.get("SECRET_SCANNING_KEYS_URL") or DEFAULT_KEYS_URL
    if not url.startswith(("https://", "http://")):
        raise ServiceUnavailable("Secret scanning is misconfigured. Please retry later.")
    return url


class _SameHostRedirects(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to the same scheme, host and port: the key list decides which
    reports revoke keys, so an open redirect or a moved DNS name must not hand it to another
    host (a refused redirect is a fetch error: 503, GitHub retries)."""

    def redirect_request(
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        old, new = urllib.parse.urlsplit(req.full_url), urllib.parse.urlsplit(newurl)
        if (old.scheme, old.netloc) != (new.scheme, new.netloc):
            raise urllib.error.HTTPError(req.full_url, code, "redirect to another host refused", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_opener = urllib.request.build_opener(_SameHostRedirects)


def _fetch_keys() -> dict[str, ec.EllipticCurvePublicKey]:
    """GitHub's `{"public_keys": [{"key_identifier", "key", "is_current"}]}`; P-256 keys only.
    Any failure is a 503: GitHub retries, and no report is judged against a partial key set."""
    request = urllib.request.Request(_keys_url(), headers={"Accept": "application/json"})  # noqa: S310 - scheme checked
    try:
        with _opener.open(request, timeout=FETCH_TIMEOUT_SECONDS) as response:  # nosec B310 - scheme checked
            document = json.loads(response.read(MAX_KEYS_DOCUMENT_BYTES + 1)[:MAX_KEYS_DOCUMENT_BYTES])
        found: dict[str, ec.EllipticCurvePublicKey] = {}
        for entry in document["public_keys"]:
            key = serialization.load_pem_public_key(entry["key"].encode())
            if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
                found[str(entry["key_identifier"])] = key
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise ServiceUnavailable("Could not fetch the secret scanning public keys. Please retry.") from None
    return found


def _key(identifier: str) -> ec.EllipticCurvePublicKey:
    """The public key of a GitHub-shaped identifier, fetching the list only when the interval
    since the last attempt has passed; see the module's docstring."""
    key = _keys.get(identifier)
    if key is not None:
        return key
    now = clock.now()
    last, listed = _last_fetch.get("attempt"), _last_fetch.get("listed")
    first_seen = _unknown.get(identifier)
    if first_seen is not None and listed is not None and first_seen <= listed:
        raise Unauthorized("Unknown public key identifier.")  # a fetch since its first sighting did not list it
    if first_seen is None:
        if len(_unknown) >= MAX_REMEMBERED_UNKNOWN:
            _unknown.clear()  # still bounded by the interval: forgetting costs at most one fetch
        _unknown[identifier] = now
    if last is not None and now - last < REFETCH_INTERVAL:
        raise ServiceUnavailable("Unknown public key identifier; the key list is refreshed at most every few minutes.")
    _last_fetch["attempt"] = now
    fresh = _fetch_keys()  # a failure is a 503 and keeps the keys already known
    _last_fetch["listed"] = now
    _keys.clear()
    _keys.update(fresh)
    for identifier_listed in fresh:
        _unknown.pop(identifier_listed, None)
    key = _keys.get(identifier)
    if key is None:
        raise Unauthorized("Unknown public key identifier.")
    return key


def verify(identifier: str | None, signature: str | None, body: bytes) -> None:
    """Raise Unauthorized unless `signature` is the named key's signature of `body`."""
    if not identifier or not signature:
        raise Unauthorized("Missing Github-Public-Key-Identifier or Github-Public-Key-Signature.")
    if not IDENTIFIER_RE.fullmatch(identifier):
        raise Unauthorized("Unknown public key identifier.")  # before any fetch: not one of GitHub's
    with _lock:
        key = _key(identifier)
    try:
        key.verify(base64.b64decode(signature, validate=True), body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise Unauthorized("Bad signature.") from None


def _text(entry: dict[str, Any], name: str, required: bool = False) -> str:
    value = entry.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(f"Every entry needs a string {name!r}.")
    return value


def parse_report(body: bytes) -> list[Finding]:
    """A JSON array of at most MAX_ENTRIES objects with a string `token`; else 400."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise InvalidRequest("Request body is not valid JSON.") from None
    if not isinstance(data, list) or not all(isinstance(entry, dict) for entry in data):
        raise InvalidRequest("Request body must be a JSON array of objects.")
    if len(data) > MAX_ENTRIES:
        raise InvalidRequest(f"At most {MAX_ENTRIES} entries per report.")
    return [
        Finding(_text(e, "token", required=True), _text(e, "type"), _text(e, "url"), _text(e, "source")) for e in data
    ]


def label(findings: list[Finding], request_id: str = "") -> list[dict[str, str]]:
    """Revoke every live key among the findings (each distinct token once) and label each
    distinct token: `true_positive` if it is or was ours, `false_positive` otherwise."""
    caller = Caller(ACTOR, request_id)
    seen: set[str] = set()
    labels: list[dict[str, str]] = []
    for finding in findings:
        if finding.token in seen:
            continue
        seen.add(finding.token)
        ours = logic.revoke_exposed(finding.token, logic.LEAKED, caller, finding.url, finding.source)
        labels.append(
            {
                "token_hash": hashlib.sha256(finding.token.encode("utf-8", "surrogatepass")).hexdigest(),
                "token_type": finding.type,
                "label": "true_positive" if ours else "false_positive",
            }
        )
    return labels
