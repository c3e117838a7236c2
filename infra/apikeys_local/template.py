"""Reads template.yaml into what the emulator needs: functions, API routes, authorizers,
Gateway Responses and the table. The template is the only route table; nothing here names a
function or a path of this project. It is also the one template reader and handler loader of
the tests and the bench, so the three cannot read the template differently."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

from apikeys_local.waf import RateRule, rate_rules


class TemplateError(RuntimeError):
    """The template uses something the emulator cannot reproduce faithfully."""


# libyaml's parser when PyYAML has it (its wheels do): the template is ~2,000 lines, and the pure
# Python parser takes ~130 ms of every local start and of every test table (tests/helpers/support.py).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """Reads CloudFormation short-form tags (!Ref, !GetAtt, ...) as their long form."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
        return {name: value}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _tag)


def parse_template(text: str) -> Any:
    """CloudFormation YAML text (a template or a snippet of one) as data, short-form tags in
    their long form: `!Ref X` is {"Ref": "X"}, `!GetAtt A.B` is {"Fn::GetAtt": ["A", "B"]}."""
    return yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass


def read_template(path: Path) -> dict[str, Any]:
    """A CloudFormation YAML file as data, in the long form of `parse_template`."""
    template: dict[str, Any] = parse_template(path.read_text())
    return template


def load_module(source: Path, name: str) -> ModuleType:
    """Import a handler's file as module `name`, as Lambda imports CodeUri + Handler."""
    spec = importlib.util.spec_from_file_location(name, source)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# API Gateway's own defaults for the response types the emulator can produce.
DEFAULT_GATEWAY_RESPONSES: dict[str, tuple[int, str]] = {
    "UNAUTHORIZED": (401, '{"message":"Unauthorized"}'),
    "ACCESS_DENIED": (403, '{"message":"User is not authorized to access this resource with an explicit deny"}'),
    "AUTHORIZER_FAILURE": (500, '{"message":null}'),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, '{"message":null}'),
    "MISSING_AUTHENTICATION_TOKEN": (403, '{"message":"Missing Authentication Token"}'),
    "THROTTLED": (429, '{"message":"Too Many Requests"}'),
    "INTEGRATION_FAILURE": (502, '{"message":"Internal server error"}'),
    "INTEGRATION_TIMEOUT": (504, '{"message":"Endpoint request timed out"}'),
}


@dataclass(frozen=True)
class Function:
    name: str
    code_uri: Path
    handler: str
    environment: dict[str, str]
    timeout: int
    memory: int

    @property
    def module_name(self) -> str:
        return self.handler.rpartition(".")[0]

    @property
    def source(self) -> Path:
        """The file Lambda imports for this function's Handler."""
        return self.code_uri / (self.module_name.replace(".", "/") + ".py")


@dataclass(frozen=True)
class Authorizer:
    name: str
    kind: str  # "token", "request" (Lambda) or "cognito"
    header: str
    ttl: int
    function: str | None = None


@dataclass(frozen=True)
class GatewayResponse:
    status: int | None  # None: DEFAULT_4XX/5XX without StatusCode keep the type's own status
    headers: dict[str, str]
    body: str


@dataclass(frozen=True)
class Route:
    method: str  # upper case, or ANY
    path: str  # as in the template: /keys/{key_id}
    function: str
    authorizer: str | None


@dataclass(frozen=True)
class StreamSubscription:
    """A function's `Type: DynamoDB` event: Lambda polls the table's stream for it."""

    function: str
    filters: list[str]  # EventBridge-style patterns from FilterCriteria; empty means every record
    batch_size: int


@dataclass(frozen=True)
class Schedule:
    """A function's `Type: ScheduleV2` event: EventBridge Scheduler invokes it with `input`, its
    context attributes (`<aws.scheduler.scheduled-time>` …) filled in at each run. Nothing runs it
    by itself locally: `apikeys-local schedule FUNCTION` does, as the Scheduler would."""

    function: str
    name: str  # the event's key in the template
    expression: str  # cron(...) or rate(...), as written
    input: str | None  # the target's Input template; None: the Scheduler sends {}


@dataclass
class Stack:
    root: Path
    stage: str
    functions: dict[str, Function]
    routes: list[Route]
    authorizers: dict[str, Authorizer]
    gateway_responses: dict[str, GatewayResponse]
    table_logical_id: str
    table_properties: dict[str, Any]
    parameters: dict[str, str] = field(default_factory=dict)
    streams: list[StreamSubscription] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    # The stage's throttling (MethodSettings for /* and *): (rate per second, burst), if any.
    throttle: tuple[float, float] | None = None
    # Per-method MethodSettings, keyed by (path as in the template, METHOD): they replace the
    # stage's limits for that method, as API Gateway applies them.
    method_throttles: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)
    # The rate-based rules of the web ACL on the stage (WafEnabled), in priority order.
    waf_rules: list[RateRule] = field(default_factory=list)

    def gateway_response(self, kind: str) -> GatewayResponse:
        """The response of `kind` as API Gateway renders it: the type's own definition, else
        DEFAULT_4XX/DEFAULT_5XX (keeping the type's status), else API Gateway's default."""
        status, body = DEFAULT_GATEWAY_RESPONSES[kind]
        spec = self.gateway_responses.get(kind) or self.gateway_responses.get(f"DEFAULT_{str(status)[0]}XX")
        if spec is None:
            return GatewayResponse(status, {}, body)
        message = json.loads(body)["message"]
        rendered = spec.body.replace("$context.error.messageString", json.dumps(message))
        rendered = rendered.replace("$context.error.responseType", kind)
        return GatewayResponse(spec.status or status, spec.headers, rendered)

    def create_table_args(self, table_name: str) -> dict[str, Any]:
        props = self.table_properties
        args: dict[str, Any] = {
            "TableName": table_name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        for optional in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if optional in props:
                args[optional] = props[optional]
        if "StreamSpecification" in props:
            args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
        return args


class _Resolver:
    """Evaluates the few intrinsics that matter locally: Ref, GetAtt, Sub, If, Equals."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str], refs: dict[str, str]) -> None:
        self.template = template
        self.parameters = parameters
        self.refs = refs
        self.conditions = template.get("Conditions") or {}

    def condition(self, name: str) -> bool:
        return bool(self(self.conditions[name]))

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict):
            return value
        if len(value) != 1:
            return {k: self(v) for k, v in value.items()}
        [(key, arg)] = value.items()
        if key == "Ref":
            if arg in self.parameters:
                return self.parameters[arg]
            if arg in self.refs:
                return self.refs[arg]
            return arg
        if key == "Fn::GetAtt":
            return f"{arg[0]}.{arg[1]}"
        if key == "Fn::Sub":
            text = arg if isinstance(arg, str) else arg[0]
            extra = {} if isinstance(arg, str) else self(arg[1])
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(extra.get(m[1]) or self({"Ref": m[1]})), text)
        if key == "Fn::Equals":
            a, b = self(arg)
            return str(a) == str(b)
        if key == "Fn::If":
            cond, yes, no = arg
            return self(yes if self.condition(cond) else no)
        if key == "Fn::Not":
            return not self(arg[0])
        if key == "Condition":
            return self.condition(arg)
        return {k: self(v) for k, v in value.items()}


def _parameters(template: dict[str, Any], overrides: dict[str, str]) -> dict[str, str]:
    params = {"AWS::Region": "us-east-1", "AWS::AccountId": "123456789012", "AWS::Partition": "aws"}
    params["AWS::StackName"] = "apikeys-local"
    params["AWS::URLSuffix"] = "amazonaws.com"
    for name, spec in (template.get("Parameters") or {}).items():
        params[name] = str(spec.get("Default", ""))
    unknown = set(overrides) - set(template.get("Parameters") or {})
    if unknown:
        raise TemplateError(f"unknown template parameters: {sorted(unknown)}")
    for name, value in overrides.items():
        # As CloudFormation does: an override outside AllowedValues or AllowedPattern is refused,
        # so the emulator never runs what a deployment could not (AccountIdClaim=email, say).
        spec = template["Parameters"][name]
        allowed = spec.get("AllowedValues")
        pattern = spec.get("AllowedPattern")
        if (allowed is not None and value not in [str(v) for v in allowed]) or (
            pattern is not None and not re.fullmatch(pattern, value)
        ):
            raise TemplateError(f"parameter {name}: {value!r} is not allowed ({spec.get('ConstraintDescription', '')})")
    params.update(overrides)
    return params


def gateway_responses(specs: dict[str, Any]) -> dict[str, GatewayResponse]:
    """An API's `GatewayResponses` as the emulated gateway renders them. DEFAULT_4XX/5XX have
    no status of their own: the response type they stand in for keeps its status."""
    responses: dict[str, GatewayResponse] = {}
    for kind, spec in specs.items():
        default_status, default_body = DEFAULT_GATEWAY_RESPONSES.get(kind, (500, '{"message":null}'))
        headers = ((spec.get("ResponseParameters") or {}).get("Headers")) or {}
        templates = spec.get("ResponseTemplates") or {}
        status = spec.get("StatusCode", None if kind in ("DEFAULT_4XX", "DEFAULT_5XX") else default_status)
        responses[kind] = GatewayResponse(
            status=None if status is None else int(status),
            # Header values are mapping expressions; a static value is quoted: "'Bearer'".
            headers={k: str(v).strip("'") for k, v in headers.items()},
            body=templates.get("application/json", default_body),
        )
    return responses


def function_of(name: str, props: dict[str, Any], globals_fn: dict[str, Any], base: Path, resolve: Any) -> Function:
    """A function as Lambda runs it: its properties over the template's Globals, its code
    relative to the template's folder `base`, its environment resolved."""
    env = {
        **((globals_fn.get("Environment") or {}).get("Variables") or {}),
        **((props.get("Environment") or {}).get("Variables") or {}),
    }
    return Function(
        name=name,
        code_uri=base / str(props.get("CodeUri", globals_fn.get("CodeUri", "."))),
        handler=str(props.get("Handler", globals_fn.get("Handler", ""))),
        environment={k: str(resolve(v)) for k, v in env.items()},
        timeout=int(resolve(props.get("Timeout", globals_fn.get("Timeout", 3)))),
        memory=int(resolve(props.get("MemorySize", globals_fn.get("MemorySize", 128)))),
    )


def load_stack(root: Path, table_name: str, overrides: dict[str, str] | None = None) -> Stack:
    """The stack as the emulator runs it; `table_name` is what `Ref` of the table resolves to."""
    template = read_template(root / "template.yaml")
    resources: dict[str, Any] = template["Resources"]
    tables = [name for name, r in resources.items() if r["Type"] == "AWS::DynamoDB::Table"]
    if len(tables) != 1:
        raise TemplateError(f"expected exactly one AWS::DynamoDB::Table, found {len(tables)}")
    params = _parameters(template, overrides or {})
    resolve = _Resolver(template, params, {tables[0]: table_name})

    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    functions: dict[str, Function] = {}
    routes: list[Route] = []
    streams: list[StreamSubscription] = []
    schedules: list[Schedule] = []
    apis = {name: r for name, r in resources.items() if r["Type"] == "AWS::Serverless::Api"}
    if len(apis) > 1:
        raise TemplateError("the emulator serves one AWS::Serverless::Api")
    api_name, api = next(iter(apis.items())) if apis else ("ServerlessRestApi", {"Properties": {}})
    api_props = resolve(api.get("Properties") or {})
    auth = api_props.get("Auth") or {}
    default_authorizer = auth.get("DefaultAuthorizer")

    for name, res in resources.items():
        if res["Type"] != "AWS::Serverless::Function":
            continue
        props = res.get("Properties") or {}
        functions[name] = function_of(name, props, globals_fn, root, resolve)
        for event_name, event in (props.get("Events") or {}).items():
            if event.get("Type") == "ScheduleV2":
                ev = event.get("Properties") or {}
                text = ev.get("Input")
                expression = str(ev.get("ScheduleExpression", ""))
                schedules.append(Schedule(name, event_name, expression, None if text is None else str(resolve(text))))
                continue
            if event.get("Type") == "DynamoDB":
                ev = event.get("Properties") or {}
                filters = [str(f["Pattern"]) for f in (ev.get("FilterCriteria") or {}).get("Filters") or []]
                streams.append(StreamSubscription(name, filters, int(ev.get("BatchSize", 100))))
                continue
            if event.get("Type") != "Api":
                continue
            ev = event.get("Properties") or {}
            rest_api = ev.get("RestApiId")
            if rest_api is not None and resolve(rest_api) != api_name:
                raise TemplateError(f"{name}: Api event on an unknown RestApiId {rest_api!r}")
            authorizer = (ev.get("Auth") or {}).get("Authorizer", default_authorizer)
            if authorizer in ("NONE", "AWS_IAM"):
                authorizer = None if authorizer == "NONE" else authorizer
            routes.append(Route(str(ev["Method"]).upper(), str(ev["Path"]), name, authorizer))

    authorizers: dict[str, Authorizer] = {}
    for name, spec in (auth.get("Authorizers") or {}).items():
        identity = spec.get("Identity") or {}
        ttl = int(identity.get("ReauthorizeEvery", 300))
        if "UserPoolArn" in spec:
            authorizers[name] = Authorizer(name, "cognito", identity.get("Header", "Authorization"), ttl)
            continue
        fn = str(spec.get("FunctionArn", "")).split(".", 1)[0]
        if fn not in functions:
            raise TemplateError(f"authorizer {name}: FunctionArn must be !GetAtt <Function>.Arn of this template")
        kind = "token" if spec.get("FunctionPayloadType", "TOKEN") == "TOKEN" else "request"
        header = identity.get("Header") or "Authorization"
        if kind == "request":
            headers = identity.get("Headers") or ["Authorization"]
            header = headers[0]
        authorizers[name] = Authorizer(name, kind, header, ttl, fn)
    for route in routes:
        if route.authorizer is not None and route.authorizer not in authorizers:
            raise TemplateError(f"{route.function}: authorizer {route.authorizer!r} is not defined on the API")

    responses = gateway_responses(api_props.get("GatewayResponses") or {})

    throttle: tuple[float, float] | None = None
    method_throttles: dict[tuple[str, str], tuple[float, float]] = {}
    for setting in api_props.get("MethodSettings") or []:
        path, method = setting.get("ResourcePath"), setting.get("HttpMethod")
        if "ThrottlingRateLimit" not in setting and "ThrottlingBurstLimit" not in setting:
            continue
        # API Gateway's account defaults stand in for a limit the template leaves out.
        limits = (float(setting.get("ThrottlingRateLimit", 10000)), float(setting.get("ThrottlingBurstLimit", 5000)))
        if (path, method) == ("/*", "*"):
            throttle = limits
        elif isinstance(path, str) and path.startswith("/") and isinstance(method, str) and method != "*":
            # A method's resource path has its slashes encoded as ~1: /~1v1~1credentials~1revoke.
            method_throttles[(path[1:].replace("~1", "/"), method.upper())] = limits
        else:
            raise TemplateError("the emulator applies MethodSettings for /* and * or for one path and method")

    return Stack(
        root=root,
        stage=str(api_props.get("StageName", "Prod")),
        functions=functions,
        routes=routes,
        authorizers=authorizers,
        gateway_responses=responses,
        table_logical_id=tables[0],
        table_properties=resources[tables[0]]["Properties"],
        parameters=params,
        streams=streams,
        schedules=schedules,
        throttle=throttle,
        method_throttles=method_throttles,
        waf_rules=rate_rules(resources, resolve),
    )
