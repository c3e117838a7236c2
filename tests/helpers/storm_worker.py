"""One storm worker (a separate process, a warm Lambda container of every function): random
creates, deletes, plan changes and authorizations on a handful of accounts, phase by phase."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from typing import Any

from tests.helpers.support import PLAN_LIMITS

ACCOUNTS = ["storm-a", "storm-b", "storm-c", "storm-d"]
PLANS = list(PLAN_LIMITS)


def _hooks(counts: Counter[str]) -> None:
    """Count DynamoDB attempts, calls and transaction conflicts through botocore's events."""
    from apikeys.store import dynamodb_client

    events = dynamodb_client().meta.events

    def before_call(model: Any, **_: Any) -> None:
        counts["dynamodb calls"] += 1

    def before_send(**_: Any) -> None:
        counts["dynamodb attempts (incl. botocore retries)"] += 1

    def after_call(parsed: Any, **_: Any) -> None:
        if parsed.get("Error", {}).get("Code") == "TransactionCanceledException":
            codes = {r.get("Code") for r in parsed.get("CancellationReasons", [])}
            if "TransactionConflict" in codes:
                counts["transaction conflicts retried by the store"] += 1
            if "ConditionalCheckFailed" in codes:
                counts["transaction conditions refused (limit, plan guess, gone)"] += 1

    events.register("before-call.dynamodb", before_call)
    events.register("before-send.dynamodb", before_send)
    events.register("after-call.dynamodb.TransactWriteItems", after_call)


def run(worker: int, phases: int, seconds: float, start: Any, results: Any) -> None:
    from tests.helpers.support import Api

    rng = random.Random(worker)
    api = Api()
    counts: Counter[str] = Counter()
    _hooks(counts)
    created: list[tuple[str, str, str]] = []  # (secret, account, key_id)
    deleted_by_me: set[str] = set()
    violations: list[str] = []
    for _ in range(phases):
        try:
            start.wait(timeout=120)
        except threading.BrokenBarrierError:
            return  # the parent stopped the storm
        new_created: list[tuple[str, str, str]] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            account = rng.choice(ACCOUNTS)
            roll = rng.random()
            if roll < 0.35:
                reply = api.create(account, f"w{worker}")
                counts[f"create {reply.status}"] += 1
                if reply.status == 201:
                    new_created.append((reply.body["key"], account, reply.body["id"]))
            elif roll < 0.60:
                listing = api.list(account)
                counts[f"list {listing.status}"] += 1
                if listing.status == 200 and listing.body["keys"]:
                    key_id = rng.choice(listing.body["keys"])["id"]
                    reply = api.delete(account, key_id)
                    counts[f"delete {reply.status}"] += 1
                    if reply.status == 204:
                        deleted_by_me.add(key_id)
            elif roll < 0.90:
                pool = created + new_created
                if not pool:
                    continue
                secret, owner, key_id = rng.choice(pool)
                try:
                    allowed = api.bearer(secret)
                except Exception as exc:
                    counts[f"authorize error {type(exc).__name__}"] += 1
                    continue
                counts["authorize allowed" if allowed else "authorize denied"] += 1
                if allowed and key_id in deleted_by_me:
                    violations.append(f"key {key_id} deleted (204) then allowed")
                if allowed and allowed["context"]["account_id"] != owner:
                    violations.append(f"key {key_id} allowed for another account")
            else:
                try:
                    api.set_plan(account, rng.choice(PLANS))
                    counts["set plan ok"] += 1
                except Exception as exc:
                    counts[f"set plan error {type(exc).__name__}"] += 1
        created.extend(new_created)
        results.put({"worker": worker, "counts": dict(counts), "created": new_created, "violations": violations})
        counts.clear()
        violations = []
