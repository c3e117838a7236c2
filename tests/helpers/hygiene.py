"""Suite-wide log hygiene: any test whose captured output holds key material fails.

Every key generated in this process is remembered (apikeys.keys.generate is wrapped when the
session starts), and any 16 characters of its secret part count as a leak; keys generated in
child processes (races, storms) are caught by their shape `ot_` + 38 base62 characters.
Checked: captured stdout and stderr (what Lambda ships to CloudWatch: the Powertools logger
writes there, redacted) and captured log records of every other logger (which Lambda's root
handler would ship as they are). Records of the service's own logger are skipped in pytest's
log section only because pytest renders them raw; their real, redacted rendering is on stdout.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from typing import Any

import pytest

KEY_SHAPE = re.compile(r"ot_[A-Za-z0-9]{38}")
WINDOW = 16
_RUN = re.compile(rf"[A-Za-z0-9]{{{WINDOW},}}")
_LOG_LINE = re.compile(r"^(CRITICAL|ERROR|WARNING|INFO|DEBUG|NOTSET)\s+(\S+?):")
# window of a secret -> the key it belongs to
_WINDOWS: dict[str, str] = {}
SEEN: list[str] = []


def remember(key: str, prefix: str) -> None:
    """Record a full key and every 16-character window of its secret part."""
    SEEN.append(key)
    body = key[len(prefix) :]
    for i in range(len(body) - WINDOW + 1):
        _WINDOWS[body[i : i + WINDOW]] = key


def _install() -> None:
    from apikeys import keys

    original = keys.generate
    if getattr(original, "_hygiene", False):
        return

    def generate(prefix: str) -> str:
        key = original(prefix)
        remember(key, prefix)
        return key

    generate._hygiene = True  # type: ignore[attr-defined]
    keys.generate = generate  # type: ignore[assignment]


def find_leaks(text: str) -> list[str]:
    """Key material in `text`: key-shaped strings, or 16+ characters of any key seen."""
    leaks = [m.group(0) for m in KEY_SHAPE.finditer(text)]
    for run in set(_RUN.findall(text)):
        for i in range(len(run) - WINDOW + 1):
            if run[i : i + WINDOW] in _WINDOWS:
                leaks.append(run)
                break
    return leaks


def _without_service_records(log_text: str) -> str:
    service = os.environ.get("POWERTOOLS_SERVICE_NAME", "apikeys")
    kept: list[str] = []
    skipping = False
    for line in log_text.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            skipping = match.group(2) == service or match.group(2).startswith(service + ".")
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def pytest_configure(config: pytest.Config) -> None:
    _install()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    found: list[str] = []
    for title, content in report.sections:
        # Each phase's report repeats earlier phases' sections: check only this phase's own.
        if not title.startswith("Captured") or not title.endswith(report.when) or not content:
            continue
        text = _without_service_records(content) if title.startswith("Captured log") else content
        found.extend(f"{title}: {leak[:6]}…({len(leak)} chars)" for leak in find_leaks(text))
    if found and report.outcome != "failed":
        report.outcome = "failed"
        report.longrepr = "key material reached the captured output (log hygiene):\n" + "\n".join(sorted(set(found)))
