"""One storm worker (a separate process, a warm Lambda container of every function): random
creates, deletes, rolls, renames, gets, plan changes and authorizations on a handful of accounts,
phase by phase. Any exception and any 5xx is a violation: under contention the service answers
201/403/404/409, never an error."""

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
            try:
                _step(api, rng, worker, account, created + new_created, new_created, deleted_by_me, counts, violations)
            except Exception as exc:
                violations.append(f"exception {type(exc).__name__}: {exc}")
        created.extend(new_created)
        results.put({"worker": worker, "counts": dict(counts), "created": new_created, "violations": violations})
        counts.clear()
        violations = []


# Statuses the contract allows under contention, per operation; anything else is a violation.
ALLOWED = {
    "create": {201, 403},
    "list": {200},
    "delete": {204, 404},
    "roll": {201, 403, 404, 409},
    "rename": {200, 404, 409},  # 409: the key is being rolled out (issue 22: change its replacement)
    "get": {200, 404},
}


def _step(
    api: Any,
    rng: random.Random,
    worker: int,
    account: str,
    pool: list[tuple[str, str, str]],
    new_created: list[tuple[str, str, str]],
    deleted_by_me: set[str],
    counts: Counter[str],
    violations: list[str],
) -> None:
    """One random operation; a status outside ALLOWED (a 5xx above all) is a violation."""

    def answered(operation: str, reply: Any) -> bool:
        counts[f"{operation} {reply.status}"] += 1
        if reply.status not in ALLOWED[operation]:
            violations.append(f"{operation} answered {reply.status}: {reply.body}")
        return bool(reply.status < 300)

    dice = rng.random()
    if dice < 0.30:
        reply = api.create(account, f"w{worker}")
        if answered("create", reply):
            new_created.append((reply.body["key"], account, reply.body["id"]))
        return
    if dice < 0.70:
        listing = api.list(account)
        if not answered("list", listing) or not listing.body["keys"]:
            return
        key_id = rng.choice(listing.body["keys"])["id"]
        action = rng.random()
        if action < 0.4:
            if answered("delete", api.delete(account, key_id)):
                deleted_by_me.add(key_id)
        elif action < 0.7:
            grace = rng.choice([0, 3600])
            reply = api.roll(account, key_id, grace=grace)
            if answered("roll", reply):
                new_created.append((reply.body["key"], account, reply.body["id"]))
                if not grace:
                    deleted_by_me.add(key_id)
        elif action < 0.85:
            answered("rename", api.rename(account, key_id, f"renamed by w{worker}"))
        else:
            reply = api.get(account, key_id)
            if answered("get", reply) and reply.body["id"] != key_id:
                violations.append(f"get {key_id} answered key {reply.body['id']}")
        return
    if dice < 0.92:
        if not pool:
            return
        secret, owner, key_id = rng.choice(pool)
        allowed = api.bearer(secret)
        counts["authorize allowed" if allowed else "authorize denied"] += 1
        if allowed and key_id in deleted_by_me:
            violations.append(f"key {key_id} deleted (204) then allowed")
        if allowed and allowed["context"]["account_id"] != owner:
            violations.append(f"key {key_id} allowed for another account")
        return
    api.set_plan(account, rng.choice(PLANS))
    counts["set plan ok"] += 1
