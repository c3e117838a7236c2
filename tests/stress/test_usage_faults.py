"""A usage count write that fails (issue 23), against DynamoDB Local: it is sent once, never
retried by botocore (an ADD applied twice counts twice). A refusal that says it was not applied
(throttled, no connection) puts the counts back for the next write; an unknown outcome (a 5xx, a
timeout, a connection closed after sending) drops them and logs it; so a count is never written
twice, and what a failure loses is what that one write carried. The authorization stands."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from apikeys import clock, usage
from apikeys.config import get_settings
from tests.helpers.faults import APPLIED_THEN_TIMEOUT, Fault
from tests.helpers.support import Api

pytestmark = pytest.mark.engines("dynamodb_local")  # faults need a real endpoint behind botocore

START = 1_800_060_000  # 2027-01-16T00:40:00Z
REFUSED = ["ThrottlingException", "ProvisionedThroughputExceededException", "EndpointConnectionError"]
UNKNOWN = ["InternalServerError", "ReadTimeoutError", "ConnectionClosedError"]


class UsageFault(Fault):
    """A Fault on usage count writes only (last-used writes are UpdateItems too)."""

    def _hook(self, request: Any, **kwargs: Any) -> Any:
        if b"USAGE#" not in request.body:
            return None
        return super()._hook(request, **kwargs)


@pytest.fixture
def at(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    moment = [datetime.fromtimestamp(START, UTC)]
    monkeypatch.setattr(clock, "now", lambda: moment[0])

    def to(epoch: float) -> None:
        moment[0] = datetime.fromtimestamp(epoch, UTC)

    return to


def _count(account: str, key_id: str) -> int:
    key = {"pk": {"S": f"ACCOUNT#{account}"}, "sk": {"S": "USAGE#2027-01-16"}}
    item = boto3.client("dynamodb").get_item(TableName=get_settings().table_name, Key=key, ConsistentRead=True)
    return int(item.get("Item", {}).get(f"n_{key_id}", {"N": "0"})["N"])


@pytest.mark.parametrize("kind", [*REFUSED, *UNKNOWN, APPLIED_THEN_TIMEOUT])
def test_a_failed_count_write_is_never_retried_and_never_counted_twice(
    api: Api, at: Callable[[float], None], capfd: pytest.CaptureFixture[str], kind: str
) -> None:
    from apikeys.store import dynamodb_client

    api.set_plan("acct-f", "pro")
    key = api.create("acct-f").body
    fault = UsageFault(dynamodb_client(), "UpdateItem", kind, times=1)
    try:
        for seconds in (0, 1, 2):  # the first is written at once (and fails), the others wait
            at(START + seconds)
            assert api.bearer(key["key"]) is not None  # the authorization never depends on it
        usage.flush()
    finally:
        fault.remove()
    out = capfd.readouterr().out
    # One attempt for the failed write, one for the flush: botocore retried nothing.
    assert (fault.injected, fault.passed) == (1, 1)
    lost = [json.loads(line) for line in out.splitlines() if '"usage not written"' in line]
    if kind in REFUSED:
        assert _count("acct-f", key["id"]) == 3 and lost == []  # put back, written by the flush
        return
    if kind in UNKNOWN:
        assert _count("acct-f", key["id"]) == 2  # not applied here, but it could have been: dropped
    else:
        assert _count("acct-f", key["id"]) == 3  # applied once, its answer lost: not sent again
    assert [(line["level"], line["account_id"], line["day"], line["requests"]) for line in lost] == [
        ("WARNING", "acct-f", "2027-01-16", 1)
    ]
