"""`make bench`: measure the service side by side with its physical floor, in one run.

Every figure is a ratio against a baseline measured in the same run, interleaved with it
(A B A B …, with the order rotated each round) so drift and a neighbour's load hit both
sides alike. Absolute times on a shared 2-core machine mean little; ratios hold.

    python -m bench.run [--smoke] [--json PATH] [--endpoint URL] [--cpu N]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import logging
import math
import os
import platform
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
LAYER = ROOT / "layers" / "shared"
EVENTS = ROOT / "events"
for path in (str(LAYER), str(ROOT / "infra"), str(ROOT)):
    if path not in sys.path:
        sys.path.insert(0, path)

from apikeys_local.template import read_template  # noqa: E402
from bench.child import child_env, spawn  # noqa: E402
from bench.mcp_loop import WHOAMI, mcp_event  # noqa: E402
from bench.stats import percentile, ratio, summary  # noqa: E402

# Every function that can run here. audit_events is left out: its one job is a PutEvents call to
# EventBridge, which has no local emulator (docs/performance.md); secret_scanning too: every
# call needs a report signed by a key server the bench would have to run (its cost is one
# signature check plus one GetItem per token, tests/contract/test_secret_scanning.py); oauth and
# oauth_consent not yet (no sample events; a connection needs a client, a consent and a code).
FUNCTIONS = (
    "authorizer",
    "create_key",
    "list_keys",
    "get_key",
    "rename_key",
    "roll_key",
    "delete_key",
    "set_plan",
    "whoami",
    "key_expiry",
    "list_scopes",
    "mcp",
    "revoke_credentials",
    "list_revocations",
    "key_usage",
    "expiry_notices",
)
PLACEHOLDER_KEY = "ot_PASTE_A_KEY_HERE"
# The function settings of template.yaml's Globals (the table and endpoint are added at run time).
FUNCTION_ENV = {
    "KEY_PREFIX": "ot_",
    "PLAN_LIMITS": read_template(ROOT / "template.yaml")["Parameters"]["PlanLimits"]["Default"],
    "KEY_SCOPES": read_template(ROOT / "template.yaml")["Parameters"]["KeyScopes"]["Default"],
    "DEFAULT_PLAN": "",
    "ACCOUNT_ID_CLAIM": "sub",
    "POWERTOOLS_SERVICE_NAME": "apikeys",
    "POWERTOOLS_METRICS_NAMESPACE": "ApiKeys",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    # DynamoDB Local accepts any credentials; no real AWS is reachable or wanted.
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
TARGETS = {
    "warm_p50_ratio": 1.05,  # issue 20 item 8 (docs/performance.md, "The authorizer's warm path")
    "warm_p99_ratio": 1.10,
    # A scoped key's policy lists its routes (issue 12): its own target, as before item 8.
    "scoped_warm_p50_ratio": 1.10,
    "scoped_warm_p99_ratio": 1.10,
    "reject_ratio": 0.05,
    "cold_authorizer": 1.15,
    "cold_other": 1.6,
    # McpFunction loads the MCP SDK (pydantic models of the whole protocol, Starlette, anyio) on
    # top of the layer; its cold start is reported beside the others with a target of its own.
    "cold_mcp": 5.0,
    # A warm `tools/call whoami` (no DynamoDB call: identity is the authorizer's context) against
    # one bare GetItem: the SDK's per-request JSON-RPC work costs about one read.
    "mcp_warm_p50_ratio": 2.0,
    "throughput_ratio": 0.9,
    # RSS growth over the run beyond the bare-GetItem process's own growth. Python's allocator
    # keeps arenas and botocore warms caches, so "no growth" means "within this of the reference".
    "rss_noise_kib": 1024,
}


@dataclass(frozen=True)
class Sizes:
    warmup: int
    rounds: int
    blocks: int
    block_seconds: float
    cold_warmup: int
    cold_rounds: int
    invocations: int


FULL = Sizes(warmup=300, rounds=3000, blocks=10, block_seconds=0.5, cold_warmup=2, cold_rounds=20, invocations=1000)
SMOKE = Sizes(warmup=5, rounds=30, blocks=2, block_seconds=0.05, cold_warmup=0, cold_rounds=1, invocations=10)


# -- setup ----------------------------------------------------------------------------------


def pin(cpu: int | None) -> dict[str, Any]:
    """Pin this process (and so its children) to one core; DynamoDB Local gets the others."""
    if not hasattr(os, "sched_setaffinity"):
        return {"pinned": False, "reason": "os.sched_setaffinity unavailable"}
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return {"pinned": False, "reason": "only one CPU available; DynamoDB Local shares it", "cpus": allowed}
    chosen = cpu if cpu is not None else allowed[-1]
    return {"pinned": True, "bench_cpu": chosen, "server_cpus": [c for c in allowed if c != chosen]}


@contextlib.contextmanager
def affinity(cpus: list[int] | None) -> Iterator[None]:
    """Run the block (and processes it starts) on `cpus`, then restore."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, set(cpus))
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The functions log one line per invocation to stdout; send those to /dev/null while
    measuring (they are still formatted and written, as on Lambda) and keep the table readable."""
    real = sys.stdout
    with open(os.devnull, "w") as sink:
        sys.stdout = sink
        try:
            yield
        finally:
            sys.stdout = real


def sample_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / f"{name}.json").read_text())
    return event


def substitute(event: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(json.dumps(event).replace(old, new))
    return result


def create_event(account: str) -> dict[str, Any]:
    return substitute(sample_event("create_key"), '"demo-account"', json.dumps(account))


def list_event(account: str) -> dict[str, Any]:
    return substitute(sample_event("list_keys"), '"demo-account"', json.dumps(account))


def key_event(function: str, account: str, key_id: str) -> dict[str, Any]:
    """The sample event of a function that acts on one key, aimed at a real one."""
    event = substitute(sample_event(function), '"demo-account"', json.dumps(account))
    event = substitute(event, "ACCOUNT#demo-account", f"ACCOUNT#{account}")
    return substitute(event, "key_00000000000000000000", key_id)


def delete_event(account: str, key_id: str) -> dict[str, Any]:
    return key_event("delete_key", account, key_id)


class Fixture:
    """The table and the data every measurement uses, seeded through the domain code."""

    def __init__(self, sizes: Sizes) -> None:
        from apikeys import keys, logic, store
        from apikeys.audit import Caller
        from apikeys.config import get_settings
        from apikeys.store import dynamodb_client
        from tests.helpers.support import table_definition

        self.table = get_settings().table_name
        self.client = dynamodb_client()
        self.client.create_table(**table_definition(self.table))
        self.client.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 1})
        self.sizes = sizes
        self.run = uuid.uuid4().hex[:6]
        bench = Caller("bench")
        logic.set_plan(self.account("main"), "agency", bench)
        self.key = logic.create_key(self.account("main"), "bench key", None, bench).secret  # lives only in memory
        self.digest_key = store._digest_key(keys.digest(self.key))  # the authorizer's one read
        # A scoped key: its policy lists its scopes' routes instead of `/*/*` (issue 12).
        scoped = logic.create_key(self.account("main"), "bench scoped key", None, bench, ["whoami", "mcp"])
        self.scoped_key = scoped.secret
        self.main_keys = [
            logic.create_key(self.account("main"), f"bench key {i}", None, bench).record.key_id for i in range(4)
        ]
        self._batch = 0

    def account(self, label: str) -> str:
        return f"bench-{self.run}-{label}"

    def fresh_accounts(self, count: int) -> list[str]:
        """`count` accounts on the agency plan, each able to take 25 new keys."""
        from apikeys import logic
        from apikeys.audit import Caller

        self._batch += 1
        accounts = [self.account(f"b{self._batch}-{i}") for i in range(count)]
        for account in accounts:
            logic.set_plan(account, "agency", Caller("bench"))
        return accounts

    def keys_to_delete(self, count: int) -> list[tuple[str, str]]:
        from apikeys import logic
        from apikeys.audit import Caller

        pairs = []
        for i, account in enumerate(self.fresh_accounts(math.ceil(count / 25))):
            for j in range(min(25, count - i * 25)):
                pairs.append((account, logic.create_key(account, f"doomed {j}", None, Caller("bench")).record.key_id))
        return pairs

    def events(self, function: str, count: int) -> list[dict[str, Any]]:
        """`count` realistic invocations of a function, each valid on its own."""
        if function == "authorizer":
            return [substitute(sample_event("authorizer_token"), PLACEHOLDER_KEY, self.key)] * count
        if function == "create_key":
            accounts = self.fresh_accounts(math.ceil(count / 25))
            return [create_event(accounts[i // 25]) for i in range(count)]
        if function == "list_keys":
            return [list_event(self.account("main"))] * count
        if function in ("get_key", "rename_key", "key_usage"):
            return [key_event(function, self.account("main"), self.main_keys[0])] * count
        if function in ("roll_key", "delete_key", "key_expiry"):  # each needs a key of its own
            return [key_event(function, account, key_id) for account, key_id in self.keys_to_delete(count)]
        if function == "set_plan":
            account = self.account("main")
            return [{"account_id": account, "plan": ("agency", "advanced")[i % 2]} for i in range(count)]
        if function == "expiry_notices":  # a day's run: one index Query per day of the window
            return [sample_event("expiry_notices")] * count
        if function == "list_scopes":
            return [substitute(sample_event("list_scopes"), "demo-account", self.account("main"))] * count
        if function == "mcp":
            return [self.mcp_event()] * count
        if function == "revoke_credentials":  # a well-formed key that was never issued: one GetItem, 202
            from apikeys import keys

            return [substitute(sample_event("revoke_credentials"), PLACEHOLDER_KEY, keys.generate("ot_"))] * count
        if function == "list_revocations":
            return [substitute(sample_event("list_revocations"), "demo-account", self.account("main"))] * count
        return [sample_event("whoami")] * count

    def mcp_event(self) -> dict[str, Any]:
        """POST /mcp `tools/call whoami` with the context the authorizer gives the main key."""
        event = mcp_event(WHOAMI)
        event["requestContext"]["authorizer"].update(account_id=self.account("main"), principalId=self.account("main"))
        return event


# -- measurements ---------------------------------------------------------------------------


def interleaved(
    variants: dict[str, Callable[[], Any]], warmup: int, rounds: int, idle: Callable[[], Any]
) -> dict[str, list[int]]:
    """Time each variant once per round, rotating the order every round (ABC, BCA, CAB…).

    Before every measured call, `idle` runs unmeasured: a blocking network round trip, as the
    Lambda runtime's long poll for the next event is. Without it, a variant that happens to
    follow a network wait pays for the cold CPU caches and the wake-up, and the one after it
    does not: the order, not the code, would decide the figure.
    """
    names = list(variants)
    samples: dict[str, list[int]] = {name: [] for name in names}
    clock = time.perf_counter_ns
    for i in range(warmup + rounds):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            fn = variants[name]
            idle()
            start = clock()
            fn()
            elapsed = clock() - start
            if i >= warmup:
                samples[name].append(elapsed)
    return samples


def authorizer_calls(fixture: Fixture) -> dict[str, Callable[[], Any]]:
    """Warm, in-process handler calls: the same path a warm Lambda container runs."""
    from apikeys import keys, store
    from tests.helpers.support import LambdaContext, load_function

    handler = load_function("authorizer").lambda_handler
    context = LambdaContext(function_name="authorizer")
    valid = substitute(sample_event("authorizer_token"), PLACEHOLDER_KEY, fixture.key)
    last = fixture.key[-1]
    tampered = substitute(valid, fixture.key, fixture.key[:-1] + ("A" if last != "A" else "B"))
    malformed = substitute(valid, fixture.key, "ot_not-a-key")
    scoped = substitute(valid, fixture.key, fixture.scoped_key)
    digest_key = store._digest_key(keys.digest(fixture.key))
    client = fixture.client

    def allow() -> Any:
        return handler(valid, context)

    def allow_scoped() -> Any:
        return handler(scoped, context)

    def deny(event: dict[str, Any]) -> Callable[[], None]:
        def call() -> None:
            try:
                handler(event, context)
            except Exception as exc:
                if str(exc) != "Unauthorized":
                    raise
            else:
                raise AssertionError("a bad key was allowed")

        return call

    def bare() -> Any:
        return client.get_item(TableName=fixture.table, Key=digest_key, ConsistentRead=True)

    return {
        "authorizer": allow,
        "bare_get_item": bare,
        "tampered": deny(tampered),
        "malformed": deny(malformed),
        "authorizer scoped": allow_scoped,
    }


def breakdown_calls(fixture: Fixture, calls: dict[str, Callable[[], Any]]) -> dict[str, Callable[[], Any]]:
    """The layers of the warm path, to show where the overhead over a bare GetItem goes:
    the store's read alone, the domain check (format, checksum, read, expiry) without the
    handler (which adds the policy and the usage count), and a reject with its log line off."""
    from apikeys import auth, keys, store
    from apikeys.observability import make_logger

    digest, key, table = keys.digest(fixture.key), fixture.key, fixture.table
    stdlib_logger = make_logger()._logger

    def unlogged_reject() -> None:
        stdlib_logger.disabled = True
        try:
            calls["tampered"]()
        finally:
            stdlib_logger.disabled = False

    return {
        "store.get_principal": lambda: store.Store(table).get_principal(digest),
        "auth.authorize": lambda: auth.authorize(key),
        "tampered, log line off": unlogged_reject,
    }


def warm_latency(fixture: Fixture, sizes: Sizes, *_: Any) -> dict[str, Any]:
    calls = authorizer_calls(fixture)
    variants = {**calls, **breakdown_calls(fixture, calls)}
    with quiet():
        samples = interleaved(variants, sizes.warmup, sizes.rounds, idle=calls["bare_get_item"])
    stats = {name: summary(values) for name, values in samples.items()}
    bare = stats["bare_get_item"]
    return {
        "variants": {name: stats[name] for name in calls},
        "breakdown_p50_ratio": {name: ratio(stats[name]["p50_us"], bare["p50_us"]) for name in stats},
        "breakdown": {name: stats[name] for name in stats if name not in calls},
        "p50_ratio": ratio(stats["authorizer"]["p50_us"], bare["p50_us"]),
        "p99_ratio": ratio(stats["authorizer"]["p99_us"], bare["p99_us"]),
        "scoped_p50_ratio": ratio(stats["authorizer scoped"]["p50_us"], bare["p50_us"]),
        "scoped_p99_ratio": ratio(stats["authorizer scoped"]["p99_us"], bare["p99_us"]),
        "tampered_ratio": ratio(stats["tampered"]["p50_us"], bare["p50_us"]),
        "malformed_ratio": ratio(stats["malformed"]["p50_us"], bare["p50_us"]),
    }


def usage_write(fixture: Fixture, sizes: Sizes, *_: Any) -> dict[str, Any]:
    """The request that writes its account's usage count (at most one per account per container
    per minute; issue 23), against one that writes nothing and a bare GetItem, interleaved; and
    the design not taken, the same write on a worker thread while the request goes on. What the
    choice in docs/design.md ("Usage counts") rests on."""
    from concurrent.futures import ThreadPoolExecutor

    from apikeys import usage

    calls = authorizer_calls(fixture)
    account = fixture.account("main")
    state = usage._state
    worker = ThreadPoolExecutor(max_workers=1)
    real_write = usage._write

    def due() -> None:
        """The account's minute has passed; its key's last-used has not (that write is another's)."""
        state.written.pop(account, None)
        for key_id in list(state.touched):
            state.touched[key_id] = float("inf")

    def on_request() -> Any:
        due()
        return calls["authorizer"]()

    def on_thread() -> Any:
        due()
        usage._write = lambda name, days: worker.submit(real_write, name, days)  # type: ignore[assignment]
        try:
            return calls["authorizer"]()
        finally:
            usage._write = real_write

    def idle() -> None:
        calls["bare_get_item"]()
        worker.submit(lambda: None).result()  # the thread's write is over before the next sample

    rounds, warmup = min(sizes.rounds, 1000), min(sizes.warmup, 100)
    variants = {
        "count written on the request": on_request,
        "count written on a thread": on_thread,
        "nothing due": calls["authorizer"],
        "bare_get_item": calls["bare_get_item"],
    }
    with quiet():
        samples = interleaved(variants, warmup, rounds, idle=idle)
        usage.flush()
    worker.shutdown()
    state.touched.clear()  # last-used as a container that has just started
    stats = {name: summary(values) for name, values in samples.items()}
    bare = stats["bare_get_item"]
    return {
        "rounds": rounds,
        "variants": stats,
        "p50_ratio": {
            name: ratio(stats[name]["p50_us"], bare["p50_us"]) for name in variants if name != "bare_get_item"
        },
        "p99_ratio": {
            name: ratio(stats[name]["p99_us"], bare["p99_us"]) for name in variants if name != "bare_get_item"
        },
    }


def mcp_warm(fixture: Fixture, sizes: Sizes, *_: Any) -> dict[str, Any]:
    """A warm McpFunction `tools/call whoami` against a bare GetItem, interleaved, apart from
    the authorizer's own interleaving so its figures stay comparable from run to run."""
    from apikeys import keys, store
    from tests.helpers.support import LambdaContext, load_function

    handler = load_function("mcp").lambda_handler
    context = LambdaContext(function_name="mcp")
    event = fixture.mcp_event()
    digest_key = store._digest_key(keys.digest(fixture.key))

    def whoami() -> None:
        result = handler(event, context)
        if result["statusCode"] != 200 or '"isError":false' not in result["body"]:
            raise AssertionError(f"tools/call whoami failed: {result}")

    def bare() -> Any:
        return fixture.client.get_item(TableName=fixture.table, Key=digest_key, ConsistentRead=True)

    with quiet():
        samples = interleaved({"mcp_whoami": whoami, "bare_get_item": bare}, sizes.warmup, sizes.rounds, idle=bare)
    stats = {name: summary(values) for name, values in samples.items()}
    return {
        "variants": stats,
        "p50_ratio": ratio(stats["mcp_whoami"]["p50_us"], stats["bare_get_item"]["p50_us"]),
        "p99_ratio": ratio(stats["mcp_whoami"]["p99_us"], stats["bare_get_item"]["p99_us"]),
    }


def create_latency(fixture: Fixture, sizes: Sizes, *_: Any) -> dict[str, Any]:
    """A warm `create_key` handler for an account this container has not served before (the
    common case: creates are rare, and list and create run in different functions) and for one
    it has, against a bare GetItem; rounds interleaved, the order rotating. docs/design.md
    ("The plan read") records the figures of the plan guess and of the plain read."""
    from apikeys import logic
    from apikeys.audit import Caller
    from tests.helpers.support import LambdaContext, load_function

    handler = load_function("create_key").lambda_handler
    context = LambdaContext(function_name="create_key")
    rounds, warmup = min(sizes.rounds, 400), min(sizes.warmup, 20)
    new_accounts = iter(fixture.fresh_accounts(warmup + rounds))
    (seen,) = fixture.fresh_accounts(1)
    digest_key = fixture.digest_key

    def create(account: str) -> str:
        result = handler(create_event(account), context)
        if result["statusCode"] != 201:
            raise AssertionError(f"create failed: {result}")
        return str(json.loads(result["body"])["id"])

    create(seen)  # the container has served this account once
    variants: dict[str, Callable[[], Any]] = {
        "create, new account": lambda: create(next(new_accounts)),
        "create, seen account": lambda: create(seen),
        "bare_get_item": lambda: fixture.client.get_item(TableName=fixture.table, Key=digest_key, ConsistentRead=True),
    }
    samples: dict[str, list[int]] = {name: [] for name in variants}
    names = list(variants)
    with quiet():
        for i in range(warmup + rounds):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                variants["bare_get_item"]()  # idle, as in `interleaved`
                start = time.perf_counter_ns()
                made = variants[name]()
                elapsed = time.perf_counter_ns() - start
                if name == "create, seen account":
                    logic.delete_key(seen, made, Caller("bench"))  # back under the limit, unmeasured
                if i >= warmup:
                    samples[name].append(elapsed)
    stats = {name: summary(values) for name, values in samples.items()}
    bare = stats["bare_get_item"]["p50_us"]
    return {
        "rounds": rounds,
        "variants": stats,
        "p50_ratio": {name: ratio(stats[name]["p50_us"], bare) for name in names if name != "bare_get_item"},
    }


def throughput(fixture: Fixture, sizes: Sizes, *_: Any) -> dict[str, Any]:
    """Sequential invocations per second on the pinned core, in alternating fixed-time blocks
    (A B B A A B …): one Lambda container serves one request at a time."""
    calls = authorizer_calls(fixture)
    variants = {"authorizer": calls["authorizer"], "bare_get_item": calls["bare_get_item"]}
    rates: dict[str, list[float]] = {name: [] for name in variants}
    order = ["authorizer", "bare_get_item"]
    with quiet():
        for name in order:  # warm-up block each
            deadline = time.perf_counter() + sizes.block_seconds / 2
            while time.perf_counter() < deadline:
                variants[name]()
        for block in range(sizes.blocks * 2):
            name = order[(block + block // 2) % 2]
            fn, count = variants[name], 0
            start = time.perf_counter()
            deadline = start + sizes.block_seconds
            while (now := time.perf_counter()) < deadline:
                fn()
                count += 1
            rates[name].append(count / (now - start))
    per_second = {name: round(percentile(values, 50), 1) for name, values in rates.items()}
    spread = {name: round(percentile(values, 75) - percentile(values, 25), 1) for name, values in rates.items()}
    return {
        "per_second": per_second,
        "iqr_per_second": spread,
        "blocks": sizes.blocks,
        "ratio": ratio(per_second["authorizer"], per_second["bare_get_item"]),
    }


def cold_start(fixture: Fixture, sizes: Sizes, env: dict[str, str]) -> dict[str, Any]:
    """Fresh processes, interleaved round by round with the boto3-only baseline."""
    jobs: dict[str, Callable[[], dict[str, Any]]] = {
        "baseline": lambda: {"mode": "baseline", "name": "baseline", "events": []},
    }
    for function in FUNCTIONS:

        def job(function: str = function) -> dict[str, Any]:
            return {
                "mode": "function",
                "name": function,
                "code_uri": str(ROOT / "functions" / function),
                "layer": str(LAYER),
                "events": fixture.events(function, 1),
            }

        jobs[function] = job
    names = list(jobs)
    in_process: dict[str, list[int]] = {name: [] for name in names}
    from_spawn: dict[str, list[int]] = {name: [] for name in names}
    imports: dict[str, list[int]] = {name: [] for name in names}
    for i in range(sizes.cold_warmup + sizes.cold_rounds):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            result = spawn(jobs[name](), env)
            if i >= sizes.cold_warmup:
                in_process[name].append(result["t_ready"] - result["t_start"])
                from_spawn[name].append(result["t_ready"] - result["t_spawn"])
                imports[name].append(result["t_imported"] - result["t_start"])
    report: dict[str, Any] = {"rounds": sizes.cold_rounds, "functions": {}}
    base_in, base_spawn = percentile(in_process["baseline"], 50), percentile(from_spawn["baseline"], 50)
    report["baseline"] = cold_summary(in_process["baseline"], from_spawn["baseline"], imports["baseline"])
    for function in FUNCTIONS:
        entry = cold_summary(in_process[function], from_spawn[function], imports[function])
        entry["ratio_in_process"] = ratio(percentile(in_process[function], 50), base_in)
        entry["ratio_from_spawn"] = ratio(percentile(from_spawn[function], 50), base_spawn)
        entry["target"] = {"authorizer": TARGETS["cold_authorizer"], "mcp": TARGETS["cold_mcp"]}.get(
            function, TARGETS["cold_other"]
        )
        report["functions"][function] = entry
    return report


def cold_summary(in_process: list[int], from_spawn: list[int], imports: list[int]) -> dict[str, Any]:
    def ms(values: list[int], q: float) -> float:
        return round(percentile(values, q) / 1e6, 1)

    return {
        "in_process_p50_ms": ms(in_process, 50),
        "in_process_iqr_ms": round(ms(in_process, 75) - ms(in_process, 25), 1),
        "from_spawn_p50_ms": ms(from_spawn, 50),
        "from_spawn_iqr_ms": round(ms(from_spawn, 75) - ms(from_spawn, 25), 1),
        "import_p50_ms": ms(imports, 50),
    }


def memory(fixture: Fixture, sizes: Sizes, env: dict[str, str]) -> dict[str, Any]:
    """Peak RSS (VmHWM) of a fresh process after its 1st and its Nth invocation."""
    from apikeys import keys, store

    get_item = {
        "TableName": fixture.table,
        "Key": store._digest_key(keys.digest(fixture.key)),
        "ConsistentRead": True,
    }
    reference = spawn({"mode": "baseline", "name": "baseline", "events": [get_item] * sizes.invocations}, env)
    ref_growth = reference["after_last"]["VmHWM"] - reference["after_first"]["VmHWM"]
    report: dict[str, Any] = {
        "invocations": sizes.invocations,
        "reference_bare_get_item": peak(reference),
        "allowed_growth_kib": max(ref_growth, 0) + TARGETS["rss_noise_kib"],
        "functions": {},
    }
    for function in FUNCTIONS:
        job = {
            "mode": "function",
            "name": function,
            "code_uri": str(ROOT / "functions" / function),
            "layer": str(LAYER),
            "events": fixture.events(function, sizes.invocations),
        }
        entry = peak(spawn(job, env))
        entry["ok"] = entry["growth_kib"] <= report["allowed_growth_kib"]
        report["functions"][function] = entry
    return report


def peak(result: dict[str, Any]) -> dict[str, Any]:
    first, last = result["after_first"]["VmHWM"], result["after_last"]["VmHWM"]
    return {"peak_after_first_kib": first, "peak_after_last_kib": last, "growth_kib": last - first}


def call_counts(fixture: Fixture, *_: Any) -> dict[str, Any]:
    """DynamoDB API calls per operation, counted at the client (botocore event hook)."""
    from apikeys import usage
    from apikeys.store import dynamodb_client
    from tests.helpers.support import CallCounter, LambdaContext, load_function

    counter = CallCounter(dynamodb_client())
    context = LambdaContext()

    def count(function: str, event: dict[str, Any]) -> list[str]:
        counter.reset()
        try:
            load_function(function).lambda_handler(event, context)
        except Exception as exc:
            if str(exc) != "Unauthorized":
                raise
        return list(counter.calls)

    valid = substitute(sample_event("authorizer_token"), PLACEHOLDER_KEY, fixture.key)
    tampered = substitute(valid, fixture.key, fixture.key[:-1] + ("A" if fixture.key[-1] != "A" else "B"))
    malformed = substitute(valid, fixture.key, "ot_not-a-key")
    scoped = substitute(valid, fixture.key, fixture.scoped_key)
    (account,) = fixture.fresh_accounts(1)
    results: dict[str, Any] = {}
    with quiet():
        usage.flush()
        usage._state.clear()  # as a new container: the account's first grant writes its count at once

        def first(token_event: dict[str, Any]) -> list[str]:
            counter.reset()
            count("authorizer", token_event)
            usage.wait_for_last_used()
            return list(counter.calls)

        # The read, the day's count (on the request, at most once a minute per account), then
        # last_used_at (off the request, at most once a minute per key).
        results["authorize (valid key, first in the minute)"] = (first(valid), ["GetItem", "UpdateItem", "UpdateItem"])
        results["authorize (valid key, request path)"] = (count("authorizer", valid), ["GetItem"])
        results["authorize (tampered key)"] = (count("authorizer", tampered), [])
        results["authorize (malformed key)"] = (count("authorizer", malformed), [])
        first(scoped)  # the same account: its count waits for the minute; its own last-used
        results["authorize (scoped key, request path)"] = (count("authorizer", scoped), ["GetItem"])
        count("create_key", create_event(account))  # the container learns the account's plan
        results["create (warm container)"] = (count("create_key", create_event(account)), ["TransactWriteItems"])
        for _round in range(8):
            count("create_key", create_event(account))
        # The keys and plan (one Query per page), then the keys' last 30 days of usage (issue 23).
        results["list (10 keys, one page)"] = (count("list_keys", list_event(account)), ["Query", "Query"])
        pages = paged_list_calls(counter, lambda: count("list_keys", list_event(account)), page_size=3)
        results["list (10 keys, page size 3)"] = pages
        from apikeys import logic

        victim = logic.list_keys(account).keys[0].key_id
        results["get (its requests_30d)"] = (
            count("get_key", key_event("get_key", account, victim)),
            ["GetItem", "Query"],
        )
        days = count("key_usage", key_event("key_usage", account, victim))
        results["key usage (7 days)"] = (days, ["Query", "Query"])  # the key, then its days
        results["delete"] = (count("delete_key", delete_event(account, victim)), ["GetItem", "TransactWriteItems"])
        results["whoami"] = (count("whoami", sample_event("whoami")), [])
        # The MCP SDK sets up logging of its own when it loads (a rich handler on the root logger);
        # left in place, every later phase in this process logs through it, and the authorizer's
        # denials measured 5-7x slower than in Lambda, where the two never share a process.
        root = logging.getLogger()
        handlers, level = list(root.handlers), root.level
        results["mcp tools/call whoami"] = (count("mcp", fixture.mcp_event()), [])
        root.handlers[:], root.level = handlers, level
        usage.flush()
    counter.close()
    return {
        name: {"calls": calls, "expected": expected, "ok": calls == expected}
        for name, (calls, expected) in results.items()
    }


def paged_list_calls(counter: Any, list_once: Callable[[], list[str]], page_size: int) -> tuple[list[str], list[str]]:
    """Force DynamoDB to page (a real table pages at 1 MB) and expect one Query per page:
    11 items (account + 10 keys) at 3 per page is 4 pages; then one for the keys' usage, which
    this account has none of (one page: at most 30 items, one per day)."""
    client = counter._client

    def limit(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = page_size

    client.meta.events.register("before-parameter-build.dynamodb.Query", limit)
    try:
        calls = list_once()
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb.Query", limit)
    return calls, ["Query"] * math.ceil(11 / page_size) + ["Query"]


def warm_server(fixture: Fixture, sizes: Sizes) -> None:
    """DynamoDB Local is a JVM: its first thousands of requests are interpreted, then JIT-
    compiled. Warm it up so the first measured variant is not penalised."""
    calls = authorizer_calls(fixture)
    with quiet():
        for _ in range(sizes.warmup * 5):
            calls["bare_get_item"]()
            calls["authorizer"]()


PHASES: dict[str, Callable[[Fixture, Sizes, dict[str, str]], dict[str, Any]]] = {
    "call_counts": call_counts,
    "warm_latency": warm_latency,
    "usage_write": usage_write,
    "mcp_warm": mcp_warm,
    "create_latency": create_latency,
    "throughput": throughput,
    "cold_start": cold_start,
    "memory": memory,
}


# -- report ---------------------------------------------------------------------------------


def machine(pinning: dict[str, Any]) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
        "pinning": pinning,
    }


def verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's table: one row per figure, with its baseline, ratio, target and verdict."""
    rows: list[dict[str, Any]] = []

    def row(figure: str, value: str, baseline: str, got: float | str, target: str, ok: bool) -> None:
        rows.append({"figure": figure, "value": value, "baseline": baseline, "ratio": got, "target": target, "ok": ok})

    counts = results.get("call_counts", {})
    if w := results.get("warm_latency"):
        warm, bare = w["variants"], w["variants"]["bare_get_item"]
        for q in ("p50", "p99"):
            got = w[f"{q}_ratio"]
            ok = got <= TARGETS[f"warm_{q}_ratio"]
            target = f"≤ {TARGETS[f'warm_{q}_ratio']:.2f}"
            row(f"authorizer warm {q}", f"{warm['authorizer'][f'{q}_us']} µs", f"{bare[f'{q}_us']} µs GetItem", got,
                target, ok)  # fmt: skip
            got, limit = w[f"scoped_{q}_ratio"], TARGETS[f"scoped_warm_{q}_ratio"]
            row(f"authorizer warm {q}, scoped key", f"{warm['authorizer scoped'][f'{q}_us']} µs",
                f"{bare[f'{q}_us']} µs GetItem", got, f"≤ {limit:.2f}", got <= limit)  # fmt: skip
        for kind in ("tampered", "malformed"):
            zero = counts.get(f"authorize ({kind} key)", {}).get("calls", []) == []
            got = w[f"{kind}_ratio"]
            row(f"reject {kind} key p50", f"{warm[kind]['p50_us']} µs", f"{bare['p50_us']} µs GetItem", got,
                "≤ 0.05, 0 calls", got <= TARGETS["reject_ratio"] and zero)  # fmt: skip
    if m := results.get("mcp_warm"):
        mcp, bare = m["variants"]["mcp_whoami"], m["variants"]["bare_get_item"]
        row("mcp warm tools/call whoami p50", f"{mcp['p50_us']} µs", f"{bare['p50_us']} µs GetItem", m["p50_ratio"],
            f"≤ {TARGETS['mcp_warm_p50_ratio']}", m["p50_ratio"] <= TARGETS["mcp_warm_p50_ratio"])  # fmt: skip
        row("mcp warm tools/call whoami p99", f"{mcp['p99_us']} µs", f"{bare['p99_us']} µs GetItem", m["p99_ratio"],
            "report", True)  # fmt: skip
    if u := results.get("usage_write"):
        bare = u["variants"]["bare_get_item"]
        for name, got in u["p50_ratio"].items():
            row(f"authorizer p50, {name}", f"{u['variants'][name]['p50_us']} µs", f"{bare['p50_us']} µs GetItem", got,
                "report", True)  # fmt: skip
    if c := results.get("create_latency"):
        bare = c["variants"]["bare_get_item"]
        for name, got in c["p50_ratio"].items():
            row(f"{name} p50", f"{c['variants'][name]['p50_us']} µs", f"{bare['p50_us']} µs GetItem", got, "report",
                True)  # fmt: skip
    if cold := results.get("cold_start"):
        base = cold["baseline"]
        for function, entry in cold["functions"].items():
            got = entry["ratio_in_process"]
            row(f"cold start {function}", f"{entry['in_process_p50_ms']} ms ({entry['from_spawn_p50_ms']} from spawn)",
                f"{base['in_process_p50_ms']} ms ({base['from_spawn_p50_ms']}) boto3+client", got,
                f"≤ {entry['target']}", got <= entry["target"])  # fmt: skip
    if t := results.get("throughput"):
        rate = t["per_second"]
        row("authorizer throughput", f"{rate['authorizer']}/s", f"{rate['bare_get_item']}/s GetItem", t["ratio"],
            "≥ 0.9", t["ratio"] >= TARGETS["throughput_ratio"])  # fmt: skip
    if mem := results.get("memory"):
        for function, entry in mem["functions"].items():
            row(f"peak RSS {function}", f"{entry['peak_after_last_kib']} KiB after {mem['invocations']}",
                f"{entry['peak_after_first_kib']} KiB after 1", f"+{entry['growth_kib']} KiB",
                f"≤ +{mem['allowed_growth_kib']} KiB", entry["ok"])  # fmt: skip
    for name, entry in counts.items():
        row(f"calls: {name}", ", ".join(entry["calls"]) or "none", ", ".join(entry["expected"]) or "none",
            len(entry["calls"]), "exact", entry["ok"])  # fmt: skip
    return rows


def render(rows: list[dict[str, Any]]) -> str:
    headers = ["figure", "value", "baseline", "ratio", "target", "ok"]
    cells = [[str(r[h]) if h != "ok" else ("yes" if r["ok"] else "MISSED") for h in headers] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    out = io.StringIO()
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    out.write(line + "\n" + "-" * len(line) + "\n")
    for c in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(c, widths, strict=True)) + "\n")
    return out.getvalue()


def markdown(rows: list[dict[str, Any]]) -> str:
    """The same table in Markdown, for docs/performance.md."""
    headers = ["figure", "value", "baseline", "ratio", "target", "ok"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for r in rows:
        cells = [str(r[h]) if h != "ok" else ("yes" if r["ok"] else "**missed**") for h in headers]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# -- main -----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true", help="tiny rounds: checks the harness, not the numbers")
    parser.add_argument("--json", default=str(ROOT / "bench-results.json"), help="where to write the results")
    parser.add_argument("--endpoint", help="use this running DynamoDB Local instead of starting one")
    parser.add_argument("--only", nargs="+", choices=list(PHASES), help="run only these measurements")
    parser.add_argument("--markdown", help="also write the table as Markdown to this path")
    parser.add_argument("--cpu", type=int, help="core to pin the benchmark to (default: the last allowed)")
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else FULL

    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "PYTHONPATH"):
        os.environ.pop(var, None)
    os.environ.update(FUNCTION_ENV)
    os.environ["TABLE_NAME"] = f"bench-{uuid.uuid4().hex[:8]}"
    pinning = pin(args.cpu)
    info = machine(pinning)

    server = None
    if args.endpoint:
        endpoint = args.endpoint
    else:
        from tests.helpers.dynamodb_local import DynamoDBLocal

        with affinity(pinning.get("server_cpus")):
            server = DynamoDBLocal().start()
        endpoint = server.endpoint
    os.environ["AWS_ENDPOINT_URL_DYNAMODB"] = endpoint
    if pinning["pinned"]:
        os.sched_setaffinity(0, {pinning["bench_cpu"]})
    env = child_env({"TABLE_NAME": os.environ["TABLE_NAME"], "AWS_ENDPOINT_URL_DYNAMODB": endpoint})

    started = time.monotonic()
    try:
        with quiet():
            fixture = Fixture(sizes)
        results: dict[str, Any] = {"mode": "smoke" if args.smoke else "full", "machine": info, "sizes": vars(sizes)}
        warm_server(fixture, sizes)
        for phase in PHASES:
            if args.only and phase not in args.only:
                continue
            print(f"{phase}…", file=sys.stderr, flush=True)
            measure = PHASES[phase]
            results[phase] = measure(fixture, sizes, env)
    finally:
        if server is not None:
            server.stop()
    results["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    results["seconds"] = round(time.monotonic() - started, 1)
    results["table"] = verdicts(copy.deepcopy(results))

    print(render(results["table"]))
    Path(args.json).write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    if args.markdown:
        Path(args.markdown).write_text(markdown(results["table"]))
    pin_note = (
        f"benchmark pinned to CPU {pinning['bench_cpu']}, DynamoDB Local to {pinning['server_cpus']}"
        if pinning["pinned"]
        else f"not pinned: {pinning['reason']}"
    )
    print(f"{results['mode']} run, {results['seconds']} s, {pin_note}, load {info['load_average_before']}")
    print(f"results written to {args.json}")
    # Call counts are exact and deterministic: a wrong count fails the command in any mode.
    return 0 if all(entry["ok"] for entry in results.get("call_counts", {}).values()) else 1


if __name__ == "__main__":
    sys.exit(main())
