"""GitHub's secret scanning without I/O: what a report must be (each refusal's message, the entry
limit), when the key list is fetched again and what each refusal says, and the refusal of a
key-list redirect to another host."""

from __future__ import annotations

import email.message
import io
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any

import pytest

from apikeys import clock, scanning
from apikeys.errors import InvalidRequest, ServiceUnavailable, Unauthorized

T0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
LISTED, UNLISTED, OTHER = "a" * 64, "b" * 64, "c" * 64


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json", "Request body is not valid JSON."),
        (b"{}", "Request body must be a JSON array of objects."),
        (b"[1]", "Request body must be a JSON array of objects."),
        (b'[{"type": "x"}]', "Every entry needs a string 'token'."),
        (b'[{"token": "x", "url": 5}]', "Every entry needs a string 'url'."),
        (json.dumps([{"token": "x"}] * 1001).encode(), "At most 1000 entries per report."),
    ],
)
def test_a_body_that_is_not_a_report_says_why(raw: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        scanning.parse_report(raw)
    assert raised.value.message == message


def test_a_report_of_exactly_the_entry_limit_is_read() -> None:
    findings = scanning.parse_report(json.dumps([{"token": "x"}] * scanning.MAX_ENTRIES).encode())
    assert len(findings) == 1000
    assert findings[0] == scanning.Finding("x", "", "", "")


def test_a_redirect_to_another_host_is_refused_as_an_error_of_that_response() -> None:
    """It carries the redirect's own response (closed with the error) and says why."""
    handler = scanning._SameHostRedirects()
    request = urllib.request.Request("https://keys.example/list")
    response, headers = io.BytesIO(b""), email.message.Message()
    with pytest.raises(urllib.error.HTTPError) as raised:
        handler.redirect_request(request, response, 302, "Found", headers, "https://other.example/list")
    error = raised.value
    assert (error.url, error.code, error.reason) == (
        "https://keys.example/list",
        302,
        "redirect to another host refused",
    )
    assert error.headers is headers and error.fp is response
    followed = handler.redirect_request(request, response, 302, "Found", headers, "https://keys.example/v2")
    assert followed is not None and followed.full_url == "https://keys.example/v2"


class _KeyHost:
    """GitHub's key list as `_fetch_keys` returns it (LISTED only), counting the fetches."""

    def __init__(self) -> None:
        self.fetches = 0
        self.key: Any = object()

    def __call__(self) -> dict[str, Any]:
        self.fetches += 1
        return {LISTED: self.key}


def _refusal(identifier: str) -> tuple[type[Exception], str]:
    try:
        scanning._key(identifier)
    except (Unauthorized, ServiceUnavailable) as error:
        return type(error), error.message
    raise AssertionError("the key was found")


def test_the_key_list_is_fetched_again_only_after_the_interval_and_each_refusal_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    host, now = _KeyHost(), [T0]
    monkeypatch.setattr(scanning, "_fetch_keys", host)
    monkeypatch.setattr(clock, "now", lambda: now[0])
    unknown = (Unauthorized, "Unknown public key identifier.")
    wait = (ServiceUnavailable, "Unknown public key identifier; the key list is refreshed at most every few minutes.")
    assert _refusal(UNLISTED) == unknown and host.fetches == 1  # fetched: not listed
    assert scanning._key(LISTED) is host.key
    assert _refusal(OTHER) == wait and host.fetches == 1  # inside the interval
    assert _refusal(UNLISTED) == unknown and host.fetches == 1  # remembered: a fetch since did not list it
    now[0] = T0 + scanning.REFETCH_INTERVAL  # exactly the interval later
    assert _refusal("d" * 64) == unknown and host.fetches == 2


def test_a_report_without_both_headers_or_with_an_identifier_not_shaped_as_githubs_is_refused() -> None:
    for identifier, signature, message in (
        (None, "c2ln", "Missing Github-Public-Key-Identifier or Github-Public-Key-Signature."),
        (LISTED, None, "Missing Github-Public-Key-Identifier or Github-Public-Key-Signature."),
        ("nobody", "c2ln", "Unknown public key identifier."),
    ):
        with pytest.raises(Unauthorized) as raised:
            scanning.verify(identifier, signature, b"[]")
        assert raised.value.message == message
