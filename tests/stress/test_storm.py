"""A concurrent storm against DynamoDB Local: several processes for ~30 s of random creates,
deletes, rolls, renames, gets, plan changes and authorizations on four accounts, with invariant
checkpoints. Any exception or 5xx in a worker fails the storm (tests/helpers/storm_worker.py).

"No account ever held more keys than its plan allowed at the moment of creation" is checked
from DynamoDB Streams on the table: the stream is DynamoDB's own ordered log of every change
to the account item, so each create shows (key_count after, plan at that moment) exactly as
the transaction committed it. Checking the live table alone could not see a past excess.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from typing import Any

import boto3
import pytest

from tests.helpers import figures
from tests.helpers.invariants import check_table
from tests.helpers.storm_worker import ACCOUNTS, PLANS, run
from tests.helpers.support import Api

WORKERS = int(os.environ.get("STORM_WORKERS", "4"))
PHASES = 3
PHASE_SECONDS = float(os.environ.get("STORM_PHASE_SECONDS", "10"))
SECTION = "storm (DynamoDB Local)"


def _stream_records(table: str) -> list[dict[str, Any]]:
    arn = boto3.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
    # Streams has its own endpoint setting; point it at the same DynamoDB Local, never at AWS.
    streams = boto3.client("dynamodbstreams", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"])
    records: list[dict[str, Any]] = []
    for shard in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]:
        iterator = streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = streams.get_records(ShardIterator=iterator, Limit=1000)
            records.extend(page["Records"])
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return records


def check_history(table: str, limits: dict[str, int]) -> int:
    """Every change of every account item, in DynamoDB's order: a create never took the count
    above the limit of the plan the account was on at that moment; counts move by one."""
    checks = 0
    for record in _stream_records(table):
        image = record["dynamodb"]
        keys = image["Keys"]
        if keys["sk"]["S"] != "ACCOUNT" or "NewImage" not in image:
            continue
        new = image["NewImage"]
        old = image.get("OldImage", {})
        after = int(new.get("key_count", {"N": "0"})["N"])
        before = int(old.get("key_count", {"N": "0"})["N"])
        plan = new.get("plan", {"S": ""})["S"]
        assert after - before in (-1, 0, 1), "a key count jumped by more than one"
        if after > before:
            assert after <= limits.get(plan, 0), f"{keys['pk']['S']}: {after} keys on {plan} (limit {limits.get(plan)})"
        checks += 2
    return checks


def check_keys(api: Api, created: list[tuple[str, str, str]], table: str) -> int:
    """Every deleted key is refused; every live key authorizes with its account and current plan."""
    state = check_table(table)
    for secret, account, key_id in created:
        allowed = api.bearer(secret)
        if key_id in state.keys.get(account, {}):
            plan = state.accounts[account]["plan"]["S"]
            assert allowed is not None, f"live key {key_id} refused"
            assert allowed["context"] == {"account_id": account, "key_id": key_id, "plan": plan, "scopes": "*"}
        else:
            assert allowed is None, f"deleted key {key_id} authorized"
    return state.checks + len(created)


@pytest.mark.timeout(240)
def test_storm_keeps_every_invariant(local_db: str) -> None:
    from apikeys.config import get_settings
    from apikeys.usage import wait_for_last_used

    settings = get_settings()
    table, limits = settings.table_name, settings.plan_limits
    client = boto3.client("dynamodb")
    spec = client.describe_table(TableName=table)["Table"].get("StreamSpecification", {})
    assert spec.get("StreamViewType", "NEW_AND_OLD_IMAGES") == "NEW_AND_OLD_IMAGES"
    if not spec.get("StreamEnabled"):  # the template's table has a stream; older ones may not
        client.update_table(
            TableName=table, StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
        )
    api = Api()
    for i, account in enumerate(ACCOUNTS):
        api.set_plan(account, PLANS[i % len(PLANS)])

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(WORKERS + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=run, args=(w, PHASES, PHASE_SECONDS, start, results)) for w in range(WORKERS)]
    for proc in procs:
        proc.start()
    totals: Counter[str] = Counter()
    created: list[tuple[str, str, str]] = []
    checks = 0
    try:
        for phase in range(PHASES):
            start.wait(timeout=120)
            for _ in range(WORKERS):
                result = results.get(timeout=PHASE_SECONDS + 120)
                assert result["violations"] == [], result["violations"]
                totals.update(result["counts"])
                created.extend(result["created"])
            # Checkpoint: every worker is idle, so the table is quiescent.
            wait_for_last_used()
            checks += check_keys(api, created, table)
            checks += check_history(table, limits)
            print(f"checkpoint {phase + 1}: {len(created)} keys created so far, invariants hold")
    finally:
        start.abort()  # a failed checkpoint releases workers waiting for the next phase
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()

    operations = sum(v for k, v in totals.items() if not k.startswith(("dynamodb", "transaction")))
    assert totals["create 201"] > 0 and totals["create 403"] > 0 and totals["delete 204"] > 0
    assert totals["authorize allowed"] > 0 and totals["set plan ok"] > 0
    assert totals["roll 201"] > 0 and totals["rename 200"] > 0 and totals["get 200"] > 0, totals
    assert not any(" 5" in k for k in totals if not k.startswith(("dynamodb", "transaction"))), totals
    print(f"storm: {WORKERS} processes x {PHASES} phases x {PHASE_SECONDS:.0f} s, {operations} operations")
    for label, amount in sorted(totals.items()):
        print(f"  {label:<58} {amount:>8}")
        figures.add(SECTION, label, amount)
    figures.add(SECTION, "operations (all types)", operations)
    figures.add(SECTION, "worker processes", WORKERS)
    figures.add("invariant checks", "storm checkpoints (3) incl. stream history and every key", checks)
