"""McpFunction in process, on moto and on DynamoDB Local: REST proxy events for POST /mcp carrying
the context the real authorizer returned for a real key, in both protocol eras (the stateless
current revision and the handshake-era one), exactly as API Gateway would hand them over."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apikeys import clock
from tests.helpers.support import Api, LambdaContext, load_function
from tests.helpers.usage import day, seed_usage

MODERN = "2026-07-28"
LEGACY = "2025-06-18"
ERAS = (MODERN, LEGACY)
ACCEPT = "application/json, text/event-stream"


def authorizer_context(api: Api, key: str) -> dict[str, str]:
    """requestContext.authorizer as API Gateway builds it from the authorizer's answer."""
    answer = api.bearer(key)
    assert answer is not None
    return {"principalId": answer["principalId"], **{k: str(v) for k, v in answer["context"].items()}}


def mcp_event(
    body: Any, authorizer: dict[str, str] | None, version: str = LEGACY, method: str = "POST", **headers: str
) -> dict[str, Any]:
    all_headers = {
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
        "Content-Type": "application/json",
        "Accept": ACCEPT,
        "Mcp-Protocol-Version": version,
        **headers,
    }
    return {
        "resource": "/mcp",
        "path": "/mcp",
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/mcp",
            "httpMethod": method,
            "path": "/v1/mcp",
            "stage": "v1",
            "requestId": "req-mcp",
            "accountId": "123456789012",
            "apiId": "abc123",
            "authorizer": authorizer,
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": body if isinstance(body, str) or body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def rpc(method: str, params: dict[str, Any] | None, version: str) -> tuple[dict[str, Any], dict[str, str]]:
    """A JSON-RPC request as an SDK client sends it in that era (the modern one carries its
    envelope in _meta and mirrors it in headers)."""
    params = dict(params or {})
    headers = {}
    if version == MODERN:
        params["_meta"] = {
            "io.modelcontextprotocol/protocolVersion": MODERN,
            "io.modelcontextprotocol/clientCapabilities": {},
        }
        headers = {"Mcp-Method": method}
        if method == "tools/call":
            headers["Mcp-Name"] = params["name"]
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}, headers


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, str], Any]:
    result = load_function("mcp").lambda_handler(event, LambdaContext(function_name="McpFunction"))
    headers = {k.lower(): v for k, v in (result.get("headers") or {}).items()}
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers[name.lower()] = ", ".join(values)
    return result["statusCode"], headers, json.loads(result["body"]) if result.get("body") else None


def call_tool(authorizer: dict[str, str], name: str, version: str, **arguments: Any) -> dict[str, Any]:
    body, headers = rpc("tools/call", {"name": name, "arguments": arguments}, version)
    status, _, reply = invoke(mcp_event(body, authorizer, version, **headers))
    assert status == 200, reply
    return reply["result"]  # type: ignore[no-any-return]


def text(result: dict[str, Any]) -> str:
    return " ".join(block.get("text", "") for block in result["content"])


@pytest.fixture
def owner(api: Api) -> dict[str, Any]:
    """acct-a on pro with two keys; the MCP client connects with the first."""
    api.set_plan("acct-a", "pro")
    first, second = api.create("acct-a", "Claude Code"), api.create("acct-a", "Cursor")
    assert first.status == second.status == 201
    return {"key": first.body, "other": second.body, "context": authorizer_context(api, first.body["key"])}


@pytest.mark.parametrize("version", ERAS)
def test_tools_return_what_the_rest_api_returns(api: Api, owner: dict[str, Any], version: str) -> None:
    context = owner["context"]
    whoami = call_tool(context, "whoami", version)
    assert whoami["isError"] is False
    assert whoami["structuredContent"] == {
        "account_id": "acct-a",
        "key_id": owner["key"]["id"],
        "plan": "pro",
        "scopes": ["*"],
    }
    listed = call_tool(context, "list_api_keys", version)
    assert listed["isError"] is False
    rest = api.list("acct-a").body
    del rest["requests_by_day"]  # the console's day-by-day chart data: REST only
    assert listed["structuredContent"] == rest
    assert listed["structuredContent"]["key_count"] == 2
    got = call_tool(context, "get_api_key", version, key_id=owner["other"]["id"])
    assert got["structuredContent"] == api.get("acct-a", owner["other"]["id"]).body
    everything = json.dumps([whoami, listed, got])
    assert owner["key"]["key"] not in everything and owner["other"]["key"] not in everything


@pytest.mark.parametrize("version", ERAS)
def test_usage_tool_answers_what_the_usage_endpoint_answers(api: Api, owner: dict[str, Any], version: str) -> None:
    """get_api_key_usage (issue 23): the same days, zero-filled, oldest first, and total as GET
    /keys/{key_id}/usage, 30 days unless told; and the key objects' requests_30d agree with it."""
    other, now = owner["other"]["id"], clock.now()
    seed_usage("acct-a", {day(now): {other: 4}, day(now, 6): {other: 2}, day(now, 40): {other: 1}})
    usage = call_tool(owner["context"], "get_api_key_usage", version, key_id=other, days=7)
    assert usage["isError"] is False
    assert usage["structuredContent"] == api.usage("acct-a", other, 7).body
    assert [d["requests"] for d in usage["structuredContent"]["days"]] == [2, 0, 0, 0, 0, 0, 4]
    default = call_tool(owner["context"], "get_api_key_usage", version, key_id=other)["structuredContent"]
    assert default == api.usage("acct-a", other).body and len(default["days"]) == 30 and default["total"] == 6
    longest = call_tool(owner["context"], "get_api_key_usage", version, key_id=other, days=90)["structuredContent"]
    assert longest["total"] == 7 and longest["days"][-1]["date"] == day(now)
    got = call_tool(owner["context"], "get_api_key", version, key_id=other)["structuredContent"]
    listed = call_tool(owner["context"], "list_api_keys", version)["structuredContent"]["keys"]
    assert got["requests_30d"] == 6 and {k["id"]: k["requests_30d"] for k in listed}[other] == 6


@pytest.mark.parametrize("version", ERAS)
def test_another_accounts_key_is_not_found(api: Api, owner: dict[str, Any], version: str) -> None:
    api.set_plan("acct-b", "pro")
    foreign = api.create("acct-b", "Not yours").body
    for tool in ("get_api_key", "get_api_key_usage"):
        for key_id in (foreign["id"], "key_00000000000000000000", "../keys"):
            result = call_tool(owner["context"], tool, version, key_id=key_id)
            assert result["isError"] is True, result
            assert "not found" in text(result).lower()
            assert "structuredContent" not in result or result["structuredContent"] is None
            assert "Not yours" not in json.dumps(result)


@pytest.mark.parametrize("version", ERAS)
def test_keys_tools_need_the_keys_read_scope(owner: dict[str, Any], version: str) -> None:
    """Scopes arrive in the authorizer's context (issue 12); a key scoped to `mcp` alone may
    connect and call whoami, but not read the account's keys."""
    only_mcp = {**owner["context"], "scopes": "mcp"}
    assert call_tool(only_mcp, "whoami", version)["structuredContent"]["scopes"] == ["mcp"]
    key_tools = (
        ("list_api_keys", {}),
        ("get_api_key", {"key_id": owner["key"]["id"]}),
        ("get_api_key_usage", {"key_id": owner["key"]["id"], "days": 7}),
    )
    for name, arguments in key_tools:
        refused = call_tool(only_mcp, name, version, **arguments)
        assert refused["isError"] is True
        assert "keys:read" in text(refused) and owner["key"]["name"] not in json.dumps(refused)
    reader = {**owner["context"], "scopes": "mcp keys:read"}
    assert call_tool(reader, "list_api_keys", version)["isError"] is False
    assert call_tool(reader, "get_api_key_usage", version, key_id=owner["key"]["id"])["isError"] is False
    full = {**owner["context"], "scopes": "*"}
    assert call_tool(full, "get_api_key", version, key_id=owner["key"]["id"])["isError"] is False
    assert call_tool(full, "get_api_key_usage", version, key_id=owner["key"]["id"])["isError"] is False


def test_identity_comes_from_the_authorizer_never_from_the_payload(api: Api, owner: dict[str, Any]) -> None:
    api.set_plan("acct-b", "pro")
    foreign = api.create("acct-b", "Not yours").body
    body, headers = rpc("tools/call", {"name": "whoami", "arguments": {}}, LEGACY)
    body["params"]["_meta"] = {"account_id": "acct-b", "key_id": foreign["id"]}
    status, _, reply = invoke(mcp_event(body, owner["context"], LEGACY, **headers))
    assert status == 200
    assert reply["result"]["structuredContent"]["account_id"] == "acct-a"
    for authorizer in (None, {"principalId": "acct-a"}, {**owner["context"], "account_id": ""}):
        status, headers_out, error = invoke(mcp_event(body, authorizer))
        assert status == 401 and headers_out["www-authenticate"] == "Bearer"
        assert error == {"error": {"code": "unauthorized", "message": "A valid API key is required."}}


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_get_and_delete_answer_405(owner: dict[str, Any], method: str) -> None:
    status, headers, body = invoke(mcp_event(None, owner["context"], method=method))
    assert status == 405 and headers["allow"] == "POST"
    assert body == {"error": {"code": "method_not_allowed", "message": "Only POST is supported on /mcp."}}


@pytest.mark.parametrize("version", ERAS)
def test_http_refusals_of_the_sdk_get_the_error_shape(owner: dict[str, Any], version: str) -> None:
    body, headers = rpc("tools/list", {}, version)
    status, _, reply = invoke(mcp_event(body, owner["context"], version, Accept="text/html", **headers))
    assert status == 406
    if version == MODERN:  # a bare 406 from the SDK, without a body: the error shape of every route
        assert reply == {"error": {"code": "not_acceptable", "message": "The MCP request was refused (406)."}}
    else:  # the handshake-era transport already answers a JSON-RPC error, kept as its clients expect
        assert reply["jsonrpc"] == "2.0" and reply["error"]["code"] == -32600


@pytest.mark.parametrize("version", ERAS)
@pytest.mark.parametrize(
    ("raw", "codes"),
    [
        ("{not json", {-32700}),
        ("[]", {-32600, -32602}),
        ('{"jsonrpc": "2.0", "id": 1}', {-32600, -32602}),
        ('{"jsonrpc": "2.0", "id": 1, "method": 7}', {-32600, -32602}),
        ("no/such/method", {-32601}),
    ],
)
def test_malformed_json_rpc_is_a_json_rpc_error_never_a_500(
    owner: dict[str, Any], version: str, raw: str, codes: set[int]
) -> None:
    """Invalid, parse and unknown-method errors per JSON-RPC (the SDK says -32602 where a
    handshake-era body fails its validation), answered 400, 404 (an unknown method in the current
    revision) or 200, never 500."""
    headers: dict[str, str] = {}
    if raw == "no/such/method":
        message, headers = rpc(raw, {}, version)
        raw = json.dumps(message)
    status, _, reply = invoke(mcp_event(raw, owner["context"], version, **headers))
    assert status in (200, 400, 404), (status, reply)
    assert reply["jsonrpc"] == "2.0" and "result" not in reply
    assert reply["error"]["code"] in codes, reply


def test_two_requests_in_one_warm_container(owner: dict[str, Any]) -> None:
    """The SDK's session manager may run once per instance: a fresh container's second (and
    third) request must be answered as its first was."""
    load_function("mcp", fresh=True)
    for _ in range(3):
        assert call_tool(owner["context"], "whoami", LEGACY)["isError"] is False
        assert call_tool(owner["context"], "whoami", MODERN)["isError"] is False


def test_discover_and_initialize_both_answer(owner: dict[str, Any]) -> None:
    body, headers = rpc("server/discover", {}, MODERN)
    status, _, reply = invoke(mcp_event(body, owner["context"], MODERN, **headers))
    assert status == 200, reply
    assert MODERN in reply["result"]["supportedVersions"]
    assert reply["result"]["capabilities"]["tools"] is not None
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    status, headers_out, reply = invoke(mcp_event(init, owner["context"], LEGACY))
    assert status == 200 and reply["result"]["protocolVersion"] == LEGACY
    # The SDK's own headers, and never cached.
    assert headers_out["content-type"] == "application/json" and headers_out["cache-control"] == "no-store"


def test_a_new_container_describes_its_server_and_tools_and_answers_each(api: Api, owner: dict[str, Any]) -> None:
    """What the server is built with at a cold start, read back from a container started here:
    its name and instructions, each tool's name, title, dedented description, read-only hints and
    arguments, and each tool's scope check and answer."""
    load_function("mcp", fresh=True)
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": LEGACY, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    result = invoke(mcp_event(init, owner["context"], LEGACY))[2]["result"]
    assert result["serverInfo"]["name"] == "apikeys"
    assert result["instructions"] == (
        "Tools for the account that owns the API key this client connected with: who the key is, "
        "and the account's API keys (masked; full keys are never shown)."
    )
    body, headers = rpc("tools/list", {}, LEGACY)
    tools = {
        tool["name"]: tool
        for tool in invoke(mcp_event(body, owner["context"], LEGACY, **headers))[2]["result"]["tools"]
    }
    expected = {
        "whoami": ("Who am I", "Identify the API key this MCP client is connected with", set()),
        "list_api_keys": ("List API keys", "List every API key of the connected account", set()),
        "get_api_key": ("Get an API key", "Get one API key of the connected account by its id", {"key_id"}),
        "get_api_key_usage": (
            "Get an API key's usage",
            "Get how much one API key of the connected account is used",
            {"key_id", "days"},
        ),
    }
    assert tools.keys() == expected.keys()
    for name, (title, opening, arguments) in expected.items():
        tool = tools[name]
        assert tool["title"] == title and tool["description"].startswith(opening), tool
        assert "\n " not in tool["description"]  # dedented
        assert set(tool["inputSchema"]["properties"]) == arguments
        assert tool["annotations"] == {
            "readOnlyHint": True,
            "destructiveHint": False,
            "idempotentHint": True,
            "openWorldHint": False,
        }
    context = owner["context"]
    rest = api.list("acct-a").body
    del rest["requests_by_day"]  # REST only
    assert call_tool(context, "list_api_keys", LEGACY)["structuredContent"] == rest
    got = call_tool(context, "get_api_key", LEGACY, key_id=owner["other"]["id"])
    assert got["structuredContent"] == api.get("acct-a", owner["other"]["id"]).body
    assert text(call_tool(context, "get_api_key", LEGACY, key_id=5)) == (
        "Invalid arguments for get_api_key: key_id must be a string (see the tool's inputSchema)."
    )
    only_mcp = {**context, "scopes": "mcp"}
    for name, arguments in (("list_api_keys", {}), ("get_api_key", {"key_id": owner["key"]["id"]})):
        assert text(call_tool(only_mcp, name, LEGACY, **arguments)) == (
            f"Error executing tool {name}: Missing scope keys:read: {name} needs an API key with the keys:read scope "
            "(or full access). "
            "This key has: mcp."
        )
