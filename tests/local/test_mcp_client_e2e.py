"""The MCP server end to end with the official MCP client: the `mcp` SDK's `Client` over
`streamable_http_client`, carrying `Authorization: Bearer ot_…` on an httpx2 client, against
`apikeys-local serve` (the real authorizer, McpFunction and table layout)."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

from tests.helpers.local_server import ROOT, ServerProcess, cli, http

MODES = ("auto", "legacy")


def challenge(url: str) -> str:
    """The 401's challenge: where an MCP client finds how to get a key by OAuth (RFC 9728, issue 21)."""
    return f'Bearer resource_metadata="{url}/.well-known/oauth-protected-resource/mcp"'


def new_account(home: Path) -> tuple[str, str]:
    account = f"acct-{uuid.uuid4().hex[:10]}"
    done = cli(home, "plan", "set", account, "pro")
    assert done.returncode == 0, done.stderr
    minted = cli(home, "token", "--account", account)
    assert minted.returncode == 0, minted.stderr
    return account, minted.stdout.strip()


def new_key(url: str, token: str, name: str = "MCP client", scopes: list[str] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name} if scopes is None else {"name": name, "scopes": scopes}
    created = http("POST", f"{url}/keys", token, body)
    assert created.status == 201, created.text
    return created.json  # type: ignore[no-any-return]


def connect(url: str, key: str, mode: str, statuses: list[int] | None = None) -> Client:
    """The official client with the key on every request; `statuses` records each HTTP status."""

    async def record(response: httpx2.Response) -> None:
        if statuses is not None:
            statuses.append(response.status_code)

    http_client = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {key}"}, timeout=60, event_hooks={"response": [record]}
    )
    return Client(streamable_http_client(f"{url}/mcp", http_client=http_client), mode=mode)  # type: ignore[arg-type]


def text_of(result: Any) -> str:
    return " ".join(getattr(block, "text", "") for block in result.content)


def counts_aside(body: Any) -> Any:
    """A key object, a listing or a usage answer without its request counts, which the running
    server's authorizer may add to between two calls (issue 23); the rest must match exactly.
    The REST listing's day-by-day chart data is left out too: the MCP tool does not carry it."""
    if isinstance(body, dict):
        ignored = {"requests_30d", "requests", "total", "requests_by_day"}
        return {k: counts_aside(v) for k, v in body.items() if k not in ignored}
    if isinstance(body, list):
        return [counts_aside(v) for v in body]
    return body


@pytest.mark.parametrize("mode", MODES)
def test_official_client_lists_and_calls_every_tool(local_api: ServerProcess, local_home: Path, mode: str) -> None:
    url = local_api.url
    account, token = new_account(local_home)
    created = new_key(url, token)
    _, other_token = new_account(local_home)
    foreign = new_key(url, other_token, "Not yours")

    async def session() -> dict[str, Any]:
        async with connect(url, created["key"], mode) as client:
            tools = await client.list_tools()
            return {
                "version": client.protocol_version,
                "tools": {tool.name: tool for tool in tools.tools},
                "whoami": await client.call_tool("whoami", {}),
                "list": await client.call_tool("list_api_keys", {}),
                "get": await client.call_tool("get_api_key", {"key_id": created["id"]}),
                "foreign": await client.call_tool("get_api_key", {"key_id": foreign["id"]}),
                "usage": await client.call_tool("get_api_key_usage", {"key_id": created["id"], "days": 7}),
            }

    seen = anyio.run(session)
    # auto: `server/discover` answered, so the client speaks the current, stateless revision;
    # legacy: the `initialize` handshake most deployed clients still send.
    expected = MODERN_PROTOCOL_VERSIONS if mode == "auto" else HANDSHAKE_PROTOCOL_VERSIONS
    assert seen["version"] in expected, seen["version"]
    assert set(seen["tools"]) == {"whoami", "list_api_keys", "get_api_key", "get_api_key_usage"}
    for tool in seen["tools"].values():
        assert tool.description and tool.input_schema["type"] == "object" and tool.output_schema
    assert seen["tools"]["get_api_key"].input_schema["required"] == ["key_id"]
    assert seen["tools"]["get_api_key_usage"].input_schema["required"] == ["key_id"]  # days: 30 unless given

    assert seen["whoami"].is_error is False
    assert seen["whoami"].structured_content == {
        "account_id": account,
        "key_id": created["id"],
        "plan": "pro",
        "scopes": ["*"],
    }
    rest_list = http("GET", f"{url}/keys", token).json
    assert seen["list"].is_error is False
    assert counts_aside(seen["list"].structured_content) == counts_aside(rest_list)
    rest_get = http("GET", f"{url}/keys/{created['id']}", token).json
    assert counts_aside(seen["get"].structured_content) == counts_aside(rest_get)
    assert seen["foreign"].is_error is True
    assert "not found" in text_of(seen["foreign"]).lower()
    rest_usage = http("GET", f"{url}/keys/{created['id']}/usage?days=7", token).json
    assert seen["usage"].is_error is False and len(rest_usage["days"]) == 7
    assert counts_aside(seen["usage"].structured_content) == counts_aside(rest_usage)
    for result in (seen["list"], seen["get"], seen["foreign"], seen["usage"]):
        dumped = json.dumps(result.model_dump(mode="json"))
        assert created["key"] not in dumped and foreign["key"] not in dumped


@pytest.mark.parametrize("mode", MODES)
def test_key_deleted_while_connected_fails_the_next_call_with_401(
    local_api: ServerProcess, local_home: Path, mode: str
) -> None:
    url = local_api.url
    _, token = new_account(local_home)
    created = new_key(url, token)

    statuses: list[int] = []

    async def session() -> tuple[Any, BaseException | None]:
        async with connect(url, created["key"], mode, statuses) as client:
            before = await client.call_tool("whoami", {})
            deleted = http("DELETE", f"{url}/keys/{created['id']}", token)
            assert deleted.status == 204
            try:
                await client.call_tool("whoami", {})
            except Exception as error:  # the SDK surfaces the HTTP error as an MCPError
                return before, error
            return before, None

    before, failure = anyio.run(session)
    assert before.is_error is False
    assert failure is not None, "the revoked key's next MCP call succeeded"
    assert statuses[-1] == 401, statuses
    assert set(statuses[:-1]) <= {200, 202}, statuses


def test_revoked_or_missing_key_gets_401_bearer_and_the_error_json(local_api: ServerProcess, local_home: Path) -> None:
    url = local_api.url
    _, token = new_account(local_home)
    created = new_key(url, token)
    assert http("DELETE", f"{url}/keys/{created['id']}", token).status == 204
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream"}
    for key in (created["key"], None):
        refused = http("POST", f"{url}/mcp", key, message, headers=accept)
        assert refused.status == 401, refused.text
        assert refused.headers["WWW-Authenticate"] == challenge(url)
        assert refused.json["error"]["code"] == "unauthorized"


def test_local_server_forwards_mcp_headers_status_and_body(local_api: ServerProcess, local_home: Path) -> None:
    """What an MCP client depends on passes through the emulated gateway unchanged: Accept
    (406 without it), Mcp-Protocol-Version, the JSON-RPC body and status codes, 405s."""
    url = local_api.url
    _, token = new_account(local_home)
    key = new_key(url, token)["key"]
    legacy = {"Mcp-Protocol-Version": "2025-06-18", "Mcp-Method": "tools/list"}
    message = {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}

    listed = http(
        "POST", f"{url}/mcp", key, message, headers={"Accept": "application/json, text/event-stream", **legacy}
    )
    assert listed.status == 200, listed.text
    assert listed.json["id"] == 7 and {t["name"] for t in listed.json["result"]["tools"]} >= {"whoami"}
    assert listed.headers["Content-Type"].startswith("application/json")

    no_accept = http("POST", f"{url}/mcp", key, message, headers={"Accept": "text/html", **legacy})
    assert no_accept.status == 406 and no_accept.json["error"]["code"] == -32600

    parse_error = http("POST", f"{url}/mcp", key, raw=b"{not json", headers={"Accept": "application/json", **legacy})
    assert parse_error.status == 400 and parse_error.json["error"]["code"] == -32700

    for method in ("GET", "DELETE"):
        refused = http(method, f"{url}/mcp", key)
        assert refused.status == 405 and refused.headers["Allow"] == "POST"
        assert refused.json["error"]["code"] == "method_not_allowed"


INSPECTOR = ROOT / "node_modules" / ".bin" / "mcp-inspector"


def inspector(url: str, key: str, home: Path, *args: str, exit_code: int = 0) -> Any:
    """The MCP Inspector's CLI mode (from node_modules, no network): a second client nobody here
    wrote. It prints the result on stdout and exits 5 when a tool answered isError: true."""
    command = [str(INSPECTOR), "--cli", f"{url}/mcp", "--transport", "http", *args]
    command += ["--header", f"Authorization: Bearer {key}"]
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "NO_COLOR": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False, cwd=home)
    assert done.returncode == exit_code, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_mcp_inspector_cli_lists_and_calls_the_tools(
    local_api: ServerProcess, local_home: Path, tmp_path: Path
) -> None:
    url = local_api.url
    account, token = new_account(local_home)
    created = new_key(url, token)
    listed = inspector(url, created["key"], tmp_path, "--method", "tools/list")
    assert {tool["name"] for tool in listed["tools"]} == {"whoami", "list_api_keys", "get_api_key", "get_api_key_usage"}
    whoami = inspector(url, created["key"], tmp_path, "--method", "tools/call", "--tool-name", "whoami")
    assert whoami["isError"] is False and whoami["structuredContent"]["account_id"] == account
    keys = inspector(url, created["key"], tmp_path, "--method", "tools/call", "--tool-name", "list_api_keys")
    assert counts_aside(keys["structuredContent"]) == counts_aside(http("GET", f"{url}/keys", token).json)
    args = ("--method", "tools/call", "--tool-name", "get_api_key", "--tool-arg", "key_id=key_00000000000000000000")
    missing = inspector(url, created["key"], tmp_path, *args, exit_code=5)
    assert missing["isError"] is True and "not found" in missing["content"][0]["text"]


def test_scopes_apply_to_mcp_end_to_end(local_api: ServerProcess, local_home: Path) -> None:
    """A key scoped to `mcp` alone reaches the server but its key tools answer a tool error
    naming `keys:read`; with `keys:read` they work; a `whoami`-only key is refused at the gateway."""
    url = local_api.url
    account, token = new_account(local_home)
    mcp_only = new_key(url, token, "MCP only", ["mcp"])
    reader = new_key(url, token, "MCP reader", ["mcp", "keys:read"])
    rest_only = new_key(url, token, "REST only", ["whoami"])

    async def calls(key: str) -> tuple[Any, Any]:
        async with connect(url, key, "auto") as client:
            return await client.call_tool("whoami", {}), await client.call_tool("list_api_keys", {})

    whoami, listed = anyio.run(calls, mcp_only["key"])
    assert whoami.is_error is False and whoami.structured_content["scopes"] == ["mcp"]
    assert listed.is_error is True and "keys:read" in text_of(listed)

    _, listed = anyio.run(calls, reader["key"])
    rest = http("GET", f"{url}/keys", token).json
    assert listed.is_error is False and counts_aside(listed.structured_content) == counts_aside(rest)

    statuses: list[int] = []

    async def refused() -> None:
        async with connect(url, rest_only["key"], "auto", statuses) as client:
            await client.call_tool("whoami", {})

    with pytest.raises(BaseException):  # noqa: B017 - the SDK wraps the HTTP error in its own types
        anyio.run(refused)
    assert statuses and statuses[-1] == 403
    assert account
