"""GET/POST /oauth/consent/{request_id}: the console's consent screen, for a signed-in user
(Cognito, like /keys). GET shows who asks and what the key will be; POST answers. Approval
issues a 60-second code bound to this account (the key itself is created when the client
exchanges it); at the plan's limit it is refused with 403 and nothing is issued."""

from __future__ import annotations

from apikeys.handler import rest_function, wrote  # first: its import pauses the cyclic GC

# isort: split
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path

from apikeys import oauth
from apikeys.api import caller, caller_account_id, documented, json_response, parse_body
from apikeys.bodies import ConsentOut, ConsentRequest, RedirectOut
from apikeys.errors import InvalidRequest, KeyLimitReached, NotFound

app, lambda_handler = rest_function(catalogue=True)


RequestId = Annotated[str, Path(description="The `consent` parameter of the console URL.", max_length=100)]


@app.get(
    "/oauth/consent/<request_id>",
    summary="An MCP client's pending authorization request, as the consent screen shows it",
    **documented(200, "OK", ConsentOut, (NotFound,)),
)
def show(request_id: RequestId) -> Any:
    view = oauth.consent(request_id, caller_account_id(app))
    return json_response(200, ConsentOut(**view.__dict__).model_dump())


@app.post(
    "/oauth/consent/<request_id>",
    summary="Allow or deny an MCP client; allowing creates its API key when the client collects it",
    **documented(200, "OK", RedirectOut, (InvalidRequest, NotFound, KeyLimitReached), body=ConsentRequest),
)
def answer(request_id: RequestId) -> Any:
    account_id = caller_account_id(app)
    request = parse_body(app, ConsentRequest)
    redirect_to = oauth.decide(request_id, account_id, caller(app), request.approve, request.scopes)
    wrote("OAuthConsent", "oauth consent answered", approved=request.approve)
    return json_response(200, {"redirect_to": redirect_to})
