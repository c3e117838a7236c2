"""GET /v1/whoami: an example protected API that echoes what the authorizer established."""

from __future__ import annotations

from apikeys.handler import rest_function  # first: its import pauses the cyclic GC

# isort: split
from typing import Any

from apikeys.api import documented, json_response, key_caller, who_am_i
from apikeys.bodies import WhoAmIOut
from apikeys.errors import Unauthorized

app, lambda_handler = rest_function()


@app.get("/v1/whoami", summary="The account, key and plan of the calling API key", **documented(200, "OK", WhoAmIOut))
def whoami() -> Any:
    principal = key_caller(app.current_event.raw_event)
    if principal is None:
        raise Unauthorized("A valid API key is required.")
    return json_response(200, who_am_i(principal).model_dump())
