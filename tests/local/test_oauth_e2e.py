"""Issue 21 end to end: the official `mcp` SDK client's OAuth support (`OAuthClientProvider`)
connects to `apikeys-local serve`'s /mcp with no key configured. It discovers the metadata,
registers (by DCR, and by a client metadata URL served here over https with a CA the server
trusts), is sent to the console's consent page, where a signed-in user clicks Allow in
headless Chromium; then it lists and calls the tools. The key shows in GET /keys; deleting it
in the console makes the client's next call 401 and its refresh fail.

One server and one browser for the module (tests/local/browser/oauth.mjs takes commands)."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

from tests.helpers.https_documents import DocumentServer
from tests.helpers.local_server import ROOT, ServerProcess, cli, http, start_server
from tests.helpers.node_driver import NodeDriver
from tests.helpers.oauth_client import OAuthClient, call, pkce, query_of

SCRIPT = ROOT / "tests" / "local" / "browser" / "oauth.mjs"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"


class Browser(NodeDriver):
    """The module's one headless Chromium: oauth.mjs taking a JSON command per line."""

    def __init__(self, console_url: str) -> None:
        super().__init__(SCRIPT, {"CONSOLE_URL": console_url, "SCREENSHOT_DIR": str(SCREENSHOTS), "CHROMIUM": CHROMIUM})

    def __call__(self, **command: Any) -> dict[str, Any]:
        answer = self.send(command)
        assert answer["ok"], answer.get("error")
        assert answer["page_errors"] == []
        return answer


class Callback:
    """The client's loopback redirect URI (RFC 8252): records the query the browser brings."""

    def __init__(self) -> None:
        self.queries: list[dict[str, str]] = []
        queries = self.queries

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if urlsplit(self.path).path == "/callback":  # not the browser's /favicon.ico
                    queries.append({k: v[0] for k, v in parse_qs(urlsplit(self.path).query).items()})
                body = b"<!doctype html><title>Connected</title><p>You can close this window."
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Memory:
    """The SDK's TokenStorage, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    assert Path(CHROMIUM).is_file(), "Chromium is missing: `make test` installs it (scripts/ensure-chromium.sh)"
    assert (ROOT / "node_modules" / "playwright-core").is_dir(), "playwright-core is missing: run `npm ci`"
    documents = DocumentServer(tmp_path_factory.mktemp("cimd"))
    home = tmp_path_factory.mktemp("oauth-e2e-home")
    server = start_server(home, **documents.env())
    browser = Browser(server.url)
    callback = Callback()
    try:
        yield {"server": server, "home": home, "browser": browser, "callback": callback, "documents": documents}
    finally:
        browser.close()
        callback.close()
        documents.stop()
        assert server.stop() == 0, server.output()[-4000:]


def new_account(home: Path) -> tuple[str, str]:
    account = f"oauth-{uuid.uuid4().hex[:8]}"
    assert cli(home, "plan", "set", account, "pro").returncode == 0
    minted = cli(home, "token", "--account", account)
    assert minted.returncode == 0, minted.stderr
    return account, minted.stdout.strip()


def provider(world: dict[str, Any], account: str, seen: list[dict[str, Any]], **kwargs: Any) -> OAuthClientProvider:
    """The SDK's OAuth client: its redirect handler hands the authorization URL to the browser,
    whose user signs in as `account` and clicks Allow; its callback handler reads the redirect."""
    callback: Callback = world["callback"]

    async def redirect(url: str) -> None:
        answer = await anyio.to_thread.run_sync(lambda: world["browser"](cmd="approve", url=url, account=account,
                                                                          action="Allow"))  # fmt: skip
        seen.append(answer)

    async def arrived() -> AuthorizationCodeResult:
        query = callback.queries[-1]
        assert "code" in query, f"the authorization failed: {query}"
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"))

    metadata = OAuthClientMetadata(
        client_name="ChatGPT", redirect_uris=[callback.url], grant_types=["authorization_code", "refresh_token"]
    )  # type: ignore[call-arg]
    return OAuthClientProvider(
        f"{world['server'].url}/mcp",
        metadata,
        Memory(),
        redirect_handler=redirect,
        callback_handler=arrived,
        **kwargs,
    )


async def use_tools(url: str, auth: OAuthClientProvider, statuses: list[int]) -> dict[str, Any]:
    async def record(response: httpx2.Response) -> None:
        statuses.append(response.status_code)

    http_client = httpx2.AsyncClient(auth=auth, timeout=60, event_hooks={"response": [record]})
    async with Client(streamable_http_client(f"{url}/mcp", http_client=http_client), mode="legacy") as client:  # type: ignore[arg-type]
        tools = await client.list_tools()
        listed = await client.call_tool("list_api_keys", {})
        return {"tools": sorted(t.name for t in tools.tools), "list": listed.structured_content}


def test_the_sdk_client_connects_by_dcr_and_a_console_delete_cuts_it_off(world: dict[str, Any]) -> None:
    server: ServerProcess = world["server"]
    account, token = new_account(world["home"])
    seen: list[dict[str, Any]] = []
    statuses: list[int] = []
    auth = provider(world, account, seen)
    result = anyio.run(use_tools, server.url, auth, statuses)
    assert statuses[0] == 401  # no key configured: the 401 starts OAuth
    [consent] = seen
    assert consent["signed_in_here"] is True  # the consent parameter survived the sign-in
    assert consent["signed_in_as"] == account
    assert consent["title"] == "Connect ChatGPT?" and consent["key_name"] == "ChatGPT"
    assert consent["host"] == urlsplit(world["callback"].url).netloc
    assert consent["kind"].startswith("a registration")
    assert consent["final_url"].startswith(world["callback"].url)
    assert result["tools"] == ["get_api_key", "get_api_key_usage", "list_api_keys", "whoami"]
    [key] = result["list"]["keys"]
    assert key["name"] == "ChatGPT" and key["connection"]["client_name"] == "ChatGPT"
    listing = http("GET", f"{server.url}/keys", token).json
    assert [k["id"] for k in listing["keys"]] == [key["id"]] and listing["key_count"] == 1
    # Deleted in the console: the next call is 401, and the refresh token is dead with the key.
    deleted = world["browser"](cmd="delete", name="ChatGPT")
    assert deleted["badge"] == "Connected app · ChatGPT"
    stored: OAuthToken = auth.context.storage.tokens  # type: ignore[attr-defined]
    mcp = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    refused = http("POST", f"{server.url}/mcp", stored.access_token, mcp)
    assert refused.status == 401
    client_info: OAuthClientInformationFull = auth.context.storage.client  # type: ignore[attr-defined]
    form = {
        "grant_type": "refresh_token",
        "refresh_token": stored.refresh_token or "",
        "client_id": client_info.client_id,
    }
    if client_info.client_secret:
        form["client_secret"] = client_info.client_secret
    refresh = call("POST", f"{server.url}/oauth/token", form=form)
    assert (refresh.status, refresh.json["error"]) == (400, "invalid_grant")
    log = server.output()
    for secret in (stored.access_token, stored.refresh_token or "", client_info.client_secret or ""):
        assert not secret or secret not in log


def test_the_sdk_client_connects_by_a_client_metadata_url(world: dict[str, Any]) -> None:
    server: ServerProcess = world["server"]
    documents: DocumentServer = world["documents"]
    account, token = new_account(world["home"])
    client_id = documents.client("/clients/claude.json", "Claude", [world["callback"].url])
    seen: list[dict[str, Any]] = []
    auth = provider(world, account, seen, client_metadata_url=client_id)
    result = anyio.run(use_tools, server.url, auth, [])
    [consent] = seen
    assert consent["client"] == "Claude" and consent["kind"] == f"its metadata URL {client_id}"
    assert result["tools"] == ["get_api_key", "get_api_key_usage", "list_api_keys", "whoami"]
    [key] = http("GET", f"{server.url}/keys", token).json["keys"]
    assert key["connection"] == {
        "client_id": client_id,
        "client_name": "Claude",
        "redirect_host": urlsplit(world["callback"].url).netloc,
    }


def test_deny_and_a_full_plan_in_the_console(world: dict[str, Any]) -> None:
    """Deny sends the user back to the client with access_denied; at the plan's limit Allow
    shows the limit's message and nothing is issued."""
    server: ServerProcess = world["server"]
    callback: Callback = world["callback"]
    account, token = new_account(world["home"])
    app = OAuthClient.register(server.url, name="Cursor", redirect_uri=callback.url)
    _, challenge = pkce()
    denied = world["browser"](cmd="approve", url=app.authorize(challenge, state="d1").headers["Location"],
                              account=account, action="Deny")  # fmt: skip
    assert denied["signed_in_as"] == account
    assert query_of(denied["final_url"]) == {"error": "access_denied", "state": "d1"}
    for n in range(3):
        assert http("POST", f"{server.url}/keys", token, {"name": f"k{n}"}).status == 201
    refused = world["browser"](cmd="approve", url=app.authorize(challenge).headers["Location"], account=account,
                               action="Allow", refused=True)  # fmt: skip
    # The usual message of the plan's limit, on the consent screen, which stays.
    assert refused["error"].startswith("This account has 3 API keys and the Pro plan allows 3."), refused["error"]
    assert refused["final_url"].startswith(server.url)
    assert http("GET", f"{server.url}/keys", token).json["key_count"] == 3
