"""DELETE /keys/{key_id}: revoke a key; the authorizer refuses it on the very next request."""

from __future__ import annotations

from apikeys.handler import rest_function, wrote  # first: its import pauses the cyclic GC

# isort: split
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path

from apikeys import logic
from apikeys.api import caller, caller_account_id, documented
from apikeys.errors import NotFound
from apikeys.keys import KEY_ID_PATTERN

app, lambda_handler = rest_function()


@app.delete("/keys/<key_id>", summary="Delete (revoke) a key at once", **documented(204, "Deleted", errors=(NotFound,)))
def delete_key(
    key_id: Annotated[str, Path(description="The key's id, as listed.", pattern=KEY_ID_PATTERN)],
) -> Any:
    logic.delete_key(caller_account_id(app), key_id, caller(app))
    wrote("KeyDeleted", "key deleted", key_id=key_id)
    return Response(status_code=204, body="", headers={"Cache-Control": "no-store"})
