"""What McpFunction says when it refuses, without I/O: a bad argument named (or, if the tool does
not declare it, called "arguments") with what it must be, a missing scope with the scopes the key
has, an unexpected error as a message that names no internals, logged, and the SDK's own refusals
read as text whatever Mangum hands over."""

from __future__ import annotations

import base64
import logging
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from apikeys.records import Principal
from tests.helpers.support import load_function


class _Arguments(BaseModel):
    key_id: str
    limit: int


def _validation_error(arguments: dict[str, Any]) -> ValidationError:
    try:
        _Arguments.model_validate(arguments)
    except ValidationError as error:
        return error
    raise AssertionError("valid")


def test_each_bad_argument_is_named_once_with_what_it_must_be() -> None:
    server = load_function("mcp").ApiKeysServer("test")
    server.argument_names["get_api_key"] = frozenset({"key_id"})
    message = server._argument_message("get_api_key", _validation_error({"key_id": 5, "limit": "many"}))
    # `limit` is not one of the tool's declared arguments: it is not repeated, nor is its fault named.
    assert message == (
        "Invalid arguments for get_api_key: key_id must be a string; arguments is not valid"
        " (see the tool's inputSchema)."
    )


def test_a_tool_whose_arguments_are_unknown_names_none_of_them() -> None:
    server = load_function("mcp").ApiKeysServer("test")
    message = server._argument_message("other_tool", _validation_error({"key_id": 5, "limit": 1}))
    assert message == "Invalid arguments for other_tool: arguments must be a string (see the tool's inputSchema)."


def test_a_tool_call_without_the_authorizers_context_is_refused() -> None:
    """mcp() refuses such a request before the SDK sees it; the tools check again."""
    mcp = load_function("mcp")
    for request in (object(), SimpleNamespace(scope={}), SimpleNamespace(scope={"aws.event": {}})):
        ctx = SimpleNamespace(request_context=SimpleNamespace(request=request))
        with pytest.raises(mcp.ToolError) as raised:
            mcp._caller(ctx)
        assert str(raised.value) == "unauthorized: a valid API key is required."


def test_a_missing_scope_names_the_scopes_the_key_has() -> None:
    mcp = load_function("mcp")
    principal = Principal("acct-a", "key_x", "pro", None, ("whoami", "mcp"))
    with pytest.raises(mcp.ToolError) as raised:
        mcp._require(principal, "keys:read", "list_api_keys")
    assert str(raised.value) == (
        "Missing scope keys:read: list_api_keys needs an API key with the keys:read scope (or full access). "
        "This key has: whoami mcp."
    )


def test_an_unexpected_error_in_a_tool_is_logged_and_named_no_further(caplog: pytest.LogCaptureFixture) -> None:
    mcp = load_function("mcp")

    def broken() -> None:
        raise RuntimeError("table arn:aws:dynamodb:eu-west-1:123456789012:table/x unreachable")

    with caplog.at_level(logging.ERROR), pytest.raises(mcp.ToolError) as raised:
        mcp._domain_call(broken)
    assert str(raised.value) == "internal error: Something went wrong on our side. Please retry later."
    assert [r.getMessage() for r in caplog.records if r.exc_info] == ["unhandled error in an MCP tool"]


@pytest.mark.parametrize(
    ("result", "text"),
    [
        ({"body": "Not Acceptable", "isBase64Encoded": False}, "Not Acceptable"),
        (
            {"body": base64.b64encode(b"Invalid Content-Type header").decode(), "isBase64Encoded": True},
            "Invalid Content-Type header",
        ),
        ({"body": base64.b64encode(b"caf\xe9").decode(), "isBase64Encoded": True}, "caf\ufffd"),  # not UTF-8
        ({"body": "QUJD!", "isBase64Encoded": True}, ""),  # not base64: nothing is guessed
        ({"body": b"raw", "isBase64Encoded": False}, ""),  # not text
        ({"isBase64Encoded": True}, ""),
    ],
)
def test_the_sdks_body_is_read_as_text_whatever_mangum_hands_over(result: dict[str, Any], text: str) -> None:
    assert load_function("mcp")._text(result) == text
