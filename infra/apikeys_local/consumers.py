"""Consumer APIs served beside the key service: every `examples/*/template.yaml` whose
`Metadata.apikeys-local.PathPrefixes` maps its APIs to path prefixes is served on the same
port, each API under its prefix, with `!ImportValue` of one of our exports resolved to our
local function (the authorizer). REST APIs (`AWS::Serverless::Api`) run through the same
emulated API Gateway as ours; HTTP APIs (`AWS::Serverless::HttpApi`) get payload 2.0 with a
Lambda authorizer answering simple responses, as API Gateway's HTTP APIs do."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from apikeys_local.gateway import ACCOUNT_ID, REGION, Gateway, Outcome, _rule_path
from apikeys_local.idp import LocalIdentityProvider
from apikeys_local.runtime import InvokeResult, Runtime
from apikeys_local.template import (
    Authorizer,
    Function,
    Route,
    Stack,
    TemplateError,
    _parameters,
    _Resolver,
    function_of,
    gateway_responses,
    read_template,
)

METADATA_KEY = "apikeys-local"
# The parameter a consumer template names our stack with; set to the local stack's name.
STACK_NAME_PARAMETER = "ApiKeysStackName"


def exports(root: Path, stack_name: str) -> dict[str, str]:
    """Our template's exports that name one of our functions: export name -> function."""
    template = read_template(root / "template.yaml")
    params = _parameters(template, {})
    params["AWS::StackName"] = stack_name
    resolve = _Resolver(template, params, {})
    found: dict[str, str] = {}
    for output in (template.get("Outputs") or {}).values():
        value, export = output.get("Value"), (output.get("Export") or {}).get("Name")
        if export is not None and isinstance(value, dict) and isinstance(value.get("Fn::GetAtt"), list):
            function, attribute = value["Fn::GetAtt"]
            if (
                attribute == "Arn"
                and template["Resources"].get(function, {}).get("Type") == "AWS::Serverless::Function"
            ):
                found[str(resolve(export))] = function
    return found


@dataclass(frozen=True)
class HttpRoute:
    method: str
    path: str
    function: str


@dataclass
class ConsumerApi:
    """One API of a consumer template, served under `prefix`."""

    name: str
    prefix: str
    kind: str  # "rest" or "http"
    stack: Stack | None = None  # REST: what Gateway needs
    http_routes: list[HttpRoute] | None = None  # HTTP API
    http_authorizer: tuple[str, str] | None = None  # HTTP API: (identity header, function)


def _import(value: Any, exported: dict[str, str], where: str) -> str:
    """`!ImportValue` of one of our exports, resolved to our local function's name."""
    if isinstance(value, dict) and set(value) == {"Fn::ImportValue"}:
        name = str(value["Fn::ImportValue"])
        if name in exported:
            return exported[name]
        raise TemplateError(f"{where}: imports {name!r}, which the local stack does not export")
    raise TemplateError(f"{where}: the local server serves authorizers imported from our stack only")


def load_consumer(root: Path, path: Path, stack_name: str) -> tuple[dict[str, Function], list[ConsumerApi]]:
    """A consumer template's functions and APIs, or nothing if it declares no path prefixes."""
    template = read_template(path)
    prefixes = ((template.get("Metadata") or {}).get(METADATA_KEY) or {}).get("PathPrefixes") or {}
    if not prefixes:
        return {}, []
    overrides = {STACK_NAME_PARAMETER: stack_name} if STACK_NAME_PARAMETER in (template.get("Parameters") or {}) else {}
    params = _parameters(template, overrides)
    resolve = _Resolver(template, params, {})
    exported = exports(root, stack_name)
    resources: dict[str, Any] = template["Resources"]
    globals_ = template.get("Globals") or {}
    globals_fn = globals_.get("Function") or {}

    functions: dict[str, Function] = {}
    for name, res in resources.items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        props = res.get("Properties") or {}
        functions[name] = function_of(name, props, globals_fn, path.parent, resolve)

    apis: list[ConsumerApi] = []
    for api_name, prefix in prefixes.items():
        resource = resources.get(api_name) or {}
        props = resolve(resource.get("Properties") or {})
        auth = props.get("Auth") or {}
        default = auth.get("DefaultAuthorizer")
        specs = auth.get("Authorizers") or {}
        where = f"{path.parent.name}/{api_name}"
        if resource.get("Type") == "AWS::Serverless::Api":
            authorizers: dict[str, Authorizer] = {}
            for name, spec in specs.items():
                identity = spec.get("Identity") or {}
                kind = "token" if spec.get("FunctionPayloadType", "TOKEN") == "TOKEN" else "request"
                header = identity.get("Header") if kind == "token" else (identity.get("Headers") or [None])[0]
                if not header:
                    raise TemplateError(f"{where}: authorizer {name} has no identity source")
                function = _import(spec.get("FunctionArn"), exported, where)
                authorizers[name] = Authorizer(name, kind, header, int(identity.get("ReauthorizeEvery", 300)), function)
            routes = [
                Route(str(ev["Method"]).upper(), str(ev["Path"]), fn, default)
                for fn, ev in _events(resources, "Api", "RestApiId", api_name)
            ]
            responses = {
                **((globals_.get("Api") or {}).get("GatewayResponses") or {}),
                **(props.get("GatewayResponses") or {}),
            }
            stack = Stack(
                root=path.parent,
                stage=str(props.get("StageName", "Prod")),
                functions=functions,
                routes=routes,
                authorizers=authorizers,
                gateway_responses=gateway_responses(resolve(responses)),
                table_logical_id="",
                table_properties={},
                parameters=params,
            )
            apis.append(ConsumerApi(api_name, str(prefix).rstrip("/"), "rest", stack=stack))
        elif resource.get("Type") == "AWS::Serverless::HttpApi":
            http_authorizer = None
            if default is not None:
                spec = specs[default]
                identity = spec.get("Identity") or {}
                if int(identity.get("ReauthorizeEvery", 300)) != 0 or not spec.get("EnableSimpleResponses"):
                    raise TemplateError(f"{where}: the local server emulates simple responses without a cache only")
                header = (identity.get("Headers") or ["Authorization"])[0]
                http_authorizer = (str(header), _import(spec.get("FunctionArn"), exported, where))
            http_routes = [
                HttpRoute(str(ev["Method"]).upper(), str(ev["Path"]), fn)
                for fn, ev in _events(resources, "HttpApi", "ApiId", api_name)
            ]
            apis.append(
                ConsumerApi(
                    api_name, str(prefix).rstrip("/"), "http", http_routes=http_routes, http_authorizer=http_authorizer
                )
            )
        else:
            raise TemplateError(f"{where}: PathPrefixes names no AWS::Serverless::Api or HttpApi")
    return functions, apis


def _events(resources: dict[str, Any], kind: str, id_field: str, api: str) -> Iterable[tuple[str, dict[str, Any]]]:
    for name, res in resources.items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        for event in ((res.get("Properties") or {}).get("Events") or {}).values():
            props = event.get("Properties") or {}
            if event.get("Type") == kind and props.get(id_field) == {"Ref": api}:
                yield name, props


class HttpApiGateway:
    """An HTTP API: Lambda authorizer with payload 2.0 and simple responses, no result cache,
    and payload 2.0 integrations. Refusals are API Gateway's own: no identity 401, a refused
    key 403, an authorizer failure 500 (HTTP APIs have no Gateway Responses)."""

    def __init__(self, api: ConsumerApi, invoke: Callable[[str, Any], InvokeResult]) -> None:
        self.api = api
        self.invoke = invoke
        routes = api.http_routes or []
        self.routes = routes
        rules = [
            Rule(_rule_path(r.path), endpoint=i, methods=None if r.method == "ANY" else [r.method])
            for i, r in enumerate(routes)
        ]
        self.url_map = Map(rules, strict_slashes=False, merge_slashes=False)

    @staticmethod
    def _message(status: int, message: str, request_id: str) -> Response:
        body = json.dumps({"message": message})
        return Response(body, status=status, content_type="application/json", headers={"apigw-requestid": request_id})

    def event(self, request: Request, route: HttpRoute, params: dict[str, str], request_id: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        headers = {
            name.lower(): ",".join(request.headers.getlist(name)) for name in dict.fromkeys(request.headers.keys())
        }
        raw = request.get_data(cache=True)
        body, is_base64 = None, False
        if raw:
            try:
                body = raw.decode("utf-8")
            except UnicodeDecodeError:
                body, is_base64 = base64.b64encode(raw).decode(), True
        route_key = f"{route.method} {route.path}"
        return {
            "version": "2.0",
            "routeKey": route_key,
            "rawPath": request.path,
            "rawQueryString": request.query_string.decode("latin-1"),
            "headers": headers,
            "queryStringParameters": {k: ",".join(v) for k, v in request.args.lists()} or None,
            "pathParameters": params or None,
            "requestContext": {
                "accountId": ACCOUNT_ID,
                "apiId": self.api.name.lower(),
                "domainName": request.host,
                "domainPrefix": request.host.split(":")[0].split(".")[0],
                "http": {
                    "method": request.method,
                    "path": request.path,
                    "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                    "sourceIp": request.remote_addr or "127.0.0.1",
                    "userAgent": request.user_agent.string,
                },
                "requestId": request_id,
                "routeKey": route_key,
                "stage": "$default",
                "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "timeEpoch": int(now.timestamp() * 1000),
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }

    def handle(self, request: Request) -> Outcome:
        request_id = str(uuid.uuid4())
        try:
            index, params = self.url_map.bind_to_environ(request.environ).match()
        except (NotFound, MethodNotAllowed):
            return Outcome(self._message(404, "Not Found", request_id))
        route = self.routes[index]
        event = self.event(request, route, dict(params), request_id)
        if self.api.http_authorizer is not None:
            header, function = self.api.http_authorizer
            identity = request.headers.get(header)
            if not identity:
                return Outcome(self._message(401, "Unauthorized", request_id), route.function)
            arn = f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{event['requestContext']['apiId']}/$default/"
            auth_event = {
                **{k: v for k, v in event.items() if k not in ("body", "isBase64Encoded")},
                "type": "REQUEST",
                "routeArn": arn + f"{route.method}{request.path}",
                "identitySource": [identity],
            }
            result = self.invoke(function, auth_event)
            answer = result.payload if result.ok else None
            context = answer.get("context") if isinstance(answer, dict) else None
            if not isinstance(answer, dict) or not isinstance(answer.get("isAuthorized"), bool):
                return Outcome(self._message(500, "Internal Server Error", request_id), route.function)
            if not answer["isAuthorized"]:
                return Outcome(self._message(403, "Forbidden", request_id), route.function)
            event["requestContext"]["authorizer"] = {"lambda": context if isinstance(context, dict) else {}}
        result = self.invoke(route.function, event)
        if not result.ok:
            return Outcome(self._message(500, "Internal Server Error", request_id), route.function)
        payload = result.payload
        if not (isinstance(payload, dict) and "statusCode" in payload):
            # Payload 2.0 without a statusCode: API Gateway answers 200 with the value as JSON.
            payload = {"statusCode": 200, "body": json.dumps(payload), "headers": {"content-type": "application/json"}}
        response = Gateway.proxy_response(payload, request_id)
        if response is None:
            return Outcome(self._message(500, "Internal Server Error", request_id), route.function)
        return Outcome(response, route.function)


class _Runtimes:
    """Our functions run in our runtime; the consumer's in its own (its CodeUri root)."""

    def __init__(self, ours: Runtime, theirs: Runtime) -> None:
        self.ours, self.theirs = ours, theirs

    def invoke(self, name: str, event: Any) -> InvokeResult:
        return (self.ours if name in self.ours.functions else self.theirs).invoke(name, event)


class Mounted:
    """WSGI: requests under a consumer API's prefix go to that API (the prefix stripped, as a
    custom domain's base path mapping does); everything else to the key service's app."""

    def __init__(
        self, app: Any, apis: list[tuple[str, Any]], log: Callable[[str], None], runtime: Runtime | None
    ) -> None:
        self.app = app
        self.apis = sorted(apis, key=lambda a: -len(a[0]))  # the longest prefix wins
        self.log = log
        self.runtime = runtime

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        for prefix, gateway in self.apis:
            if path == prefix or path.startswith(prefix + "/"):
                started = time.perf_counter()
                inner = {**environ, "PATH_INFO": path[len(prefix) :] or "/"}
                inner["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + prefix
                outcome = gateway.handle(Request(inner))
                ms = (time.perf_counter() - started) * 1000
                method = environ.get("REQUEST_METHOD", "-")
                from apikeys_local.server import log_target  # the access log's redaction; imports us

                status, function = outcome.response.status_code, outcome.function or "-"
                self.log(f"{method} {log_target(Request(environ))} {status} {ms:.0f}ms {function}")
                response: Response = outcome.response
                return response(environ, start_response)
        return self.app(environ, start_response)  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.runtime is not None:
            self.runtime.close()


def mount(
    app: Any, root: Path, ours: Runtime, idp: LocalIdentityProvider, stack_name: str, log: Callable[[str], None]
) -> Mounted:
    """`app` with every example's consumer APIs mounted under their prefixes."""
    functions: dict[str, Function] = {}
    apis: list[ConsumerApi] = []
    for path in sorted(root.glob("examples/*/template.yaml")):
        found, mounted = load_consumer(root, path, stack_name)
        clash = set(found) & (set(functions) | set(ours.functions))
        if clash:
            raise TemplateError(f"{path.parent.name}: function names already served: {sorted(clash)}")
        functions.update(found)
        apis.extend(mounted)
    if not apis:
        return Mounted(app, [], log, None)
    theirs = Runtime(root, functions, ours.base_env, max_per_function=ours.max_per_function)
    runtimes: Any = _Runtimes(ours, theirs)
    served: list[tuple[str, Any]] = []
    for api in apis:
        if api.kind == "rest":
            assert api.stack is not None
            served.append((api.prefix, Gateway(api.stack, runtimes, idp)))
        else:
            served.append((api.prefix, HttpApiGateway(api, runtimes.invoke)))
    for api in apis:
        log(f"consumer API {api.name} ({api.kind.upper()}): {api.prefix}/…")
    return Mounted(app, served, log, theirs)
