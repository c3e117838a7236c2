"""Logger and metrics shared by every function, with key material redacted from every line.

Handlers never log keys; the redaction is defence in depth for the day someone logs an
event (POWERTOOLS_LOGGER_LOG_EVENT=true) or an exception that carries a header.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.types import LogRecord

if TYPE_CHECKING:
    from aws_lambda_powertools import Metrics

# No leading \b: a key glued to a letter or digit ("0ot_…", "éot_…") is still a key. Keys glued
# to each other ("ot_…ot_…") are one match: the first one's run takes the next one's prefix.
_KEY_RE = re.compile(r"[a-z][a-z0-9]{0,9}_[A-Za-z0-9]{30,}(?:_[A-Za-z0-9]{30,})*")
_BEARER_RE = re.compile(r"(?i)\b(bearer)\s+[^\s\"',]+")
_AUTH_FIELD_RE = re.compile(r"(?i)(\"authorization(?:token)?\"\s*:\s*)(\"(?:[^\"\\]|\\.)*\"|\[[^\]]*\])")


# Necessary for any _KEY_RE match, and found by a fast literal scan: most lines skip _KEY_RE.
_KEY_HINT_RE = re.compile(r"_[A-Za-z0-9]{30}")


def redact(text: str) -> str:
    """Each pattern runs only where a cheap test says it could match: every authorizer
    invocation formats a line, and the three substitutions cost ~25 µs on every one of them."""
    lowered = text.lower()
    # "author", not "authorization": (?i) lets `i` match the Turkish dotless and dotted i,
    # which lower() keeps apart.
    if "author" in lowered:
        text = _AUTH_FIELD_RE.sub(r'\1"[REDACTED]"', text)
    if "bearer" in lowered:
        text = _BEARER_RE.sub(r"\1 [REDACTED]", text)
    if _KEY_HINT_RE.search(text):
        text = _KEY_RE.sub("[REDACTED]", text)
    return text


class RedactingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: LogRecord) -> str:
        return redact(super().serialize(log))


class StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stdout is when a line is emitted, so a replaced stdout (a test's
    capture, the local server's) gets every line instead of a stale, closed stream."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


@functools.cache
def make_logger() -> Logger:
    """One Powertools logger per process: it configures the shared `apikeys` service logger once."""
    return Logger(logger_formatter=RedactingFormatter(), logger_handler=StdoutHandler(sys.stdout))


def make_metrics() -> Metrics:
    """Imported here: the authorizer, which records no metric, never needs the class."""
    from aws_lambda_powertools import Metrics

    return Metrics(namespace="ApiKeys")


def count(name: str, value: float = 1) -> None:
    """One Count metric, for an event that is not a write's own (`handler.wrote`): an audit event
    EventBridge refused, a key revoked because it was found in public. Powertools keeps one metric
    set per process, shared by every `Metrics` instance, so the function's entry point flushes it
    with the rest; the alarms and the dashboard in template.yaml read these names
    (tests/unit/test_metric_names.py)."""
    from aws_lambda_powertools.metrics import MetricUnit

    make_metrics().add_metric(name=name, unit=MetricUnit.Count, value=value)
