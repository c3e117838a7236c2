"""Fault injection on the paths test_faults.py leaves out: roll, rename, get and the expiry
handler, on DynamoDB Local, with the same two checks. Transient faults are cured by the
retries; persistent ones answer 503 `service_unavailable` with `Retry-After: 1` (the expiry
handler instead fails its batch, so the stream redelivers) and leave the table byte for byte
as it was: nothing half-written. Backoff sleeps are recorded, not slept."""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import boto3
import botocore.endpoint
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from apikeys import store as store_module
from apikeys.config import get_settings
from tests.helpers.faults import TRANSACTION_CONFLICT, Fault
from tests.helpers.invariants import check_table, snapshot
from tests.helpers.streams import TTL_IDENTITY, remove_record
from tests.helpers.support import Api, LambdaContext, load_function

pytestmark = pytest.mark.engines("dynamodb_local")

ACCOUNT = "acct-faults-more"
KINDS = ["ThrottlingException", "InternalServerError", "EndpointConnectionError"]

# (path, the DynamoDB operation the fault hits)
PATHS = [
    ("roll (read)", "Query"),
    ("roll (transaction)", "TransactWriteItems"),
    ("rename (lookup)", "GetItem"),
    ("rename (transaction)", "TransactWriteItems"),
    ("get", "GetItem"),
    ("expiry handler", "TransactWriteItems"),
]
CASES = [
    pytest.param(path, operation, kind, mode, id=f"{path}-{kind}-{mode}")
    for path, operation in PATHS
    for kind in KINDS + ([TRANSACTION_CONFLICT] if operation == "TransactWriteItems" else [])
    for mode in ("transient", "persistent")
]


@pytest.fixture(autouse=True)
def _no_sleeping(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    fake = types.SimpleNamespace(sleep=lambda _: None, time=time.time, monotonic=time.monotonic)
    monkeypatch.setattr(botocore.endpoint, "time", fake)
    monkeypatch.setattr(store_module, "time", fake)


def _ttl_removal(api: Api, key_id: str) -> Callable[[], Any]:
    """What DynamoDB's TTL does to an expired key (delete both items outside a transaction),
    and the stream record it sends; the returned action is the expiry handler's invocation."""
    client = boto3.client("dynamodb")
    table = get_settings().table_name
    key = {"pk": {"S": f"ACCOUNT#{ACCOUNT}"}, "sk": {"S": f"KEY#{key_id}"}}
    item = client.get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    client.delete_item(TableName=table, Key=key)
    client.delete_item(TableName=table, Key={"pk": {"S": f"DIGEST#{item['digest']['S']}"}, "sk": {"S": "DIGEST"}})
    record = remove_record(item, TTL_IDENTITY)
    handler = load_function("key_expiry").lambda_handler
    return lambda: handler({"Records": [record]}, LambdaContext())


@pytest.mark.parametrize(("path", "operation", "kind", "mode"), CASES)
def test_fault(api: Api, path: str, operation: str, kind: str, mode: str) -> None:
    from apikeys.store import dynamodb_client

    api.set_plan(ACCOUNT, "pro")
    key = api.create(ACCOUNT, "existing").body
    action = {
        "roll": lambda: api.roll(ACCOUNT, key["id"], grace=60),
        "rename": lambda: api.rename(ACCOUNT, key["id"], "renamed"),
        "get": lambda: api.get(ACCOUNT, key["id"]),
    }.get(path.split()[0]) or _ttl_removal(api, key["id"])
    table = get_settings().table_name
    before = snapshot(table)

    times = None if mode == "persistent" else (3 if kind == TRANSACTION_CONFLICT else 2)
    fault = Fault(dynamodb_client(), operation, kind, times)
    outcome: Any
    try:
        outcome = action()
    except BatchProcessingError as exc:
        outcome = exc
    finally:
        fault.remove()
    assert fault.injected >= 1

    if path == "expiry handler":
        if mode == "transient":
            assert outcome == {"batchItemFailures": []}
            assert api.list(ACCOUNT).body["key_count"] == 0
        else:  # every record failed: the batch fails and the stream delivers it again
            assert isinstance(outcome, BatchProcessingError), outcome
            assert snapshot(table) == before
        return

    check_table(table)
    if mode == "transient":
        expected = {"roll": 201, "rename": 200, "get": 200}[path.split()[0]]
        assert outcome.status == expected, outcome
        if path.startswith("rename"):
            assert api.get(ACCOUNT, key["id"]).body["name"] == "renamed"
        if path.startswith("roll"):
            assert api.list(ACCOUNT).body["key_count"] == 1
            assert len(api.list(ACCOUNT).body["keys"]) == 2
        return
    assert outcome.status == 503, outcome
    assert outcome.body == {
        "error": {"code": "service_unavailable", "message": "The key service is temporarily unavailable. Please retry."}
    } or (
        kind == TRANSACTION_CONFLICT
        and outcome.body
        == {
            "error": {
                "code": "service_unavailable",
                "message": "Too many concurrent changes to this account. Please retry.",
            }
        }
    ), outcome.body
    assert outcome.headers["Retry-After"] == "1"
    assert snapshot(table) == before
