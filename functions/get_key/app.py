"""GET /keys/{key_id}: one of the caller's keys (never the secret)."""

from __future__ import annotations

from apikeys.handler import rest_function  # first: its import pauses the cyclic GC

# isort: split
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path

from apikeys import logic
from apikeys.api import caller_account_id, documented, json_response, key_body
from apikeys.bodies import KeyOut
from apikeys.errors import NotFound
from apikeys.keys import KEY_ID_PATTERN

app, lambda_handler = rest_function(catalogue=True)


@app.get("/keys/<key_id>", summary="One key, masked", **documented(200, "OK", KeyOut, (NotFound,)))
def get_key(
    key_id: Annotated[str, Path(description="The key's id, as listed.", pattern=KEY_ID_PATTERN)],
) -> Any:
    account_id = caller_account_id(app)
    record = logic.get_key(account_id, key_id)
    # One more read, the account's 30 days of usage: the key object has its requests_30d everywhere.
    return json_response(200, key_body(record, logic.requests_30d(account_id, key_id)))
