"""Scoped keys over real HTTP: the local server enforces the authorizer's policy against the
route as API Gateway does, so a key outside its scopes gets API Gateway's 403 (ACCESS_DENIED)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from apikeys_local.template import load_stack
from tests.helpers.local_server import ROOT, ServerProcess, cli, http

DENIED = json.loads(load_stack(ROOT, "unused").gateway_responses["ACCESS_DENIED"].body)


def _signed_in(home: Path) -> str:
    acct = f"acct-{uuid.uuid4().hex[:10]}"
    assert cli(home, "plan", "set", acct, "advanced").returncode == 0
    minted = cli(home, "token", "--account", acct)
    assert minted.returncode == 0, minted.stderr
    return minted.stdout.strip()


def test_keys_reach_only_their_scopes_routes(local_api: ServerProcess, local_home: Path) -> None:
    url, token = local_api.url, _signed_in(local_home)
    catalogue = http("GET", f"{url}/scopes", token)
    assert catalogue.status == 200 and [s["name"] for s in catalogue.json["scopes"]] == ["whoami", "mcp", "keys:read"]

    mcp = http("POST", f"{url}/keys", token, {"name": "MCP", "scopes": ["mcp"]})
    assert mcp.status == 201 and mcp.json["scopes"] == ["mcp"], mcp.text
    refused = http("GET", f"{url}/v1/whoami", mcp.json["key"])
    assert refused.status == 403 and refused.json == DENIED

    whoami = http("POST", f"{url}/keys", token, {"name": "Cron", "scopes": ["whoami"]}).json
    allowed = http("GET", f"{url}/v1/whoami", whoami["key"])
    assert allowed.status == 200 and allowed.json["scopes"] == ["whoami"]

    capability = http("POST", f"{url}/keys", token, {"name": "Reader", "scopes": ["keys:read"]}).json
    assert http("GET", f"{url}/v1/whoami", capability["key"]).status == 403  # explicit Deny

    # Narrowed with PATCH: refused on the very next request.
    narrowed = http("PATCH", f"{url}/keys/{whoami['id']}", token, {"scopes": ["mcp"]})
    assert narrowed.status == 200 and narrowed.json["scopes"] == ["mcp"]
    assert http("GET", f"{url}/v1/whoami", whoami["key"]).status == 403
    assert http("PATCH", f"{url}/keys/{whoami['id']}", token, {"scopes": ["*"]}).status == 200
    assert http("GET", f"{url}/v1/whoami", whoami["key"]).status == 200
