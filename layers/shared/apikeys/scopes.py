"""Scopes: what a restricted key may call, as names from the KEY_SCOPES catalogue.

A key's scopes are `None` for full access (stored as no attribute, so keys from before scopes
keep working) or a non-empty tuple of catalogue names in catalogue order. Lean on purpose: the
authorizer imports this module, so no pydantic and no I/O.

REST APIs: the authorizer returns an IAM policy that API Gateway enforces. API Gateway matches a
policy's resource ARN as a glob over the whole string, so `*` matches any characters, `/`
included: a pattern segment `*` (`GET /keys/*/roll`) also matches `GET /keys/a/b/roll`. Route
patterns with a `*` in the middle are therefore broader on a REST API than on an HTTP API.
HTTP APIs (payload 2.0): the authorizer matches the route itself, segment by segment; for a
`$default` route on the request's own path, made canonical first (`canonical_path`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from urllib.parse import unquote

from apikeys.config import APPSYNC, FULL_ACCESS, Catalogue, ScopeRoute
from apikeys.errors import InvalidRequest

Scopes = tuple[str, ...] | None

# Escapes of what would change a path's structure once a backend decodes it: `/`, `.`, backslash, NUL,
# and `%` itself (a double escape such as `%252e` is `.` to a backend that decodes twice).
_STRUCTURAL_ESCAPE = re.compile(r"%(?:2[fFeE5]|5[cC]|00)")
_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


def _invalid(message: str, catalogue: Catalogue) -> InvalidRequest:
    valid = ", ".join([FULL_ACCESS, *catalogue]) if catalogue else FULL_ACCESS
    return InvalidRequest(f"{message} Valid scopes: {valid}.")


def normalize(requested: Sequence[str] | None, catalogue: Catalogue) -> Scopes:
    """A request's `scopes` as stored: None (omitted, or ["*"]) for full access, else the
    distinct catalogue names in catalogue order. Anything else is a 400 naming the valid scopes."""
    if requested is None:
        return None
    if not requested:
        raise _invalid('scopes: must not be empty; omit it or use ["*"] for full access.', catalogue)
    if len(set(requested)) != len(requested):
        raise _invalid("scopes: must not repeat a scope.", catalogue)
    if FULL_ACCESS in requested:
        if len(requested) > 1:
            raise _invalid('scopes: "*" (full access) cannot be combined with other scopes.', catalogue)
        return None
    unknown = [name for name in requested if name not in catalogue]
    if unknown:
        raise _invalid(f"scopes: unknown scope {unknown[0][:70]!r}.", catalogue)
    return tuple(name for name in catalogue if name in requested)


def listed(scopes: Scopes, catalogue: Catalogue) -> list[str]:
    """A key object's `scopes`: ["*"] for full access, else catalogue order (a name since removed
    from the catalogue grants nothing; it is listed last so the owner sees it)."""
    if scopes is None:
        return [FULL_ACCESS]
    order = {name: index for index, name in enumerate(catalogue)}
    return sorted(scopes, key=lambda name: (order.get(name, len(order)), name))


def to_attribute(scopes: Scopes) -> str | None:
    """Stored form: names joined by single spaces (also the authorizer context's form)."""
    return None if scopes is None else " ".join(scopes)


def from_attribute(value: str | None) -> Scopes:
    return None if value is None else tuple(value.split(" "))


def context_value(scopes: Scopes) -> str:
    """The authorizer context's `scopes`: names joined by single spaces, or `*`."""
    return FULL_ACCESS if scopes is None else " ".join(scopes)


def routes_of(scopes: Iterable[str], catalogue: Catalogue) -> list[ScopeRoute]:
    """Every route the scopes grant, without repeats; unknown names grant nothing."""
    seen: dict[ScopeRoute, None] = {}
    for name in scopes:
        for route in catalogue.get(name, ()):
            seen.setdefault(route, None)
    return list(seen)


def resource_arns(scopes: Iterable[str], catalogue: Catalogue, stage_arn: str) -> list[str]:
    """The execute-api ARNs of the scopes' routes under `stage_arn` (arn:…:{api}/{stage}):
    `{stage_arn}/{METHOD}/{path without its leading slash}`, wildcards kept as `*`."""
    return [
        f"{stage_arn}/{route.method}/{'/'.join(route.segments)}"
        for route in routes_of(scopes, catalogue)
        if route.method != APPSYNC
    ]


def appsync_allowed(scopes: Iterable[str], catalogue: Catalogue, api_id: object) -> bool:
    """AppSync has no policy to narrow and no route to match (one endpoint, any operation), so a
    scoped key may reach an AppSync API only when a scope grants it by name (`APPSYNC /<api id>`)
    or every AppSync API (`APPSYNC /*`). A `*` method grants HTTP routes, never AppSync: a key
    never reaches more on AppSync than on REST."""
    return isinstance(api_id, str) and any(
        route.method == APPSYNC and route.segments[0] in ("*", api_id) for route in routes_of(scopes, catalogue)
    )


def _segments_match(pattern: tuple[str, ...], path: list[str]) -> bool:
    if pattern and pattern[-1] == "*":
        # A trailing `/*`: anything below the path before it (at least one segment).
        head = pattern[:-1]
        return len(path) > len(head) and all(p in ("*", s) for p, s in zip(head, path, strict=False))
    return len(pattern) == len(path) and all(p in ("*", s) for p, s in zip(pattern, path, strict=True))


def canonical_path(raw: str, stage: str | None = None) -> str | None:
    """The path a `$default` route's scopes are matched on, or None when it has no single meaning.

    API Gateway passes an HTTP API's `rawPath` as the client sent it, and the backend behind
    `$default` may resolve `..`, decode `%2F` into a separator or treat `\\` as one: matched raw,
    `GET /v1/*` would allow `/v1/../admin`. So a path with a `.` or `..` segment, an empty
    segment, a `\\`, an escaped `/`, `.`, `\\`, `%` or NUL, a control character or a malformed
    escape is refused; other escapes are decoded (`%77` is `w`, as the backend will read it).
    On a named stage `rawPath` starts with `/{stage}`, which is not part of the route: it is
    dropped (a path that does not carry it, as behind a custom domain, is taken as it is)."""
    if not raw.startswith("/") or "\\" in raw or _STRUCTURAL_ESCAPE.search(raw):
        return None
    if "%" in _ESCAPE.sub("", raw):
        return None  # a `%` that starts no escape
    if stage and stage != "$default" and (raw == f"/{stage}" or raw.startswith(f"/{stage}/")):
        raw = raw[len(stage) + 1 :] or "/"
    if raw == "/":
        return raw
    try:
        segments = unquote(raw[1:], errors="strict").split("/")
    except UnicodeDecodeError:
        return None
    if any(seg in ("", ".", "..") or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in seg) for seg in segments):
        return None
    return "/" + "/".join(segments)


def route_allowed(scopes: Iterable[str], catalogue: Catalogue, method: str, path: str) -> bool:
    """HTTP API matching: does one of the scopes' routes match `METHOD /path` (a route key such
    as `GET /keys/{key_id}` or the request's own method and path)? `*` matches one segment."""
    if not path.startswith("/"):
        return False
    segments = path[1:].split("/") if path != "/" else []
    return any(
        route.method != APPSYNC and route.method in ("*", method) and _segments_match(route.segments, segments)
        for route in routes_of(scopes, catalogue)
    )
