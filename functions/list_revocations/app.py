"""GET /revocations: keys of the caller's account revoked in the last 30 days because they
were found in public (`leaked`) or reported (`reported`): the console's notice."""

from __future__ import annotations

from apikeys.handler import rest_function  # first: its import pauses the cyclic GC

# isort: split
from dataclasses import asdict
from typing import Any

from apikeys import logic
from apikeys.api import caller_account_id, documented, json_response
from apikeys.bodies import RevocationListOut
from apikeys.names import shown

app, lambda_handler = rest_function()


@app.get(
    "/revocations",
    summary="Keys revoked as leaked or reported in the last 30 days, newest first",
    **documented(200, "OK", RevocationListOut),
)
def list_revocations() -> Any:
    notices = logic.recent_revocations(caller_account_id(app))
    # The console shows each revoked key's name: one stored before the name rule, escaped.
    listed = [{**asdict(notice), "name": shown(notice.name)} for notice in notices]
    body = RevocationListOut.model_validate({"revocations": listed})
    return json_response(200, body.model_dump())
