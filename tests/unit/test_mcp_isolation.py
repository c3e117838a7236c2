"""The MCP SDK is McpFunction's and OAuthFunction's alone (the authorization server uses its
`mcp.server.auth` handlers, issue 21): pinned in their own requirements (which `sam build`
installs into those functions only), never in the shared layer, and never on the authorizer's
import path."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("mcp", "mangum", "starlette", "anyio", "pydantic")


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\[\]-]+)==(\S+)$", line.strip())
        if match:
            found[match[1].split("[")[0].lower()] = match[2]
    return found


def test_authorizer_import_path_loads_no_mcp_sdk() -> None:
    # A fresh interpreter, the handler loaded by the one loader (which itself imports only yaml).
    code = (
        "import json, sys; from pathlib import Path; sys.path[:0] = sys.argv[2:]; "
        "from apikeys_local.template import load_module; load_module(Path(sys.argv[1]), 'app'); "
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"
    )
    env = {"TABLE_NAME": "t", "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            code,
            str(ROOT / "functions/authorizer/app.py"),
            str(ROOT / "layers/shared"),
            str(ROOT / "infra"),
        ],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(json.loads(done.stdout))
    assert loaded.isdisjoint(HEAVY), sorted(loaded & set(HEAVY))


def test_the_sdk_is_pinned_for_mcp_function_only() -> None:
    own = pins(ROOT / "functions/mcp/requirements.txt")
    assert own["mcp"] == "2.3.0" and own["mangum"] == "0.22.0"
    layer = pins(ROOT / "layers/shared/requirements.txt")
    assert "mcp" not in layer and "mangum" not in layer
    assert own["pydantic"] == layer["pydantic"], "the function and the layer must agree on pydantic"
    # The local server's containers import it from the venv: requirements-local.txt includes the file.
    assert "-r functions/mcp/requirements.txt" in (ROOT / "requirements-local.txt").read_text().splitlines()
    assert pins(ROOT / "functions/oauth/requirements.txt") == own, "one SDK version for both functions"
    others = [p for p in (ROOT / "functions").glob("*/requirements.txt") if p.parent.name not in ("mcp", "oauth")]
    assert not [p for p in others if {"mcp", "mangum"} & set(pins(p))], "the MCP SDK is McpFunction's only"
