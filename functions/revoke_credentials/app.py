"""POST /v1/credentials/revoke: anyone who finds a key can kill it. The answer is 202 `{}`
whatever the credentials were, so it reveals nothing about which keys exist."""

from __future__ import annotations

from apikeys.handler import rest_function, wrote  # first: its import pauses the cyclic GC

# isort: split
from typing import Any

from apikeys import logic
from apikeys.api import documented, json_response, parse_body
from apikeys.audit import Caller
from apikeys.bodies import EmptyOut, RevokeCredentialsRequest
from apikeys.errors import InvalidRequest

app, lambda_handler = rest_function()
ACTOR = "public-report"


@app.post(
    "/v1/credentials/revoke",
    summary="Revoke keys found where they should not be (no authentication)",
    **documented(202, "Accepted", EmptyOut, errors=(InvalidRequest,), body=RevokeCredentialsRequest),
)
def revoke() -> Any:
    body = parse_body(app, RevokeCredentialsRequest)
    caller = Caller(ACTOR, app.current_event.request_context.request_id or "")
    for credential in dict.fromkeys(body.credentials):
        logic.revoke_exposed(credential, logic.REPORTED, caller)
    # Counts only: which credentials were ours is never logged or answered.
    wrote("CredentialsReported", "credentials reported", credentials=len(body.credentials))
    return json_response(202, {})
