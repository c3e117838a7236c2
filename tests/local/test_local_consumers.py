"""`make dev` serves the example consumer APIs (examples/consumer-api) beside the key service on
one port, under the prefixes the example declares, with its `!ImportValue` of our authorizer's
export resolved to the local AuthorizerFunction. Over real HTTP, against `apikeys-local serve`."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from apikeys_local.consumers import load_consumer
from apikeys_local.template import TemplateError
from tests.helpers.local_server import ROOT, ServerProcess, http

EXAMPLE = ROOT / "examples" / "consumer-api" / "template.yaml"
REST = ("/consumer/token/whoami", "/consumer/request/whoami")
HTTP_API = "/consumer/http/whoami"
OUR_401 = {"error": {"code": "unauthorized", "message": "Missing, invalid or revoked credentials."}}


def test_consumer_routes_answer_for_a_live_key_and_refuse_it_right_after_its_delete(local_api: ServerProcess) -> None:
    url = local_api.url
    account = f"consumer-{uuid.uuid4().hex[:8]}"
    token = http("POST", f"{url}/_local/login", body={"account": account, "plan": "pro"}).json["token"]
    created = http("POST", f"{url}/keys", token, {"name": "product API"})
    assert created.status == 201
    key, key_id = created.json["key"], created.json["id"]
    caller = {"account_id": account, "key_id": key_id, "plan": "pro", "scopes": "*"}
    for path in (*REST, HTTP_API):
        reply = http("GET", f"{url}{path}", key)
        assert (reply.status, reply.json) == (200, caller), path

    assert http("DELETE", f"{url}/keys/{key_id}", token).status == 204
    for path in REST:  # our Gateway Responses, copied into the example
        reply = http("GET", f"{url}{path}", key)
        assert (reply.status, reply.json) == (401, OUR_401), path
        assert reply.headers["WWW-Authenticate"] == "Bearer" and reply.headers["Cache-Control"] == "no-store"
    # HTTP APIs have no Gateway Responses: a refused key is API Gateway's own 403.
    reply = http("GET", f"{url}{HTTP_API}", key)
    assert (reply.status, reply.json) == (403, {"message": "Forbidden"})
    assert http("GET", f"{url}{HTTP_API}").json == {"message": "Unauthorized"}
    for path in REST:
        assert http("GET", f"{url}{path}").json == OUR_401  # no header: refused without a call

    log = local_api.output()
    for function in ("TokenWhoAmIFunction", "RequestWhoAmIFunction", "HttpWhoAmIFunction"):
        assert re.search(rf"GET /consumer/\w+/whoami 200 \d+ms {function}", log), function
    assert key not in log


def test_the_key_service_is_unchanged_beside_them(local_api: ServerProcess) -> None:
    assert http("GET", f"{local_api.url}/v1/whoami").status == 401
    assert http("GET", f"{local_api.url}/consumer/token/nope").status == 403  # unknown route, as API Gateway


def test_the_example_declares_its_prefixes_and_imports_only_our_export(tmp_path: Path) -> None:
    functions, apis = load_consumer(ROOT, EXAMPLE, "apikeys-local")
    assert {(a.name, a.prefix, a.kind) for a in apis} == {
        ("TokenApi", "/consumer/token", "rest"),
        ("RequestApi", "/consumer/request", "rest"),
        ("HttpApi", "/consumer/http", "http"),
    }
    rest = {a.name: a.stack for a in apis if a.stack is not None}
    assert rest["TokenApi"].authorizers["ApiKeyAuthorizer"].function == "AuthorizerFunction"  # type: ignore[union-attr]
    assert rest["RequestApi"].authorizers["ApiKeyAuthorizer"].header == "Authorization"  # type: ignore[union-attr]
    assert [a.http_authorizer for a in apis if a.kind == "http"] == [("Authorization", "AuthorizerFunction")]
    assert set(functions) == {"TokenWhoAmIFunction", "RequestWhoAmIFunction", "HttpWhoAmIFunction"}

    # An import of something our stack does not export is refused at start, not served wrong.
    (tmp_path / "template.yaml").write_text(EXAMPLE.read_text().replace("-AuthorizerFunctionArn", "-SomethingElseArn"))
    with pytest.raises(TemplateError, match="does not export"):
        load_consumer(ROOT, tmp_path / "template.yaml", "apikeys-local")
