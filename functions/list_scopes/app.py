"""GET /scopes: the scope catalogue (KEY_SCOPES), so the console offers exactly what create accepts."""

from __future__ import annotations

from apikeys.handler import rest_function  # first: its import pauses the cyclic GC

# isort: split
from typing import Any

from apikeys.api import caller_account_id, documented, json_response
from apikeys.bodies import ScopeCatalogueOut
from apikeys.config import get_scope_catalogue

app, lambda_handler = rest_function(catalogue=True)


@app.get("/scopes", summary="The scopes a key may be restricted to", **documented(200, "OK", ScopeCatalogueOut))
def list_scopes() -> Any:
    caller_account_id(app)  # signed-in users only, like every management route
    body = [
        {"name": name, "routes": [route.pattern for route in routes]} for name, routes in get_scope_catalogue().items()
    ]
    return json_response(200, {"scopes": body})
