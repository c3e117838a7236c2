"""GET /v1/whoami: an example protected API that echoes what the authorizer established."""

from __future__ import annotations

from apikeys.handler import rest_function  # first: its import pauses the cyclic GC

# isort: split
from typing import Any

from apikeys.api import documented, json_response
from apikeys.bodies import WhoAmIOut
from apikeys.errors import Unauthorized

app, lambda_handler = rest_function()
FIELDS = ("account_id", "key_id", "plan", "scopes")


@app.get("/v1/whoami", summary="The account, key and plan of the calling API key", **documented(200, "OK", WhoAmIOut))
def whoami() -> Any:
    context = app.current_event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    if isinstance(authorizer, dict) and isinstance(authorizer.get("lambda"), dict):
        authorizer = authorizer["lambda"]  # HTTP API (payload 2.0) nests the context
    if not isinstance(authorizer, dict) or not all(isinstance(authorizer.get(f), str) for f in FIELDS):
        raise Unauthorized("A valid API key is required.")
    body: dict[str, Any] = {field: authorizer[field] for field in FIELDS}
    body["scopes"] = body["scopes"].split(" ")  # the context joins names by spaces; `*` is full access
    return json_response(200, body)
