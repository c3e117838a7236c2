"""The deadline hooks on the DynamoDB client, on a fake clock and canned answers: a first pass
is never refused; after a retry, an attempt that could not end by the deadline is never sent;
botocore's own retry is dropped when its longest backoff and one more attempt would not fit.
tests/stress/test_retry_budget.py runs the same budget end to end on DynamoDB Local."""

from __future__ import annotations

import json
import types
from collections.abc import Iterator
from typing import Any

import boto3
import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse

from apikeys import retries, store
from apikeys.errors import ServiceUnavailable


class _Body:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = json.dumps(data).encode()

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


class Clock:
    now = 100.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Context:
    def __init__(self, seconds: float) -> None:
        self.millis = int(seconds * 1000)

    def get_remaining_time_in_millis(self) -> int:
        return self.millis


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(retries, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=fake.sleep))
    return fake


def answering(clock: Clock, status: int) -> tuple[store.Store, list[int]]:
    """A Store whose client has the deadline hooks and gets `status` for every attempt sent
    (500: InternalServerError, which botocore retries) after the longest an attempt may take;
    returns it and the attempts sent."""
    client = boto3.client("dynamodb", region_name="us-east-1", config=store.client_config())
    retries.hold_to_deadline(client)
    sent: list[int] = []

    def answer(request: Any, **_: Any) -> AWSResponse:
        sent.append(request.context["retries"]["attempt"])
        clock.now += retries.ATTEMPT_RESERVE
        body = {} if status == 200 else {"__type": "com.amazonaws.dynamodb.v20120810#InternalServerError"}
        return AWSResponse(request.url, status, {"x-amzn-RequestId": "canned"}, _Body(body))

    client.meta.events.register_last("before-send.dynamodb", answer)
    return store.Store("table", client), sent


def test_a_first_pass_is_never_refused(clock: Clock) -> None:
    db, sent = answering(clock, 200)
    with retries.invocation(Context(0.5)):  # already past the deadline
        assert db.get_key("acct", "k1") is None
    assert sent == [1]


def test_after_a_retry_an_attempt_that_cannot_end_in_time_is_not_sent(clock: Clock) -> None:
    db, sent = answering(clock, 200)
    with retries.invocation(Context(retries.ANSWER_MARGIN + retries.ATTEMPT_RESERVE + 0.25)):
        clock.now += 0.5
        assert not retries.retrying()  # e.g. a domain loop about to re-read: it would stop here
        with pytest.raises(ServiceUnavailable, match="temporarily unavailable"):
            db.get_key("acct", "k1")
    assert sent == []


def test_botocore_retries_only_while_its_backoff_and_one_more_attempt_fit(clock: Clock) -> None:
    db, sent = answering(clock, 500)
    # Room for attempt 1, its longest backoff (1 s) and attempt 2, not for the 2 s before attempt 3.
    context = Context(retries.ANSWER_MARGIN + 1 + 2 * retries.ATTEMPT_RESERVE + 0.1)
    with retries.invocation(context), pytest.raises(ServiceUnavailable, match="temporarily unavailable"):
        db.get_key("acct", "k1")
    assert sent == [1, 2]
    with pytest.raises(ServiceUnavailable):  # outside an invocation: botocore's own budget
        db.get_key("acct", "k1")
    assert sent == [1, 2, 1, 2, 3]
