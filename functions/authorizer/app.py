"""API Gateway Lambda authorizer: `Authorization: Bearer <key>` -> allow with the account, or 401.

Handles REST TOKEN and REQUEST events and HTTP API payload 2.0. Fails closed: any error
while checking a key propagates as an invocation error, which API Gateway answers with
5xx and never lets through. Lean on purpose: no pydantic, no resolver.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerResponse,
    APIGatewayAuthorizerResponseV2,
    parse_api_gateway_arn,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from apikeys.auth import authorize, bearer_token
from apikeys.observability import make_logger
from apikeys.store import Principal

logger = make_logger()


def _context(principal: Principal) -> dict[str, str]:
    return {"account_id": principal.account_id, "key_id": principal.key_id, "plan": principal.plan}


def _request_header(event: dict[str, Any]) -> str | None:
    """The Authorization header, any case; two different values are refused, not guessed.
    Anything that is not a string where a string belongs counts as no header."""
    headers, multi = event.get("headers"), event.get("multiValueHeaders")
    values: set[str | None] = set()
    if isinstance(headers, dict):
        values.update(
            v if isinstance(v, str) else None
            for k, v in headers.items()
            if isinstance(k, str) and k.lower() == "authorization"
        )
    if isinstance(multi, dict):
        for k, many in multi.items():
            if isinstance(k, str) and k.lower() == "authorization" and isinstance(many, list):
                values.update(v if isinstance(v, str) else None for v in many)
    if len(values) != 1:
        return None
    return values.pop()


def _valid_arn(arn: object) -> str | None:
    """The method/route ARN the policy is scoped to; a malformed one is a denial, before any I/O."""
    if not isinstance(arn, str):
        return None
    try:
        parse_api_gateway_arn(arn)
    except (IndexError, ValueError):
        return None
    return arn


def _decide(header: str | None) -> Principal | None:
    principal = authorize(bearer_token(header))
    if principal is None:
        logger.info("denied", extra={"reason": "missing, malformed, unknown or revoked key"})
    else:
        logger.info("allowed", extra={"account_id": principal.account_id, "key_id": principal.key_id})
    return principal


@logger.inject_lambda_context
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise Exception("Unauthorized")  # noqa: TRY002, TRY004 - the exact message API Gateway maps to 401
    if event.get("version") == "2.0":
        principal = _decide(_request_header(event))  # HTTP API: header names arrive lowercased
        if principal is None:
            return APIGatewayAuthorizerResponseV2(authorize=False).asdict()
        return APIGatewayAuthorizerResponseV2(authorize=True, context=_context(principal)).asdict()

    method_arn = _valid_arn(event.get("methodArn"))
    if event.get("type") == "TOKEN":
        token = event.get("authorizationToken")
        header = token if isinstance(token, str) else None
    else:
        header = _request_header(event)

    principal = _decide(header) if method_arn is not None else None
    if principal is None or method_arn is None:
        raise Exception("Unauthorized")  # noqa: TRY002 - the exact message API Gateway maps to 401
    policy = APIGatewayAuthorizerResponse.from_route_arn(
        method_arn, principal_id=principal.account_id, context=_context(principal)
    )
    policy.allow_all_routes()  # arn:.../{api}/{stage}/*/*: a cached policy never blocks another route
    return policy.asdict()
