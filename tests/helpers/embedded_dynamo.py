"""The local server's embedded DynamoDB (moto behind apikeys_local.dynamo's WSGI wrapper) in a
process of its own, with the template's table: what `make dev` runs, without the containers.

    python -m tests.helpers.embedded_dynamo TABLE   prints the endpoint, serves until stdin closes.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": "us-east-1"}


def main(table: str) -> None:
    from apikeys_local import dynamo
    from apikeys_local.template import load_stack

    embedded = dynamo.EmbeddedDynamoDB()
    dynamo.ensure_table(load_stack(ROOT, table), table, embedded.endpoint, CREDENTIALS)
    print(embedded.endpoint, flush=True)
    sys.stdin.read()  # until the parent closes it (or exits)
    embedded.stop()


@contextmanager
def embedded_dynamodb(table: str) -> Iterator[str]:
    """The endpoint of an embedded DynamoDB serving `table`, in a child process."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.embedded_dynamo", table],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().strip()
        assert endpoint.startswith("http://"), "embedded DynamoDB did not start"
        yield endpoint
    finally:
        assert process.stdin is not None
        process.stdin.close()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def client(endpoint: str, read_timeout: float = 10, attempts: int = 3) -> Any:
    """A DynamoDB client on the embedded endpoint, botocore's standard retries."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"mode": "standard", "total_max_attempts": attempts}, connect_timeout=5, read_timeout=read_timeout
    )
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=CREDENTIALS["AWS_REGION"],
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=config,
    )


def writer(endpoint: str, table: str, account: str, worker: int, count: int, first_timeout: float,
           barrier: Any, results: Any) -> None:  # fmt: skip
    """One process of the race: `count` creates, then deletes of every other key it created,
    through the store. The first attempt of each transaction waits only `first_timeout` for
    its answer, so under load botocore retries (same token) while the server still holds the
    first attempt; retries wait as long as they need, so most writes end with a definite
    answer. Reports each write's outcome and how many retries botocore sent."""
    import json
    import secrets

    from botocore.httpsession import URLLib3Session

    from apikeys import audit, keys
    from apikeys.errors import ServiceUnavailable
    from apikeys.records import KeyRecord
    from apikeys.store import AccountMismatch, Store

    ddb = client(endpoint, read_timeout=60)
    impatient = URLLib3Session(timeout=first_timeout)
    sends: dict[str, int] = {}

    def first_attempt_times_out(request: Any, **_: Any) -> Any:
        token = json.loads(request.body)["ClientRequestToken"]
        sends[token] = sends.get(token, 0) + 1
        if sends[token] > 1:
            return None  # a retry: botocore sends it with the client's own timeout
        # Answered in time: that is the answer. Otherwise ReadTimeoutError, and botocore
        # retries while the server still holds (and will apply) this attempt.
        return impatient.send(request)

    ddb.meta.events.register("before-send.dynamodb.TransactWriteItems", first_attempt_times_out)
    store = Store(table, client=ddb)
    caller = audit.Caller(actor=f"worker-{worker}")
    outcomes: list[tuple[str, str, str, str]] = []
    barrier.wait(timeout=120)
    created: list[KeyRecord] = []
    for i in range(count):
        key = KeyRecord(
            keys.new_key_id(), f"w{worker}-{i}", "x", "2026-01-01T00:00:00.000Z", None, secrets.token_hex(32)
        )
        try:
            store.insert_key(account, key, "agency", 10_000, True, audit.event(audit.KEY_CREATED, caller, account))
            outcome = "ok"
            created.append(key)
        except ServiceUnavailable:
            outcome = "unavailable"
        except (AccountMismatch, RuntimeError) as exc:
            outcome = f"failed: {type(exc).__name__}"
        except Exception as exc:  # reported, never hangs the parent
            outcome = f"error: {type(exc).__name__}: {exc}"
        outcomes.append(("create", key.key_id, key.digest, outcome))
    for key in created[::2]:
        try:
            deleted = store.delete_key(account, key, audit.event(audit.KEY_DELETED, caller, account))
            outcome = "ok" if deleted else "failed: not found"
        except ServiceUnavailable:
            outcome = "unavailable"
        except Exception as exc:
            outcome = f"error: {type(exc).__name__}: {exc}"
        outcomes.append(("delete", key.key_id, key.digest, outcome))
    results.put((outcomes, sum(sends.values()) - len(sends)))


if __name__ == "__main__":
    main(sys.argv[1])
