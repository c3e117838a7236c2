"""The authorizer's context is read one way, in one place, by GET /v1/whoami and the MCP server
alike (issue 20, item 5): a context that lacks any field, `scopes` included, names no caller."""

from __future__ import annotations

from typing import Any

import pytest

from apikeys.api import key_caller, who_am_i
from apikeys.records import Principal

CONTEXT = {"principalId": "acct-a", "account_id": "acct-a", "key_id": "key_x", "plan": "pro", "scopes": "*"}


def rest(authorizer: Any) -> dict[str, Any]:
    return {"requestContext": {"authorizer": authorizer}}


def test_rest_and_http_api_contexts_name_the_same_caller() -> None:
    full = Principal("acct-a", "key_x", "pro", scopes=None)
    assert key_caller(rest(CONTEXT)) == full
    assert key_caller(rest({"lambda": CONTEXT})) == full  # HTTP API payload 2.0
    scoped = key_caller(rest({**CONTEXT, "scopes": "whoami keys:read"}))
    assert scoped == Principal("acct-a", "key_x", "pro", scopes=("whoami", "keys:read"))
    assert who_am_i(scoped).model_dump() == {
        "account_id": "acct-a",
        "key_id": "key_x",
        "plan": "pro",
        "scopes": ["whoami", "keys:read"],
    }
    assert who_am_i(full).scopes == ["*"]


@pytest.mark.parametrize(
    "event",
    [
        None,
        {},
        rest(None),
        rest({"principalId": "acct-a"}),
        rest({k: v for k, v in CONTEXT.items() if k != "scopes"}),  # the authorizer always sets it
        rest({**CONTEXT, "scopes": None}),
        rest({**CONTEXT, "scopes": " "}),
        rest({**CONTEXT, "account_id": ""}),
        rest({**CONTEXT, "plan": 3}),
        {"requestContext": "x"},
    ],
)
def test_a_context_missing_any_field_names_no_caller(event: Any) -> None:
    assert key_caller(event) is None
