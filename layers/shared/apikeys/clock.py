"""Timestamps as the API shows them: ISO 8601, UTC, millisecond precision, `Z` suffix.
Fixed width, so stored strings compare in time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def now() -> datetime:
    return datetime.now(UTC)


def now_iso(minus: timedelta = timedelta(0)) -> str:
    return iso(now() - minus)
