"""Property-based fuzzing of every handler in template.yaml with arbitrary API Gateway events.

HTTP functions are enumerated from the template's Api events, so a new route is fuzzed with
no change here. Only contract status codes come back (never a 500 for bad input, never an
unhandled exception), errors have the contract's shape, and the authorizer allows exactly the
live keys. Runs on moto for speed; derandomized, so CI runs the same examples every time.
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from apikeys import keys
from apikeys.errors import InvalidRequest
from tests.helpers import figures
from tests.helpers.invariants import check_table, snapshot
from tests.helpers.support import METHOD_ARN, Api, LambdaContext, load_function, load_template, rest_event

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "1000"))  # per handler; 2000 doubles the stress tier's longest test
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
# What README's error table lets our handlers answer on moto with no fault: 503 is DynamoDB
# failing, 413 and 429 are API Gateway's own; none of them may come from bad input.
CONTRACT_STATUSES = {200, 201, 204, 400, 401, 403, 404, 409}
MAX_BODY = 10 * 1024  # README: "body over 10 KB" is invalid_request
BODY_ROUTES = {
    ("POST", "/keys"): "required",
    ("PATCH", "/keys/{key_id}"): "required",
    ("POST", "/keys/{key_id}/roll"): "optional",
}
SECTION = "fuzz examples per handler (moto)"


@dataclass(frozen=True)
class Route:
    function: str  # functions/<function>/
    method: str
    path: str
    authorizer: str | None


def _function_dir(resource: dict[str, Any]) -> str:
    return resource["Properties"]["CodeUri"].strip("/").split("/")[-1]


def http_routes() -> list[Route]:
    routes = []
    for resource in load_template()["Resources"].values():
        if resource["Type"] != "AWS::Serverless::Function":
            continue
        for event in resource["Properties"].get("Events", {}).values():
            if event["Type"] == "Api":
                props = event["Properties"]
                auth = props.get("Auth", {}).get("Authorizer")
                routes.append(Route(_function_dir(resource), props["Method"].upper(), props["Path"], auth))
    return routes


def lambda_authorizers() -> set[str]:
    """Functions that API Gateway calls as Lambda authorizers (FunctionArn: !GetAtt X.Arn)."""
    template = load_template()
    names = set()
    for resource in template["Resources"].values():
        authorizers = resource.get("Properties", {}).get("Auth", {}).get("Authorizers", {})
        for authorizer in authorizers.values():
            arn = authorizer.get("FunctionArn", {})
            if isinstance(arn, dict) and "Fn::GetAtt" in arn:
                logical_id = arn["Fn::GetAtt"][0]
                names.add(_function_dir(template["Resources"][logical_id]))
    return names


def direct_invoke_functions() -> list[str]:
    resources = load_template()["Resources"].values()
    return sorted(
        _function_dir(r)
        for r in resources
        if r["Type"] == "AWS::Serverless::Function"
        and not r["Properties"].get("Events")
        and _function_dir(r) not in lambda_authorizers()
    )


# -- strategies -------------------------------------------------------------------------

any_text = st.text(st.characters(blacklist_categories=()), max_size=60)  # includes surrogates, controls
junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    any_text,
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=12,
)
names = st.one_of(any_text, st.text(max_size=70), st.sampled_from(["My key", " ", "", "a" * 64, "a" * 65]), junk)
json_bodies = st.one_of(
    st.builds(lambda n: json.dumps({"name": n}), names),
    st.builds(
        lambda n, extra: json.dumps({"name": n, **extra}), names, st.dictionaries(any_text, json_values, max_size=2)
    ),
    st.builds(json.dumps, json_values),
)
raw_bodies = st.one_of(
    json_bodies,
    any_text,
    st.integers(1, 60_000).map(lambda n: "[" * n + "]" * n),  # deep nesting
    st.integers(1, 60_000).map(lambda n: '{"a":' * n + "1" + "}" * n),
    st.integers(10_000, 40_000).map(lambda n: json.dumps({"name": "x" * n})),  # huge
    st.integers(5_000, 12_000).map(lambda n: json.dumps({"name": "é" * n})),  # over 10 KB in bytes only
)
bodies = st.one_of(
    st.tuples(raw_bodies, st.sampled_from([False, None])),
    st.tuples(raw_bodies.map(lambda b: base64.b64encode(b.encode("utf-8", "surrogatepass")).decode()), st.just(True)),
    st.tuples(st.one_of(any_text, st.just("%%%not base64")), st.just(True)),
    st.tuples(junk, junk),
)
header_names = st.sampled_from(
    ["Authorization", "authorization", "AUTHORIZATION", "Content-Type", "content-type", "X-Api-Key"]
)
header_values = st.one_of(
    any_text, junk, st.builds(lambda k: f"Bearer {k}", st.just(None).map(lambda _: keys.generate("ot_")))
)
headers = st.one_of(junk, st.dictionaries(header_names | any_text, header_values, max_size=5))
multi_headers = st.one_of(
    junk, st.dictionaries(header_names | any_text, st.lists(header_values, max_size=3) | junk, max_size=4)
)
path_values = st.one_of(
    any_text,
    st.sampled_from(["a/b", "../keys", "%2F", "key_" + "A" * 20, "\x00", "key_/..", "\u202e", "k" * 500]),
    st.builds(lambda: keys.new_key_id()),
)


def cognito_context() -> st.SearchStrategy[Any]:
    claims = st.one_of(
        junk,
        st.fixed_dictionaries(
            {
                "sub": st.one_of(any_text, junk, st.sampled_from(["acct-fuzz", "acct-2"])),
                "token_use": st.one_of(st.sampled_from(["id", "access"]), any_text, junk),
            }
        ),
    )
    return st.one_of(
        junk, st.fixed_dictionaries({"authorizer": st.one_of(junk, st.fixed_dictionaries({"claims": claims}))})
    )


def key_context() -> st.SearchStrategy[Any]:
    fields = st.fixed_dictionaries({"account_id": any_text | junk, "key_id": any_text | junk, "plan": any_text | junk})
    return st.one_of(
        junk, st.fixed_dictionaries({"authorizer": st.one_of(junk, fields, st.fixed_dictionaries({"lambda": fields}))})
    )


@st.composite
def rest_events(draw: st.DrawFn, route: Route) -> dict[str, Any]:
    params = {name: draw(path_values) for name in re.findall(r"{(\w+)}", route.path)}
    path = route.path
    for name, value in params.items():
        path = path.replace("{" + name + "}", value if isinstance(value, str) else "x")
    body, b64 = draw(bodies)
    context = draw(cognito_context() if route.authorizer != "KeyAuthorizer" else key_context())
    if isinstance(context, dict):
        context.update({"resourcePath": route.path, "httpMethod": route.method, "stage": "v1", "requestId": "r"})
    event: dict[str, Any] = {
        "resource": draw(st.one_of(st.just(route.path), any_text, junk)),
        "path": draw(st.one_of(st.just(path), st.just(path + "/"), any_text, junk)),
        "httpMethod": draw(
            st.one_of(st.just(route.method), st.sampled_from(["GET", "POST", "DELETE", "PUT", "get"]), junk)
        ),
        "headers": draw(headers),
        "multiValueHeaders": draw(multi_headers),
        "queryStringParameters": draw(st.one_of(junk, st.dictionaries(any_text, any_text, max_size=3))),
        "multiValueQueryStringParameters": draw(junk),
        "pathParameters": draw(st.one_of(st.just(params or None), junk, st.dictionaries(any_text, junk, max_size=2))),
        "stageVariables": draw(junk),
        "requestContext": context,
        "body": body,
        "isBase64Encoded": b64,
    }
    # "null everywhere": some fields become null, some disappear.
    for field in draw(st.sets(st.sampled_from(sorted(event)), max_size=3)):
        event[field] = None
    for field in draw(st.sets(st.sampled_from(sorted(event)), max_size=2)):
        event.pop(field, None)
    if draw(st.booleans()):  # half of them reach the route: identity and body decide the status
        event.update({"resource": route.path, "path": path, "httpMethod": route.method})
    return event


# -- HTTP handlers ------------------------------------------------------------------------


def _signed_in(event: dict[str, Any]) -> bool:
    """A Cognito ID token's claims with an account (README: no identity is 401)."""
    context = event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    claims = authorizer.get("claims") if isinstance(authorizer, dict) else None
    if not isinstance(claims, dict) or claims.get("token_use") != "id":
        return False
    return isinstance(claims.get("sub"), str) and bool(claims["sub"].strip())


def _junk_body(event: dict[str, Any], need: str) -> bool:
    """Not a JSON object of at most 10 KB (an absent optional body is no junk)."""
    raw = event.get("body")
    if raw in (None, "") and need == "optional":
        return False
    if not isinstance(raw, str) or raw == "":
        return True
    data = raw.encode("utf-8", "surrogatepass")
    if event.get("isBase64Encoded") is True:
        try:
            data = base64.b64decode(data, validate=True)
        except ValueError:
            return True
    if len(data) > MAX_BODY:
        return True
    try:
        return not isinstance(json.loads(data), dict)
    except (ValueError, RecursionError):
        return True


# POST /mcp also refuses at the HTTP level as MCP's transport does (405 GET/DELETE, 406 without
# a JSON Accept, 415), refuses a body over 10 KB with 413 before the SDK reads it (issue 22 item 9),
# and answers a malformed JSON-RPC message with a JSON-RPC error.
MCP_STATUSES = {405, 406, 413, 415}
# The public routes (no authorizer), by their contract (issue 14): the revocation API answers 202
# whatever the credentials were and 400 for a bad body; the partner endpoint 200, 400, 401
# (missing or bad signature) or 503 (GitHub's keys could not be fetched: no network here).
PUBLIC_STATUSES = {
    "/v1/credentials/revoke": {202, 400},
    "/secret-scanning/github": {200, 400, 401, 503},
    # OAuth (docs/mcp.md): metadata is public (400 only for a body that is not valid base64 or is
    # over 10 KB); the protocol's endpoints answer RFC 6749 errors (400, 401 for a client that
    # fails authentication), a redirect, or success; never a 5xx.
    "/.well-known/oauth-protected-resource": {200, 400},
    "/.well-known/oauth-protected-resource/mcp": {200, 400},
    "/.well-known/oauth-authorization-server": {200, 400},
    "/oauth/authorize": {302, 400},
    "/oauth/token": {200, 400, 401},
    "/oauth/register": {201, 400},
    "/oauth/revoke": {200, 400, 401},
}


def _is_json_rpc_error(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return body.get("jsonrpc") == "2.0" and isinstance(error, dict) and isinstance(error.get("code"), int)


def expected_statuses(route: Route, event: dict[str, Any]) -> set[int]:
    """What the contract allows for this input: an event API Gateway routed here with no
    identity is 401, one signed in with a junk body is 400; anything else a contract status."""
    pattern = re.sub(r"\\{\w+\\}", "[A-Za-z0-9._~-]+", re.escape(route.path))  # unreserved characters
    path = event.get("path")
    routed = event.get("httpMethod") == route.method and isinstance(path, str) and re.fullmatch(pattern, path)
    if route.function == "mcp":
        return CONTRACT_STATUSES | MCP_STATUSES
    if route.authorizer is None:
        return PUBLIC_STATUSES[route.path] if routed else CONTRACT_STATUSES
    if not routed or route.authorizer == "KeyAuthorizer":
        return CONTRACT_STATUSES
    if not _signed_in(event):
        return {401}
    need = BODY_ROUTES.get((route.method, route.path))
    if need and _junk_body(event, need):
        return {400}
    return CONTRACT_STATUSES


def _check_http_response(result: Any, allowed: set[int] = CONTRACT_STATUSES) -> int:
    assert isinstance(result, dict), result
    status = result["statusCode"]
    assert status in allowed, (status, allowed, result.get("body"))
    if (
        allowed >= MCP_STATUSES
        and status in (200, 400, 404)
        and _is_json_rpc_error(json.loads(result["body"] or "null"))
    ):
        return int(status)
    if status >= 400:
        body = json.loads(result["body"])
        if isinstance(body.get("error"), str):  # an OAuth endpoint: RFC 6749's error shape
            assert set(body) <= {"error", "error_description", "error_uri"} and body["error"], body
            return int(status)
        assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if status == 201 and "key" in (created := json.loads(result["body"])):
        assert keys.is_well_formed(created["key"], "ot_")
    return status


@pytest.mark.parametrize("route", http_routes(), ids=lambda r: f"{r.method} {r.path}")
def test_http_handler_answers_only_contract_statuses(
    moto_db: None, monkeypatch: pytest.MonkeyPatch, route: Route
) -> None:
    from apikeys.config import get_settings

    monkeypatch.setenv("DEFAULT_PLAN", "pro")  # any fuzzed account may create up to 3 keys
    get_settings.cache_clear()
    Api.set_plan("acct-fuzz", "agency")
    handler = load_function(route.function).lambda_handler
    statuses: dict[int, int] = {}
    narrowed = {True: 0, False: 0}

    @FUZZ
    @given(event=rest_events(route))
    def run(event: dict[str, Any]) -> None:
        allowed = expected_statuses(route, event)
        status = _check_http_response(handler(event, LambdaContext(function_name=route.function)), allowed)
        narrowed[len(allowed) == 1] += 1
        statuses[status] = statuses.get(status, 0) + 1

    run()
    total = sum(statuses.values())
    assert total >= EXAMPLES
    if route.authorizer not in (None, "KeyAuthorizer"):  # the exact-status oracle really ran
        assert narrowed[True] >= EXAMPLES // 10, narrowed
    figures.add(SECTION, f"{route.function} ({route.method} {route.path})", total)
    print(f"{route.method} {route.path}: {total} examples, statuses {dict(sorted(statuses.items()))}")
    check_table(get_settings().table_name)


@pytest.mark.parametrize(
    "route", [r for r in http_routes() if (r.method, r.path) in BODY_ROUTES], ids=lambda r: f"{r.method} {r.path}"
)
def test_a_signed_in_request_with_a_junk_body_is_400_and_changes_nothing(moto_db: None, route: Route) -> None:
    """The narrow oracle where the wide fuzz rarely lands: the event reaches the route with an ID
    token, only the body is junk (not a JSON object, not base64, over 10 KB); README says 400."""
    from apikeys.config import get_settings

    api = Api()
    api.set_plan("acct-fuzz", "agency")
    key_id = api.create("acct-fuzz", "kept").body["id"]
    path = route.path.replace("{key_id}", key_id)
    params = {"key_id": key_id} if "{key_id}" in route.path else None
    handler = load_function(route.function).lambda_handler
    table = get_settings().table_name
    before = snapshot(table)
    seen: dict[str, int] = {}

    @settings(FUZZ, max_examples=max(EXAMPLES // 4, 100))
    @given(body=bodies)
    def run(body: tuple[Any, Any]) -> None:
        event = rest_event(route.method, path, "acct-fuzz", path_parameters=params)
        event["body"], event["isBase64Encoded"] = body
        assume(_junk_body(event, BODY_ROUTES[(route.method, route.path)]))
        result = handler(event, LambdaContext(function_name=route.function))
        assert result["statusCode"] == 400, (result["statusCode"], result.get("body"))
        assert json.loads(result["body"])["error"]["code"] == "invalid_request"
        size = (
            "over 10 KB"
            if isinstance(body[0], str) and len(body[0].encode("utf-8", "surrogatepass")) > MAX_BODY
            else "small"
        )
        seen[size] = seen.get(size, 0) + 1

    run()
    assert seen.get("over 10 KB", 0) >= 1 and seen.get("small", 0) >= 50, seen
    assert snapshot(table) == before


# -- authorizer ---------------------------------------------------------------------------


@pytest.mark.parametrize("function", sorted(lambda_authorizers()))
def test_authorizer_allows_only_live_keys(moto_db: None, function: str) -> None:
    from apikeys.usage import wait_for_last_used

    api = Api()
    api.set_plan("acct-live", "advanced")
    live = {api.create("acct-live", f"k{i}").body["key"] for i in range(3)}
    doomed = api.create("acct-live", "doomed").body
    assert api.delete("acct-live", doomed["id"]).status == 204
    principals = {key: api.bearer(key)["context"] for key in live}  # type: ignore[index]
    wait_for_last_used()
    flip = {c: (c.swapcase() if c.isalpha() else "A") for c in keys.ALPHABET}
    tokens = st.one_of(
        st.sampled_from(sorted(live)),
        st.just(doomed["key"]),
        st.builds(lambda: keys.generate("ot_")),  # well formed, never stored
        st.tuples(st.sampled_from(sorted(live)), st.integers(0, 40)).map(
            lambda t: t[0][: t[1]] + flip.get(t[0][t[1] : t[1] + 1], "") + t[0][t[1] + 1 :]
        ),
        st.sampled_from(sorted(live)).map(lambda k: k + "x"),
        any_text,
    )
    header = st.one_of(
        st.builds(
            lambda scheme, sep, token: f"{scheme}{sep}{token}",
            st.sampled_from(["Bearer", "bearer", "BEARER", "Basic", "Token", ""]),
            st.sampled_from([" ", "  ", "\t", "", " \n "]),
            tokens,
        ),
        st.builds(lambda t, extra: f"Bearer {t} {extra}", tokens, any_text),
        st.builds(lambda t: "Bearer " + t + " " * 9000, st.sampled_from(sorted(live))),  # oversized
        junk,
    )

    def well_formed(kind: str, scheme: str, sep: str, key: str, name: str) -> dict[str, Any]:
        value = f"{scheme}{sep}{key}"
        if kind == "TOKEN":
            return {"type": "TOKEN", "authorizationToken": value, "methodArn": METHOD_ARN}
        if kind == "REQUEST":
            return {
                "type": "REQUEST",
                "methodArn": METHOD_ARN,
                "headers": {name: value},
                "multiValueHeaders": {name: [value]},
            }
        return {"version": "2.0", "type": "REQUEST", "routeArn": METHOD_ARN, "headers": {name.lower(): value}}

    canonical = st.builds(
        well_formed,
        st.sampled_from(["TOKEN", "REQUEST", "2.0"]),
        st.sampled_from(["Bearer", "bearer", "BEARER", "bEaReR"]),
        st.sampled_from([" ", "  ", "\t", " \t "]),
        st.sampled_from(sorted(live | {doomed["key"]})),
        st.sampled_from(["Authorization", "authorization", "AUTHORIZATION"]),
    )
    events = st.one_of(
        canonical,
        st.fixed_dictionaries(
            {
                "type": st.just("TOKEN"),
                "authorizationToken": header,
                "methodArn": st.one_of(st.just(METHOD_ARN), any_text, junk),
            }
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("REQUEST"),
                "methodArn": st.one_of(st.just(METHOD_ARN), junk),
                "headers": st.one_of(junk, st.dictionaries(header_names, header, max_size=3)),
                "multiValueHeaders": st.one_of(
                    junk, st.dictionaries(header_names, st.lists(header, max_size=2), max_size=2)
                ),
            }
        ),
        st.fixed_dictionaries(
            {
                "version": st.just("2.0"),
                "type": st.just("REQUEST"),
                "routeArn": st.one_of(st.just(METHOD_ARN), junk),
                "headers": st.one_of(
                    junk,
                    st.dictionaries(st.sampled_from(["authorization", "Authorization"]) | any_text, header, max_size=3),
                ),
            }
        ),
        st.dictionaries(any_text, junk, max_size=4),
    )
    handler = load_function(function).lambda_handler
    outcomes = {"allowed": 0, "denied": 0}

    @FUZZ
    @given(event=events)
    def run(event: dict[str, Any]) -> None:
        try:
            result = handler(event, LambdaContext(function_name=function))
        except Exception as exc:
            assert str(exc) == "Unauthorized", repr(exc)  # noqa: PT017 - the one denial mapped to 401
            outcomes["denied"] += 1
            return
        if event.get("version") == "2.0":
            if not result["isAuthorized"]:
                outcomes["denied"] += 1
                return
            context = result["context"]
        else:
            assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
            context = result["context"]
            assert result["principalId"] == context["account_id"]
        # Allowed: the request carried exactly one live key, and the context is that key's.
        text = json.dumps(event, default=str)
        carried = [key for key in live if key in text]
        assert len(carried) == 1, "allowed without exactly one live key"
        assert context == principals[carried[0]]
        outcomes["allowed"] += 1

    run()
    wait_for_last_used()
    total = sum(outcomes.values())
    assert total >= EXAMPLES and outcomes["allowed"] > 0 and outcomes["denied"] > 0
    figures.add(SECTION, f"{function} (TOKEN, REQUEST, HTTP API 2.0)", total)
    figures.add("authorizer fuzz outcomes", "allowed (each a live key, right context)", outcomes["allowed"])
    figures.add("authorizer fuzz outcomes", "denied", outcomes["denied"])


# -- direct invoke ------------------------------------------------------------------------


@pytest.mark.parametrize("function", direct_invoke_functions())
def test_direct_invoke_handler_raises_only_domain_errors(moto_db: None, function: str) -> None:
    from apikeys.config import get_settings

    plans = list(get_settings().plan_limits)
    handler = load_function(function).lambda_handler
    counts = {"ok": 0, "refused": 0}
    events = st.one_of(
        junk,
        json_values,
        st.fixed_dictionaries({"account_id": st.sampled_from(["acct-fuzz", "acct-2"]), "plan": st.sampled_from(plans)}),
        st.fixed_dictionaries(
            {
                "account_id": st.one_of(any_text, junk, st.just("acct-fuzz")),
                "plan": st.one_of(st.sampled_from(plans), any_text, junk),
            }
        ),
    )

    @FUZZ
    @given(event=events)
    def run(event: Any) -> None:
        try:
            result = handler(event, LambdaContext(function_name=function))
        except InvalidRequest as exc:
            assert exc.message  # noqa: PT017
            counts["refused"] += 1
            return
        assert isinstance(event, dict) and "plan" in event and (event["plan"] is None or event["plan"] in plans)
        limit = get_settings().plan_limits[event["plan"]] if event["plan"] else 0  # null: no DEFAULT_PLAN here
        assert result["plan"] == event["plan"] and result["key_limit"] == limit
        counts["ok"] += 1

    run()
    assert sum(counts.values()) >= EXAMPLES and counts["ok"] > 0
    figures.add(SECTION, f"{function} (direct invoke)", sum(counts.values()))
    check_table(get_settings().table_name)
