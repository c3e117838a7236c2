"""The OpenAPI document agrees with the template's routes and the handlers' resolvers, and the
running local server conforms to it (schemathesis)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from apikeys.bodies import CreateKeyRequest, RenameKeyRequest, RollKeyRequest
from apikeys_local.idp import LocalIdentityProvider
from apikeys_local.openapi import build_spec, resolver_of
from apikeys_local.template import load_stack
from tests.helpers.local_server import ROOT, ServerProcess, cli, http

STACK = load_stack(ROOT, "unused")
SPEC = build_spec(STACK)
# Routes without an authorizer (issue 14): GitHub's signed webhook and the public revocation API.
PUBLIC = {"/secret-scanning/github", "/v1/credentials/revoke"}
# The OAuth authorization server (issue 21): no authorizer, and RFC 6749's error shape.
OAUTH = {r.path for r in STACK.routes if r.function == "OAuthFunction"}


def test_spec_template_and_handlers_agree() -> None:
    template_routes = {(r.method.lower(), r.path) for r in STACK.routes}
    spec_routes = {(m, p) for p, ops in SPEC["paths"].items() for m in ops}
    handler_routes: set[tuple[str, str]] = set()
    for name in {r.function for r in STACK.routes}:
        resolver = resolver_of(STACK.functions[name])
        for route in resolver._static_routes + resolver._dynamic_routes:
            handler_routes.add((route.method.lower(), route.openapi_path))
    assert template_routes == spec_routes == handler_routes
    assert {"/keys", "/keys/{key_id}", "/v1/whoami"} <= set(SPEC["paths"])


def test_every_operation_documents_security_errors_and_bodies() -> None:
    schemes = SPEC["components"]["securitySchemes"]
    for route in STACK.routes:
        operation = SPEC["paths"][route.path][route.method.lower()]
        if route.path in OAUTH:
            assert route.authorizer is None and operation["security"] == []
            responses = operation["responses"]
            for status in ("429", "500", "503"):
                assert responses[status]["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorOut"
                }
            assert len([s for s in responses if s[0] in "23"]) == 1, operation["operationId"]
            continue
        if route.path in PUBLIC:
            assert route.authorizer is None and operation["security"] == []
        else:
            assert operation["security"] == [{route.authorizer: []}]
            assert schemes[route.authorizer]["scheme"] == "bearer"
        responses = operation["responses"]
        for status in ("401", "429", "500", "503"):
            assert responses[status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorOut"
            }
        assert "WWW-Authenticate" in responses["401"]["headers"] and "Retry-After" in responses["503"]["headers"]
        assert "Retry-After" in responses["429"]["headers"]  # the stage's throttling (THROTTLED)
        success = [s for s in responses if s.startswith("2")]
        # GET and DELETE /mcp exist only to answer 405 (a stateless MCP server): no success.
        only_405 = route.function == "McpFunction" and route.method != "POST"
        assert len(success) == (0 if only_405 else 1), operation["operationId"]
        if only_405:
            assert responses["405"]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorOut"
            }
        for name in route.path.split("{")[1:]:
            param = name.split("}")[0]
            assert any(p["name"] == param and p["in"] == "path" for p in operation["parameters"])
    create = SPEC["paths"]["/keys"]["post"]
    bodies = {
        ("post", "/keys"): CreateKeyRequest,
        ("patch", "/keys/{key_id}"): RenameKeyRequest,
        ("post", "/keys/{key_id}/roll"): RollKeyRequest,
    }
    for (method, path), model in bodies.items():
        documented = SPEC["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
        expected = model.model_json_schema()
        assert documented["properties"].keys() == expected["properties"].keys()
        assert documented.get("required") == expected.get("required")
        assert documented["additionalProperties"] is False
    assert SPEC["paths"]["/keys/{key_id}/roll"]["post"]["requestBody"]["required"] is False
    assert set(create["responses"]) == {"201", "400", "401", "403", "429", "500", "503"}
    assert set(SPEC["paths"]["/keys/{key_id}"]["delete"]["responses"]) == {"204", "401", "404", "429", "500", "503"}
    refs = {r.split("/")[-1] for r in _refs(SPEC)}
    assert refs <= set(SPEC["components"]["schemas"])


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if "$ref" in node else []
        return found + [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_running_server_conforms_to_its_openapi(local_api: ServerProcess, local_home: Path) -> None:
    served = http("GET", f"{local_api.url}/openapi.json").json
    assert served["paths"] == SPEC["paths"]

    account = f"acct-{uuid.uuid4().hex[:8]}"
    assert cli(local_home, "plan", "set", account, "agency").returncode == 0
    token = LocalIdentityProvider(local_home).mint(account)
    created = http("POST", f"{local_api.url}/keys", token, {"name": "schemathesis"}).json
    key = created["key"]
    schema = schemathesis.openapi.from_url(f"{local_api.url}/openapi.json")
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    calls = 0
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def check(case: Any) -> None:
            nonlocal calls
            calls += 1
            credential = key if case.path.startswith("/v1/") else token
            case.call_and_validate(headers={"Authorization": f"Bearer {credential}"}, checks=checks)

        check()
    assert calls >= 4 * 10
    # Without credentials every operation answers its documented 401.
    for route in STACK.routes:
        path = route.path.replace("{key_id}", "key_00000000000000000000")
        reply = http(route.method, f"{local_api.url}{path}")
        if route.path == "/v1/credentials/revoke":
            assert reply.status == 400  # public: no body is a bad request, not a missing identity
            continue
        if route.path in OAUTH:
            assert reply.status != 401 or "error_description" in reply.json  # public, RFC 6749's shape
            continue
        assert reply.status == 401 and reply.json["error"]["code"] == "unauthorized"
