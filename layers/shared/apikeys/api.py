"""HTTP glue shared by the handlers: the resolver, the caller's identity (a signed-in user's,
or an API key's from the authorizer's context), body parsing, and the one mapping from domain
errors to the contract's error shape."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from pydantic import BaseModel, ValidationError

from apikeys import logic
from apikeys.audit import Caller
from apikeys.bodies import CreatedKeyOut, DayRequestsOut, ErrorOut, KeyOut, KeyUsageOut, WhoAmIOut
from apikeys.config import FULL_ACCESS, get_settings
from apikeys.errors import ApiKeyError, InternalError, InvalidRequest, NotFound, ServiceUnavailable, Unauthorized
from apikeys.names import shown
from apikeys.records import KeyRecord, Principal

MAX_BODY_BYTES = 10 * 1024
ModelT = TypeVar("ModelT", bound=BaseModel)
_NO_STORE = {"Cache-Control": "no-store"}


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type="application/json",
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
        headers={**_NO_STORE, **(headers or {})},
    )


def error_response(error: ApiKeyError) -> Response[str]:
    headers = {"Retry-After": str(error.retry_after_seconds)} if isinstance(error, ServiceUnavailable) else None
    if isinstance(error, Unauthorized):
        headers = {"WWW-Authenticate": "Bearer"}
    return json_response(error.status, {"error": {"code": error.code, "message": error.message}}, headers)


def _str_map(value: object, listed: bool = False) -> dict[str, Any] | None:
    """Keep only well-typed entries of a header/parameter map; anything else is absent."""
    if not isinstance(value, dict):
        return None
    if listed:
        return {
            k: [x for x in v if isinstance(x, str)]
            for k, v in value.items()
            if isinstance(k, str) and isinstance(v, list)
        }
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


def _proxy_error(error: ApiKeyError) -> dict[str, Any]:
    response = error_response(error)
    headers = {"Content-Type": "application/json", **{k: str(v) for k, v in response.headers.items()}}
    return {"statusCode": response.status_code, "headers": headers, "body": response.body, "isBase64Encoded": False}


class ContractResolver(APIGatewayRestResolver):
    """The REST resolver, hardened against malformed proxy events: API Gateway never sends
    them, but a handler must still answer with the contract (400, the error shape) rather
    than crash inside the router on a null method or a header that is not a string."""

    def resolve(self, event: Any, context: Any) -> dict[str, Any]:
        if not isinstance(event, dict):
            return _proxy_error(InvalidRequest("Malformed request."))
        method, path = event.get("httpMethod"), event.get("path")
        if not isinstance(method, str) or not isinstance(path, str):
            return _proxy_error(InvalidRequest("Malformed request."))
        clean = dict(event)
        for name in ("headers", "queryStringParameters", "pathParameters", "stageVariables"):
            clean[name] = _str_map(event.get(name))
        for name in ("multiValueHeaders", "multiValueQueryStringParameters"):
            clean[name] = _str_map(event.get(name), listed=True)
        if not isinstance(event.get("requestContext"), dict):
            clean["requestContext"] = {}
        return super().resolve(clean, context)


def make_resolver(logger: Logger) -> APIGatewayRestResolver:
    app = ContractResolver()

    def _domain_error(error: ApiKeyError) -> Response[str]:
        logger.info("request refused", extra={"error_code": error.code, "status": error.status})
        return error_response(error)

    def _unexpected(error: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return error_response(InternalError("Something went wrong on our side. Please retry later."))

    def _not_found(_: Exception) -> Response[str]:
        return error_response(NotFound("No such route."))

    # Registered by call, not as decorators: Powertools' decorators are untyped (mypy --strict).
    app.exception_handler(ApiKeyError)(_domain_error)
    app.exception_handler(Exception)(_unexpected)
    app.not_found(_not_found)

    return app


_ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "Bearer", "schema": {"type": "string"}}},
    503: {"Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}},
}


def documented(
    status: int,
    description: str,
    model: type[BaseModel] | None = None,
    errors: tuple[type[ApiKeyError], ...] = (),
    body: type[BaseModel] | None = None,
    body_required: bool = True,
) -> dict[str, Any]:
    """Route keyword arguments that let Powertools emit the route's OpenAPI operation: the
    success body, every error the route can answer (always 401, 500 and 503) and the request
    body parse_body() validates. Documentation only: no validation middleware is enabled."""
    responses: dict[int, Any] = {status: {"description": description}}
    if model is not None:
        responses[status]["content"] = {"application/json": {"model": model}}
    every: tuple[type[ApiKeyError], ...] = (*errors, Unauthorized, InternalError, ServiceUnavailable)
    for error in every:
        responses[error.status] = {
            "description": error.__doc__.strip().splitlines()[0] if error.__doc__ else error.code,
            "content": {"application/json": {"model": ErrorOut}},
            **({"headers": _ERROR_HEADERS[error.status]} if error.status in _ERROR_HEADERS else {}),
        }
    extra: dict[str, Any] = {"responses": responses, "response_description": description}
    if body is not None:
        schema = body.model_json_schema()
        extra["openapi_extensions"] = {
            "requestBody": {"required": body_required, "content": {"application/json": {"schema": schema}}}
        }
    return extra


def _claims(app: APIGatewayRestResolver) -> dict[str, Any]:
    context = app.current_event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    claims = authorizer.get("claims") if isinstance(authorizer, dict) else None
    return claims if isinstance(claims, dict) else {}


def caller_account_id(app: APIGatewayRestResolver) -> str:
    """The account from the Cognito authorizer's claims; no identity means 401. ID tokens only:
    an access token carries no custom attributes and is meant for OAuth scopes, so its `sub`
    must not stand in for a differently configured account claim (or be mixed with it)."""
    claims = _claims(app)
    if claims.get("token_use") != "id":
        raise Unauthorized("Sign in to manage API keys (an ID token is required).")
    account = claims.get(get_settings().account_id_claim)
    if not isinstance(account, str) or not account.strip():
        raise Unauthorized("Sign in to manage API keys.")
    return account


def caller(app: APIGatewayRestResolver) -> Caller:
    """Who made the request, for audit events: the user's `sub` (else the account claim), and
    the same user as people read it, for `created_by`."""
    claims = _claims(app)
    sub = claims.get("sub")
    actor = sub if isinstance(sub, str) else caller_account_id(app)
    context = app.current_event.get("requestContext")
    request_id = context.get("requestId") if isinstance(context, dict) else None
    return Caller(actor=actor, request_id=request_id if isinstance(request_id, str) else "", user=user_name(claims))


def user_name(claims: dict[str, Any]) -> str | None:
    """The signed-in user as people read it (issue 23): the `email` claim, else `cognito:username`,
    else `sub`. An email the token marks unverified (`email_verified` false: API Gateway passes
    claims as strings) is skipped: anyone may type any address, and `created_by` must not let one
    user of an account pass for another."""
    email_verified = str(claims.get("email_verified", "true")).lower()
    names = ("cognito:username", "sub") if email_verified == "false" else ("email", "cognito:username", "sub")
    for name in names:
        value = claims.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def key_caller(event: object) -> Principal | None:
    """The API key the authorizer let through, from its context in a REST or HTTP API event
    (payload 2.0 nests it under `lambda`), or None: the one reading of that context, for
    GET /v1/whoami and the MCP server alike. All four fields must be non-empty strings,
    `scopes` included. The authorizer always sets `scopes` (`*` for full access, even for keys
    stored without scopes), so a context without it was not made by this authorizer: it names
    no caller (401), as a missing account does, and is never read as full access."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    found = context.get("authorizer") if isinstance(context, dict) else None
    if isinstance(found, dict) and isinstance(found.get("lambda"), dict):
        found = found["lambda"]
    if not isinstance(found, dict):
        return None
    account_id, key_id, plan, raw = (found.get(name) for name in ("account_id", "key_id", "plan", "scopes"))
    if not (isinstance(account_id, str) and isinstance(key_id, str) and isinstance(plan, str)):
        return None
    names = raw.split() if isinstance(raw, str) else []
    if not (account_id and key_id and plan and names):
        return None
    return Principal(account_id, key_id, plan, scopes=None if FULL_ACCESS in names else tuple(names))


def who_am_i(principal: Principal) -> WhoAmIOut:
    """GET /v1/whoami's body and the MCP `whoami` tool's result: the context, scopes listed."""
    listed = [FULL_ACCESS] if principal.scopes is None else list(principal.scopes)
    return WhoAmIOut(account_id=principal.account_id, key_id=principal.key_id, plan=principal.plan, scopes=listed)


def key_body(record: KeyRecord, requests_30d: int, secret: str | None = None) -> dict[str, Any]:
    """The key object of every response (the console's and the MCP tools' too); the full key only
    when just created or rolled. A name stored before the current rule is shown escaped, and so is
    a `created_by` with characters that hide (it comes from a sign-in claim). `requests_30d` is
    the key's granted authorizations in the last 30 UTC days, today included (logic.RecentRequests)."""
    fields: dict[str, Any] = {
        "id": record.key_id,
        "name": shown(record.name),
        "display": record.display,
        "created_at": record.created_at,
        "last_used_at": record.last_used_at,
        "expires_at": logic.expires_at(record),
        "status": logic.status(record),
        "scopes": logic.listed_scopes(record),
        "created_by": None if record.created_by is None else shown(record.created_by),
        "requests_30d": requests_30d,
        "connection": None
        if record.connection is None
        else {
            "client_id": record.connection.client_id,
            "client_name": record.connection.client_name,
            "redirect_host": record.connection.redirect_host,
        },
    }
    if secret is None:
        return KeyOut(**fields).model_dump()
    return CreatedKeyOut(**fields, key=secret).model_dump()


def usage_body(usage: logic.KeyUsage) -> KeyUsageOut:
    """GET /keys/{key_id}/usage's body and the MCP tool get_api_key_usage's result."""
    days = [DayRequestsOut(date=day, requests=count) for day, count in usage.days]
    return KeyUsageOut(key_id=usage.key_id, days=days, total=usage.total)


def query_parameter(app: APIGatewayRestResolver, name: str) -> str | None:
    """The one query parameter a route takes, or None when absent. Given twice, or any other
    parameter given, is a 400: a typo (`?day=7`) must not pass silently as the default."""
    event = app.current_event
    multi: dict[str, list[str]] = event.get("multiValueQueryStringParameters") or {}
    single: dict[str, str] = event.get("queryStringParameters") or {}
    for other in sorted({*multi, *single} - {name}):
        raise InvalidRequest(f"Unknown query parameter {other[:40]!r}; this route takes only {name}.")
    values = multi[name] if name in multi else [single[name]] if name in single else []
    if len(values) > 1:
        raise InvalidRequest(f"{name} was given {len(values)} times; give it once.")
    return values[0] if values else None


def body_bytes(app: APIGatewayRestResolver, too_large: type[ApiKeyError] = InvalidRequest) -> bytes | None:
    """The request body as bytes (base64 decoded when API Gateway encoded it), None when there is
    none; over MAX_BODY_BYTES raises `too_large` before anything decodes or parses it."""
    raw = app.current_event.get("body")
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        raise InvalidRequest("Request body must be a JSON object.")
    if len(raw) > MAX_BODY_BYTES * 2:
        raise too_large(f"Request body exceeds {MAX_BODY_BYTES} bytes.")
    data = raw.encode("utf-8", "surrogatepass")
    if app.current_event.get("isBase64Encoded") is True:
        try:
            data = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidRequest("Request body is not valid base64.") from None
    if len(data) > MAX_BODY_BYTES:
        raise too_large(f"Request body exceeds {MAX_BODY_BYTES} bytes.")
    return data


def parse_body(app: APIGatewayRestResolver, model: type[ModelT], optional: bool = False) -> ModelT:
    """Size check first, then JSON, then the model: a bad body is refused before any I/O.
    An `optional` body may be absent, meaning every field takes its default."""
    data = body_bytes(app)
    if data is None and optional:
        data = b"{}"
    if data is None:
        raise InvalidRequest("Request body must be a JSON object.")
    try:
        parsed = json.loads(data)
    except (ValueError, RecursionError):
        raise InvalidRequest("Request body is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    try:
        return model.model_validate(parsed)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join(str(part) for part in first["loc"]) or "body"
        raise InvalidRequest(f"{field}: {first['msg']}.") from None
