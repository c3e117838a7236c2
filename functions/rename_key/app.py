"""PATCH /keys/{key_id}: rename a key (same name rules as create) and/or change its scopes; a key
being rolled out is refused (409), as a change to it would not reach the key that replaced it."""

from __future__ import annotations

from apikeys.handler import rest_function, wrote  # first: its import pauses the cyclic GC

# isort: split
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path

from apikeys import logic
from apikeys.api import caller, caller_account_id, documented, json_response, key_body, parse_body
from apikeys.bodies import KeyOut, RenameKeyRequest
from apikeys.errors import Conflict, InvalidRequest, NotFound
from apikeys.keys import KEY_ID_PATTERN

app, lambda_handler = rest_function(catalogue=True)


@app.patch(
    "/keys/<key_id>",
    summary="Rename a key and/or change its scopes",
    **documented(200, "OK", KeyOut, (InvalidRequest, NotFound, Conflict), body=RenameKeyRequest),
)
def rename_key(
    key_id: Annotated[str, Path(description="The key's id, as listed.", pattern=KEY_ID_PATTERN)],
) -> Any:
    account_id = caller_account_id(app)
    request = parse_body(app, RenameKeyRequest)
    record = logic.rename_key(account_id, key_id, request.name, caller(app), request.scopes)
    if request.scopes is not None:
        wrote("KeyScopesChanged", "key scopes changed", key_id=key_id)
    else:
        wrote("KeyRenamed", "key renamed", key_id=key_id)
    return json_response(200, key_body(record, logic.requests_30d(account_id, key_id)))
