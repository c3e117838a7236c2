"""Which way McpFunction runs the SDK's session manager on Lambda, measured (docs/mcp.md).

`StreamableHTTPSessionManager.run()` may be entered once per instance, and Mangum's lifespan
enters it on every invocation. Two ways out: build the ASGI app (and its manager) per
invocation and let Mangum run its lifespan each time ("per_invocation"), or enter the lifespan
once per container on the event loop Mangum reuses ("one_loop", what functions/mcp/app.py does).
Both answer the same warm `tools/call whoami`, interleaved (A B A B ...), in one process.

    python -m bench.mcp_loop [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
for path in (str(ROOT / "layers" / "shared"), str(ROOT / "infra"), str(ROOT)):
    if path not in sys.path:
        sys.path.insert(0, path)

from apikeys_local.template import load_module  # noqa: E402
from bench.stats import percentile  # noqa: E402

if TYPE_CHECKING:
    from mangum.types import LambdaCognitoIdentity, LambdaMobileClientContext

WHOAMI = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}


def mcp_event(body: dict[str, Any], protocol_version: str = "2025-06-18") -> dict[str, Any]:
    """events/mcp.json (POST /mcp as API Gateway sends it after KeyAuthorizer allowed it) with
    this body, protocol version and the bench's account."""
    event: dict[str, Any] = json.loads((Path(__file__).resolve().parents[1] / "events" / "mcp.json").read_text())
    event["headers"]["Mcp-Protocol-Version"] = protocol_version
    event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
    event["requestContext"]["authorizer"].update(principalId="acct-bench", account_id="acct-bench", key_id="key_bench")
    event["body"] = json.dumps(body)
    return event


class Context:
    """A Lambda context with every field of Mangum's LambdaContext protocol."""

    function_name = "McpFunction"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:McpFunction"
    aws_request_id = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    log_group_name = "/aws/lambda/McpFunction"
    log_stream_name = "2025/01/01/[$LATEST]c6af9ac67b6111e69a4193e8deadbeef"
    identity: LambdaCognitoIdentity | None = None
    client_context: LambdaMobileClientContext | None = None

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args(argv)
    os.environ.setdefault("TABLE_NAME", "bench-unused")  # whoami reads no table
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from mangum import Mangum

    app = load_module(ROOT / "functions" / "mcp" / "app.py", "fn_mcp_bench")
    event, context = mcp_event(WHOAMI), Context()

    def one_loop() -> Any:
        return app.lambda_handler(event, context)

    def per_invocation() -> Any:
        return Mangum(app.build_app(app.SERVER), lifespan="on")(event, context)

    variants = {"one_loop": one_loop, "per_invocation": per_invocation}
    samples: dict[str, list[float]] = {name: [] for name in variants}
    for i in range(args.rounds + 20):
        order = list(variants) if i % 2 else list(reversed(variants))
        for name in order:
            started = time.perf_counter()
            result = variants[name]()
            elapsed = (time.perf_counter() - started) * 1000
            if result["statusCode"] != 200 or '"isError":false' not in result["body"]:
                raise AssertionError(f"{name}: tools/call whoami failed: {result}")
            if i >= 20:
                samples[name].append(elapsed)
    latency = {
        name: {"p50_ms": round(percentile(v, 50), 2), "p99_ms": round(percentile(v, 99), 2)}
        for name, v in samples.items()
    }
    extra = round(latency["per_invocation"]["p50_ms"] - latency["one_loop"]["p50_ms"], 2)
    report: dict[str, object] = {**latency, "per_invocation_extra_p50_ms": extra}
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
