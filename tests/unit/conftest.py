"""Fixtures of the fast tier's clock-driven tests (expiry, grace periods, last-used)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from apikeys import clock


@pytest.fixture
def set_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Pin the service's clock to an exact epoch second (expiry is decided to the second)."""
    moment = [clock.now()]
    monkeypatch.setattr(clock, "now", lambda: moment[0])

    def to(epoch: float) -> None:
        moment[0] = datetime.fromtimestamp(epoch, UTC)

    return to
