"""GET /whoami on a REST API (payload 1.0) behind the apikeys authorizer, TOKEN or REQUEST.

A product route as another team would write it: no dependency beyond the standard library,
so this example deploys without the key service's layer. API Gateway has already run the
authorizer; its `context` arrives flattened to strings at `requestContext.authorizer`.
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
    if not isinstance(authorizer, dict) or not all(isinstance(authorizer.get(f), str) for f in FIELDS):
        return None
    found = {field: authorizer[field] for field in FIELDS}
    if "scopes" in authorizer:
        found["scopes"] = authorizer["scopes"]
    return found


def lambda_handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    request_context = event.get("requestContext") if isinstance(event, dict) else None
    authorizer = request_context.get("authorizer") if isinstance(request_context, dict) else None
    found = caller(authorizer)
    if found is None:
        return _respond(401, {"error": {"code": "unauthorized", "message": "A valid API key is required."}})
    return _respond(200, found)
