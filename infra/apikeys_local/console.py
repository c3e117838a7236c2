"""The Settings → API Keys page on the local server: `web/` served at `/`, and a dev login
that mints a token from the local identity provider. Local only: the deployed stack has neither
(the page is hosted statically and signs in with Cognito's hosted UI)."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.security import safe_join
from werkzeug.wrappers import Request, Response

from apikeys_local.idp import LocalIdentityProvider

LOGIN_PATH = "/_local/login"
ACCOUNT_MAX = 128
# The headers the README asks a static host to send too: the page talks only to its own origin here.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _error(status: int, code: str, message: str) -> Response:
    body = json.dumps({"error": {"code": code, "message": message}})
    return Response(body, status=status, content_type="application/json", headers={"Cache-Control": "no-store"})


def is_file(path: str) -> bool:
    """Path.is_file, but a name the OS refuses (too long: ENAMETOOLONG) is simply not a file:
    a request for a 5,000-character path is a 404, not a 500."""
    try:
        return Path(path).is_file()
    except OSError:
        return False


def static_file(root: Path, request: Request) -> Response | None:
    """A file of web/ (index.html for `/`), or None so the request goes on to the gateway."""
    web = root / "web"
    name = "index.html" if request.path == "/" else request.path.lstrip("/")
    path = safe_join(str(web), name)
    if path is None or not is_file(path):
        return None
    content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type.endswith("javascript"):
        content_type += "; charset=utf-8"
    return Response(Path(path).read_bytes(), content_type=content_type, headers=SECURITY_HEADERS)


def dev_login(
    request: Request,
    idp: LocalIdentityProvider,
    claim: str,
    set_plan: Callable[[str, str], Any],
    start_plan: Callable[[str], Any] | None = None,
) -> Response:
    """POST {"account": "...", "plan": "pro" | null} -> {"token", "account"}: sign in as any
    account, optionally putting it on a plan first (what the billing system does when deployed).
    Without a plan, `start_plan` puts a new account on a usable plan, so the first sign-in does
    not land on "0 of 0 keys" with nothing to do."""
    if request.method != "POST":
        return _error(405, "method_not_allowed", f"Use POST {LOGIN_PATH}.")
    if request.mimetype != "application/json":
        # Also keeps other web pages from posting here: a JSON body needs a CORS preflight.
        return _error(415, "invalid_request", "Send a JSON body with Content-Type: application/json.")
    try:
        body = json.loads(request.get_data(as_text=True) or "null")
    except ValueError:
        return _error(400, "invalid_request", "The body is not valid JSON.")
    if not isinstance(body, dict) or set(body) - {"account", "plan"}:
        return _error(400, "invalid_request", 'Send {"account": "...", "plan": "pro" | null}.')
    account, plan = body.get("account"), body.get("plan")
    if not isinstance(account, str) or not account.strip() or len(account.strip()) > ACCOUNT_MAX:
        return _error(400, "invalid_request", f"account: 1-{ACCOUNT_MAX} characters.")
    if plan is not None and not isinstance(plan, str):
        return _error(400, "invalid_request", "plan: a plan name or null.")
    account = account.strip()
    try:
        if plan:
            set_plan(account, plan)
        elif start_plan is not None:
            start_plan(account)
    except RuntimeError as exc:
        return _error(400, "invalid_request", str(exc))
    token = idp.mint(account, claim)
    body = json.dumps({"token": token, "account": account})
    return Response(body, content_type="application/json", headers={"Cache-Control": "no-store"})
