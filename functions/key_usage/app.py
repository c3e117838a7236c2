"""GET /keys/{key_id}/usage?days=N: one of the caller's keys, its requests on each of the last N
UTC days (1-90, default 30), oldest first, zero-filled, today last (issue 23)."""

from __future__ import annotations

from apikeys.handler import rest_function  # first: its import pauses the cyclic GC

# isort: split
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from apikeys import logic
from apikeys.api import caller_account_id, documented, json_response, query_parameter, usage_body
from apikeys.bodies import KeyUsageOut
from apikeys.errors import InvalidRequest, NotFound
from apikeys.keys import KEY_ID_PATTERN

app, lambda_handler = rest_function()


@app.get(
    "/keys/<key_id>/usage",
    summary="A key's requests per UTC day, oldest first, the last one today",
    **documented(200, "OK", KeyUsageOut, (InvalidRequest, NotFound)),
)
def key_usage(
    key_id: Annotated[str, Path(description="The key's id, as listed.", pattern=KEY_ID_PATTERN)],
    # For the OpenAPI document only: the resolver binds path parameters alone (no validation
    # middleware), so `days` is read from the event, where a repeated `days` shows too.
    days: Annotated[
        int,
        Query(ge=1, le=logic.USAGE_DAYS_MAX, description="How many days, today included: 1-90 (default 30)."),
    ] = logic.USAGE_DAYS_DEFAULT,
) -> Any:
    account_id = caller_account_id(app)
    requested = logic.usage_days(query_parameter(app, "days"))
    return json_response(200, usage_body(logic.key_usage(account_id, key_id, requested)).model_dump())
