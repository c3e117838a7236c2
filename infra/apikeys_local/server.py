"""The local server: the emulated API Gateway on waitress (a production WSGI server, one
thread per concurrent request), plus /openapi.json and Swagger UI at /docs."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import flask_swagger_ui
from waitress.server import create_server
from werkzeug.exceptions import NotFound
from werkzeug.security import safe_join
from werkzeug.utils import send_file
from werkzeug.wrappers import Request, Response

from apikeys.observability import redact
from apikeys_local import console, consumers, dynamo
from apikeys_local.gateway import Gateway
from apikeys_local.idp import LocalIdentityProvider
from apikeys_local.openapi import build_spec
from apikeys_local.runtime import Runtime
from apikeys_local.streams import StreamPump
from apikeys_local.template import Stack, load_stack, read_template

SWAGGER_DIST = Path(flask_swagger_ui.__file__).parent / "dist"
DEMO_ACCOUNT = "demo-account"
DEMO_PLAN = "pro"
PLAN_FUNCTION = "SetPlanFunction"
# Longer request paths answer 414 (in the error shape) before any routing or file lookup.
MAX_PATH = 2048
LOG_TARGET_MAX = 512
_DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>API keys - local API docs</title>
<link rel="stylesheet" href="/docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({url: "/openapi.json", dom_id: "#swagger-ui"});</script>
</body></html>
"""


def find_root(start: Path | None = None) -> Path:
    """The project: the nearest directory upwards holding template.yaml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "template.yaml").is_file():
            return candidate
    raise FileNotFoundError("no template.yaml in this directory or any parent; run from the project")


def state_dir(root: Path) -> Path:
    """Signing key and server.json live here (gitignored); APIKEYS_LOCAL_HOME moves it."""
    return Path(os.environ.get("APIKEYS_LOCAL_HOME") or root / ".apikeys-local")


def base_environment(endpoint: str, user_endpoint: bool, embedded: str) -> dict[str, str]:
    """What every container sees besides its function's variables, as Lambda provides them.
    Every AWS service but DynamoDB (EventBridge, SQS, ...) goes to the embedded moto unless
    AWS_ENDPOINT_URL says otherwise: nothing a handler calls leaves this machine by accident."""
    env = {
        "AWS_REGION": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        "AWS_ENDPOINT_URL": os.environ.get("AWS_ENDPOINT_URL") or embedded,
        "AWS_ENDPOINT_URL_DYNAMODB": endpoint,
        "TZ": "UTC",
        "LANG": "C.UTF-8",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONUNBUFFERED": "1",
        "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:0",
    }
    env["AWS_DEFAULT_REGION"] = env["AWS_REGION"]
    # Client ID metadata documents served on this machine (issue 21): a CA to trust and the host
    # names allowed on a loopback address. Local only: no template parameter sets them.
    for name in ("OAUTH_CIMD_CA_BUNDLE", "OAUTH_CIMD_ALLOW_PRIVATE_HOSTS"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    if user_endpoint:
        # A real table or DynamoDB Local: the caller's own credentials and profile apply.
        for name, value in os.environ.items():
            if name.startswith("AWS_") and name not in env:
                env[name] = value
        if "HOME" in os.environ:
            env["HOME"] = os.environ["HOME"]
    if not any(k in env for k in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE")):
        env.update(AWS_ACCESS_KEY_ID="local", AWS_SECRET_ACCESS_KEY="local")  # noqa: S106 - emulator only
    return env


@dataclass
class Emulator:
    """Everything `serve` and `invoke` run: template, table, containers, identity provider."""

    root: Path
    stack: Stack
    runtime: Runtime
    idp: LocalIdentityProvider
    endpoint: str
    table_name: str
    embedded: dynamo.EmbeddedDynamoDB

    @classmethod
    def start(
        cls,
        root: Path,
        table_name: str,
        endpoint: str | None = None,
        containers: int = 10,
        logs_to_stderr: bool = False,
        parameter_overrides: dict[str, str] | None = None,
    ) -> Emulator:
        user_endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or None
        stack = load_stack(root, table_name, parameter_overrides)  # a bad override fails before anything starts
        embedded = dynamo.EmbeddedDynamoDB()
        resolved = user_endpoint or embedded.endpoint
        env = base_environment(resolved, bool(user_endpoint), embedded.endpoint)
        dynamo.ensure_table(stack, table_name, resolved, env)
        runtime = Runtime(root, stack.functions, env, max_per_function=containers, logs_to_stderr=logs_to_stderr)
        idp = LocalIdentityProvider(state_dir(root))
        return cls(root, stack, runtime, idp, resolved, table_name, embedded)

    def claim(self) -> str:
        for function in self.stack.functions.values():
            if function.environment.get("ACCOUNT_ID_CLAIM"):
                return function.environment["ACCOUNT_ID_CLAIM"]
        return "sub"

    def stop(self) -> None:
        self.runtime.close()
        self.embedded.stop()


class App:
    """The WSGI application: docs routes, then every other request through the gateway."""

    def __init__(self, emulator: Emulator, log: Callable[[str], None]) -> None:
        self.emulator = emulator
        self.gateway = Gateway(emulator.stack, emulator.runtime, emulator.idp)
        self.log = log
        self._spec: bytes | None = None

    def spec(self) -> bytes:
        if self._spec is None:
            self._spec = json.dumps(build_spec(self.emulator.stack, strict=False), ensure_ascii=False).encode()
        return self._spec

    def _local(self, request: Request) -> Response | None:
        if request.path.startswith("/_local/") and not is_loopback_host(request.host):
            # DNS rebinding: a page on evil.example, its name re-pointed at 127.0.0.1, reaches this
            # server from the developer's browser with `Host: evil.example`. The dev login mints
            # management tokens, so it answers only a request addressed to a loopback name.
            return _error(403, "forbidden", "The local dev login answers only requests to 127.0.0.1, ::1 or localhost.")
        if request.path == console.LOGIN_PATH:
            return console.dev_login(
                request, self.emulator.idp, self.emulator.claim(), self._set_plan, self._start_plan
            )
        if request.method != "GET":
            return None
        page = console.static_file(self.emulator.root, request)
        if page is not None:
            return page
        if request.path == "/favicon.ico":
            return Response(status=204, headers={"Cache-Control": "max-age=86400"})  # no icon, no error
        if request.path == "/openapi.json":
            return Response(self.spec(), content_type="application/json")
        if request.path in ("/docs", "/docs/"):
            return Response(_DOCS_HTML, content_type="text/html; charset=utf-8")
        if request.path.startswith("/docs/"):
            asset = safe_join(str(SWAGGER_DIST), request.path.removeprefix("/docs/"))
            if asset is None or not console.is_file(asset):
                raise NotFound()
            return send_file(asset, request.environ)
        return None

    def _set_plan(self, account: str, plan: str) -> None:
        set_plan(self.emulator, account, plan)

    def _start_plan(self, account: str) -> None:
        start_plan(self.emulator, account)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        request = Request(environ)
        function = "-"
        response: Response | None  # None: not one of the emulator's own paths; the gateway answers it
        try:
            if len(request.path) > MAX_PATH:
                response = _error(414, "uri_too_long", f"The request path exceeds {MAX_PATH} characters.")
            else:
                response = self._local(request)
            if response is None:
                outcome = self.gateway.handle(request)
                response, function = outcome.response, outcome.function or "-"
        except NotFound:
            response = _error(404, "not_found", "No such resource.")
        ms = (time.perf_counter() - started) * 1000
        method, target = log_escape(request.method), log_escape(log_target(request))
        self.log(f"{method} {target} {response.status_code} {ms:.0f}ms {function}")
        return response(environ, start_response)


_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})
# C0 and C1 controls, DEL, and Unicode's line and paragraph separators: each could end a log line.
_LOG_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def is_loopback_host(host: str) -> bool:
    """Is the request's `Host` (with or without a port) a loopback name or address?"""
    if host.startswith("["):
        name = host[: host.find("]") + 1] if "]" in host else host
    else:
        name = host.split(":", 1)[0] if host.count(":") <= 1 else host
    name = name.lower()
    return name in _LOOPBACK_NAMES or re.fullmatch(r"127(?:\.\d{1,3}){3}", name) is not None


def log_escape(text: str) -> str:
    """An access-log field with every control character escaped (`\\x0a`): a `%0A` in a path
    (decoded before it reaches us) must not start a forged line."""
    return _LOG_CONTROL.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text
    )


def _error(status: int, code: str, message: str) -> Response:
    body = json.dumps({"error": {"code": code, "message": message}})
    return Response(body, status=status, content_type="application/json", headers={"Cache-Control": "no-store"})


def log_target(request: Request) -> str:
    """Path and query for the access log, key material redacted as in every other log. A
    query parameter is judged in its percent-decoded form too (`ot%5F...` is a key), and one
    that holds a key is logged as `name=[REDACTED]`. Overlong targets are cut."""
    target = redact(request.path)
    raw = request.query_string.decode("latin-1")
    if raw:
        pairs = []
        for pair in raw.split("&"):
            decoded = unquote_plus(pair, errors="replace")
            if redact(pair) != pair or redact(decoded) != decoded:
                name, sep, _ = pair.partition("=")
                plain = unquote_plus(name, errors="replace")
                pair = f"{name}=[REDACTED]" if sep and redact(name) == name and redact(plain) == plain else "[REDACTED]"
            pairs.append(pair)
        target += "?" + "&".join(pairs)
    return target if len(target) <= LOG_TARGET_MAX else target[:LOG_TARGET_MAX] + "…"


def set_plan(emulator: Emulator, account: str, plan: str) -> dict[str, Any]:
    result = emulator.runtime.invoke(PLAN_FUNCTION, {"account_id": account, "plan": plan})
    if not result.ok:
        raise RuntimeError(f"{PLAN_FUNCTION}: {result.payload.get('errorMessage')}")
    payload: dict[str, Any] = result.payload
    return payload


def start_plan(emulator: Emulator, account: str, plan: str = DEMO_PLAN) -> bool:
    """Put a new account (no plan, no key) on `plan`, as the demo account is; True if it did.
    An account that has a plan, or keys kept after a cancellation, is left as it is. Read
    through the template's `GET /keys` function, so nothing here knows the table's layout."""
    routes = [r for r in emulator.stack.routes if r.method == "GET" and r.path == "/keys"]
    if not routes or PLAN_FUNCTION not in emulator.stack.functions:
        return False
    event = {
        "resource": "/keys",
        "path": "/keys",
        "httpMethod": "GET",
        "headers": {},
        "multiValueHeaders": {},
        "requestContext": {
            "resourcePath": "/keys",
            "httpMethod": "GET",
            "path": f"/{emulator.stack.stage}/keys",
            "stage": emulator.stack.stage,
            "requestId": "local-dev-login",
            "accountId": "123456789012",
            "apiId": "local",
            "authorizer": {"claims": {emulator.claim(): account, "token_use": "id"}},
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": None,
        "isBase64Encoded": False,
    }
    result = emulator.runtime.invoke(routes[0].function, event)
    if not result.ok or result.payload.get("statusCode") != 200:
        raise RuntimeError(f"{routes[0].function}: could not read the account's plan")
    listing = json.loads(result.payload["body"])
    if listing.get("plan") is not None or listing.get("key_count"):
        return False
    set_plan(emulator, account, plan)
    return True


def quickstart(url: str, token: str, account: str, plan: str) -> str:
    """The copy-paste session: every step prints its body (if any), then its HTTP status."""
    body = json.dumps({"name": "My first key"})
    auth = '-H "Authorization: Bearer $TOKEN"'
    status = "-w '\\nHTTP %{http_code}\\n'"
    field = "head -n 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"{}\"])'"
    return f"""
apikeys local API: {url}   (OpenAPI: {url}/openapi.json, Swagger UI: {url}/docs)
Demo account "{account}" is on the {plan} plan; TOKEN below is its management token (valid 12 h).
Another account's token: run `apikeys-local token --account ACCOUNT` (then `apikeys-local plan set ACCOUNT pro`).

Quickstart (copy-paste into bash):

API={url}
TOKEN={token}
CREATED=$(curl -s {status} -X POST "$API/keys" {auth} -H "Content-Type: application/json" -d '{body}'); echo "$CREATED"
KEY=$(echo "$CREATED" | {field.format("key")})
KEY_ID=$(echo "$CREATED" | {field.format("id")})
curl -s {status} "$API/v1/whoami" -H "Authorization: Bearer $KEY"
curl -s {status} "$API/keys" {auth}
curl -s -o /dev/null -w "HTTP %{{http_code}}\\n" -X DELETE "$API/keys/$KEY_ID" {auth}
curl -s -i "$API/v1/whoami" -H "Authorization: Bearer $KEY"; echo

Ctrl-C stops the server.
"""


def _interrupt(signum: int, frame: Any) -> None:
    """SIGTERM and SIGINT stop the server cleanly: containers, the table, server.json."""
    raise KeyboardInterrupt


class _Later:
    """The WSGI app, set once the emulator behind it has started (the socket is bound first)."""

    app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if self.app is None:
            start_response("503 Service Unavailable", [("Content-Type", "text/plain"), ("Retry-After", "1")])
            return [b"starting"]
        result: Iterable[bytes] = self.app(environ, start_response)
        return result


def serve(
    root: Path,
    host: str,
    port: int,
    table_name: str,
    threads: int = 32,
    parameter_overrides: dict[str, str] | None = None,
) -> None:
    def log(line: str) -> None:
        print(line, flush=True)

    # The socket first, so the stack is loaded knowing its own URL: `PublicApiUrl` (the OAuth
    # issuer, the 401's resource_metadata) is this server's, as a custom domain is deployed.
    later = _Later()
    try:
        # 10 MB: API Gateway's payload limit.
        server: Any = create_server(
            later, host=host, port=port, threads=threads, ident="apikeys-local", max_request_body_size=10 * 1024 * 1024
        )
    except OSError as exc:
        raise SystemExit(f"apikeys-local: cannot listen on {host}:{port} ({exc.strerror}); set PORT") from None
    url = f"http://{host}:{server.effective_port}"
    # Only a template that declares it gets it (a project of the tests' own may not).
    declared = read_template(root / "template.yaml").get("Parameters") or {}
    own = {"PublicApiUrl": url} if "PublicApiUrl" in declared else {}
    overrides = {**own, **(parameter_overrides or {})}
    try:
        emulator = Emulator.start(root, table_name, parameter_overrides=overrides)
    except BaseException:
        server.close()
        raise
    mounted: consumers.Mounted | None = None
    pump: StreamPump | None = None
    state_file = state_dir(root) / "server.json"
    try:
        pump = StreamPump(
            emulator.stack.streams, emulator.runtime, table_name, emulator.endpoint, emulator.runtime.base_env, log
        ).start()
        if PLAN_FUNCTION in emulator.stack.functions:
            set_plan(emulator, DEMO_ACCOUNT, DEMO_PLAN)
        app = App(emulator, log)
        app.spec()  # fail at start, not on the first /openapi.json, if a route lacks its handler
        # examples/*/ consumer APIs on the same port, under the path prefixes they declare.
        mounted = consumers.mount(
            app, root, emulator.runtime, emulator.idp, emulator.stack.parameters["AWS::StackName"], log
        )
        later.app = mounted
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(
            json.dumps(
                {"url": url, "dynamodb_endpoint": emulator.endpoint, "table_name": table_name, "pid": os.getpid()}
            )
        )
        token = emulator.idp.mint(DEMO_ACCOUNT, emulator.claim())
        print(quickstart(url, token, DEMO_ACCOUNT, DEMO_PLAN), flush=True)
        print(f"Console (Settings → API Keys): {url}/  (dev login as any account)", flush=True)
        print(f"Serving on {url}", flush=True)

        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)  # even when started with SIGINT ignored (a background job)
        server.run()
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr, flush=True)
    finally:
        if server is not None:
            server.close()
        if pump is not None:
            pump.stop()
        if mounted is not None:
            mounted.close()
        state_file.unlink(missing_ok=True)
        emulator.stop()
