"""`last_used_at` is written at most once a minute per key, and again at exactly 60 s: the
container's throttle and the store's condition agree to the millisecond, and a second container
does not write again within the minute. In process on moto; the clock is injected."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.helpers.support import Api

pytestmark = pytest.mark.engines("moto")


@contextmanager
def last_used_writes() -> Iterator[list[str]]:
    """The UpdateExpression of every last-used write (the usage counts' writes are others)."""
    from apikeys.store import dynamodb_client

    sent: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if "last_used_at" in params.get("UpdateExpression", ""):
            sent.append(params["UpdateExpression"])

    client = dynamodb_client()
    client.meta.events.register("before-parameter-build.dynamodb.UpdateItem", record)
    try:
        yield sent
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb.UpdateItem", record)


def test_last_used_is_written_again_exactly_one_minute_after_the_last_write(
    api: Api, set_clock: Callable[[float], None]
) -> None:
    """`last_used_at` is written at most once a minute per key: not 59.999 s after the last
    write, and again at 60 s (the container's throttle and the store's condition agree)."""
    set_clock(1_800_000_000)
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a").body
    with last_used_writes() as sent:
        for moment, writes in ((1_800_000_000, 1), (1_800_000_059.999, 1), (1_800_000_060, 2)):
            set_clock(moment)
            assert api.bearer(created["key"]) is not None
            assert len(sent) == writes, moment
    assert api.get("acct-a", created["id"]).body["last_used_at"] == "2027-01-15T08:01:00.000Z"


def test_another_container_does_not_write_last_used_again_within_the_minute(
    api: Api, set_clock: Callable[[float], None]
) -> None:
    """Across containers the store's condition keeps it to one write a minute per key."""
    from tests.helpers.support import fresh_container

    set_clock(1_800_000_000)
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a").body
    assert api.bearer(created["key"]) is not None
    fresh_container()  # a second container: its own per-container throttle is empty
    set_clock(1_800_000_030)
    assert api.bearer(created["key"]) is not None
    assert api.get("acct-a", created["id"]).body["last_used_at"] == "2027-01-15T08:00:00.000Z"
