"""API Gateway Lambda authorizer: `Authorization: Bearer <key>` -> allow with the account, or 401.

Handles REST TOKEN and REQUEST events and HTTP API payload 2.0. Fails closed: any error
while checking a key propagates as an invocation error, which API Gateway answers with
5xx and never lets through. Lean on purpose: no pydantic, no resolver.
"""

from __future__ import annotations

from apikeys import coldstart  # first: pauses the cyclic GC while the imports below load

# isort: split
from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerEventV2,
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
    APIGatewayAuthorizerResponseV2,
    APIGatewayAuthorizerTokenEvent,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from apikeys.auth import authorize, bearer_token
from apikeys.observability import make_logger
from apikeys.store import Principal

logger = make_logger()
coldstart.ready()


def _context(principal: Principal) -> dict[str, str]:
    return {"account_id": principal.account_id, "key_id": principal.key_id, "plan": principal.plan}


def _request_header(event: dict[str, Any]) -> str | None:
    """The Authorization header, any case; two different values are refused, not guessed."""
    values = {v for k, v in (event.get("headers") or {}).items() if k.lower() == "authorization"}
    for k, many in (event.get("multiValueHeaders") or {}).items():
        if k.lower() == "authorization" and isinstance(many, list):
            values.update(many)
    if len(values) != 1:
        return None
    value = values.pop()
    return value if isinstance(value, str) else None


def _decide(header: str | None) -> Principal | None:
    principal = authorize(bearer_token(header))
    if principal is None:
        logger.info("denied", extra={"reason": "missing, malformed, unknown or revoked key"})
    else:
        logger.info("allowed", extra={"account_id": principal.account_id, "key_id": principal.key_id})
    return principal


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("version") == "2.0":
        v2 = APIGatewayAuthorizerEventV2(event)
        principal = _decide(v2.headers.get("authorization") or None)
        if principal is None:
            return APIGatewayAuthorizerResponseV2(authorize=False).asdict()
        return APIGatewayAuthorizerResponseV2(authorize=True, context=_context(principal)).asdict()

    if event.get("type") == "TOKEN":
        token_event = APIGatewayAuthorizerTokenEvent(event)
        method_arn, header = token_event.method_arn, token_event.authorization_token
    else:
        method_arn, header = APIGatewayAuthorizerRequestEvent(event).method_arn, _request_header(event)

    principal = _decide(header)
    if principal is None:
        raise Exception("Unauthorized")  # noqa: TRY002 - the exact message API Gateway maps to 401
    policy = APIGatewayAuthorizerResponse.from_route_arn(
        method_arn, principal_id=principal.account_id, context=_context(principal)
    )
    policy.allow_all_routes()  # arn:.../{api}/{stage}/*/*: a cached policy never blocks another route
    return policy.asdict()
