"""API Gateway Lambda authorizer: `Authorization: Bearer <key>` -> allow with the account, or 401;
an explicit Deny (403) for a live key of an account whose plan allows 0 keys.

Scopes (KEY_SCOPES): a full-access key is allowed on every route of the calling stage; a scoped
key only on its scopes' routes, so API Gateway itself refuses (403) anything else, and a
cached decision stays right on every route. A scoped key that grants no route (capabilities
only) gets an explicit Deny. HTTP APIs have no policy: the route is matched here, so an HTTP
API must cache decisions by route (identity source includes $context.routeKey) or not at all.

Handles REST TOKEN and REQUEST events and HTTP API payload 2.0. Fails closed: any error
while checking a key propagates as an invocation error, which API Gateway answers with
5xx and never lets through. Lean on purpose: no pydantic, no resolver, and no Powertools
event data classes (importing their package costs ~10 ms of every cold start for two dict
lookups and a six-line policy; see docs/performance.md). The response shapes are exactly
Powertools' (tests/unit/test_fast_paths.py compares them), except that the ARN partition is kept.
"""

from __future__ import annotations

from apikeys import coldstart  # first: pauses the cyclic GC while the imports below load

# isort: split
from typing import TYPE_CHECKING, Any

from apikeys import scopes
from apikeys.auth import authorize, bearer_token, has_api_access
from apikeys.config import get_scope_catalogue
from apikeys.observability import make_logger
from apikeys.records import Principal

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = make_logger()
CATALOGUE = get_scope_catalogue()  # at import: a malformed KEY_SCOPES fails the cold start
coldstart.ready()


def _context(principal: Principal) -> dict[str, str]:
    return {
        "account_id": principal.account_id,
        "key_id": principal.key_id,
        "plan": principal.plan,
        "scopes": scopes.context_value(principal.scopes),
    }


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
    """The method ARN the policy is scoped to (arn:partition:execute-api:region:account:
    api/stage/method/...); a malformed one is a denial, before any I/O."""
    if not isinstance(arn, str):
        return None
    parts = arn.split(":")
    if len(parts) < 6 or len(parts[5].split("/")) < 3:
        return None
    return arn


def allow_policy(method_arn: str, principal: Principal, effect: str = "Allow") -> dict[str, Any]:
    """IAM policy allowing (or, for a plan without API access, explicitly denying: API Gateway
    answers 403 through the ACCESS_DENIED Gateway Response) every route of the calling API's
    stage (arn:…/{api}/{stage}/*/*), so a cached policy never blocks another route. A scoped
    key is allowed on exactly its scopes' routes of that stage, or denied everywhere if they
    grant none."""
    arn = method_arn.split(":")
    api_id, stage = arn[5].split("/")[:2]
    stage_arn = f"arn:{arn[1]}:execute-api:{arn[3]}:{arn[4]}:{api_id}/{stage}"
    resources = [f"{stage_arn}/*/*"]
    if principal.scopes is not None and effect == "Allow":
        granted = scopes.resource_arns(principal.scopes, CATALOGUE, stage_arn)
        if granted:
            resources = granted
        else:
            effect = "Deny"  # capabilities only: no route of this stage may be called with this key
    return {
        "principalId": principal.account_id,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resources}],
        },
        "context": _context(principal),
    }


def _http_route_allowed(event: dict[str, Any], key_scopes: tuple[str, ...]) -> bool:
    """HTTP API: the route key (`GET /keys/{key_id}`), or for `$default` the request's own
    method and raw path, against the key's scopes. Anything unreadable is outside them."""
    route_key = event.get("routeKey")
    if route_key == "$default":
        context = event.get("requestContext")
        http = context.get("http") if isinstance(context, dict) else None
        method = http.get("method") if isinstance(http, dict) else None
        path = event.get("rawPath")
        if not isinstance(method, str) or not isinstance(path, str):
            return False
    elif isinstance(route_key, str) and " " in route_key:
        method, path = route_key.split(" ", 1)
    else:
        return False
    return scopes.route_allowed(key_scopes, CATALOGUE, method, path)


def _decide(header: str | None) -> Principal | None:
    principal = authorize(bearer_token(header))
    if principal is None:
        logger.info("denied", extra={"reason": "missing, malformed, unknown or revoked key"})
    elif not has_api_access(principal):
        logger.info("denied", extra={"reason": "plan allows no keys", "account_id": principal.account_id})
    else:
        # DEBUG: allowed requests are in API Gateway's access log ($context.authorizer.*); an INFO
        # line here would cost every request of every API ~0.1 ms and a CloudWatch line.
        logger.debug("allowed", extra={"account_id": principal.account_id, "key_id": principal.key_id})
    return principal


@logger.inject_lambda_context
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise Exception("Unauthorized")  # noqa: TRY002, TRY004 - the exact message API Gateway maps to 401
    if event.get("version") == "2.0":
        principal = _decide(_request_header(event))  # HTTP API: header names arrive lowercased
        if principal is None or not has_api_access(principal):
            return {"isAuthorized": False}
        if principal.scopes is not None and not _http_route_allowed(event, principal.scopes):
            logger.info("denied", extra={"reason": "route outside the key's scopes", "key_id": principal.key_id})
            return {"isAuthorized": False}
        return {"isAuthorized": True, "context": _context(principal)}

    method_arn = _valid_arn(event.get("methodArn"))
    if event.get("type") == "TOKEN":
        token = event.get("authorizationToken")
        header = token if isinstance(token, str) else None
    else:
        header = _request_header(event)

    principal = _decide(header) if method_arn is not None else None
    if principal is None or method_arn is None:
        raise Exception("Unauthorized")  # noqa: TRY002 - the exact message API Gateway maps to 401
    return allow_policy(method_arn, principal, "Allow" if has_api_access(principal) else "Deny")
