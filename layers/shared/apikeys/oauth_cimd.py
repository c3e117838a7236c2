"""Client ID Metadata Documents: a client named by an `https://` URL whose JSON document says
who it is (`client_name`, `redirect_uris`). Fetching a URL a stranger chose is a server-side
request forgery risk, so: https only, the host's every address must be public (no private,
loopback, link-local or reserved address; checked on the address actually connected to, so a
DNS answer cannot change between the check and the connection), no redirects, at most
MAX_BYTES, at most TIMEOUT seconds, and the answer cached per container for CACHE_SECONDS.

Tests and `make dev` serve documents on 127.0.0.1: OAUTH_CIMD_ALLOW_PRIVATE_HOSTS names hosts
that may resolve to private addresses and OAUTH_CIMD_CA_BUNDLE a CA file to trust besides the
system's. Neither is set in the deployed stack.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import socket
import ssl
import time
from typing import Any
from urllib.parse import urlsplit

from apikeys import container
from apikeys.observability import make_logger
from apikeys.redirects import redirect_uri_problem

MAX_BYTES = 5 * 1024
TIMEOUT = 3.0
CACHE_SECONDS = 300
_CACHE_MAX = 1000
_cache: dict[str, tuple[float, dict[str, object] | None]] = container.state({})


class Refused(Exception):
    """Why a document was not fetched or not accepted (logged, never shown to the client)."""


def _allowed_private() -> set[str]:
    return {h.strip().lower() for h in os.environ.get("OAUTH_CIMD_ALLOW_PRIVATE_HOSTS", "").split(",") if h.strip()}


def _public_address(host: str, port: int) -> str:
    """One address of `host` to connect to, after checking that every address it has is public."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise Refused("host does not resolve") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise Refused("host does not resolve")
    if host.lower() not in _allowed_private():
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if not ip.is_global or ip.is_multicast:
                raise Refused(f"host resolves to a non-public address ({ip})")
    return addresses[0]


def _context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    bundle = os.environ.get("OAUTH_CIMD_CA_BUNDLE", "")
    if bundle:
        context.load_verify_locations(cafile=bundle)
    return context


def _get(url: str) -> bytes:
    if len(url) > 500:
        raise Refused("client_id URL too long")
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname or parts.username or parts.password or parts.fragment:
        raise Refused("client_id must be an https URL without credentials or fragment")
    host, port = parts.hostname, parts.port or 443
    address = _public_address(host, port)
    deadline = time.monotonic() + TIMEOUT
    raw = socket.create_connection((address, port), timeout=TIMEOUT)
    try:
        tls = _context().wrap_socket(raw, server_hostname=host)
    except (OSError, ssl.SSLError):
        raw.close()
        raise Refused("TLS handshake failed") from None
    connection = http.client.HTTPSConnection(host, port, timeout=TIMEOUT)
    connection.sock = tls  # connected to the checked address, verified for `host`
    try:
        path = parts.path or "/"
        connection.request(
            "GET", path + (f"?{parts.query}" if parts.query else ""), headers={"Accept": "application/json"}
        )
        response = connection.getresponse()
        if response.status != 200:
            raise Refused(f"status {response.status}")  # redirects are not followed
        length = response.getheader("Content-Length")
        if length is not None and length.isdigit() and int(length) > MAX_BYTES:
            raise Refused("document over 5 KB")
        body = b""
        while len(body) <= MAX_BYTES:
            if time.monotonic() > deadline:
                raise Refused("too slow")
            chunk = response.read(1024)
            if not chunk:
                break
            body += chunk
        if len(body) > MAX_BYTES:
            raise Refused("document over 5 KB")
        return body
    except (OSError, http.client.HTTPException):
        raise Refused("fetch failed") from None
    finally:
        connection.close()


def _validate(url: str, body: bytes) -> dict[str, object]:
    try:
        document: Any = json.loads(body)
    except ValueError:
        raise Refused("not JSON") from None
    if not isinstance(document, dict) or document.get("client_id") != url:
        raise Refused("client_id in the document must equal its URL")
    uris = document.get("redirect_uris")
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        raise Refused("redirect_uris missing")
    for uri in uris:
        if redirect_uri_problem(uri):
            raise Refused("a redirect URI breaks the rules")
    method = document.get("token_endpoint_auth_method", "none")
    if method != "none":
        raise Refused("a metadata-document client is public: token_endpoint_auth_method must be none")
    info: dict[str, object] = {
        "client_id": url,
        "redirect_uris": uris,
        "token_endpoint_auth_method": "none",  # nosec B105 - an auth method, not a secret
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }
    name = document.get("client_name")
    if isinstance(name, str):
        info["client_name"] = name
    return info


def fetch(url: str) -> dict[str, object] | None:
    """The client's metadata (RFC 7591 fields) or None if refused; cached either way."""
    now = time.monotonic()
    hit = _cache.get(url)
    if hit is not None and hit[0] > now:
        return hit[1]
    info: dict[str, object] | None
    try:
        info = _validate(url, _get(url))
    except Refused as refused:
        make_logger().info("client metadata document refused", extra={"client_id": url[:200], "reason": str(refused)})
        info = None
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    # A refusal is remembered briefly only: a transient failure must not lock a client out for long.
    _cache[url] = (now + (CACHE_SECONDS if info is not None else 30), info)
    return info
