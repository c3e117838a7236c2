"""The MCP server's authorization server (issue 21): metadata (RFC 9728, RFC 8414), Dynamic
Client Registration (RFC 7591), the authorization endpoint, the token endpoint and revocation
(RFC 7009), all without an authorizer in front. The protocol is the `mcp` SDK's
(`mcp.server.auth` handlers: request parsing, PKCE, client and code checks); the policy it
leaves open (which redirect URIs, which resource, what a token is) is `apikeys.oauth`'s, and
every rule it enforces has a test of its own (tests/**/test_oauth_*.py). Mangum adapts the
Starlette app to Lambda, as in McpFunction."""

from apikeys.handler import rest_function  # first: its import pauses the cyclic GC

# isort: split
import base64
import binascii
import html
import json
import logging
import time
from contextvars import ContextVar
from typing import Any, cast
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import Response as ProxyResponse
from mangum import Mangum
from mcp.server.auth.handlers.authorize import AuthorizationHandler
from mcp.server.auth.handlers.metadata import MetadataHandler, ProtectedResourceMetadataHandler
from mcp.server.auth.handlers.register import RegistrationHandler
from mcp.server.auth.handlers.revoke import RevocationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.client_auth import AuthenticationError, ClientAuthenticator
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    RegistrationError,
    TokenError,
)
from mcp.server.auth.routes import build_metadata
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken, ProtectedResourceMetadata
from pydantic import AnyHttpUrl, BaseModel, Field
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from apikeys import oauth
from apikeys.api import body_bytes
from apikeys.bodies import ErrorOut
from apikeys.errors import ApiKeyError, NotFound
from apikeys.observability import make_logger

logger = make_logger()
AUTHORIZE, TOKEN, REGISTER, REVOKE = "/oauth/authorize", "/oauth/token", "/oauth/register", "/oauth/revoke"
PRM = "/.well-known/oauth-protected-resource"
ASM = "/.well-known/oauth-authorization-server"
# The token request's `resource` (RFC 8707): the SDK parses it but does not pass it on.
_token_resource: ContextVar[str | None] = ContextVar("token_resource", default=None)
_request_id: ContextVar[str] = ContextVar("request_id", default="")


def base_url(request: Request) -> str:
    """The API's public base URL: PUBLIC_API_URL (a custom domain, required for OAuth when
    deployed, since the well-known paths live at the host's root), else what API Gateway says
    the request came to (`https://{domain}/{stage}` on an execute-api domain)."""
    configured = oauth.settings().public_url
    if configured:
        return configured
    event = request.scope.get("aws.event") or {}
    context = event.get("requestContext") or {}
    host = request.headers.get("host") or str(context.get("domainName") or "localhost")
    stage = context.get("stage")
    prefix = f"/{stage}" if host.endswith(".amazonaws.com") and stage else ""
    return f"{request.url.scheme}://{host}{prefix}"


class Provider:
    """`OAuthAuthorizationServerProvider` on `apikeys.oauth`: state in the table, never in memory."""

    def __init__(self) -> None:
        self.base = ""

    @staticmethod
    def _info(client: oauth.Client) -> OAuthClientInformationFull:
        info: dict[str, Any] = dict(client.info)
        # Any catalogue scope may be asked for; apikeys.oauth decides what is granted.
        info["scope"] = " ".join(oauth.catalogue_names())
        info["client_id"] = client.client_id
        info.pop("client_secret", None)
        return OAuthClientInformationFull.model_validate(info)

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        client = oauth.get_client(client_id)
        return None if client is None else self._info(client)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        info = client_info.model_dump(mode="json", exclude_none=True)
        try:
            oauth.register_client(info, client_info.client_secret)
        except oauth.OAuthError as error:
            code = "invalid_redirect_uri" if error.error == "invalid_redirect_uri" else "invalid_client_metadata"
            raise RegistrationError(code, error.description) from None  # type: ignore[arg-type]

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        found = oauth.get_client(client.client_id)
        if found is None:  # pragma: no cover - the handler loaded it a moment ago
            raise AuthorizeError("unauthorized_client", "unknown client")
        try:
            return oauth.authorize(
                found,
                str(params.redirect_uri),
                params.redirect_uri_provided_explicitly,
                params.state,
                params.scopes,
                params.code_challenge,
                params.resource,
                self.base,
            )
        except oauth.OAuthError as error:
            raise AuthorizeError(error.error, error.description) from None  # type: ignore[arg-type]

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        grant = oauth.load_code(authorization_code)
        if grant is None or grant.client_id != client.client_id:
            return None
        return AuthorizationCode(
            code=authorization_code,
            scopes=grant.scopes,
            expires_at=grant.expires_at,
            client_id=grant.client_id,
            code_challenge=grant.code_challenge,
            redirect_uri=grant.redirect_uri,  # type: ignore[arg-type]
            redirect_uri_provided_explicitly=grant.redirect_explicit,
            resource=grant.resource,
            subject=grant.account_id,
        )

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        grant = oauth.load_code(authorization_code.code)
        if grant is None:
            raise TokenError("invalid_grant", "authorization code does not exist")
        tokens = _tokens(lambda: oauth.exchange_code(authorization_code.code, grant, _token_resource.get()))
        return tokens

    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> RefreshToken | None:
        grant = oauth.load_refresh(refresh_token)
        if grant is None or grant.client_id != client.client_id:
            return None
        return _RefreshToken(
            token=refresh_token,
            client_id=grant.client_id,
            scopes=grant.scopes,
            resource=grant.resource,
            subject=grant.account_id,
            grant=grant,
        )

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        grant = refresh_token.grant if isinstance(refresh_token, _RefreshToken) else None
        if grant is None:  # pragma: no cover - load_refresh_token made it
            raise TokenError("invalid_grant", "refresh token does not exist")
        # A refresh keeps the key's scopes (a roll never changes them); a narrower request
        # is refused rather than silently ignored.
        if sorted(scopes) != sorted(grant.scopes):
            raise TokenError("invalid_scope", "a refresh keeps the connection's scopes; omit scope")
        return _tokens(lambda: oauth.refresh(grant, _token_resource.get()))

    async def load_access_token(self, token: str) -> AccessToken | None:
        grant = oauth.load_access(token)
        if grant is None:
            return None
        return _AccessToken(
            token=token,
            client_id=grant.client_id,
            scopes=grant.scopes,
            expires_at=grant.expires_at,
            subject=grant.account_id,
            grant_id=grant.grant_id,
        )

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        if isinstance(token, _AccessToken):
            oauth.revoke(token.subject or "", token.grant_id, token.client_id)
        elif isinstance(token, _RefreshToken):
            oauth.revoke(token.grant.account_id, token.grant.grant_id, token.client_id)

    async def exchange_identity_assertion(self, client: OAuthClientInformationFull, params: Any) -> OAuthToken:
        raise TokenError("unsupported_grant_type", "The JWT bearer grant is not supported")


class _RefreshToken(RefreshToken):
    grant: Any = None


class _AccessToken(AccessToken):
    grant_id: str = ""


def _tokens(exchange: Any) -> OAuthToken:
    try:
        tokens: oauth.Tokens = exchange()
    except oauth.OAuthError as error:
        raise TokenError(error.error, error.description) from None  # type: ignore[arg-type]
    except ApiKeyError as error:
        raise TokenError("invalid_grant", error.message) from None
    return OAuthToken(
        access_token=tokens.access_token,
        token_type="Bearer",  # noqa: S106  # nosec B106 - the token type, not a secret
        expires_in=tokens.expires_in,
        refresh_token=tokens.refresh_token,
        scope=" ".join(tokens.scopes),
    )


class DigestAuthenticator(ClientAuthenticator):
    """The SDK's client authentication, against the digest the table holds: a client secret,
    like a key, is never stored (the SDK's authenticator compares the stored secret itself)."""

    async def authenticate_request(self, request: Request) -> OAuthClientInformationFull:
        form = await request.form()
        client_id = form.get("client_id")
        if not isinstance(client_id, str) or not client_id:
            raise AuthenticationError("Missing client_id")
        client = oauth.get_client(client_id)
        if client is None:
            raise AuthenticationError("Invalid client_id")
        method = client.info.get("token_endpoint_auth_method") or "client_secret_post"
        presented: str | None = None
        header = request.headers.get("Authorization", "")
        if method == "client_secret_basic":
            try:
                decoded = base64.b64decode(header[6:] if header.startswith("Basic ") else "").decode()
            except (binascii.Error, UnicodeDecodeError):
                raise AuthenticationError("Invalid Basic authentication header") from None
            basic_id, _, secret = decoded.partition(":")
            if unquote(basic_id) != client_id:
                raise AuthenticationError("Missing or invalid Basic authentication in Authorization header")
            presented = unquote(secret)
        elif method == "client_secret_post":
            raw = form.get("client_secret")
            presented = raw if isinstance(raw, str) else None
        if not oauth.secret_matches(client, presented):
            raise AuthenticationError("Invalid client_secret")
        return Provider._info(client)


PROVIDER = Provider()
AUTHENTICATOR = DigestAuthenticator(PROVIDER)
TOKEN_HANDLER = TokenHandler(PROVIDER, AUTHENTICATOR)
REVOKE_HANDLER = RevocationHandler(PROVIDER, AUTHENTICATOR)
AUTHORIZE_HANDLER = AuthorizationHandler(PROVIDER)


def _registration() -> ClientRegistrationOptions:
    names = oauth.catalogue_names()
    defaults = [s for s in oauth.settings().default_scopes if s in names]
    return ClientRegistrationOptions(enabled=True, valid_scopes=names, default_scopes=defaults)


def _url(value: str) -> AnyHttpUrl:
    return AnyHttpUrl(value)


async def authorization_server_metadata(request: Request) -> Response:
    """RFC 8414, the SDK's document with what it leaves out: our endpoint paths, the revocation
    endpoint, `client_id_metadata_document_supported`, public clients (`none`)."""
    base = base_url(request)
    metadata = build_metadata(_url(base), None, _registration(), RevocationOptions(enabled=True))
    metadata.authorization_endpoint = _url(base + AUTHORIZE)
    metadata.token_endpoint = _url(base + TOKEN)
    metadata.registration_endpoint = _url(base + REGISTER)
    metadata.revocation_endpoint = _url(base + REVOKE)
    methods = ["none", "client_secret_post", "client_secret_basic"]
    metadata.token_endpoint_auth_methods_supported = methods
    metadata.revocation_endpoint_auth_methods_supported = methods
    metadata.client_id_metadata_document_supported = True
    metadata.scopes_supported = oauth.catalogue_names()
    return await MetadataHandler(metadata).handle(request)


async def protected_resource_metadata(request: Request) -> Response:
    """RFC 9728 for the MCP URL (`…/mcp`) and for the API that contains it (the bare path)."""
    base = base_url(request)
    resource = base + "/mcp" if request.url.path.endswith("/mcp") else base + "/"
    metadata = ProtectedResourceMetadata(
        resource=_url(resource),
        authorization_servers=[_url(base)],
        scopes_supported=oauth.catalogue_names(),
        bearer_methods_supported=["header"],
        resource_name="API keys MCP server",
    )
    return await ProtectedResourceMetadataHandler(metadata).handle(request)


def _error_page(response: Response) -> Response:
    """An invalid client or redirect URI is answered here, never by a redirect (RFC 6749
    §4.1.2.1); a person's browser gets a page, a program the JSON error."""
    body = bytes(response.body).decode()
    text = html.escape(body)
    page = (
        "<!doctype html><meta charset=utf-8><title>Authorization failed</title>"
        "<h1>This app's authorization request is not valid</h1>"
        f"<p>Nothing was authorized. Tell the app's developer:</p><pre>{text}</pre>"
    )
    return Response(page, status_code=response.status_code, media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-store"})  # fmt: skip


async def authorize(request: Request) -> Response:
    PROVIDER.base = base_url(request)
    response = await AUTHORIZE_HANDLER.handle(request)
    if response.status_code >= 400 and "text/html" in request.headers.get("accept", ""):
        return _error_page(response)
    return response


async def token(request: Request) -> Response:
    form = await request.form()  # cached on the request: the SDK handler reads the same form
    resource = form.get("resource")
    _token_resource.set(resource if isinstance(resource, str) else None)
    answer: Response = await TOKEN_HANDLER.handle(request)
    return answer


async def register(request: Request) -> Response:
    return await RegistrationHandler(PROVIDER, _registration()).handle(request)


async def revoke(request: Request) -> Response:
    return await REVOKE_HANDLER.handle(request)


ROUTES = [
    Route(PRM, protected_resource_metadata, methods=["GET"]),
    Route(PRM + "/mcp", protected_resource_metadata, methods=["GET"]),
    Route(ASM, authorization_server_metadata, methods=["GET"]),
    Route(AUTHORIZE, authorize, methods=["GET", "POST"]),
    Route(TOKEN, token, methods=["POST"]),
    Route(REGISTER, register, methods=["POST"]),
    Route(REVOKE, revoke, methods=["POST"]),
]
APP = Starlette(routes=ROUTES)
APP.router.redirect_slashes = False  # a path API Gateway routed here is served as is, never redirected
for _name in ("mcp", "mangum"):
    logging.getLogger(_name).setLevel(logging.WARNING)
ADAPTER = Mangum(APP, lifespan="off")


app, lambda_handler = rest_function(catalogue=True)


class OAuthErrorOut(BaseModel):
    """RFC 6749 §5.2: the error shape of every OAuth endpoint."""

    error: str = Field(examples=["invalid_grant"])
    error_description: str | None = None


class OAuthDocument(BaseModel):
    """A JSON document of the protocol (metadata, client information, tokens): see the RFC named."""


def _documented(status: int, description: str, oauth_errors: tuple[int, ...] = (400,)) -> dict[str, Any]:
    """The route's OpenAPI operation: its protocol answer, the OAuth errors it gives, and the
    answers API Gateway gives in our shape (throttling, failures)."""
    ok: dict[str, Any] = {"description": description}
    if status != 302:
        ok["content"] = {"application/json": {"model": OAuthDocument}}
    responses: dict[int, Any] = {status: ok}
    for code in oauth_errors:
        responses[code] = {"description": "OAuth error", "content": {"application/json": {"model": OAuthErrorOut}}}
    for code, text in ((500, "Internal error"), (503, "Retry later")):
        responses[code] = {"description": text, "content": {"application/json": {"model": ErrorOut}}}
    return {"responses": responses, "response_description": description}


def _delegate() -> Any:
    """Run the request through the SDK's handlers (Starlette on Mangum) and hand back its answer."""
    event = app.current_event.raw_event
    try:
        body = body_bytes(app)  # size and encoding checked before the SDK (or Mangum) reads the body
        if body is not None:
            body.decode("utf-8")
    except (ApiKeyError, UnicodeDecodeError) as error:
        problem = error.message if isinstance(error, ApiKeyError) else "Request body is not valid UTF-8."
        refusal = {"error": "invalid_request", "error_description": problem}
        return ProxyResponse(400, "application/json", json.dumps(refusal), {"Cache-Control": "no-store"})
    # Mangum gets the body exactly as checked, base64-encoded: it would otherwise decode any truthy
    # isBase64Encoded and re-encode text itself, each its own way of failing on a hostile event.
    encoded = base64.b64encode(body).decode("ascii") if body is not None else None
    event = {**event, "body": encoded, "isBase64Encoded": body is not None}
    started = time.perf_counter()
    try:
        result = ADAPTER(event, cast(Any, app.lambda_context))
    except ValueError:  # Mangum could not read the event (a query or header that is not text)
        refusal = {"error": "invalid_request", "error_description": "The request could not be read."}
        return ProxyResponse(400, "application/json", json.dumps(refusal), {"Cache-Control": "no-store"})
    if result["statusCode"] in (404, 405) and not (result.get("body") or "").startswith("{"):
        # Starlette's plain-text refusal of a path or method it does not serve (an event API
        # Gateway would not route here): the error shape of every route instead.
        raise NotFound("No such OAuth endpoint.")
    headers: dict[str, Any] = {**(result.get("multiValueHeaders") or {}), **(result.get("headers") or {})}
    headers.setdefault("Cache-Control", "no-store")
    # Never the query or the body: they hold codes, tokens and client secrets.
    logger.info(
        "oauth request",
        extra={
            "route": event.get("resource"),
            "status": result["statusCode"],
            "ms": round((time.perf_counter() - started) * 1000),
        },
    )
    return ProxyResponse(int(result["statusCode"]), body=result.get("body") or "", headers=headers)


_ROUTES: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("GET", PRM, "Protected resource metadata (RFC 9728) of this API", _documented(200, "The metadata", ())),
    ("GET", PRM + "/mcp", "Protected resource metadata (RFC 9728) of /mcp", _documented(200, "The metadata", ())),
    ("GET", ASM, "Authorization server metadata (RFC 8414)", _documented(200, "The metadata", ())),
    ("GET", AUTHORIZE, "Authorization endpoint: code flow with PKCE S256; sends the user to the console's consent page",
     _documented(302, "To the console's consent page (or the client's redirect URI with an error)")),
    ("POST", TOKEN, "Token endpoint: a code or a refresh token for an `ot_` key (the access token)",
     _documented(200, "The tokens", (400, 401))),
    ("POST", REGISTER, "Dynamic Client Registration (RFC 7591)", _documented(201, "The client information")),
    ("POST", REVOKE, "Token revocation (RFC 7009): ends the connection (its key is deleted)",
     _documented(200, "Revoked, or nothing to revoke", (400, 401))),
)  # fmt: skip
for _method, _path, _summary, _doc in _ROUTES:
    app.route(_path, _method, summary=_summary, **_doc)(_delegate)
