"""API Gateway Lambda authorizer: `Authorization: Bearer <key>` -> allow with the account, or 401;
an explicit Deny (403) for a live key of an account whose plan allows 0 keys.

Scopes (KEY_SCOPES): a full-access key is allowed on every route of the calling stage; a scoped
key only on its scopes' routes, so API Gateway itself refuses (403) anything else, and a
cached decision stays right on every route. A scoped key that grants no route (capabilities
only) gets an explicit Deny. HTTP APIs have no policy: the route is matched here, so an HTTP
API must cache decisions by route (identity source includes $context.routeKey) or not at all.

Handles REST TOKEN and REQUEST events, HTTP API payload 2.0, API Gateway WebSocket `$connect`
(a REQUEST event; the policy names the `$connect` ARN) and AWS AppSync `AWS_LAMBDA`
authorization (`{"isAuthorized", "resolverContext", "ttlOverride": 0}`; a refused key is
`isAuthorized: false`; a scoped key only when its scopes grant `APPSYNC /<api id>` or
`APPSYNC /*`, see `appsync_answer`). Fails closed: any error while checking a key propagates as an
invocation error, which API Gateway answers with 5xx and AppSync with 401, and never lets
through. Lean on purpose: no pydantic, no resolver, and no Powertools event data classes
(importing their package costs ~10 ms of every cold start for two dict lookups and a six-line
policy; see docs/performance.md). Every authorization that lets a request through is counted
for its key (`usage.record`: in memory, written at most once a minute per account); a denial
never is. The response shapes are exactly
Powertools' (tests/unit/test_fast_paths.py compares them), except that the ARN partition is kept.
"""

from __future__ import annotations

from apikeys.handler import authorizer_function  # first: its import pauses the cyclic GC

# isort: split
import logging
import re
from typing import Any

from apikeys import container, scopes, usage
from apikeys.auth import MAX_HEADER_BYTES, authorize, bearer_token, has_api_access
from apikeys.config import Catalogue, get_scope_catalogue
from apikeys.observability import make_logger
from apikeys.records import Principal

logger = make_logger()
DEBUG = logger.log_level <= logging.DEBUG  # POWERTOOLS_LOG_LEVEL, read once per container
CATALOGUE = get_scope_catalogue()  # what the policies grant; a name of the module, so tests can swap it
# A scoped key's route ARNs by (scopes, stage ARN), with the catalogue they were made from and a
# pattern matching what they allow: the same few on every request of a key, built once
# (docs/performance.md).
_granted: dict[tuple[tuple[str, ...], str], tuple[Catalogue, tuple[str, ...], re.Pattern[str] | None]] = (
    container.state({})
)


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


def _is_websocket_connect(event: dict[str, Any], method_arn: str) -> bool:
    """A WebSocket API's `$connect` authorization: its method ARN is api/stage/$connect, with
    no HTTP method segment, so a REST-style `api/stage/*/*` resource would not match it."""
    request_context = event.get("requestContext")
    connect = isinstance(request_context, dict) and request_context.get("eventType") == "CONNECT"
    return connect or method_arn.endswith("/$connect")


def _stage_arn(method_arn: str) -> str:
    """arn:partition:execute-api:region:account:api/stage of a (valid) method ARN."""
    arn = method_arn.split(":")
    api_id, stage = arn[5].split("/")[:2]
    return f"arn:{arn[1]}:execute-api:{arn[3]}:{arn[4]}:{api_id}/{stage}"


def _granted_routes(key_scopes: tuple[str, ...], stage_arn: str) -> tuple[tuple[str, ...], re.Pattern[str] | None]:
    """`scopes.resource_arns`, and a pattern of what they allow as API Gateway reads a policy
    (`*` matches any characters, `/` included), remembered per container; a swapped catalogue
    is a miss."""
    cached = _granted.get((key_scopes, stage_arn))
    if cached is not None and cached[0] is CATALOGUE:
        return cached[1], cached[2]
    arns = tuple(scopes.resource_arns(key_scopes, CATALOGUE, stage_arn))
    pattern = re.compile("|".join(re.escape(arn).replace(r"\*", ".*") for arn in arns)) if arns else None
    if len(_granted) >= 1000:
        _granted.clear()
    _granted[(key_scopes, stage_arn)] = (CATALOGUE, arns, pattern)
    return arns, pattern


def _route_granted(key_scopes: tuple[str, ...], method_arn: str) -> bool:
    """Whether a scoped key's policy allows this very request: API Gateway answers any other
    route 403, a denial, which `usage` must not count."""
    pattern = _granted_routes(key_scopes, _stage_arn(method_arn))[1]
    return pattern is not None and pattern.fullmatch(method_arn) is not None


def allow_policy(
    method_arn: str, principal: Principal, effect: str = "Allow", websocket: bool = False
) -> dict[str, Any]:
    """IAM policy allowing (or, for a plan without API access, explicitly denying: API Gateway
    answers 403 through the ACCESS_DENIED Gateway Response) every route of the calling API's
    stage (arn:…/{api}/{stage}/*/*), so a cached policy never blocks another route. A scoped
    key is allowed on exactly its scopes' routes of that stage, or denied everywhere if they
    grant none. A WebSocket API asks only for `$connect` (later messages are not authorized):
    the policy names that ARN, and only a full-access key may open a connection (scopes name
    HTTP routes; a WebSocket has none)."""
    stage_arn = _stage_arn(method_arn)
    resources = [method_arn] if websocket else [f"{stage_arn}/*/*"]
    if principal.scopes is not None and effect == "Allow":
        granted = [] if websocket else list(_granted_routes(principal.scopes, stage_arn)[0])
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
    method and canonical path (no stage prefix, no dot segment, no escaped separator: see
    `scopes.canonical_path`), against the key's scopes. Anything unreadable is outside them."""
    route_key = event.get("routeKey")
    if route_key == "$default":
        context = event.get("requestContext")
        http = context.get("http") if isinstance(context, dict) else None
        method = http.get("method") if isinstance(http, dict) else None
        stage = context.get("stage") if isinstance(context, dict) else None
        raw_path = event.get("rawPath")
        if not isinstance(method, str) or not isinstance(raw_path, str) or not isinstance(stage, str | None):
            return False
        path = scopes.canonical_path(raw_path, stage)
        if path is None:
            return False
    elif isinstance(route_key, str) and " " in route_key:
        method, path = route_key.split(" ", 1)
    else:
        return False
    return scopes.route_allowed(key_scopes, CATALOGUE, method, path)


def _decide(header: str | None) -> Principal | None:
    return _decide_token(bearer_token(header))


def _decide_token(token: str | None) -> Principal | None:
    principal = authorize(token)
    if principal is None:
        logger.info("denied", extra={"reason": "missing, malformed, unknown or revoked key"})
    elif not has_api_access(principal):
        logger.info("denied", extra={"reason": "plan allows no keys", "account_id": principal.account_id})
    elif DEBUG:
        # DEBUG: allowed requests are in API Gateway's access log ($context.authorizer.*); an INFO
        # line here would cost every request of every API ~0.1 ms and a CloudWatch line, and even
        # a suppressed debug call costs ~1.5 µs (docs/performance.md), so the level is read once.
        logger.debug("allowed", extra={"account_id": principal.account_id, "key_id": principal.key_id})
    return principal


def _appsync_token(value: object) -> str | None:
    """AppSync passes the client's whole `Authorization` header value as `authorizationToken`.
    GraphQL clients in AWS_LAMBDA mode (Amplify among them) send the token bare, others reuse
    their REST configuration and send `Bearer <key>`: both are taken. The bare form is one
    visible-ASCII token; the key's own format check follows, before any I/O."""
    if not isinstance(value, str) or len(value) > MAX_HEADER_BYTES:
        return None
    token = bearer_token(value)
    if token is not None:
        return token
    bare = value.strip(" \t")
    return bare if bare and all("!" <= ch <= "~" for ch in bare) else None


def _is_appsync(event: dict[str, Any]) -> bool:
    request_context = event.get("requestContext")
    return (
        "type" not in event
        and "authorizationToken" in event
        and isinstance(request_context, dict)
        and ("apiId" in request_context)
    )


def appsync_answer(event: dict[str, Any]) -> dict[str, Any]:
    """AppSync's AWS_LAMBDA response: the REST context as `resolverContext` (read in resolvers
    as `$ctx.identity.resolverContext`), never cached (`ttlOverride: 0`, as the REST TTL 0).
    A full-access key is authorized; a scoped key only when one of its scopes has the route
    `APPSYNC /<this api id>` or `APPSYNC /*` (the default catalogue has none, so every scoped
    key is refused): AppSync has no policy to narrow, and a key must never reach more on AppSync
    than on REST. The key's scopes still reach resolvers in `resolverContext.scopes`."""
    principal = _decide_token(_appsync_token(event.get("authorizationToken")))
    if principal is None or not has_api_access(principal):
        return {"isAuthorized": False, "ttlOverride": 0}
    if principal.scopes is not None:
        request_context = event.get("requestContext")
        api_id = request_context.get("apiId") if isinstance(request_context, dict) else None
        if not scopes.appsync_allowed(principal.scopes, CATALOGUE, api_id):
            logger.info("denied", extra={"reason": "AppSync outside the key's scopes", "key_id": principal.key_id})
            return {"isAuthorized": False, "ttlOverride": 0}
    usage.record(principal)
    return {"isAuthorized": True, "resolverContext": _context(principal), "ttlOverride": 0}


def authorize_request(event: Any, context: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise Exception("Unauthorized")  # noqa: TRY002, TRY004 - the exact message API Gateway maps to 401
    if event.get("version") == "2.0":
        principal = _decide(_request_header(event))  # HTTP API: header names arrive lowercased
        if principal is None or not has_api_access(principal):
            return {"isAuthorized": False}
        if principal.scopes is not None and not _http_route_allowed(event, principal.scopes):
            logger.info("denied", extra={"reason": "route outside the key's scopes", "key_id": principal.key_id})
            return {"isAuthorized": False}
        usage.record(principal)
        return {"isAuthorized": True, "context": _context(principal)}
    if _is_appsync(event):
        return appsync_answer(event)

    method_arn = _valid_arn(event.get("methodArn"))
    if event.get("type") == "TOKEN":
        token = event.get("authorizationToken")
        header = token if isinstance(token, str) else None
    else:
        header = _request_header(event)

    principal = _decide(header) if method_arn is not None else None
    if principal is None or method_arn is None:
        raise Exception("Unauthorized")  # noqa: TRY002 - the exact message API Gateway maps to 401
    effect = "Allow" if has_api_access(principal) else "Deny"
    websocket = _is_websocket_connect(event, method_arn)
    policy = allow_policy(method_arn, principal, effect, websocket)
    # Counted when this request gets through: a full-access key's policy allows every route of
    # the stage; a scoped key's only its own (never a WebSocket, whose policy is then a Deny).
    if effect == "Allow" and (
        principal.scopes is None or (not websocket and _route_granted(principal.scopes, method_arn))
    ):
        usage.record(principal)
    return policy


lambda_handler = authorizer_function(authorize_request)
