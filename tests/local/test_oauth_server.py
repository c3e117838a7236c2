"""The authorization server's contract (issue 21) over real HTTP against `apikeys-local serve`:
metadata, registration rules, the code flow with consent, token exchange, refresh, revocation,
and that a connection is an ordinary key (listed, counted, deleted like any other)."""

from __future__ import annotations

import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers.hygiene import find_leaks
from tests.helpers.local_server import ServerProcess, cli, http, start_server
from tests.helpers.oauth_client import OAuthClient, call, pkce, query_of

SEEN: list[str] = []


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the module; after it, no code, refresh token, secret or key in its log."""
    home = tmp_path_factory.mktemp("oauth-home")
    started = start_server(home)
    started.home = home  # type: ignore[attr-defined]
    yield started
    assert started.stop() == 0, started.output()[-4000:]
    log = started.output()
    leaked = [secret for secret in SEEN if secret in log or secret[:20] in log]
    assert not leaked, "an OAuth secret reached the server's log"
    assert not find_leaks(log)


def account(server: ServerProcess, plan: str = "pro") -> str:
    """A new account on `plan`; its console (Cognito) token."""
    home = server.home  # type: ignore[attr-defined]
    name = f"acct-{uuid.uuid4().hex[:10]}"
    assert cli(home, "plan", "set", name, plan).returncode == 0
    minted = cli(home, "token", "--account", name)
    assert minted.returncode == 0, minted.stderr
    return minted.stdout.strip()


def client(server: ServerProcess, **kwargs: Any) -> OAuthClient:
    registered = OAuthClient.register(server.url, **kwargs)
    registered.seen = SEEN
    if registered.client_secret:
        SEEN.append(registered.client_secret)
    return registered


def keys_of(server: ServerProcess, token: str) -> dict[str, Any]:
    reply = http("GET", f"{server.url}/keys", token)
    assert reply.status == 200
    return reply.json  # type: ignore[no-any-return]


def test_metadata_and_the_401_that_points_to_it(server: ServerProcess) -> None:
    url = server.url
    refused = http("POST", f"{url}/mcp", None, {"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert refused.status == 401
    prm_url = f"{url}/.well-known/oauth-protected-resource/mcp"
    assert refused.headers["WWW-Authenticate"] == f'Bearer resource_metadata="{prm_url}"'
    for path, resource in ((prm_url, f"{url}/mcp"), (f"{url}/.well-known/oauth-protected-resource", f"{url}/")):
        prm = http("GET", path).json
        assert prm["resource"] == resource
        assert prm["bearer_methods_supported"] == ["header"]
        assert prm["scopes_supported"] == ["whoami", "mcp", "keys:read"]
        assert len(prm["authorization_servers"]) == 1
    issuer = prm["authorization_servers"][0]
    asm = http("GET", f"{issuer.rstrip('/')}/.well-known/oauth-authorization-server").json
    assert asm["issuer"] == issuer
    for name, path in (
        ("authorization_endpoint", "/oauth/authorize"),
        ("token_endpoint", "/oauth/token"),
        ("registration_endpoint", "/oauth/register"),
        ("revocation_endpoint", "/oauth/revoke"),
    ):
        assert asm[name] == f"{url}{path}"
    assert asm["response_types_supported"] == ["code"]
    assert {"authorization_code", "refresh_token"} <= set(asm["grant_types_supported"])
    assert asm["code_challenge_methods_supported"] == ["S256"]
    assert asm["client_id_metadata_document_supported"] is True


@pytest.mark.parametrize(
    "uri",
    ["http://evil.example/cb", "http://127.0.0.2.nip.io/cb", "myapp://cb", "https://ok.example/cb#frag", "ftp://x/cb"],
)
def test_registration_refuses_redirect_uris_outside_the_rules(server: ServerProcess, uri: str) -> None:
    reply = call("POST", f"{server.url}/oauth/register", {"redirect_uris": ["https://fine.example/cb", uri]})
    assert reply.status == 400
    assert reply.json["error"] == "invalid_redirect_uri" and reply.json["error_description"]


@pytest.mark.parametrize("uri", ["https://chat.example/cb", "http://127.0.0.1:33418/cb", "http://localhost/callback"])
def test_registration_accepts_https_and_loopback(server: ServerProcess, uri: str) -> None:
    assert client(server, redirect_uri=uri).client_id


def test_connecting_creates_a_key_named_after_the_client(server: ServerProcess) -> None:
    token = account(server)
    chatgpt = client(server, name="ChatGPT\u202e\u0007 ")
    tokens = chatgpt.connect(token)
    assert tokens["access_token"].startswith("ot_") and tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 30 * 86400 and tokens["scope"] == "mcp keys:read" and tokens["refresh_token"]
    again = chatgpt.connect(token)
    listing = keys_of(server, token)
    assert listing["key_count"] == 2
    names = sorted(k["name"] for k in listing["keys"])
    assert names == ["ChatGPT", "ChatGPT (2)"]  # display-safe, and unique
    for key in listing["keys"]:
        assert key["scopes"] == ["mcp", "keys:read"] and key["status"] == "active"
        assert key["connection"] == {
            "client_id": chatgpt.client_id,
            "client_name": "ChatGPT",
            "redirect_host": "chat.example",
        }
    mcp = http(
        "POST",
        f"{server.url}/mcp",
        again["access_token"],
        {"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
        headers={"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"},
    )
    assert mcp.status == 200, mcp.text


def test_consent_screen_data_and_errors(server: ServerProcess) -> None:
    token = account(server)
    claude = client(server, name="Claude", redirect_uri="http://127.0.0.1:4567/cb")
    _, challenge = pkce()
    request_id = claude.consent_id(challenge, scope="mcp")
    shown = http("GET", f"{server.url}/oauth/consent/{request_id}", token)
    assert shown.status == 200
    assert {k: shown.json[k] for k in ("client_name", "client_id", "redirect_uri", "scopes", "key_name")} == {
        "client_name": "Claude",
        "client_id": claude.client_id,
        "redirect_uri": "http://127.0.0.1:4567/cb",
        "scopes": ["mcp"],
        "key_name": "Claude",
    }
    assert http("GET", f"{server.url}/oauth/consent/{request_id}").status == 401  # signed in only
    unknown = http("GET", f"{server.url}/oauth/consent/nope", token)
    assert (unknown.status, unknown.json["error"]["code"]) == (404, "not_found")
    # Deny: back to the client with access_denied and its state; the request is then answered.
    denied = http("POST", f"{server.url}/oauth/consent/{request_id}", token, {"approve": False})
    assert denied.status == 200
    assert query_of(denied.json["redirect_to"]) == {"error": "access_denied", "state": "st"}
    for method, body in (("GET", None), ("POST", {"approve": True})):
        again = http(method, f"{server.url}/oauth/consent/{request_id}", token, body)
        assert (again.status, again.json["error"]["code"]) == (404, "not_found")


def test_approved_at_most_once_and_narrower_scopes(server: ServerProcess) -> None:
    token = account(server)
    app = client(server)
    verifier, challenge = pkce()
    request_id = app.consent_id(challenge, scope="mcp keys:read")
    approved = http("POST", f"{server.url}/oauth/consent/{request_id}", token, {"approve": True, "scopes": ["mcp"]})
    assert approved.status == 200
    answer = query_of(approved.json["redirect_to"])
    assert answer["state"] == "st"
    SEEN.append(answer["code"])
    twice = http("POST", f"{server.url}/oauth/consent/{request_id}", token, {"approve": True})
    assert twice.status == 404
    tokens = app.exchange(answer["code"], verifier).json
    assert tokens["scope"] == "mcp"


def test_plan_full_refuses_consent_and_issues_nothing(server: ServerProcess) -> None:
    token = account(server)
    for n in range(3):
        assert http("POST", f"{server.url}/keys", token, {"name": f"k{n}"}).status == 201
    app = client(server)
    _, challenge = pkce()
    request_id = app.consent_id(challenge)
    refused = http("POST", f"{server.url}/oauth/consent/{request_id}", token, {"approve": True})
    assert refused.status == 403 and refused.json["error"]["code"] == "key_limit_reached"
    assert "advanced" in refused.json["error"]["message"].lower()
    assert keys_of(server, token)["key_count"] == 3
    # Still pending: the user may free a slot and approve.
    assert http("GET", f"{server.url}/oauth/consent/{request_id}", token).status == 200


def test_code_is_single_use_and_bound_to_verifier_redirect_and_client(server: ServerProcess) -> None:
    token = account(server)
    app = client(server, redirect_uri="https://a.example/cb")
    other = client(server, redirect_uri="https://a.example/cb")
    verifier, challenge = pkce()
    code = app.approve(token, challenge)
    wrong_verifier = app.exchange(code, pkce()[0])
    assert (wrong_verifier.status, wrong_verifier.json["error"]) == (400, "invalid_grant")
    wrong_redirect = app.exchange(code, verifier, redirect_uri="https://a.example/other")
    assert wrong_redirect.status == 400 and wrong_redirect.json["error"] in ("invalid_request", "invalid_grant")
    other_client = other.exchange(code, verifier)
    assert (other_client.status, other_client.json["error"]) == (400, "invalid_grant")
    wrong_resource = app.exchange(code, verifier, resource="https://elsewhere.example/mcp")
    assert (wrong_resource.status, wrong_resource.json["error"]) == (400, "invalid_target")
    assert app.exchange(code, verifier).status == 200
    reused = app.exchange(code, verifier)
    assert (reused.status, reused.json["error"]) == (400, "invalid_grant")
    assert keys_of(server, token)["key_count"] == 1


def test_authorize_errors(server: ServerProcess) -> None:
    app = client(server)
    _, challenge = pkce()
    # Unknown client, or a redirect URI it did not register: an error page, never a redirect.
    for reply in (
        call(
            "GET",
            f"{server.url}/oauth/authorize?"
            + urllib.parse.urlencode(
                {
                    "response_type": "code",
                    "client_id": "nobody",
                    "redirect_uri": "https://chat.example/cb",
                    "code_challenge": challenge,
                }
            ),
        ),
        app.authorize(challenge, redirect_uri="https://evil.example/cb"),
    ):
        assert reply.status == 400 and "Location" not in reply.headers
    page = call(
        "GET",
        f"{server.url}/oauth/authorize?client_id=nobody&response_type=code&code_challenge=x",
        headers={"Accept": "text/html"},
    )
    assert page.status == 400 and page.headers["Content-Type"].startswith("text/html")
    # Known client and redirect: the error goes back to the client, with its state.
    for extra, error in (
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"scope": "admin"}, "invalid_scope"),
        ({"resource": "https://elsewhere.example/mcp"}, "invalid_target"),
    ):
        reply = app.authorize(challenge, **extra)
        assert reply.status == 302, extra
        answer = query_of(reply.headers["Location"])
        assert reply.headers["Location"].startswith(app.redirect_uri)
        assert (answer["error"], answer["state"]) == (error, "st")


def test_refresh_rolls_the_key_and_reuse_ends_the_connection(server: ServerProcess) -> None:
    token = account(server)
    app = client(server)
    first = app.connect(token)
    second = app.refresh(first["refresh_token"]).json
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["expires_in"] == 30 * 86400 and second["scope"] == first["scope"]
    listing = keys_of(server, token)
    assert listing["key_count"] == 1  # same slot
    statuses = sorted(k["status"] for k in listing["keys"])
    assert statuses == ["active", "rolling"]  # the old key finishes in-flight calls
    assert {k["name"] for k in listing["keys"]} == {"ChatGPT"}
    mcp = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    accept = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"}
    assert http("POST", f"{server.url}/mcp", second["access_token"], mcp, headers=accept).status == 200
    # The first refresh token again: a copy exists somewhere; the connection ends.
    reused = app.refresh(first["refresh_token"])
    assert (reused.status, reused.json["error"]) == (400, "invalid_grant")
    assert http("POST", f"{server.url}/mcp", second["access_token"], mcp, headers=accept).status == 401
    assert app.refresh(second["refresh_token"]).json["error"] == "invalid_grant"
    assert keys_of(server, token)["key_count"] == 0


def test_refresh_needs_no_free_slot(server: ServerProcess) -> None:
    token = account(server)
    app = client(server)
    tokens = app.connect(token)
    for n in range(2):
        assert http("POST", f"{server.url}/keys", token, {"name": f"k{n}"}).status == 201
    refreshed = app.refresh(tokens["refresh_token"])
    assert refreshed.status == 200, refreshed.text
    assert keys_of(server, token)["key_count"] == 3


def test_deleting_the_key_ends_the_connection(server: ServerProcess) -> None:
    token = account(server)
    app = client(server)
    tokens = app.connect(token)
    [key] = keys_of(server, token)["keys"]
    assert http("DELETE", f"{server.url}/keys/{key['id']}", token).status == 204
    refused = http("POST", f"{server.url}/mcp", tokens["access_token"], {"jsonrpc": "2.0", "id": 1, "method": "x"})
    assert refused.status == 401
    assert app.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"


@pytest.mark.parametrize("which", ["access_token", "refresh_token"])
def test_revocation_endpoint_ends_the_connection(server: ServerProcess, which: str) -> None:
    token = account(server)
    app = client(server)
    tokens = app.connect(token)
    other = client(server)
    assert other.revoke(tokens[which]).status == 200  # another client's token: nothing happens
    assert keys_of(server, token)["key_count"] == 1
    assert app.revoke(tokens[which]).status == 200
    assert keys_of(server, token)["key_count"] == 0
    assert app.refresh(tokens["refresh_token"]).json["error"] == "invalid_grant"
    assert app.revoke("not-a-token").status == 200  # RFC 7009 §2.2


def test_client_secret_is_checked(server: ServerProcess) -> None:
    token = account(server)
    app = client(server)
    verifier, challenge = pkce()
    code = app.approve(token, challenge)
    bad = call(
        "POST",
        f"{server.url}/oauth/token",
        form={"grant_type": "authorization_code", "code": code, "redirect_uri": app.redirect_uri,
              "code_verifier": verifier, "client_id": app.client_id, "client_secret": "wrong"},
    )  # fmt: skip
    assert (bad.status, bad.json["error"]) == (401, "invalid_client")
