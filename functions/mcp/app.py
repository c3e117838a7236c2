"""POST /mcp: the remote MCP server (Streamable HTTP, stateless, JSON responses) behind the key
authorizer. The official `mcp` SDK speaks the protocol; Mangum adapts its ASGI app to Lambda.
Identity comes only from the authorizer's context, never from the MCP payload."""

# No `from __future__ import annotations`: the SDK and pydantic read the tools' and models'
# annotations at runtime, in a module Lambda loads under a name of its own.

from apikeys.handler import rest_function  # first: its import pauses the cyclic GC

# isort: split
import base64
import binascii
import inspect
import logging
from typing import Annotated, Any, Literal, cast

from aws_lambda_powertools.event_handler import Response
from mangum import Mangum
from mangum.protocols import LifespanCycle
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field, ValidationError
from starlette.applications import Starlette

from apikeys import logic
from apikeys.api import body_bytes, documented, json_response, key_body, key_caller, usage_body, who_am_i
from apikeys.bodies import ErrorOut, KeyListOut, KeyOut, KeyUsageOut, WhoAmIOut
from apikeys.errors import ApiKeyError, PayloadTooLarge, Unauthorized
from apikeys.observability import make_logger
from apikeys.records import Principal

logger = make_logger()
KEYS_READ = "keys:read"
PATH = "/mcp"


class JsonRpcMessage(BaseModel):
    """A JSON-RPC 2.0 request or notification (documentation of the POST body)."""

    jsonrpc: Literal["2.0"]
    method: str = Field(examples=["tools/call"])
    id: str | int | None = None
    params: dict[str, Any] | None = Field(default=None, examples=[{"name": "whoami", "arguments": {}}])


class JsonRpcResponse(BaseModel):
    """A JSON-RPC 2.0 response: `result`, or `error` for a malformed or unknown request."""

    jsonrpc: Literal["2.0"]
    id: str | int | None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


def _caller(ctx: Context) -> Principal:
    """The API key of the HTTP request this tool call arrived on, from the authorizer's context
    (Mangum keeps the Lambda event in the ASGI scope). mcp() refused the request already if it is missing."""
    request = ctx.request_context.request
    scope = getattr(request, "scope", None)
    principal = key_caller(scope.get("aws.event") if isinstance(scope, dict) else None)
    if principal is None:
        raise ToolError("unauthorized: a valid API key is required.")
    return principal


def _require(principal: Principal, scope: str, tool: str) -> None:
    if principal.scopes is not None and scope not in principal.scopes:
        raise ToolError(
            f"Missing scope {scope}: {tool} needs an API key with the {scope} scope (or full access). "
            f"This key has: {' '.join(principal.scopes)}."
        )


def _domain_call(fn: Any, *args: Any) -> Any:
    """Domain errors become tool errors with their own message (not found, retry later); anything
    unexpected is logged and answered with a message that names no internals."""
    try:
        return fn(*args)
    except ApiKeyError as error:
        raise ToolError(f"{error.code.replace('_', ' ')}: {error.message}") from None  # "not found: No API key…"
    except Exception:
        logger.exception("unhandled error in an MCP tool")
        raise ToolError("internal error: Something went wrong on our side. Please retry later.") from None


# What a refused tool argument is said to be, by pydantic's error type; anything else is "invalid".
_ARGUMENT_FAULTS = {
    "missing": "is required",
    "string_type": "must be a string",
    "string_too_short": "is too short",
    "string_too_long": "is too long",
    "int_type": "must be a whole number",
    "greater_than_equal": "is below its minimum",
    "less_than_equal": "is above its maximum",
}


class ApiKeysServer(MCPServer):
    """The SDK's server, with one change: a tool call whose arguments fail validation is answered
    with a message that names the argument and what it must be, never pydantic's text (which
    echoes the value sent, `input_value=...`, and links to pydantic's site)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.argument_names: dict[str, frozenset[str]] = {}

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context | None = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as error:
            cause = error.__cause__
            if isinstance(error, UnexpectedToolError) or not isinstance(cause, ValidationError):
                raise
            raise ToolError(self._argument_message(name, cause)) from cause

    def _argument_message(self, tool: str, error: ValidationError) -> str:
        known = self.argument_names.get(tool, frozenset())
        faults = []
        for detail in error.errors(include_url=False, include_input=False, include_context=False):
            loc = detail["loc"]
            # Only a name the tool declares is repeated; anything else the client made up is "arguments".
            argument = str(loc[0]) if loc and str(loc[0]) in known else "arguments"
            faults.append(f"{argument} {_ARGUMENT_FAULTS.get(detail['type'], 'is not valid')}")
        listed = "; ".join(dict.fromkeys(faults)) or "arguments are not valid"
        return f"Invalid arguments for {tool}: {listed} (see the tool's inputSchema)."


def build_server() -> ApiKeysServer:
    """The MCP server and its tools. Built once per container; only the transport is per request."""
    server = ApiKeysServer(
        "apikeys",
        # The SDK's per-request INFO lines ("Terminating session: None") say nothing here.
        log_level="WARNING",
        instructions=(
            "Tools for the account that owns the API key this client connected with: who the key is, "
            "and the account's API keys (masked; full keys are never shown)."
        ),
    )

    def whoami(ctx: Context) -> WhoAmIOut:
        """Identify the API key this MCP client is connected with: its account, key id, plan and
        scopes. Call this first when you need to know whose account you are acting on."""
        return who_am_i(_caller(ctx))

    def list_api_keys(ctx: Context) -> KeyListOut:
        """List every API key of the connected account, newest first, masked (never the secret),
        with each key's status and last use, plus the plan, its key limit and the key count.
        Use it to audit keys or find a key's id. Needs the keys:read scope."""
        caller = _caller(ctx)
        _require(caller, KEYS_READ, "list_api_keys")
        listing = _domain_call(logic.list_keys, caller.account_id)
        return KeyListOut(
            keys=[KeyOut(**key_body(record, listing.recent.total(record.key_id))) for record in listing.keys],
            plan=listing.plan,
            key_limit=listing.key_limit,
            key_count=listing.key_count,
        )

    def get_api_key(
        ctx: Context,
        key_id: Annotated[
            str, Field(description="The key's id as list_api_keys shows it: key_ and 20 letters or digits.")
        ],
    ) -> KeyOut:
        """Get one API key of the connected account by its id: name, masked display, created and
        by whom, last used, requests in the last 30 days, expiry and status (never the secret).
        Another account's key is "not found". Needs the keys:read scope."""
        caller = _caller(ctx)
        _require(caller, KEYS_READ, "get_api_key")
        record = _domain_call(logic.get_key, caller.account_id, key_id)
        return KeyOut(**key_body(record, _domain_call(logic.requests_30d, caller.account_id, key_id)))

    def get_api_key_usage(
        ctx: Context,
        key_id: Annotated[
            str, Field(description="The key's id as list_api_keys shows it: key_ and 20 letters or digits.")
        ],
        days: Annotated[
            int,
            Field(strict=True, ge=1, le=logic.USAGE_DAYS_MAX, description="How many days, today included: 1-90."),
        ] = logic.USAGE_DAYS_DEFAULT,
    ) -> KeyUsageOut:
        """Get how much one API key of the connected account is used: its requests (authorizations
        granted) on each of the last `days` UTC days (1-90, default 30), oldest first, the last
        one today, and their total. Use it to tell a busy key from an unused one before deleting
        it. Another account's key is "not found". Needs the keys:read scope."""
        caller = _caller(ctx)
        _require(caller, KEYS_READ, "get_api_key_usage")
        return usage_body(_domain_call(logic.key_usage, caller.account_id, key_id, days))

    # Read-only, and they touch only this service: hints clients use to skip confirmation prompts.
    hints = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
    tools = (
        (whoami, "Who am I"),
        (list_api_keys, "List API keys"),
        (get_api_key, "Get an API key"),
        (get_api_key_usage, "Get an API key's usage"),
    )
    for tool, title in tools:
        # The docstring, dedented, is what a model reads to choose the tool.
        description = inspect.cleandoc(tool.__doc__ or "")
        server.add_tool(tool, name=tool.__name__, title=title, description=description, annotations=hints)
        parameters = inspect.signature(tool).parameters
        server.argument_names[tool.__name__] = frozenset(name for name in parameters if name != "ctx")
    return server


def build_app(server: ApiKeysServer) -> Starlette:
    # DNS-rebinding protection is off on purpose. It guards servers on localhost that a browser
    # page could reach by rebinding its own domain; with it on, the SDK answers 421 to every Host
    # but localhost, i.e. to the execute-api and custom domains API Gateway forwards. Here every
    # request carries a bearer key checked by the authorizer (never an ambient cookie), and /mcp
    # sends no CORS headers, so a rebinding or cross-origin page has nothing to ride on.
    security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
    return server.streamable_http_app(
        streamable_http_path=PATH, json_response=True, stateless_http=True, transport_security=security
    )


# One ASGI app and one running session manager per container. Its run() may be entered once per
# instance, and Mangum's lifespan="auto" enters it on every invocation, so the lifespan is entered
# here, once, on the event loop Mangum reuses, and Mangum runs with lifespan="off". Measured
# against building the app per invocation (python -m bench.mcp_loop, warm tools/call whoami,
# 1500 interleaved rounds): p50 1.65 ms vs 2.08 ms; see docs/mcp.md, "Two traps of the SDK".
SERVER = build_server()
for _name in ("mcp", "mangum"):
    logging.getLogger(_name).setLevel(logging.WARNING)
APP = build_app(SERVER)
ADAPTER = Mangum(APP, lifespan="off")  # first: sets the event loop the lifespan below runs on
LIFESPAN = LifespanCycle(APP, "on")
LIFESPAN.__enter__()
_NO_STORE = {"Cache-Control": "no-store"}
_HTTP_CODES = {406: "not_acceptable", 413: "payload_too_large", 415: "unsupported_media_type"}
app, lambda_handler = rest_function(catalogue=True)


def mcp() -> Any:
    event = app.current_event.raw_event
    if key_caller(event) is None:
        raise Unauthorized("A valid API key is required.")
    # The limit of every route, before the SDK reads the body (its own limit is 4 MB).
    body_bytes(app, too_large=PayloadTooLarge)
    # Mangum types its own LambdaContext protocol; Powertools' is the same object Lambda passed.
    result = ADAPTER(event, cast(Any, app.lambda_context))
    status, body = int(result["statusCode"]), _text(result)
    headers: dict[str, str | list[str]] = {**(result.get("multiValueHeaders") or {}), **(result.get("headers") or {})}
    if status >= 400 and not body.startswith("{"):
        # The SDK's bare HTTP refusals (406 without a JSON Accept in the current revision, 415,
        # 413) get the error shape of every route. JSON-RPC error bodies (the handshake-era
        # transport's 406 and 400s) stay as they are: MCP clients parse them.
        code, message = _HTTP_CODES.get(status, "request_refused"), body or f"The MCP request was refused ({status})."
        return json_response(status, {"error": {"code": code, "message": message}})
    return Response(status, body=body, headers={**headers, **_NO_STORE})


# Registered by a call, not a decorator, as the 405 routes below: mutmut (`make mutation`)
# mutates only undecorated functions.
app.post(
    PATH,
    summary="MCP server (Streamable HTTP, stateless, JSON responses) for MCP clients",
    description="One JSON-RPC message per POST (`initialize`, `server/discover`, `tools/list`, `tools/call`, ...). "
    "Send `Accept: application/json, text/event-stream`. Tools: whoami, list_api_keys, get_api_key, "
    "get_api_key_usage.",
    **documented(
        200,
        "The JSON-RPC response (a tool failure is a result with isError: true)",
        JsonRpcResponse,
        body=JsonRpcMessage,
    ),
)(mcp)


def _text(result: dict[str, Any]) -> str:
    """Mangum's body as text: it base64-encodes a body whose type is not text (the SDK's bare
    415 and 413 refusals carry none), which would reach the client as an unreadable message."""
    body = result.get("body") or ""
    if result.get("isBase64Encoded") and isinstance(body, str):
        try:
            return base64.b64decode(body, validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return ""
    return body if isinstance(body, str) else ""


def _no_stream_or_session() -> Any:
    # Stateless: no SSE stream to GET, no session to DELETE.
    body = {"error": {"code": "method_not_allowed", "message": "Only POST is supported on /mcp."}}
    return json_response(405, body, {"Allow": "POST"})


_NOT_ALLOWED = documented(405, "Only POST: a stateless server offers no SSE stream and no session", ErrorOut)
app.get(PATH, summary="Not offered: no SSE stream (stateless server)", **_NOT_ALLOWED)(_no_stream_or_session)
app.delete(PATH, summary="Not offered: no session to end (stateless server)", **_NOT_ALLOWED)(_no_stream_or_session)
