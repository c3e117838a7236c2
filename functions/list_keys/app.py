"""GET /keys: the caller's keys, masked, newest first, with plan and usage."""

from __future__ import annotations

from apikeys.handler import rest_function  # first: its import pauses the cyclic GC

# isort: split
from typing import Any

from apikeys import logic
from apikeys.api import caller_account_id, documented, json_response, key_body
from apikeys.bodies import KeyListWithDaysOut

app, lambda_handler = rest_function(catalogue=True)


@app.get(
    "/keys",
    summary="List the account's keys, masked, newest first, with their requests of the last 30 days",
    **documented(200, "OK", KeyListWithDaysOut),
)
def list_keys() -> Any:
    listing = logic.list_keys(caller_account_id(app))
    recent = listing.recent
    body = {
        "keys": [key_body(record, recent.total(record.key_id)) for record in listing.keys],
        "plan": listing.plan,
        "key_limit": listing.key_limit,
        "key_count": listing.key_count,
        "requests_by_day": {"days": recent.days, "keys": {r.key_id: recent.of(r.key_id) for r in listing.keys}},
    }
    return json_response(200, body)
