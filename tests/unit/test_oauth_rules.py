"""The authorization server's own rules that need no table (issue 21): which redirect URIs a
client may use, what its name becomes as a key name, and which client ID metadata documents
are fetched and believed (a real https server with its own CA, on the loopback interface)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from apikeys import container, oauth, oauth_cimd
from apikeys.redirects import redirect_uri_problem
from tests.helpers.https_documents import DocumentServer


@pytest.mark.parametrize(
    "uri",
    [
        "https://chatgpt.com/connector_platform_oauth_redirect",
        "https://claude.ai/api/mcp/auth_callback",
        "http://127.0.0.1:33418/callback",
        "http://localhost/callback",
        "http://localhost:6274/oauth/callback",
        "http://[::1]:8080/cb",
    ],
)
def test_https_and_loopback_redirect_uris_are_allowed(uri: str) -> None:
    assert redirect_uri_problem(uri) is None


@pytest.mark.parametrize(
    "uri",
    [
        "http://evil.example/cb",
        "http://localhost.evil.example/cb",
        "http://127.0.0.1.nip.io/cb",
        "cursor://anysphere.cursor-retrieval/oauth/callback",
        "javascript:alert(1)",
        "https://chat.example/cb#fragment",
        "https://user:pw@chat.example/cb",
        "https:///cb",
        "http://127.0.0.1:99999/cb",
        "",
    ],
)
def test_every_other_redirect_uri_is_refused(uri: str) -> None:
    assert redirect_uri_problem(uri)


def test_client_names_become_display_safe_unique_key_names() -> None:
    assert oauth.display_name("ChatGPT") == "ChatGPT"
    assert oauth.display_name("Chat\u202eGPT\u0000\n  x") == "ChatGPT x"
    assert oauth.display_name("\u200b\u2066 ") == "MCP client"
    assert oauth.display_name(None) == "MCP client"
    assert len(oauth.display_name("x" * 500)) == oauth.NAME_MAX
    assert oauth.unique_name("Claude", ["Claude", "Claude (2)", "Other"]) == "Claude (3)"
    assert oauth.unique_name("Claude", ["Other"]) == "Claude"


def test_resource_must_be_this_api() -> None:
    base = "https://api.example.com"
    for ok in (None, base, f"{base}/", f"{base}/mcp", f"{base}/mcp/"):
        assert oauth.resource_ok(ok, base)
    for bad in ("https://other.example/mcp", f"{base}/keys", "https://api.example.com.evil/mcp"):
        assert not oauth.resource_ok(bad, base)


@pytest.fixture
def documents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[DocumentServer]:
    server = DocumentServer(tmp_path)
    for name, value in server.env().items():
        monkeypatch.setenv(name, value)
    container.reset()
    yield server
    server.stop()
    container.reset()


def test_a_metadata_document_is_fetched_checked_and_cached(documents: DocumentServer) -> None:
    url = documents.client("/claude.json", "Claude", ["https://claude.ai/api/mcp/auth_callback"])
    info = oauth_cimd.fetch(url)
    assert info is not None
    assert info["client_name"] == "Claude" and info["token_endpoint_auth_method"] == "none"
    assert oauth_cimd.fetch(url) == info
    assert documents.hits == ["/claude.json"]  # cached: fetched once


@pytest.mark.parametrize(
    "document",
    [
        {"client_id": None, "client_name": "No id", "redirect_uris": ["https://a.example/cb"]},
        {"client_id": "https://someone-else.example/c.json", "redirect_uris": ["https://a.example/cb"]},
        {"redirect_uris": ["http://evil.example/cb"]},
        {"redirect_uris": []},
        {"redirect_uris": ["https://a.example/cb"], "token_endpoint_auth_method": "client_secret_post"},
    ],
)
def test_a_document_breaking_the_rules_is_refused(documents: DocumentServer, document: dict[str, object]) -> None:
    url = documents.url("/bad.json")
    documents.serve("/bad.json", {"client_id": url, **document})
    assert oauth_cimd.fetch(url) is None


def test_a_document_over_5_kb_is_refused(documents: DocumentServer) -> None:
    url = documents.url("/big.json")
    padding = "x" * (oauth_cimd.MAX_BYTES + 1)
    documents.serve("/big.json", {"client_id": url, "redirect_uris": ["https://a.example/cb"], "pad": padding})
    assert oauth_cimd.fetch(url) is None
    small = documents.client("/small.json", "Small", ["https://a.example/cb"], pad="x" * 4000)
    assert oauth_cimd.fetch(small) is not None


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:{port}/c.json",  # loopback by address: not on the allow-list
        "https://10.0.0.1/c.json",
        "https://169.254.169.254/latest/meta-data",  # the instance metadata service
        "https://[::1]/c.json",
        "http://localhost:{port}/c.json",  # not https
        "https://localhost:{port}/missing.json",  # 404
    ],
)
def test_private_addresses_plain_http_and_failures_are_refused(documents: DocumentServer, url: str) -> None:
    documents.client("/c.json", "C", ["https://a.example/cb"])
    assert oauth_cimd.fetch(url.format(port=documents.port)) is None


def test_without_the_allow_list_even_localhost_is_refused(
    documents: DocumentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OAUTH_CIMD_ALLOW_PRIVATE_HOSTS")
    url = documents.client("/c.json", "C", ["https://a.example/cb"])
    assert oauth_cimd.fetch(url) is None
    assert documents.hits == []  # refused before connecting


def test_an_untrusted_certificate_is_refused(documents: DocumentServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OAUTH_CIMD_CA_BUNDLE")
    url = documents.client("/c.json", "C", ["https://a.example/cb"])
    assert oauth_cimd.fetch(url) is None
