"""The emulated API Gateway on a small project of its own (template + probe functions), over
real HTTP: authorizer outcomes, context flattening, the result cache, Gateway Responses copied
from this repository's template, proxy event and response mapping, per-function environment.
And this repository's API with its DynamoDB gone: fail closed with retryable 503s."""

from __future__ import annotations

import base64
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from moto.server import ThreadedMotoServer

from apikeys_local.idp import LocalIdentityProvider
from apikeys_local.template import load_stack
from tests.helpers.local_server import ROOT, ServerProcess, http, start_server

REAL = load_stack(ROOT, "unused")

AUTH = """
import os
CALLS = 0

def handler(event, context):
    global CALLS
    CALLS += 1
    token = event["authorizationToken"].removeprefix("Bearer ")
    arn = event["methodArn"]
    base = arn.split("/")[0]
    def policy(effect, resource):
        return {"Version": "2012-10-17",
                "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]}
    context_ = {"s": "x", "n": 5, "b": True, "calls": CALLS, "only_echo": os.environ.get("ONLY_ECHO", "-"),
                "table": os.environ["TABLE_NAME"]}
    if token.startswith("allow"):
        return {"principalId": "user-1", "policyDocument": policy("Allow", base + "/*/*"), "context": context_}
    if token == "deny":
        return {"principalId": "user-1", "policyDocument": policy("Deny", base + "/*/*")}
    if token == "narrow":
        return {"principalId": "user-1", "policyDocument": policy("Allow", base + "/*/GET/other")}
    if token == "nested":
        return {"principalId": "user-1", "policyDocument": policy("Allow", base + "/*/*"), "context": {"o": {}}}
    if token == "boom":
        raise ValueError("lost the table")
    raise Exception("Unauthorized")
"""

ECHO = """
import base64, json, os, time

def handler(event, context):
    query = event.get("queryStringParameters") or {}
    if "sleep" in query:
        time.sleep(float(query["sleep"]))
    if "binary" in query:
        return {"statusCode": 200, "headers": {"Content-Type": "application/octet-stream"},
                "body": base64.b64encode(bytes(range(256))).decode(), "isBase64Encoded": True}
    if "broken" in query:
        raise RuntimeError("handler failed")
    if "badshape" in query:
        return {"nope": 1}
    body = {"event": event, "env": {k: os.environ.get(k) for k in ("TABLE_NAME", "GREETING", "ONLY_ECHO")},
            "function": context.function_name, "remaining": context.get_remaining_time_in_millis()}
    return {"statusCode": int(query.get("status", 200)), "headers": {"X-Single": "a"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]}, "body": json.dumps(body),
            "isBase64Encoded": False}
"""


def _template() -> dict[str, Any]:
    gateway_responses = {
        kind: {
            **({"StatusCode": r.status} if r.status is not None else {}),
            "ResponseParameters": {"Headers": {k: f"'{v}'" for k, v in r.headers.items()}},
            "ResponseTemplates": {"application/json": r.body},
        }
        for kind, r in REAL.gateway_responses.items()
    }
    api_event = {"Type": "Api", "Properties": {"RestApiId": {"Ref": "Api"}}}

    def event(path: str, method: str, authorizer: str | None = None) -> dict[str, Any]:
        props = {**api_event["Properties"], "Path": path, "Method": method}
        if authorizer:
            props["Auth"] = {"Authorizer": authorizer}
        return {"Type": "Api", "Properties": props}

    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Parameters": {"CacheTtl": {"Type": "Number", "Default": 0}},
        "Globals": {
            "Function": {
                "Runtime": "python3.12",
                "Timeout": 2,
                "Environment": {"Variables": {"TABLE_NAME": {"Ref": "Table"}, "GREETING": "hello"}},
            }
        },
        "Resources": {
            "Table": {"Type": "AWS::DynamoDB::Table", "Properties": REAL.table_properties},
            "Api": {
                "Type": "AWS::Serverless::Api",
                "Properties": {
                    "StageName": "test",
                    "Auth": {
                        "Authorizers": {
                            "Tok": {
                                "FunctionArn": {"Fn::GetAtt": ["AuthFunction", "Arn"]},
                                "FunctionPayloadType": "TOKEN",
                                "Identity": {"Header": "Authorization", "ReauthorizeEvery": {"Ref": "CacheTtl"}},
                            },
                            "Cached": {
                                "FunctionArn": {"Fn::GetAtt": ["AuthFunction", "Arn"]},
                                "Identity": {"Header": "X-Token", "ReauthorizeEvery": 300},
                            },
                        }
                    },
                    "GatewayResponses": gateway_responses,
                },
            },
            "AuthFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {"CodeUri": "fns/auth/", "Handler": "main.handler"},
            },
            "EchoFunction": {
                "Type": "AWS::Serverless::Function",
                "Properties": {
                    "CodeUri": "fns/echo/",
                    "Handler": "main.handler",
                    "Environment": {"Variables": {"ONLY_ECHO": "yes"}},
                    "Events": {
                        "Open": event("/open/{thing}", "ANY"),
                        "Guarded": event("/guarded", "get", "Tok"),
                        "Cached": event("/cached", "get", "Cached"),
                    },
                },
            },
        },
    }


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    project = tmp_path_factory.mktemp("probe-project")
    (project / "template.yaml").write_text(yaml.safe_dump(_template(), sort_keys=False))
    for name, code in (("auth", AUTH), ("echo", ECHO)):
        (project / "fns" / name).mkdir(parents=True)
        (project / "fns" / name / "main.py").write_text(textwrap.dedent(code))
    server = start_server(project / ".state", cwd=project)
    yield server
    assert server.stop() == 0


def echo(reply: Any) -> dict[str, Any]:
    assert reply.status == 200, reply.text
    return reply.json


def test_proxy_event_and_environment(probe: ServerProcess) -> None:
    reply = http("POST", f"{probe.url}/open/th%20ing?a=1&a=2&b=x", body={"k": "v"}, headers={"X-Multi": "one"})
    got = echo(reply)
    event = got["event"]
    assert event["resource"] == "/open/{thing}" and event["path"] == "/open/th ing"
    assert event["httpMethod"] == "POST" and event["pathParameters"] == {"thing": "th ing"}
    assert event["queryStringParameters"] == {"a": "2", "b": "x"}
    assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x"]}
    assert event["headers"]["X-Multi"] == "one" and event["multiValueHeaders"]["X-Multi"] == ["one"]
    assert json.loads(event["body"]) == {"k": "v"} and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["stage"] == "test" and ctx["path"] == "/test/open/th ing" and ctx["resourcePath"] == "/open/{thing}"
    assert ctx["identity"]["sourceIp"] == "127.0.0.1" and ctx["authorizer"] is None and ctx["requestId"]
    assert got["env"] == {"TABLE_NAME": "apikeys-local", "GREETING": "hello", "ONLY_ECHO": "yes"}
    assert got["function"] == "EchoFunction" and 0 < got["remaining"] <= 2000


def test_proxy_response_mapping(probe: ServerProcess) -> None:
    reply = http("GET", f"{probe.url}/open/x?status=418")
    assert reply.status == 418
    assert reply.headers["X-Single"] == "a" and reply.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
    binary = http("GET", f"{probe.url}/open/x?binary=1")
    assert binary.status == 200 and binary.headers["Content-Type"] == "application/octet-stream"
    assert binary.data == bytes(range(256))
    for query in ("broken=1", "badshape=1", "sleep=3"):
        failed = http("GET", f"{probe.url}/open/x?{query}")
        assert failed.status == 502, query
        assert failed.json == json.loads(REAL.gateway_responses["DEFAULT_5XX"].body)  # with 502, not 500
    assert http("GET", f"{probe.url}/open/x").status == 200  # a timed-out container was replaced


def test_authorizer_context_is_flattened_to_strings(probe: ServerProcess) -> None:
    authorizer = echo(http("GET", f"{probe.url}/guarded", "allow-1"))["event"]["requestContext"]["authorizer"]
    assert authorizer["principalId"] == "user-1"
    assert authorizer["s"] == "x" and authorizer["n"] == "5" and authorizer["b"] == "true"
    assert isinstance(authorizer["integrationLatency"], int)
    # The authorizer runs with its own function's environment, not the echo function's.
    assert authorizer["only_echo"] == "-" and authorizer["table"] == "apikeys-local"


def test_authorizer_outcomes_and_gateway_responses(probe: ServerProcess) -> None:
    def check(reply: Any, kind: str) -> None:
        spec = REAL.gateway_responses[kind]
        assert reply.status == spec.status, (kind, reply.status, reply.text)
        assert reply.json == json.loads(spec.body)
        for name, value in spec.headers.items():
            assert reply.headers[name] == value

    check(http("GET", f"{probe.url}/guarded"), "UNAUTHORIZED")
    check(http("GET", f"{probe.url}/guarded", "unauthorized"), "UNAUTHORIZED")
    check(http("GET", f"{probe.url}/guarded", "deny"), "ACCESS_DENIED")
    check(http("GET", f"{probe.url}/guarded", "narrow"), "ACCESS_DENIED")
    check(http("GET", f"{probe.url}/guarded", "boom"), "AUTHORIZER_FAILURE")
    assert REAL.gateway_responses["AUTHORIZER_FAILURE"].headers == {"Retry-After": "1", "Cache-Control": "no-store"}
    assert REAL.gateway_responses["UNAUTHORIZED"].headers == {"WWW-Authenticate": "Bearer", "Cache-Control": "no-store"}
    # An answer API Gateway cannot read is AUTHORIZER_CONFIGURATION_ERROR: refused, retryable 503.
    nested = http("GET", f"{probe.url}/guarded", "nested")
    configuration_error = REAL.gateway_responses["AUTHORIZER_CONFIGURATION_ERROR"]
    assert nested.status == 503 and nested.json == json.loads(configuration_error.body)
    assert nested.headers["Cache-Control"] == "no-store" and nested.headers["Retry-After"] == "1"


def test_authorizer_cache_follows_the_ttl(probe: ServerProcess) -> None:
    def calls(path: str, **headers: str) -> int:
        return int(echo(http("GET", f"{probe.url}{path}", headers=headers))["event"]["requestContext"]["authorizer"]
                   ["calls"])  # fmt: skip

    first = calls("/guarded", Authorization="allow-ttl0")
    assert calls("/guarded", Authorization="allow-ttl0") > first  # TTL 0: invoked on every request
    cached = calls("/cached", **{"X-Token": "allow-cached"})
    assert calls("/cached", **{"X-Token": "allow-cached"}) == cached  # TTL 300: one invocation


def test_real_template_defaults_to_no_authorizer_cache() -> None:
    assert REAL.parameters["AuthorizerCacheTtl"] == "0"
    assert all(a.ttl == 0 for a in REAL.authorizers.values() if a.kind != "cognito")


@pytest.fixture
def external_dynamodb() -> Iterator[ThreadedMotoServer]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    yield server
    server.stop()


def test_dynamodb_down_fails_closed_with_retryable_503(external_dynamodb: ThreadedMotoServer, tmp_path: Path) -> None:
    host, port = external_dynamodb.get_host_and_port()
    server = start_server(tmp_path, AWS_ENDPOINT_URL_DYNAMODB=f"http://{host}:{port}")
    try:
        token = LocalIdentityProvider(tmp_path).mint("demo-account")
        key = http("POST", f"{server.url}/keys", token, {"name": "k"}).json["key"]
        assert http("GET", f"{server.url}/v1/whoami", key).status == 200
        external_dynamodb.stop()

        whoami = http("GET", f"{server.url}/v1/whoami", key)
        spec = REAL.gateway_responses["AUTHORIZER_FAILURE"]
        assert whoami.status == 503 and whoami.json == json.loads(spec.body)
        assert whoami.headers["Retry-After"] == "1"
        for method, body in (("POST", {"name": "k2"}), ("GET", None)):
            reply = http(method, f"{server.url}/keys", token, body)
            assert reply.status == 503, reply.text
            assert reply.json["error"]["code"] == "service_unavailable" and reply.headers["Retry-After"]
        assert key not in server.output()
    finally:
        external_dynamodb.start()  # so the fixture's stop() has a server to stop
        server.stop()


def test_binary_body_round_trip(probe: ServerProcess) -> None:
    reply = http("POST", f"{probe.url}/open/x", raw=bytes(range(256)))
    event = echo(reply)["event"]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == bytes(range(256))
