"""The table's invariants, read straight from DynamoDB (a consistent scan) after faults,
fuzzing and storms: nothing lost, nothing orphaned, no partial write."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import boto3


def scan(table: str, client: Any = None) -> list[dict[str, Any]]:
    client = client or boto3.client("dynamodb")
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@dataclass
class TableState:
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    digests: dict[str, dict[str, Any]] = field(default_factory=dict)
    tombstones: dict[str, dict[str, Any]] = field(default_factory=dict)
    notices: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    usage: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    checks: int = 0


def check_table(table: str, client: Any = None) -> TableState:
    """Assert every invariant of the item layout; returns the state and how many checks ran.

    - key_count of every account equals its number of key items that are not rolling (and is
      never negative);
    - every key item has its digest item, pointing back at the same account and key;
    - every digest item has its key item (no orphan that would authorize a deleted key);
    - every digest item carries the account's current plan (what the authorizer returns);
    - a revoked key's tombstone has no key item, no plan and a TTL (it authorizes nothing);
    - a key item in the expiry-notice index (`expires_on`) is not rolling and expires that UTC day;
    - a usage item holds only positive counts named n_<key id>, and its day's TTL (issue 23).
    """
    state = TableState()
    for item in scan(table, client):
        pk, sk = item["pk"]["S"], item["sk"]["S"]
        if sk == "ACCOUNT":
            state.accounts[pk.removeprefix("ACCOUNT#")] = item
        elif sk.startswith("KEY#"):
            state.keys[pk.removeprefix("ACCOUNT#")][sk.removeprefix("KEY#")] = item
        elif sk == "DIGEST" and "revoked" in item:
            state.tombstones[pk.removeprefix("DIGEST#")] = item
        elif sk == "DIGEST":
            state.digests[pk.removeprefix("DIGEST#")] = item
        elif sk.startswith("REVOKED#"):
            state.notices[pk.removeprefix("ACCOUNT#")][sk.removeprefix("REVOKED#")] = item
        elif sk.startswith("USAGE#") and pk.startswith("ACCOUNT#"):
            state.usage[pk.removeprefix("ACCOUNT#")][sk.removeprefix("USAGE#")] = item
        elif sk == "EVENT" or pk.startswith("EVENT#"):
            continue  # the audit outbox: not part of the key invariants
        elif pk.startswith("OAUTH_"):
            continue  # OAuth's clients, requests, codes and refresh tokens: tests/contract/test_oauth_grants.py
        elif sk == "EXPIRING" and pk.startswith("EXPIRING#"):
            assert "ttl" in item, f"expiry-notice marker {pk} never expires"
            continue  # a notice sent (issue 24 item 5): not part of the key invariants
        else:
            raise AssertionError(f"unknown item {pk} {sk}")
    for account in state.keys:
        assert account in state.accounts, f"keys without an account item: {account!r}"
    for account, item in state.accounts.items():
        count = int(item.get("key_count", {"N": "0"})["N"])
        assert count >= 0, f"{account!r}: negative key_count"
        # A rolled-out key in its grace period has given up its slot (store.py's layout).
        holding = [k for k in state.keys.get(account, {}).values() if not k.get("rolling", {}).get("BOOL")]
        assert count == len(holding), f"{account!r}: key_count {count} != key items holding a slot"
        state.checks += 2
    seen_digests: set[str] = set()
    for account, keys in state.keys.items():
        plan = state.accounts[account].get("plan", {"S": ""})["S"]
        for key_id, item in keys.items():
            digest = item["digest"]["S"]
            pointer = state.digests.get(digest)
            assert pointer is not None, f"key {key_id} has no digest item"
            assert pointer["account_id"]["S"] == account and pointer["key_id"]["S"] == key_id
            assert pointer["plan"]["S"] == plan, f"key {key_id} reports plan {pointer['plan']['S']!r}, not {plan!r}"
            seen_digests.add(digest)
            state.checks += 3
            if "expires_on" in item:
                assert not item.get("rolling", {}).get("BOOL"), f"rolled-out key {key_id} is due a notice"
                day = datetime.fromtimestamp(int(item["ttl"]["N"]), UTC).date().isoformat()
                assert item["expires_on"]["S"] == day, f"key {key_id}: expires_on is not its expiry's day"
                state.checks += 1
    orphans = set(state.digests) - seen_digests
    assert not orphans, f"{len(orphans)} orphan digest items"
    for digest, item in state.tombstones.items():
        assert "plan" not in item and "ttl" in item, f"tombstone {digest[:8]} could authorize or never expire"
        assert all(k.get("digest", {}).get("S") != digest for keys in state.keys.values() for k in keys.values())
    state.checks += 1 + len(state.tombstones)
    for account, days in state.usage.items():
        for day, item in days.items():
            midnight = (date.fromisoformat(day) - date(1970, 1, 1)).days * 86400
            assert item["ttl"] == {"N": str(midnight + 91 * 86400)}, f"usage {account!r} {day}: ttl {item['ttl']}"
            counts = {name: value for name, value in item.items() if name not in ("pk", "sk", "ttl")}
            for name, value in counts.items():
                assert _USAGE_COUNT.fullmatch(name) and int(value["N"]) > 0, f"usage {account!r} {day}: {name}"
            state.checks += 1 + len(counts)
    return state


_USAGE_COUNT = re.compile(r"n_key_[0-9A-Za-z]{20}")


def snapshot(table: str, client: Any = None) -> list[tuple[str, str, str]]:
    """The table's content, order-independent, for "a failed request changed nothing"."""
    rows = [(i["pk"]["S"], i["sk"]["S"], repr(sorted(i.items()))) for i in scan(table, client)]
    return sorted(rows)
