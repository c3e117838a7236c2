"""GET /whoami on an HTTP API (payload 2.0) behind the apikeys authorizer (simple responses).

Standard library only, so this example deploys without the key service's layer. With simple
responses API Gateway nests the authorizer's `context` at `requestContext.authorizer.lambda`.
"""

from __future__ import annotations

import json
from typing import Any

FIELDS = ("account_id", "key_id", "plan")


def _respond(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "Cache-Control": "no-store"},
        "body": json.dumps(body),
    }


def caller(authorizer: object) -> dict[str, Any] | None:
    """The caller the authorizer established, or None when a field is missing (a route
    deployed without the authorizer must not answer as if someone had been checked)."""
    lambda_context = authorizer.get("lambda") if isinstance(authorizer, dict) else None
    if not isinstance(lambda_context, dict) or not all(isinstance(lambda_context.get(f), str) for f in FIELDS):
        return None
    found = {field: lambda_context[field] for field in FIELDS}
    if "scopes" in lambda_context:
        found["scopes"] = lambda_context["scopes"]
    return found


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    request_context = event.get("requestContext") if isinstance(event, dict) else None
    authorizer = request_context.get("authorizer") if isinstance(request_context, dict) else None
    found = caller(authorizer)
    if found is None:
        return _respond(401, {"error": {"code": "unauthorized", "message": "A valid API key is required."}})
    return _respond(200, found)
