"""OAuth for MCP clients (issue 21): every connection is an API key.

The access token a client gets *is* a new `ot_` key of the account whose user approved it,
so the authorizer, scopes, the leak endpoint and Delete work on it unchanged. This module is
the policy; the protocol (metadata, request parsing, PKCE, client authentication) is the `mcp`
SDK's, wired in `functions/oauth/app.py`, and nothing here imports the SDK.

Where the plan check sits. The full key can exist only in the token response (it is never
stored), so the key is created at the token exchange, in POST /keys's own transaction (plan
limit inside DynamoDB, `ApiKeyCreated` in the outbox) together with the code's deletion and
the refresh token. Consent checks the plan too, so a user at the limit is told so at once (403
`key_limit_reached`, no code issued); if the plan fills up in the 60 s between consent and
exchange, the exchange answers `invalid_grant` and nothing is created.

State: clients, consent requests (10 minutes), codes (60 s) and refresh tokens live in the
table as digests with TTLs (store.OAuthStore); nothing is kept in memory across requests but
the client-metadata-document cache.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from apikeys import audit, clock, keys, logic, oauth_cimd, plans, retries, scopes
from apikeys.audit import Caller
from apikeys.config import get_scope_catalogue, get_settings
from apikeys.errors import InvalidRequest, KeyLimitReached, NotFound
from apikeys.records import Connection, KeyRecord
from apikeys.redirects import redirect_host, redirect_uri_problem
from apikeys.store import OAuthStore

CONSENT_SECONDS = 600  # a consent request lives 10 minutes
CODE_SECONDS = 60  # an authorization code lives 60 s
DEFAULT_SCOPES = "mcp keys:read"
DEFAULT_ACCESS_TTL = 30 * 86400
# How long the key a refresh replaced keeps working: calls in flight when the client switches
# to the new token still succeed, and nothing older than this outlives a refresh.
REFRESH_GRACE_SECONDS = 120
# A connection's key works this long past the `expires_in` its client was told: clients refresh
# when their token expires (or a little after), and a refresh needs the key alive to roll it.
REFRESH_LEEWAY_SECONDS = 86400
NAME_MAX = 48  # leaves room for " (99)" within the key name limit of 64
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


class OAuthError(Exception):
    """An RFC 6749 error: `error` is the protocol's code, `description` what a developer reads."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


@dataclass(frozen=True)
class Settings:
    default_scopes: tuple[str, ...]
    access_ttl: int
    public_url: str  # PUBLIC_API_URL, "" to take it from each request
    console_url: str  # CONSOLE_URL, "" for the API's own "/" (the local server serves the console there)


def settings() -> Settings:
    """Read per call (a few environment lookups): tests and the local server change them."""
    raw_scopes = os.environ.get("OAUTH_DEFAULT_SCOPES", "") or DEFAULT_SCOPES
    ttl = int(os.environ.get("OAUTH_ACCESS_TOKEN_TTL", "") or DEFAULT_ACCESS_TTL)
    return Settings(
        default_scopes=tuple(raw_scopes.split()),
        access_ttl=ttl,
        public_url=os.environ.get("PUBLIC_API_URL", "").rstrip("/"),
        console_url=os.environ.get("CONSOLE_URL", ""),
    )


def _now() -> int:
    """Epoch seconds from the service's clock (tests move it to expire requests and codes)."""
    return int(clock.now().timestamp())


def store() -> OAuthStore:
    return OAuthStore(get_settings().table_name)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def catalogue_names() -> list[str]:
    return list(get_scope_catalogue())


# -- redirect URIs, names, resources -----------------------------------------------------------


def display_name(raw: str | None) -> str:
    """A client's self-chosen name made safe to show as a key name: control, format and
    bidirectional control characters dropped, whitespace collapsed, cut to NAME_MAX."""
    text = "".join(
        " " if ch.isspace() else ch
        for ch in (raw or "")
        if ch not in _BIDI and unicodedata.category(ch) not in ("Cc", "Cs", "Cf", "Co", "Cn")
    )
    text = " ".join(text.split())[:NAME_MAX].strip()
    return text or "MCP client"


def unique_name(name: str, taken: Sequence[str]) -> str:
    """`name`, or `name (2)`, `name (3)`…: the first not among the account's key names."""
    used = set(taken)
    if name not in used:
        return name
    n = 2
    while f"{name} ({n})" in used:
        n += 1
    return f"{name} ({n})"


def resource_ok(resource: str | None, base: str) -> bool:
    """RFC 8707: the resource must be this API (its base URL) or its MCP URL; none is allowed."""
    if resource is None:
        return True
    allowed = {base.rstrip("/"), f"{base.rstrip('/')}/mcp"}
    return resource.rstrip("/") in allowed


def requested_scopes(raw: Sequence[str] | None) -> tuple[str, ...]:
    """Space-separated catalogue names; none means OAUTH_DEFAULT_SCOPES. No `*`: an OAuth
    client gets named scopes only, never full access."""
    names = list(raw) if raw else list(settings().default_scopes)
    catalogue = get_scope_catalogue()
    unknown = [name for name in names if name not in catalogue]
    if unknown:
        raise OAuthError("invalid_scope", f"Unknown scope {unknown[0][:60]!r}; valid scopes: {' '.join(catalogue)}.")
    return tuple(name for name in catalogue if name in names)


# -- clients -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    """A client as the flow needs it; `info` is its RFC 7591 metadata (no secret)."""

    client_id: str
    info: dict[str, object]
    secret_digest: str | None
    kind: str  # "registered" (DCR) or "metadata" (a client ID metadata document)

    @property
    def name(self) -> str:
        raw = self.info.get("client_name")
        return display_name(raw if isinstance(raw, str) else None)


def register_client(info: dict[str, object], secret: str | None) -> None:
    """Store a DCR client after checking every redirect URI; the secret as a digest only."""
    uris = info.get("redirect_uris")
    if not isinstance(uris, list) or not uris:
        raise OAuthError("invalid_redirect_uri", "redirect_uris must list at least one URI.")
    for uri in uris:
        problem = redirect_uri_problem(str(uri))
        if problem:
            raise OAuthError("invalid_redirect_uri", problem)
    client_id = str(info["client_id"])
    stored = {k: v for k, v in info.items() if k != "client_secret"}
    store().put_client(client_id, stored, digest(secret) if secret else None)


def get_client(client_id: str) -> Client | None:
    if client_id.startswith("https://"):
        info = oauth_cimd.fetch(client_id)
        return None if info is None else Client(client_id, info, None, "metadata")
    if not client_id or len(client_id) > 200:
        return None
    found = store().get_client(client_id)
    if found is None:
        return None
    info, secret_digest = found
    return Client(client_id, info, secret_digest, "registered")


def secret_matches(client: Client, presented: str | None) -> bool:
    """The presented client secret against the stored digest, in constant time."""
    if client.secret_digest is None:
        return presented is None or presented == ""
    if not presented:
        return False
    return secrets.compare_digest(digest(presented), client.secret_digest)


# -- authorization and consent ------------------------------------------------------------------


def authorize(
    client: Client,
    redirect_uri: str,
    redirect_explicit: bool,
    state: str | None,
    scope_names: Sequence[str] | None,
    code_challenge: str,
    resource: str | None,
    base: str,
) -> str:
    """Record a consent request (10 minutes) and answer the console URL that shows it."""
    problem = redirect_uri_problem(redirect_uri)
    if problem:
        raise OAuthError("invalid_request", problem)
    if not resource_ok(resource, base):
        raise OAuthError("invalid_target", "resource must be this API's MCP URL.")
    granted = requested_scopes(scope_names)
    request_id = secrets.token_urlsafe(24)
    request = {
        "client_id": client.client_id,
        "client_name": client.name,
        "client_kind": client.kind,
        "redirect_uri": redirect_uri,
        "redirect_explicit": redirect_explicit,
        "state": state,
        "scopes": list(granted),
        "code_challenge": code_challenge,
        "resource": resource,
    }
    store().put_consent(digest(request_id), request, _now() + CONSENT_SECONDS)
    console = settings().console_url or f"{base}/"
    separator = "&" if urlsplit(console).query else "?"
    return f"{console}{separator}{urlencode({'consent': request_id})}"


@dataclass(frozen=True)
class ConsentView:
    client_name: str
    client_id: str
    client_kind: str
    redirect_uri: str
    redirect_host: str
    scopes: list[str]
    key_name: str


def _pending(request_id: str) -> dict[str, Any]:
    if not request_id or len(request_id) > 100:
        raise NotFound("No pending authorization request with this id.")
    request = store().get_consent(digest(request_id), _now())
    if request is None:
        raise NotFound("No pending authorization request with this id (unknown, expired or already answered).")
    return request


def consent(request_id: str, account_id: str) -> ConsentView:
    """What the console shows: who asks, where the answer goes, the key it would create."""
    request = _pending(request_id)
    _, records = store().load_account(account_id)
    name = unique_name(str(request["client_name"]), [r.name for r in records])
    return ConsentView(
        client_name=str(request["client_name"]),
        client_id=str(request["client_id"]),
        client_kind=str(request["client_kind"]),
        redirect_uri=str(request["redirect_uri"]),
        redirect_host=redirect_host(str(request["redirect_uri"])),
        scopes=[str(s) for s in request["scopes"]],
        key_name=name,
    )


def _redirect(uri: str, **params: str | None) -> str:
    parts = urlsplit(uri)
    query = [q for q in parts.query.split("&") if q]
    query.append(urlencode({k: v for k, v in params.items() if v is not None}))
    return urlunsplit(parts._replace(query="&".join(query)))


def decide(
    request_id: str, account_id: str, caller: Caller, approve: bool, narrower: Sequence[str] | None = None
) -> str:
    """Approve (a code for this account, 60 s) or deny; either way the request is answered at
    most once. At the plan's limit: KeyLimitReached, and nothing is issued or decided."""
    request = _pending(request_id)
    now = _now()
    state = request.get("state")
    state = state if isinstance(state, str) else None
    redirect_uri = str(request["redirect_uri"])
    if not approve:
        if not store().decide_consent(digest(request_id), now, "denied", None, None, 0):
            raise NotFound("No pending authorization request with this id (unknown, expired or already answered).")
        return _redirect(redirect_uri, error="access_denied", state=state)
    granted = [str(s) for s in request["scopes"]]
    if narrower is not None:
        extra = [name for name in narrower if name not in granted]
        if extra or not narrower:
            raise InvalidRequest("scopes: must be a non-empty subset of the requested scopes.")
        granted = [name for name in granted if name in narrower]
    limits = get_settings().plan_limits
    account, _ = store().load_account(account_id)
    plan = account.plan if account is not None else get_settings().default_plan
    count = account.key_count if account is not None else 0
    if count >= plans.limit_for(plan, limits):
        raise KeyLimitReached(plans.limit_message(plan, limits, count))
    code = secrets.token_urlsafe(32)
    grant = {
        **{k: request[k] for k in ("client_id", "client_name", "redirect_uri", "redirect_explicit", "resource")},
        "code_challenge": request["code_challenge"],
        "scopes": granted,
        "account_id": account_id,
        "approved_by": caller.actor,
        "created_by": caller.created_by,  # what the connection's key shows (issue 23)
        "request_id": caller.request_id,
    }
    if not store().decide_consent(digest(request_id), now, "approved", digest(code), grant, now + CODE_SECONDS):
        raise NotFound("No pending authorization request with this id (unknown, expired or already answered).")
    return _redirect(redirect_uri, code=code, state=state)


# -- codes, tokens, refresh ---------------------------------------------------------------------


@dataclass(frozen=True)
class CodeGrant:
    client_id: str
    client_name: str
    redirect_uri: str
    redirect_explicit: bool
    code_challenge: str
    scopes: list[str]
    resource: str | None
    account_id: str
    approved_by: str
    expires_at: int
    created_by: str  # the consenting user as people read it (issue 23)


def load_code(code: str) -> CodeGrant | None:
    if not code or len(code) > 200:
        return None
    found = store().get_code(digest(code))
    if found is None:
        return None
    grant, expires_at = found
    if expires_at <= _now():
        return None  # expired (TTL removal lags): as if it never existed
    return CodeGrant(
        client_id=str(grant["client_id"]),
        client_name=str(grant["client_name"]),
        redirect_uri=str(grant["redirect_uri"]),
        redirect_explicit=bool(grant["redirect_explicit"]),
        code_challenge=str(grant["code_challenge"]),
        scopes=[str(s) for s in grant["scopes"]],
        resource=grant.get("resource"),
        account_id=str(grant["account_id"]),
        approved_by=str(grant["approved_by"]),
        expires_at=expires_at,
        # A code issued before issue 23 (it lives 60 s) has only the user's sub.
        created_by=str(grant.get("created_by") or grant["approved_by"]),
    )


@dataclass(frozen=True)
class Tokens:
    access_token: str  # a full key: in the token response only, never stored or logged
    refresh_token: str
    expires_in: int
    scopes: list[str]


def client_caller(client_id: str, request_id: str = "") -> Caller:
    """The audit actor of a connection's own writes: the client, by id."""
    return Caller(actor=f"oauth:{client_id}", request_id=request_id)


def _new_connection_key(
    name: str, key_scopes: tuple[str, ...], ttl: int, created_by: str | None
) -> tuple[KeyRecord, str]:
    """A connection's key: as any key, living `expires_in` plus the refresh leeway; created by
    the user who consented, whichever refresh rolled it since."""
    lifetime = ttl + REFRESH_LEEWAY_SECONDS
    made = logic.new_key(name, max(1, ttl // 86400), key_scopes, lifetime_seconds=lifetime, created_by=created_by)
    return made.record, made.secret


def exchange_code(code: str, grant: CodeGrant, resource: str | None, request_id: str = "") -> Tokens:
    """The code's key: created in one transaction with the code's deletion (single use) and the
    refresh token, under the plan limit. `invalid_grant` if the code was used or the plan
    filled up since consent (then the code is spent and nothing is created)."""
    if resource is not None and grant.resource is not None and not _same_resource(resource, grant.resource):
        raise OAuthError("invalid_target", "resource differs from the one the code was issued for.")
    settings_ = get_settings()
    ttl = settings().access_ttl
    db = store()
    key_scopes = scopes.normalize(grant.scopes, get_scope_catalogue()) or ()
    grant_id = uuid.uuid4().hex
    connection = Connection(grant.client_id, grant.client_name, redirect_host(grant.redirect_uri), grant_id)
    for _ in retries.attempts(retries.ROLL_ATTEMPTS):
        account, records = db.load_account(grant.account_id)
        plan = account.plan if account is not None else settings_.default_plan
        limit = plans.limit_for(plan, settings_.plan_limits)
        count = account.key_count if account is not None else 0
        if count >= limit or plan is None:
            db.delete_code(digest(code))
            raise OAuthError("invalid_grant", "The account's plan allows no more keys; nothing was created.")
        name = unique_name(grant.client_name, [r.name for r in records])
        record, secret = _new_connection_key(name, key_scopes, ttl, grant.created_by)
        record = replace(record, connection=connection)
        refresh_token = secrets.token_urlsafe(32)
        refresh = {
            "account_id": grant.account_id,
            "key_id": record.key_id,
            "client_id": grant.client_id,
            "grant_id": grant_id,
            "scopes": list(key_scopes),
            "resource": grant.resource,
        }
        event = audit.event(
            audit.KEY_CREATED,
            client_caller(grant.client_id, request_id),
            grant.account_id,
            key_id=record.key_id,
            key_name=name,
            client_name=grant.client_name,
            approved_by=grant.approved_by,
            created_by=grant.created_by,
        )
        failed = db.insert_connection_key(
            account, grant.account_id, record, plan, limit, digest(code), digest(refresh_token), refresh, event
        )
        if failed is None:
            return Tokens(secret, refresh_token, ttl, list(key_scopes))
        if failed == "code":
            raise OAuthError("invalid_grant", "authorization code does not exist")
        # The account changed since the read (another key, a plan change): read again.
    raise OAuthError("temporarily_unavailable", "The account is changing; retry.")


def _same_resource(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


@dataclass(frozen=True)
class RefreshGrant:
    token_digest: str
    account_id: str
    key_id: str
    client_id: str
    grant_id: str
    scopes: list[str]
    resource: str | None


def end_connection(account_id: str, grant_id: str, caller: Caller) -> None:
    """Delete every key of one connection (its current key and one still in grace)."""
    from apikeys import logic

    for record in store().connection_keys(account_id):
        if record.connection is not None and record.connection.grant_id == grant_id:
            with contextlib.suppress(NotFound):  # a concurrent delete won
                logic.delete_key(account_id, record.key_id, caller)


def load_refresh(token: str) -> RefreshGrant | None:
    """The refresh token's grant while its key lives. A token presented a second time ends the
    connection (its key is deleted): either the client or a thief holds a copy."""
    if not token or len(token) > 200:
        return None
    token_digest = digest(token)
    db = store()
    found = db.get_refresh(token_digest)
    if found is None:
        return None
    if found["used"]:
        end_connection(found["account_id"], found["grant_id"], client_caller(found["client_id"]))
        return None
    if found["ttl"] <= _now() or db.get_key(found["account_id"], found["key_id"]) is None:
        return None  # its key is gone (deleted, expired): the token died with it
    return RefreshGrant(
        token_digest,
        found["account_id"],
        found["key_id"],
        found["client_id"],
        found["grant_id"],
        found["scopes"],
        found["resource"],
    )


def refresh(grant: RefreshGrant, resource: str | None, request_id: str = "") -> Tokens:
    """Roll the connection's key: same slot, name and scopes, the old key working for
    REFRESH_GRACE_SECONDS; the refresh token rotates. No free slot is needed."""
    if resource is not None and grant.resource is not None and not _same_resource(resource, grant.resource):
        raise OAuthError("invalid_target", "resource differs from the one the token was issued for.")
    ttl = settings().access_ttl
    db = store()
    for _ in retries.attempts(retries.ROLL_ATTEMPTS):
        account, records = db.load_account(grant.account_id)
        old = next((r for r in records if r.key_id == grant.key_id), None)
        now = int(clock.now().timestamp())
        if account is None or old is None or old.rolling or old.connection is None:
            _end_if_spent(grant)  # rolled by a request that read the token when we did
            raise OAuthError("invalid_grant", "refresh token does not exist")
        stale = [
            r for r in records if r.rolling and r.connection is not None and r.connection.grant_id == grant.grant_id
        ]
        record, secret = _new_connection_key(old.name, old.scopes or (), ttl, old.created_by)
        record = replace(record, connection=old.connection)
        refresh_token = secrets.token_urlsafe(32)
        refresh_item = {
            "account_id": grant.account_id,
            "key_id": record.key_id,
            "client_id": grant.client_id,
            "grant_id": grant.grant_id,
            "scopes": list(old.scopes or ()),
            "resource": grant.resource,
        }
        grace = now + REFRESH_GRACE_SECONDS
        if old.expires_at_epoch is not None:
            grace = min(grace, max(old.expires_at_epoch, now + 1))
        event = audit.event(
            audit.KEY_ROLLED,
            client_caller(grant.client_id, request_id),
            grant.account_id,
            key_id=record.key_id,
            key_name=old.name,
            previous_key_id=old.key_id,
            grace_period_seconds=REFRESH_GRACE_SECONDS,
            created_by=record.created_by,
        )
        if db.roll_connection_key(
            account, old, record, grace, stale, grant.token_digest, digest(refresh_token), refresh_item, event
        ):
            return Tokens(secret, refresh_token, ttl, list(old.scopes or ()))
        if _end_if_spent(grant):
            raise OAuthError("invalid_grant", "refresh token does not exist")
    raise OAuthError("temporarily_unavailable", "The account is changing; retry.")


def _end_if_spent(grant: RefreshGrant) -> bool:
    """Another request used this token since we read it: it was presented twice, so the
    connection ends, whichever of the two is the thief."""
    if not (store().get_refresh(grant.token_digest) or {}).get("used"):
        return False
    end_connection(grant.account_id, grant.grant_id, client_caller(grant.client_id))
    return True


@dataclass(frozen=True)
class AccessGrant:
    account_id: str
    key_id: str
    client_id: str
    grant_id: str
    scopes: list[str]
    expires_at: int | None


def load_access(token: str) -> AccessGrant | None:
    """A live connection key (for revocation): None for anything else, keys made in the
    console included (a client can revoke only what it was given)."""
    if not keys.is_well_formed(token, get_settings().key_prefix):
        return None
    db = store()
    principal = db.get_principal(keys.digest(token))
    if principal is None:
        return None
    for record in db.connection_keys(principal.account_id):
        if record.key_id == principal.key_id and record.connection is not None:
            return AccessGrant(
                principal.account_id,
                record.key_id,
                record.connection.client_id,
                record.connection.grant_id,
                list(record.scopes or ()),
                record.expires_at_epoch,
            )
    return None


def revoke(account_id: str, grant_id: str, client_id: str) -> None:
    """RFC 7009: revoking the access token or the refresh token ends the connection: its key
    (and one still in a refresh's grace) is deleted, so its refresh tokens die with it."""
    end_connection(account_id, grant_id, client_caller(client_id))
