"""Usage counts (issue 23) are exact under concurrent authorizations from separate processes,
each a container of its own that writes its counts whenever its minute passes and what it still
holds at its end: unconditional ADDs add up whatever the interleaving, and no write is sent twice.
On DynamoDB Local, and on moto as the local server serves it (one lock, a process of its own)."""

from __future__ import annotations

import multiprocessing
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from apikeys import keys
from tests.helpers.embedded_dynamo import embedded_dynamodb
from tests.helpers.race_worker import authorize_then_flush
from tests.helpers.support import Api, table_definition

START = 1_800_060_000.0  # 2027-01-16T00:40:00Z: every process's requests fall on that UTC day
PROCESSES, REQUESTS, STEP = 4, 120, 7.0  # 120 requests 7 s apart: 14 minutes, a write a minute


@pytest.fixture(params=["moto", "dynamodb_local"])
def shared_table(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A table every process reaches over HTTP: the parent and each child, as containers do."""
    table = os.environ["TABLE_NAME"]
    if request.param == "moto":
        with embedded_dynamodb(table) as endpoint:
            monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
            yield endpoint
        return
    endpoint = request.getfixturevalue("dynamodb_local").endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", endpoint)
    client = boto3.client("dynamodb")
    client.create_table(**table_definition(table))
    client.get_waiter("table_exists").wait(TableName=table)
    yield endpoint


def _counts(account: str) -> dict[str, int]:
    key = {"pk": {"S": f"ACCOUNT#{account}"}, "sk": {"S": "USAGE#2027-01-16"}}
    item = boto3.client("dynamodb").get_item(TableName=os.environ["TABLE_NAME"], Key=key, ConsistentRead=True)
    return {n.removeprefix("n_"): int(v["N"]) for n, v in item.get("Item", {}).items() if n.startswith("n_")}


def test_counts_are_exact_under_concurrent_authorizations_from_separate_processes(shared_table: str) -> None:
    api = Api()
    for account in ("acct-x", "acct-y"):
        api.set_plan(account, "advanced")
    made = [api.create("acct-x", "x1").body, api.create("acct-x", "x2").body, api.create("acct-y", "y1").body]
    denied = [keys.generate("ot_"), made[0]["key"][:-1] + ("A" if made[0]["key"][-1] != "A" else "B")]
    pool = [m["key"] for m in made] + denied
    # Each process its own mix, so the processes' minutes and writes fall at different moments.
    plans = [[pool[(i * (p + 1) + p) % len(pool)] for i in range(REQUESTS)] for p in range(PROCESSES)]
    expected: Counter[str] = Counter()
    owner = {m["key"]: m["id"] for m in made}
    for tokens in plans:
        expected.update(owner[t] for t in tokens if t in owner)

    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(PROCESSES), ctx.Queue()
    procs = [
        ctx.Process(target=authorize_then_flush, args=(tokens, START + p * 3.0, STEP, barrier, results))
        for p, tokens in enumerate(plans)
    ]
    for proc in procs:
        proc.start()
    try:
        granted: list[Any] = [results.get(timeout=240) for _ in procs]
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    assert all(isinstance(g, int) for g in granted), granted
    assert sum(granted) == sum(expected.values())
    x1, x2, y1 = (m["id"] for m in made)
    assert _counts("acct-x") == {x1: expected[x1], x2: expected[x2]}
    assert _counts("acct-y") == {y1: expected[y1]}
