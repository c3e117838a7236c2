"""POST /keys: create a key and show it in full, this one time."""

from __future__ import annotations

from apikeys.handler import rest_function, wrote  # first: its import pauses the cyclic GC

# isort: split
from typing import Any

from apikeys import logic
from apikeys.api import caller, caller_account_id, documented, json_response, key_body, parse_body
from apikeys.bodies import CreatedKeyOut, CreateKeyRequest
from apikeys.errors import InvalidRequest, KeyLimitReached

app, lambda_handler = rest_function(catalogue=True)


@app.post(
    "/keys",
    summary="Create an API key; the full key is in this response only",
    **documented(201, "Created", CreatedKeyOut, (InvalidRequest, KeyLimitReached), body=CreateKeyRequest),
)
def create_key() -> Any:
    account_id = caller_account_id(app)
    request = parse_body(app, CreateKeyRequest)
    created = logic.create_key(account_id, request.name, request.expires_in_days, caller(app), request.scopes)
    wrote("KeyCreated", "key created", key_id=created.record.key_id)
    return json_response(201, key_body(created.record, 0, created.secret))  # a new key has no requests yet
