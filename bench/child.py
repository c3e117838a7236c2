"""The program a fresh benchmark process runs (passed to `python -c`), and how to spawn it.

Each child reads its whole job from stdin *before* its clock starts, so parsing the job is
not measured; a Lambda runtime also hands the handler an already-parsed event. The child then
times, with the system-wide monotonic clock the parent shares, the import of the function
module (from its CodeUri, with the layer on sys.path, as Lambda does) and its first
invocation, and reports peak RSS after the first and after the last invocation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

PROGRAM = r"""
import json, sys, time
job = json.loads(sys.stdin.read())

class Context:
    function_name = job["name"]
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:" + job["name"]
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    def get_remaining_time_in_millis(self):
        return 10_000

def memory():
    found = {}
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(("VmRSS:", "VmHWM:")):
                name, value = line.split(":")
                found[name] = int(value.split()[0])
    return found

t_start = time.perf_counter_ns()
if job["mode"] == "baseline":
    import boto3
    client = boto3.client("dynamodb")
    def invoke(event):
        return client.get_item(**event)
else:
    sys.path[:0] = [job["code_uri"], job["layer"]]
    import app
    def invoke(event):
        try:
            return app.lambda_handler(event, Context())
        except Exception as exc:
            if str(exc) != "Unauthorized":
                raise
t_imported = time.perf_counter_ns()
events = job["events"]
for event in events[:1]:
    invoke(event)
t_ready = time.perf_counter_ns()
after_first = memory()
for event in events[1:]:
    invoke(event)
after_last = memory()
print("BENCH_RESULT " + json.dumps({
    "t_start": t_start, "t_imported": t_imported, "t_ready": t_ready,
    "after_first": after_first, "after_last": after_last,
}), file=sys.stderr)
"""


def spawn(job: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run one fresh process; returns its timestamps (ns, comparable with the parent's
    perf_counter_ns) plus t_spawn taken just before the fork."""
    t_spawn = time.perf_counter_ns()
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and program
        [sys.executable, "-c", PROGRAM],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,  # the functions' log lines: written, as on Lambda, then dropped
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    _, err = proc.communicate(json.dumps(job), timeout=600)
    t_exit = time.perf_counter_ns()
    lines = [line for line in err.splitlines() if line.startswith("BENCH_RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"benchmark child {job['name']} failed ({proc.returncode}):\n{err[-3000:]}")
    result: dict[str, Any] = json.loads(lines[-1].removeprefix("BENCH_RESULT "))
    result.update(t_spawn=t_spawn, t_exit=t_exit)
    return result


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The parent's environment minus anything that would make the children import more
    (PYTHONPATH) or skip bytecode caches, plus the function settings."""
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONDONTWRITEBYTECODE"}}
    env.update(extra)
    return env
