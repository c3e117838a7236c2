"""/mcp refuses what every route refuses (issue 22, item 9): a body over 10 KB is answered 413 in
the error shape before the SDK reads it, the SDK's own HTTP refusals reach the client readable
(Mangum base64-encoded them), and a tool call with bad arguments is told which argument is wrong
without its value being echoed back."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from apikeys.api import MAX_BODY_BYTES
from tests.contract.test_mcp_handler import ERAS, authorizer_context, invoke, mcp_event, rpc
from tests.helpers.support import Api

TOO_LARGE = {"error": {"code": "payload_too_large", "message": f"Request body exceeds {MAX_BODY_BYTES} bytes."}}


@pytest.fixture
def owner(api: Api) -> dict[str, Any]:
    api.set_plan("acct-mcp", "pro")
    key = api.create("acct-mcp", "Claude Code").body
    return {"key": key, "context": authorizer_context(api, key["key"])}


def _padded(size: int, version: str) -> tuple[str, dict[str, str]]:
    """A valid tools/list request of exactly `size` bytes (the padding is an ignored _meta field)."""
    message, headers = rpc("tools/list", {}, version)
    message["params"].setdefault("_meta", {})["pad"] = ""
    base = len(json.dumps(message).encode())
    message["params"]["_meta"]["pad"] = "x" * (size - base)
    body = json.dumps(message)
    assert len(body.encode()) == size
    return body, headers


@pytest.mark.parametrize("version", ERAS)
def test_a_body_over_10_kb_is_refused_before_the_sdk(owner: dict[str, Any], version: str) -> None:
    context = owner["context"]
    body, headers = _padded(MAX_BODY_BYTES, version)
    status, _, reply = invoke(mcp_event(body, context, version, **headers))
    assert status == 200 and "tools" in reply["result"], reply

    for size in (MAX_BODY_BYTES + 1, 3_600_000):
        body, headers = _padded(size, version)
        status, out_headers, reply = invoke(mcp_event(body, context, version, **headers))
        assert (status, reply) == (413, TOO_LARGE), (size, status)
        assert out_headers["cache-control"] == "no-store"

    # Counted in bytes once decoded, whatever API Gateway's encoding.
    body, headers = _padded(MAX_BODY_BYTES + 1, version)
    event = mcp_event(base64.b64encode(body.encode()).decode(), context, version, **headers)
    event["isBase64Encoded"] = True
    assert invoke(event)[::2] == (413, TOO_LARGE)
    accented = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": {"p": "é" * 5200}}}, ensure_ascii=False
    )
    assert len(accented) < MAX_BODY_BYTES < len(accented.encode())
    assert invoke(mcp_event(accented, context, version, **headers))[::2] == (413, TOO_LARGE)


@pytest.mark.parametrize("version", ERAS)
def test_the_sdks_http_refusals_are_readable(owner: dict[str, Any], version: str) -> None:
    """A wrong Content-Type is refused by the SDK (400 or 415 by era); the message is its text,
    not that text base64-encoded."""
    body, headers = rpc("tools/list", {}, version)
    headers["Content-Type"] = "text/plain"
    status, _, reply = invoke(mcp_event(json.dumps(body), owner["context"], version, **headers))
    assert status in (400, 415), reply
    message = reply["error"]["message"]
    assert "content-type" in message.lower() or "media type" in message.lower(), message
    # No Content-Type at all: the SDK's bare 400, whose status has no code of its own.
    headers["Content-Type"] = ""
    status, _, reply = invoke(mcp_event(json.dumps(body), owner["context"], version, **headers))
    assert (status, reply) == (400, {"error": {"code": "request_refused", "message": "Invalid Content-Type header"}})


BAD_ARGUMENTS = [
    ("number", {"key_id": 12345}, "key_id must be a string"),
    ("list", {"key_id": ["sekrit-value-1"]}, "key_id must be a string"),
    ("object", {"key_id": {"sekrit-value-2": "sekrit-value-3"}}, "key_id must be a string"),
    ("missing", {}, "key_id is required"),
    ("another name", {"sekrit-value-4": "x"}, "key_id is required"),
]


@pytest.mark.parametrize("version", ERAS)
@pytest.mark.parametrize(("case", "arguments", "fault"), BAD_ARGUMENTS, ids=[case for case, _, _ in BAD_ARGUMENTS])
def test_argument_errors_name_the_argument_and_echo_nothing(
    owner: dict[str, Any], version: str, case: str, arguments: dict[str, Any], fault: str
) -> None:
    _assert_argument_error(owner, version, "get_api_key", arguments, fault, ("sekrit", "12345"))


def _assert_argument_error(
    owner: dict[str, Any], version: str, tool: str, arguments: dict[str, Any], fault: str, secrets: tuple[str, ...]
) -> None:
    """The tool call is a tool error (HTTP 200) naming the argument's fault, and the reply echoes
    neither what was sent (`secrets`) nor pydantic's internals."""
    body, headers = rpc("tools/call", {"name": tool, "arguments": arguments}, version)
    status, _, reply = invoke(mcp_event(body, owner["context"], version, **headers))
    assert status == 200
    result = reply["result"]
    assert result["isError"] is True
    assert [block["text"] for block in result["content"]] == [
        f"Invalid arguments for {tool}: {fault} (see the tool's inputSchema)."
    ]
    everything = json.dumps(reply)
    for echoed in (*secrets, "input_value", "pydantic"):
        assert echoed not in everything, echoed


# get_api_key_usage (issue 23): `days` is a whole JSON number from 1 to 90, never a string or a
# fraction; the answer names the argument and echoes nothing.
BAD_DAYS: list[tuple[str, Any, str]] = [
    ("zero", 0, "days is below its minimum"),
    ("too many", 91, "days is above its maximum"),
    ("a string", "12345", "days must be a whole number"),
    ("a fraction", 1.5, "days must be a whole number"),
    ("a boolean", True, "days must be a whole number"),
]


@pytest.mark.parametrize("version", ERAS)
@pytest.mark.parametrize(("case", "days", "fault"), BAD_DAYS, ids=[case for case, _, _ in BAD_DAYS])
def test_usage_days_errors_name_days_and_echo_nothing(
    owner: dict[str, Any], version: str, case: str, days: Any, fault: str
) -> None:
    arguments = {"key_id": owner["key"]["id"], "days": days}
    _assert_argument_error(owner, version, "get_api_key_usage", arguments, fault, ("12345",))
