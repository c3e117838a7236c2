"""Test helpers: load each function the way Lambda does, build API Gateway events, build the
table from template.yaml's own definition, and count DynamoDB calls. The template is read and
the functions are loaded by the emulator's code (apikeys_local.template), the one reader."""

from __future__ import annotations

import copy
import functools
import json
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from apikeys_local.template import load_module, load_stack, read_template

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = ROOT / "functions"


def load_template() -> dict[str, Any]:
    """template.yaml as data, read by the emulator's reader (short-form tags in long form)."""
    return read_template(ROOT / "template.yaml")


# The plans and key limits a deployment gets unless it overrides the PlanLimits parameter.
PLAN_LIMITS: dict[str, int] = json.loads(load_template()["Parameters"]["PlanLimits"]["Default"])


def table_definition(table_name: str) -> dict[str, Any]:
    """CreateTable arguments built from the template's only AWS::DynamoDB::Table, as the local
    server builds them, so a drift between the code's key names and the template fails the tests.
    Read once per process (every test makes a table): a copy with the test's table name."""
    return {**copy.deepcopy(_table_definition()), "TableName": table_name}


@functools.cache
def _table_definition() -> dict[str, Any]:
    return load_stack(ROOT, "table").create_table_args("table")


def load_function(name: str, fresh: bool = False) -> ModuleType:
    """Import functions/<name>/app.py under a unique module name, as its own Lambda would.
    In `make mutation`'s staged copy a handler under test sits at src/fn_<name>.py (mutmut
    names mutants by path, and the trampolines check the module's name): that copy is loaded."""
    module_name = f"fn_{name}"
    if not fresh and module_name in sys.modules:
        return sys.modules[module_name]
    staged = ROOT / "src" / f"{module_name}.py"
    return load_module(staged if staged.is_file() else FUNCTIONS / name / "app.py", module_name)


@dataclass
class LambdaContext:
    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def rest_event(
    method: str,
    path: str,
    account: str | None = "acct-a",
    body: Any = None,
    raw_body: str | None = None,
    path_parameters: dict[str, str] | None = None,
    claim: str = "sub",
    token_use: str = "id",
    query: dict[str, list[str]] | None = None,
    claims: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A REST API proxy event (payload 1.0) behind the Cognito authorizer (an ID token's claims,
    plus `claims`); `query` as API Gateway passes a query string (the last value of each name,
    and every value)."""
    resource = path
    if path_parameters:
        for name, value in path_parameters.items():
            resource = resource.replace(value, "{" + name + "}")
    authorizer = {"claims": {claim: account, "token_use": token_use, **(claims or {})}} if account is not None else None
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource,
            "httpMethod": method,
            "path": f"/v1{path}",
            "stage": "v1",
            "requestId": str(uuid.uuid4()),
            "accountId": "123456789012",
            "apiId": "abc123",
            "authorizer": authorizer,
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": raw_body if raw_body is not None else (json.dumps(body) if body is not None else None),
        "isBase64Encoded": False,
    }


METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET/v1/whoami"


def token_event(header: str) -> dict[str, Any]:
    return {"type": "TOKEN", "authorizationToken": header, "methodArn": METHOD_ARN}


def request_event(headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "REQUEST",
        "methodArn": METHOD_ARN,
        "resource": "/v1/whoami",
        "path": "/v1/whoami",
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "requestContext": {"stage": "v1", "apiId": "abc123", "accountId": "123456789012"},
    }


def http_api_event(headers: dict[str, str]) -> dict[str, Any]:
    return {
        "version": "2.0",
        "type": "REQUEST",
        "routeArn": "arn:aws:execute-api:us-east-1:123456789012:abc123/$default/GET/v1/whoami",
        "identitySource": [headers.get("authorization", "")],
        "routeKey": "GET /v1/whoami",
        "rawPath": "/v1/whoami",
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {"http": {"method": "GET", "path": "/v1/whoami"}},
    }


class CallCounter:
    """Counts real DynamoDB API calls made through a boto3 client (botocore event hook)."""

    def __init__(self, client: Any) -> None:
        self.calls: list[str] = []
        self._client = client
        client.meta.events.register("before-call.dynamodb", self._hook)

    def _hook(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)

    def reset(self) -> None:
        self.calls.clear()

    def close(self) -> None:
        self._client.meta.events.unregister("before-call.dynamodb", self._hook)


def fresh_container() -> None:
    """Forget every per-container state of the layer (settings, catalogue, clients, plan guesses,
    the last-used throttle, ...), as a new Lambda container would start."""
    from apikeys import container

    container.reset()


@contextmanager
def counting_calls(new_container: bool = False) -> Iterator[CallCounter]:
    """Count the DynamoDB calls made through the container's client; `new_container` first
    forgets every per-container state, as a new container."""
    from apikeys.store import dynamodb_client

    if new_container:
        fresh_container()
    counter = CallCounter(dynamodb_client())
    try:
        yield counter
    finally:
        counter.close()


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


class Api:
    """Calls the real handlers in-process with API Gateway events, and remembers every full
    key it was shown so tests can prove none of them leaks into logs."""

    def __init__(self) -> None:
        self.secrets: list[str] = []

    @staticmethod
    def _invoke(function: str, event: dict[str, Any]) -> Reply:
        result = load_function(function).lambda_handler(event, LambdaContext(function_name=function))
        body = json.loads(result["body"]) if result.get("body") else None
        headers = dict(result.get("headers") or {})
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers[name] = ", ".join(values)
        return Reply(result["statusCode"], body, headers)

    def create(
        self,
        account: str | None,
        name: Any = "My key",
        raw_body: str | None = None,
        claims: dict[str, str] | None = None,
        **extra: Any,
    ) -> Reply:
        event = rest_event("POST", "/keys", account, body={"name": name, **extra}, raw_body=raw_body, claims=claims)
        return self._remember(self._invoke("create_key", event))

    def _remember(self, reply: Reply) -> Reply:
        if reply.status == 201:
            self.secrets.append(reply.body["key"])
        return reply

    def get(self, account: str | None, key_id: str) -> Reply:
        event = rest_event("GET", f"/keys/{key_id}", account, path_parameters={"key_id": key_id})
        return self._invoke("get_key", event)

    def rename(self, account: str | None, key_id: str, name: Any = None, raw_body: str | None = None) -> Reply:
        event = rest_event(
            "PATCH",
            f"/keys/{key_id}",
            account,
            body={"name": name},
            raw_body=raw_body,
            path_parameters={"key_id": key_id},
        )
        return self._invoke("rename_key", event)

    def patch(self, account: str | None, key_id: str, body: Any) -> Reply:
        """PATCH /keys/{key_id} with any body (name, scopes, or both)."""
        event = rest_event("PATCH", f"/keys/{key_id}", account, body=body, path_parameters={"key_id": key_id})
        return self._invoke("rename_key", event)

    def roll(
        self,
        account: str | None,
        key_id: str,
        grace: int | None = None,
        raw_body: str | None = None,
        claims: dict[str, str] | None = None,
    ) -> Reply:
        body = {"grace_period_seconds": grace} if grace is not None else None
        path = f"/keys/{key_id}/roll"
        event = rest_event(
            "POST", path, account, body=body, raw_body=raw_body, path_parameters={"key_id": key_id}, claims=claims
        )
        return self._remember(self._invoke("roll_key", event))

    def usage(self, account: str | None, key_id: str, days: int | str | list[str] | None = None) -> Reply:
        """GET /keys/{key_id}/usage, `?days=` once (a value) or as often as a list has values."""
        query = None if days is None else {"days": days if isinstance(days, list) else [str(days)]}
        event = rest_event("GET", f"/keys/{key_id}/usage", account, path_parameters={"key_id": key_id}, query=query)
        event["resource"] = event["requestContext"]["resourcePath"] = "/keys/{key_id}/usage"
        return self._invoke("key_usage", event)

    def list(self, account: str | None) -> Reply:
        return self._invoke("list_keys", rest_event("GET", "/keys", account))

    def delete(self, account: str | None, key_id: str) -> Reply:
        event = rest_event("DELETE", f"/keys/{key_id}", account, path_parameters={"key_id": key_id})
        return self._invoke("delete_key", event)

    def revocations(self, account: str | None) -> Reply:
        return self._invoke("list_revocations", rest_event("GET", "/revocations", account))

    def revoke_credentials(self, body: Any = None, raw_body: str | None = None) -> Reply:
        event = rest_event("POST", "/v1/credentials/revoke", None, body=body, raw_body=raw_body)
        return self._invoke("revoke_credentials", event)

    def secret_scanning(self, body: bytes, headers: dict[str, str]) -> Reply:
        """A report as GitHub posts it: the raw body exactly as signed, no identity."""
        event = rest_event("POST", "/secret-scanning/github", None, raw_body=body.decode())
        event["headers"] = {"Content-Type": "application/json", **headers}
        event["multiValueHeaders"] = {k: [v] for k, v in event["headers"].items()}
        return self._invoke("secret_scanning", event)

    @staticmethod
    def set_plan(account: str, plan: str) -> dict[str, Any]:
        return load_function("set_plan").lambda_handler({"account_id": account, "plan": plan}, LambdaContext())

    @staticmethod
    def authorize(event: dict[str, Any]) -> dict[str, Any] | None:
        """The authorizer's answer, or None when it denied with Exception('Unauthorized').

        Waits for the off-request last-used write before returning: in-process moto is not
        thread-safe, and a test's next call must not race the authorizer's background thread."""
        from apikeys.usage import wait_for_last_used

        try:
            return load_function("authorizer").lambda_handler(event, LambdaContext(function_name="authorizer"))
        except Exception as exc:
            if str(exc) == "Unauthorized":
                return None
            raise
        finally:
            wait_for_last_used()

    def bearer(self, key: str) -> dict[str, Any] | None:
        return self.authorize(token_event(f"Bearer {key}"))
