"""Where a function's import time goes, by top-level package (`python -m bench.imports NAME`).

Runs `python -X importtime` on a fresh process that imports the function module the way the
cold-start benchmark does, several times, and sums each module's *self* time into its
top-level package (boto3, botocore, aws_lambda_powertools, pydantic, apikeys, stdlib…);
prints the median per package. It is the profile behind docs/performance.md's cold-start notes.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
from pathlib import Path

from bench.stats import percentile

ROOT = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names)


def profile_once(function: str) -> dict[str, float]:
    paths = [str(ROOT / "functions" / function), str(ROOT / "layers" / "shared")]
    body = "import boto3; boto3.client('dynamodb', region_name='us-east-1')" if function == "baseline" else "import app"
    code = f"import sys; sys.path[:0] = {paths!r}\n{body}"
    proc = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    totals: dict[str, float] = collections.defaultdict(float)
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        root = name.split(".")[0]
        group = "stdlib" if root in STDLIB or root.startswith("_") else root
        totals[group] += int(self_us) / 1000
    return totals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("function", help="a directory under functions/, or 'baseline' (boto3 + client)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    runs = [profile_once(args.function) for _ in range(args.runs)]
    groups = {group for run in runs for group in run}
    medians = {group: percentile([run.get(group, 0.0) for run in runs], 50) for group in groups}
    total = percentile([sum(run.values()) for run in runs], 50)
    print(f"{args.function}: median import self-time by package over {args.runs} runs (ms)")
    for group, ms in sorted(medians.items(), key=lambda kv: -kv[1]):
        if ms >= 0.5:
            print(f"  {group:28s} {ms:7.1f}")
    print(f"  {'total':28s} {total:7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
