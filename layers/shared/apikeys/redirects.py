"""Redirect URIs an OAuth client may use (issue 21): the one rule, for registration, client
metadata documents and the authorization request alike. No I/O, no imports of the package."""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})


def redirect_uri_problem(uri: str) -> str | None:
    """Why `uri` may not be a redirect URI, or None. `https://` anywhere, or `http://` on the
    loopback interface with any port (RFC 8252 §7.3); no fragment (RFC 6749 §3.1.2), no
    credentials in it. Anything else (`http://evil.example/cb`, custom schemes) is refused."""
    try:
        parts = urlsplit(uri)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return f"redirect_uri {uri[:100]!r} is not a valid URL."
    del port
    if parts.fragment or "#" in uri:
        return "redirect_uri must not contain a fragment."
    if parts.username is not None or parts.password is not None:
        return "redirect_uri must not contain credentials."
    host = (parts.hostname or "").lower()
    if not host:
        return f"redirect_uri {uri[:100]!r} has no host."
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and host in LOOPBACK_HOSTS:
        return None
    return "redirect_uri must be https://, or http:// on 127.0.0.1 or localhost (any port)."


def redirect_host(uri: str) -> str:
    return urlsplit(uri).netloc
