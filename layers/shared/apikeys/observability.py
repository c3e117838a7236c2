"""Logger and metrics shared by every function, with key material redacted from every line.

Handlers never log keys; the redaction is defence in depth for the day someone logs an
event (POWERTOOLS_LOGGER_LOG_EVENT=true) or an exception that carries a header.
"""

from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.logging.lambda_context import build_lambda_context_model
from aws_lambda_powertools.logging.logger import _is_cold_start
from aws_lambda_powertools.logging.types import LogRecord
from aws_lambda_powertools.shared.functions import is_durable_context, resolve_truthy_env_var_choice

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


class _ContextKeys(logging.Filter):
    """The Lambda context keys `inject_lambda_context` adds (function name, memory, ARN, request
    id, cold start), added when the invocation logs its first line instead of on every
    invocation: the authorizer logs nothing on an allowed request, and building and appending
    the keys cost ~4 µs of each one (docs/performance.md)."""

    def __init__(self, logger: Logger) -> None:
        super().__init__()
        self.logger = logger
        self.pending: tuple[Any, bool] | None = None  # this invocation's (context, cold start)

    def filter(self, record: logging.LogRecord) -> bool:
        pending, self.pending = self.pending, None
        if pending is not None:
            context, cold_start = pending
            context = context.lambda_context if is_durable_context(context) else context
            self.logger.append_keys(cold_start=cold_start, **build_lambda_context_model(context).__dict__)
        return True


def inject_context_on_first_line(handler: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any] | None:
    """`handler` with the keys of Powertools' `inject_lambda_context` (no correlation id) added to
    the first line each invocation logs, so the lines are the same and an invocation that logs
    nothing pays nothing. None when the logger is configured for more than that decorator's
    keys (the event logged, sampling, buffering): the caller then uses the decorator itself."""
    logger = make_logger()
    log_event = resolve_truthy_env_var_choice(env=os.getenv("POWERTOOLS_LOGGER_LOG_EVENT", "false"))
    if log_event or logger.sampling_rate or getattr(logger, "_buffer_config", None):
        return None
    keys = _ContextKeys(logger)
    logger.addFilter(keys)
    first = True

    def invoke(event: Any, context: Any) -> Any:
        nonlocal first
        # Powertools' own cold-start flag, asked once: the first invocation of the process.
        cold_start, first = first and _is_cold_start(), False
        keys.pending = (context, cold_start)
        return handler(event, context)

    return invoke


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
