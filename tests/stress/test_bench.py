"""`make bench` in smoke mode: tiny rounds against the suite's DynamoDB Local, so the harness
keeps working. No timing is asserted here (timing goals live in the benchmark's own ratios);
the DynamoDB call counts are exact and are."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from bench.run import FUNCTIONS
from tests.helpers.dynamodb_local import DynamoDBLocal

ROOT = Path(__file__).resolve().parents[2]
FULL_KEY = re.compile(r"ot_[A-Za-z0-9]{38}")


def test_smoke_run_reports_every_figure_and_exact_call_counts(dynamodb_local: DynamoDBLocal, tmp_path: Path) -> None:
    out, md = tmp_path / "bench.json", tmp_path / "bench.md"
    args = ["--smoke", "--json", str(out), "--markdown", str(md), "--endpoint", dynamodb_local.endpoint]
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"results written to {out}" in proc.stdout
    results = json.loads(out.read_text())
    assert results["mode"] == "smoke"

    # Every figure of the table is present, with its baseline, ratio and verdict.
    figures = {row["figure"] for row in results["table"]}
    expected = {"authorizer warm p50", "authorizer warm p99", "reject tampered key p50", "reject malformed key p50"}
    expected |= {"authorizer warm p50, scoped key", "authorizer warm p99, scoped key"}
    expected |= {"authorizer throughput"}
    expected |= {"mcp warm tools/call whoami p50", "mcp warm tools/call whoami p99"}
    expected |= {f"cold start {name}" for name in FUNCTIONS} | {f"peak RSS {name}" for name in FUNCTIONS}
    assert expected <= figures
    for row in results["table"]:
        assert set(row) == {"figure", "value", "baseline", "ratio", "target", "ok"}
        assert row["figure"] in proc.stdout
        assert f"| {row['figure']} |" in md.read_text()
    warm = results["warm_latency"]["variants"]
    assert set(warm) == {"authorizer", "bare_get_item", "tampered", "malformed", "authorizer scoped"}
    breakdown = set(results["warm_latency"]["breakdown"])
    assert breakdown == {"store.get_principal", "auth.authorize", "tampered, log line off"}
    assert all(v["n"] == results["sizes"]["rounds"] and v["p50_us"] > 0 for v in warm.values())
    assert set(results["cold_start"]["functions"]) == set(FUNCTIONS)
    assert set(results["mcp_warm"]["variants"]) == {"mcp_whoami", "bare_get_item"}
    assert set(results["usage_write"]["variants"]) == {
        "count written on the request",
        "count written on a thread",
        "nothing due",
        "bare_get_item",
    }
    # Every function but the EventBridge publisher (no local emulator), the GitHub endpoint and the
    # OAuth pair (bench/run.py says why) is measured.
    assert {p.parent.name for p in (ROOT / "functions").glob("*/app.py")} - set(FUNCTIONS) == {
        "audit_events",
        "secret_scanning",
        "oauth",
        "oauth_consent",
    }
    assert all(v["peak_after_last_kib"] > 0 for v in results["memory"]["functions"].values())

    # The call counts are exact in any mode.
    counts = {name: entry["calls"] for name, entry in results["call_counts"].items()}
    assert counts == {
        # the day's count (on the request) and last-used (off it): at most once a minute
        "authorize (valid key, first in the minute)": ["GetItem", "UpdateItem", "UpdateItem"],
        "authorize (valid key, request path)": ["GetItem"],
        "authorize (tampered key)": [],
        "authorize (malformed key)": [],
        "authorize (scoped key, request path)": ["GetItem"],
        "create (warm container)": ["TransactWriteItems"],
        "list (10 keys, one page)": ["Query", "Query"],  # the keys, then their 30 days of usage (issue 23)
        "list (10 keys, page size 3)": ["Query"] * 4 + ["Query"],
        "get (its requests_30d)": ["GetItem", "Query"],
        "key usage (7 days)": ["Query", "Query"],
        "delete": ["GetItem", "TransactWriteItems"],
        "whoami": [],
        "mcp tools/call whoami": [],
    }

    # The benchmark's key exists only in its memory: not in its output, nor in the results.
    assert not FULL_KEY.search(proc.stdout + proc.stderr + out.read_text())
