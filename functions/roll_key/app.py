"""POST /keys/{key_id}/roll: replace a key by a new one (shown once), optionally keeping the
old one working for a grace period so integrations rotate without downtime."""

from __future__ import annotations

from apikeys.handler import rest_function, wrote  # first: its import pauses the cyclic GC

# isort: split
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path

from apikeys import logic
from apikeys.api import caller, caller_account_id, documented, json_response, key_body, parse_body
from apikeys.bodies import CreatedKeyOut, RollKeyRequest
from apikeys.errors import Conflict, InvalidRequest, NotFound
from apikeys.keys import KEY_ID_PATTERN

app, lambda_handler = rest_function(catalogue=True)


@app.post(
    "/keys/<key_id>/roll",
    summary="Roll a key: a new key now, the old one works until its grace period ends",
    **documented(
        201, "Created", CreatedKeyOut, (InvalidRequest, NotFound, Conflict), body=RollKeyRequest, body_required=False
    ),
)
def roll_key(
    key_id: Annotated[str, Path(description="The key's id, as listed.", pattern=KEY_ID_PATTERN)],
) -> Any:
    account_id = caller_account_id(app)
    request = parse_body(app, RollKeyRequest, optional=True)
    created = logic.roll_key(account_id, key_id, request.grace_period_seconds, caller(app))
    wrote("KeyRolled", "key rolled", key_id=created.record.key_id, previous_key_id=key_id)
    return json_response(201, key_body(created.record, 0, created.secret))  # a new key has no requests yet
