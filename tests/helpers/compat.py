"""The compatibility fixture: items as a released version of the code wrote them, kept in
tests/fixtures/ so that tomorrow's code is tested against what is already in customers' tables.

The keys that made the items are never in the file: each is derived here, at test time, from its
label (a made-up key, not a secret), and the file holds only what the store wrote (digests).
`python -m tests.helpers.compat` writes the file; do that only on purpose, with a migration, when
the item layout changes (tests/contract/test_stored_items_compat.py says why). The file in the
repository was written by this script run against the code of 2506cc1 (the deploy before issue
20's store rewrite), so the new store is tested against what the old one wrote.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apikeys import keys

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "stored-items-v1.json"
ACCOUNT = "acct-compat"
# When the fixture's items were written: tests pin the clock shortly after it, so TTLs written
# relative to it (tombstones, notices, outbox, expiring keys) are as fresh as on that day.
WRITTEN_AT = datetime(2026, 12, 3, 8, 0, 0, tzinfo=UTC)
LABELS = ("full", "scoped", "rolled", "rolled-new", "deleted", "leaked")


def fixture_key(label: str) -> str:
    """The made-up key of `label`, the same on every run: base62 from SHA-256 of the label."""
    number = int.from_bytes(hashlib.sha256(f"compat:{label}".encode()).digest(), "big")
    body = "".join(keys.ALPHABET[(number >> (6 * i)) % 62] for i in range(keys.RANDOM_LEN))
    return f"ot_{body}{keys._checksum('ot_', body)}"


@contextmanager
def pinned_clock(moment: datetime) -> Iterator[None]:
    """The service's clock (`clock.now`, the store's `time.time`) at `moment`."""
    import time as real_time
    import types

    from apikeys import clock, store

    saved_now, saved_time = clock.now, store.time
    clock.now = lambda: moment  # type: ignore[assignment]
    store.time = types.SimpleNamespace(time=moment.timestamp, sleep=real_time.sleep)  # type: ignore[assignment]
    try:
        yield
    finally:
        clock.now, store.time = saved_now, saved_time  # type: ignore[assignment]


def load_items() -> list[dict[str, Any]]:
    return list(json.loads(FIXTURE.read_text())["items"])


def _write() -> None:
    """Make the items through the handlers on moto, as a customer would, and dump the table."""
    import os

    import boto3
    from moto import mock_aws

    from apikeys import container
    from tests.helpers.support import Api, table_definition

    os.environ.update(TABLE_NAME="compat", AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x")
    os.environ.update(AWS_SECRET_ACCESS_KEY="x", KEY_PREFIX="ot_")
    made = iter(LABELS)
    with mock_aws(), pinned_clock(WRITTEN_AT):
        container.reset()
        client = boto3.client("dynamodb")
        client.create_table(**table_definition("compat"))
        keys.generate = lambda prefix: fixture_key(next(made))  # type: ignore[assignment]
        api = Api()
        api.set_plan(ACCOUNT, "advanced")
        full = api.create(ACCOUNT, "Full access").body
        api.create(ACCOUNT, "Scoped", scopes=["whoami"], expires_in_days=365)
        rolled = api.create(ACCOUNT, "Rolled").body
        api.roll(ACCOUNT, rolled["id"], grace=86_400)
        deleted = api.create(ACCOUNT, "Deleted").body
        api.delete(ACCOUNT, deleted["id"])
        api.create(ACCOUNT, "Leaked")
        api.revoke_credentials({"credentials": [fixture_key("leaked")]})
        assert api.bearer(fixture_key("full")) is not None and full["name"] == "Full access"
        items = client.scan(TableName="compat")["Items"]
    items.sort(key=lambda item: (item["pk"]["S"], item["sk"]["S"]))
    for secret in map(fixture_key, LABELS):
        assert secret not in json.dumps(items), "a full key in the fixture"
    FIXTURE.write_text(json.dumps({"written_at": WRITTEN_AT.isoformat(), "items": items}, indent=1) + "\n")
    print(f"wrote {len(items)} items to {FIXTURE}", file=sys.stderr)


if __name__ == "__main__":
    _write()
