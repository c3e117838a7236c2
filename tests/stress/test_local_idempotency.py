"""The local server's embedded DynamoDB honours TransactWriteItems' ClientRequestToken as
DynamoDB does (issue 10, item 6): a transaction retried after its answer was lost is applied
once, so a request reported as failed changed nothing and one reported as done is done."""

from __future__ import annotations

import collections
import multiprocessing
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from apikeys import audit
from apikeys.records import KeyRecord
from apikeys.store import Store
from tests.helpers.embedded_dynamo import client, embedded_dynamodb, writer
from tests.helpers.faults import APPLIED_THEN_TIMEOUT, Fault
from tests.helpers.invariants import check_table

ACCOUNT = "acct-idempotency"


@pytest.fixture(scope="module")
def embedded() -> Iterator[tuple[str, str]]:
    """(endpoint, table): the embedded DynamoDB in a process of its own."""
    table = f"idem-{uuid.uuid4().hex[:8]}"
    with embedded_dynamodb(table) as endpoint:
        yield endpoint, table


def _counter_update(table: str, pk: str, by: int = 1) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table,
            "Key": {"pk": {"S": pk}, "sk": {"S": "C"}},
            "UpdateExpression": "ADD hits :by",
            "ExpressionAttributeValues": {":by": {"N": str(by)}},
        }
    }


def _hits(ddb: Any, table: str, pk: str) -> int:
    item = ddb.get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": "C"}}, ConsistentRead=True).get("Item")
    return int(item["hits"]["N"]) if item else 0


def test_same_token_applies_once_and_other_content_is_a_mismatch(embedded: tuple[str, str]) -> None:
    endpoint, table = embedded
    ddb = client(endpoint)
    pk, token = f"EVENT#counter-{uuid.uuid4().hex}", str(uuid.uuid4())
    for _ in range(3):
        ddb.transact_write_items(TransactItems=[_counter_update(table, pk)], ClientRequestToken=token)
    assert _hits(ddb, table, pk) == 1

    with pytest.raises(ClientError) as refused:
        ddb.transact_write_items(TransactItems=[_counter_update(table, pk, by=5)], ClientRequestToken=token)
    assert refused.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert _hits(ddb, table, pk) == 1

    # Another token, or none, is another transaction.
    ddb.transact_write_items(TransactItems=[_counter_update(table, pk)], ClientRequestToken=str(uuid.uuid4()))
    ddb.transact_write_items(TransactItems=[_counter_update(table, pk)])
    assert _hits(ddb, table, pk) == 3


def test_a_cancelled_transaction_is_not_remembered(embedded: tuple[str, str]) -> None:
    """Only a commit is replayed: the same token after a failed condition is evaluated again."""
    endpoint, table = embedded
    ddb = client(endpoint)
    pk, token = f"EVENT#counter-{uuid.uuid4().hex}", str(uuid.uuid4())
    guarded = _counter_update(table, pk)
    guarded["Update"]["ConditionExpression"] = "attribute_exists(pk)"
    with pytest.raises(ClientError) as cancelled:
        ddb.transact_write_items(TransactItems=[guarded], ClientRequestToken=token)
    assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
    ddb.transact_write_items(TransactItems=[_counter_update(table, pk)])  # now the item exists
    ddb.transact_write_items(TransactItems=[guarded], ClientRequestToken=token)
    assert _hits(ddb, table, pk) == 2


def test_a_token_is_honoured_for_ten_minutes_after_the_commit() -> None:
    """The window, on the WSGI wrapper with a fake clock and a stand-in for moto."""
    from apikeys_local.dynamo import IDEMPOTENCY_WINDOW, _OneCallAtATime

    now = [1000.0]
    applied: list[bytes] = []

    def backend(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        applied.append(environ["wsgi.input"].read())
        start_response("200 OK", [("Content-Type", "application/x-amz-json-1.0")])
        return [b"{}"]

    app = _OneCallAtATime(backend, clock=lambda: now[0])

    def call(body: bytes) -> str:
        import io

        statuses: list[str] = []
        environ = {
            "HTTP_X_AMZ_TARGET": "DynamoDB_20120810.TransactWriteItems",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
        }
        b"".join(app(environ, lambda status, headers, *_: statuses.append(status)))
        return statuses[0]

    body = b'{"TransactItems": [{"Put": {}}], "ClientRequestToken": "t-1"}'
    assert call(body) == "200 OK" and len(applied) == 1
    now[0] += IDEMPOTENCY_WINDOW - 1
    assert call(body) == "200 OK" and len(applied) == 1  # replayed, not applied
    assert call(b'{"TransactItems": [], "ClientRequestToken": "t-1"}').startswith("400")
    now[0] += 2
    assert call(body) == "200 OK" and len(applied) == 2  # a new request after 10 minutes
    assert applied[-1] == body  # moto still reads the whole body


def _key(name: str) -> KeyRecord:
    import secrets

    from apikeys import keys

    return KeyRecord(keys.new_key_id(), name, "x", "2026-01-01T00:00:00.000Z", None, secrets.token_hex(32))


def test_a_write_applied_then_timed_out_is_reported_as_done(embedded: tuple[str, str]) -> None:
    """DynamoDB applies the transaction, its answer is lost, botocore retries with the same
    token: the store must report success (not a collision, not "not found") and apply it once."""
    endpoint, table = embedded
    ddb = client(endpoint)
    store, caller = Store(table, client=ddb), audit.Caller()
    account = f"{ACCOUNT}-{uuid.uuid4().hex[:6]}"
    keep, gone = _key("keep"), _key("gone")
    for key in (keep, gone):
        fault = Fault(ddb, "TransactWriteItems", APPLIED_THEN_TIMEOUT, times=1)
        try:
            store.insert_key(account, key, "pro", 3, True, audit.event(audit.KEY_CREATED, caller, account))
        finally:
            fault.remove()
        assert fault.injected == 1 and fault.passed == 1
    fault = Fault(ddb, "TransactWriteItems", APPLIED_THEN_TIMEOUT, times=1)
    try:
        assert store.delete_key(account, gone, audit.event(audit.KEY_DELETED, caller, account)) is True
    finally:
        fault.remove()
    assert fault.passed == 1
    state = check_table(table, ddb)
    assert set(state.keys[account]) == {keep.key_id}
    assert state.accounts[account]["key_count"]["N"] == "1"


def test_parallel_writes_with_short_timeouts_apply_once_and_failures_change_nothing(
    embedded: tuple[str, str],
) -> None:
    """The race that showed it: writers in separate processes, first attempts with a read
    timeout short enough that botocore retries transactions the server is still applying. Every reported failure must
    have changed nothing, every success must be there, and key_count must stay exact."""
    endpoint, table = embedded
    workers, count = 6, 12
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(workers), ctx.Queue()
    procs = [
        ctx.Process(target=writer, args=(endpoint, table, ACCOUNT, n, count, 0.02, barrier, results))
        for n in range(workers)
    ]
    for proc in procs:
        proc.start()
    try:
        reports = [results.get(timeout=240) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    outcomes = [outcome for report, _ in reports for outcome in report]
    retried = sum(retries for _, retries in reports)
    assert retried > 0, "no transaction was retried: the race did not race"
    assert not [o for o in outcomes if o[3].startswith("error")], outcomes

    ddb = client(endpoint)
    state = check_table(table, ddb)  # key_count == key items, every key has its digest, no orphan
    stored = state.keys.get(ACCOUNT, {})
    # A 503 ("retry") leaves the outcome open, as on DynamoDB; it may have been applied, once.
    deleted = {key_id for op, key_id, _, outcome in outcomes if op == "delete" and not outcome.startswith("failed")}
    wrong: list[tuple[str, str, str]] = []
    for op, key_id, digest, outcome in outcomes:
        there = key_id in stored or digest in state.digests
        if op == "create" and outcome == "ok" and key_id not in deleted and not there:
            wrong.append((op, key_id, "reported created, missing"))
        if op == "create" and outcome.startswith("failed") and there:
            wrong.append((op, key_id, f"reported {outcome}, but created"))
        if op == "delete" and outcome == "ok" and there:
            wrong.append((op, key_id, "reported deleted, still there"))
        if op == "delete" and outcome.startswith("failed") and not there:
            wrong.append((op, key_id, f"reported {outcome}, but deleted"))
    tally = collections.Counter(f"{op} {outcome}" for op, _, _, outcome in outcomes)
    assert not wrong, f"{len(wrong)} wrong, {retried} botocore retries, {dict(tally)}: {wrong[:5]}"
    assert tally["create ok"] and tally["delete ok"], tally
