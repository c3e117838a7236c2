"""API Gateway (REST, Lambda proxy integration) as the template configures it: route matching,
proxy events (payload 1.0), Lambda TOKEN/REQUEST and Cognito authorizers with their result
cache, Gateway Responses, and the proxy response mapped back to HTTP."""

from __future__ import annotations

import base64
import binascii
import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from apikeys_local.idp import LocalIdentityProvider
from apikeys_local.runtime import Runtime
from apikeys_local.template import Authorizer, Route, Stack
from apikeys_local.throttle import TokenBucket
from apikeys_local.waf import RateLimiter

API_ID = "local"
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
_SCALARS = (str, int, float, bool)


@dataclass
class Outcome:
    """What one request came to, for the access log."""

    response: Response
    function: str | None = None


def _rule_path(path: str) -> str:
    """Template path syntax to werkzeug's: {key_id} -> <key_id>, {proxy+} -> <path:proxy>."""
    path = re.sub(r"\{(\w+)\+\}", r"<path:\1>", path)
    return re.sub(r"\{(\w+)\}", r"<\1>", path)


def _stringify(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _iam_match(pattern: str, value: str) -> bool:
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value) is not None


def policy_allows(policy: Any, method_arn: str) -> bool | None:
    """True if allowed, False on explicit Deny or no matching Allow, None if the document is invalid."""
    if not isinstance(policy, dict) or not isinstance(policy.get("Statement"), list | dict):
        return None
    statements = policy["Statement"] if isinstance(policy["Statement"], list) else [policy["Statement"]]
    allowed = False
    for statement in statements:
        if not isinstance(statement, dict) or statement.get("Effect") not in ("Allow", "Deny"):
            return None
        actions = statement.get("Action", [])
        resources = statement.get("Resource", [])
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, str) else resources
        if not any(_iam_match(a, "execute-api:Invoke") for a in actions):
            continue
        if any(_iam_match(r, method_arn) for r in resources):
            if statement["Effect"] == "Deny":
                return False
            allowed = True
    return allowed


class Gateway:
    def __init__(self, stack: Stack, runtime: Runtime, idp: LocalIdentityProvider) -> None:
        self.stack = stack
        self.runtime = runtime
        self.idp = idp
        self.url_map = Map(
            [
                Rule(_rule_path(r.path), endpoint=i, methods=None if r.method == "ANY" else [r.method])
                for i, r in enumerate(stack.routes)
            ],
            strict_slashes=False,
            merge_slashes=False,
        )
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any] | str]] = {}
        self._cache_lock = threading.Lock()
        self.bucket = TokenBucket(*stack.throttle) if stack.throttle is not None else None
        self.method_buckets = {route: TokenBucket(*limits) for route, limits in stack.method_throttles.items()}
        self.waf = RateLimiter(stack.waf_rules)

    # -- responses ---------------------------------------------------------------------------

    def gateway_response(self, kind: str, request_id: str) -> Response:
        spec = self.stack.gateway_response(kind)
        headers = {"Content-Type": "application/json", **spec.headers, "x-amzn-RequestId": request_id}
        headers["x-amzn-ErrorType"] = {
            "UNAUTHORIZED": "UnauthorizedException",
            "ACCESS_DENIED": "AccessDeniedException",
            "MISSING_AUTHENTICATION_TOKEN": "MissingAuthenticationTokenException",
            "THROTTLED": "TooManyRequestsException",
        }.get(kind, "InternalServerErrorException")
        return Response(spec.body, status=spec.status, headers=headers)

    @staticmethod
    def proxy_response(result: Any, request_id: str) -> Response | None:
        """The Lambda proxy response as HTTP; None if malformed (API Gateway answers 502)."""
        if not isinstance(result, dict) or not isinstance(result.get("statusCode"), int):
            return None
        response = Response(status=result["statusCode"])
        response.headers.clear()
        headers = result.get("headers") or {}
        multi = result.get("multiValueHeaders") or {}
        if not isinstance(headers, dict) or not isinstance(multi, dict):
            return None
        for name, value in headers.items():
            if name not in multi:
                response.headers.add(name, _stringify(value))
        for name, values in multi.items():
            for value in values if isinstance(values, list) else [values]:
                response.headers.add(name, _stringify(value))
        body = result.get("body")
        if body is not None and not isinstance(body, str):
            return None
        data: bytes = (body or "").encode()
        if result.get("isBase64Encoded") and body:
            try:
                data = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                return None
        response.set_data(data)
        if "Content-Type" not in response.headers:
            response.headers["Content-Type"] = "application/json"
        response.headers["x-amzn-RequestId"] = request_id
        return response

    # -- events ------------------------------------------------------------------------------

    def method_arn(self, method: str, path: str) -> str:
        return f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{API_ID}/{self.stack.stage}/{method}{path}"

    def proxy_event(
        self, request: Request, route: Route, params: Mapping[str, str], request_id: str, authorizer: Any
    ) -> dict[str, Any]:
        headers = {name: request.headers.getlist(name) for name in dict.fromkeys(request.headers.keys())}
        query = {name: request.args.getlist(name) for name in request.args}
        raw = request.get_data(cache=True)
        body: str | None = None
        is_base64 = False
        if raw:
            try:
                body = raw.decode("utf-8")
            except UnicodeDecodeError:
                body, is_base64 = base64.b64encode(raw).decode(), True
        now = datetime.now(UTC)
        return {
            "resource": route.path,
            "path": request.path,
            "httpMethod": request.method,
            "headers": {k: v[-1] for k, v in headers.items()} or None,
            "multiValueHeaders": headers or None,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": uuid.uuid5(uuid.NAMESPACE_URL, route.path).hex[:6],
                "resourcePath": route.path,
                "httpMethod": request.method,
                "extendedRequestId": request_id,
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": f"/{self.stack.stage}{request.path}",
                "accountId": ACCOUNT_ID,
                "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "stage": self.stack.stage,
                "domainPrefix": request.host.split(":")[0].split(".")[0],
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "requestId": request_id,
                "identity": {
                    "sourceIp": request.remote_addr or "127.0.0.1",
                    "userAgent": request.user_agent.string or None,
                    "accessKey": None,
                    "accountId": None,
                    "caller": None,
                    "user": None,
                    "userArn": None,
                    "cognitoIdentityId": None,
                    "cognitoIdentityPoolId": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                },
                "domainName": request.host,
                "apiId": API_ID,
                "authorizer": authorizer,
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }

    # -- authorizers -------------------------------------------------------------------------

    def _cached(self, authorizer: Authorizer, identity: str) -> dict[str, Any] | str | None:
        if authorizer.ttl <= 0:
            return None
        with self._cache_lock:
            hit = self._cache.get((authorizer.name, identity))
            if hit and hit[0] > time.monotonic():
                return hit[1]
        return None

    def _remember(self, authorizer: Authorizer, identity: str, result: dict[str, Any] | str) -> None:
        if authorizer.ttl > 0:
            with self._cache_lock:
                self._cache[(authorizer.name, identity)] = (time.monotonic() + authorizer.ttl, result)

    def authorize(
        self, authorizer: Authorizer, request: Request, request_id: str, route: Route, params: Mapping[str, str]
    ) -> dict[str, Any] | str:
        """requestContext.authorizer for the handler, or the Gateway Response type refusing the call."""
        identity = request.headers.get(authorizer.header)
        if not identity:
            return "UNAUTHORIZED"  # API Gateway refuses before invoking anything
        method_arn = self.method_arn(request.method, request.path)
        if authorizer.kind == "cognito":
            token = identity[7:].strip() if identity[:7].lower() == "bearer " else identity.strip()
            claims = self.idp.verify(token)
            if claims is None:
                return "UNAUTHORIZED"
            return {"claims": {k: _stringify(v) for k, v in claims.items()}}

        cached = self._cached(authorizer, identity)
        if cached is None:
            started = time.perf_counter()
            assert authorizer.function is not None
            if authorizer.kind == "token":
                event: dict[str, Any] = {"type": "TOKEN", "authorizationToken": identity, "methodArn": method_arn}
            else:
                proxy = self.proxy_event(request, route, params, request_id, None)
                event = {"type": "REQUEST", "methodArn": method_arn, **proxy}
            result = self.runtime.invoke(authorizer.function, event)
            latency = int((time.perf_counter() - started) * 1000)
            if not result.ok:
                unauthorized = result.payload.get("errorMessage") == "Unauthorized"
                outcome: dict[str, Any] | str = "UNAUTHORIZED" if unauthorized else "AUTHORIZER_FAILURE"
                if unauthorized:
                    self._remember(authorizer, identity, outcome)
                return outcome
            answer = result.payload
            context = answer.get("context") if isinstance(answer, dict) else None
            if (
                not isinstance(answer, dict)
                or not isinstance(answer.get("principalId"), str)
                or (context is not None and not isinstance(context, dict))
                or any(not isinstance(v, _SCALARS) for v in (context or {}).values())
            ):
                return "AUTHORIZER_CONFIGURATION_ERROR"
            cached = {**answer, "integrationLatency": latency}
            self._remember(authorizer, identity, cached)
        if isinstance(cached, str):
            return cached
        allowed = policy_allows(cached.get("policyDocument"), method_arn)
        if allowed is None:
            return "AUTHORIZER_CONFIGURATION_ERROR"
        if not allowed:
            return "ACCESS_DENIED"
        flat = {k: _stringify(v) for k, v in (cached.get("context") or {}).items()}
        return {"principalId": cached["principalId"], **flat, "integrationLatency": cached["integrationLatency"]}

    # -- the request -------------------------------------------------------------------------

    def handle(self, request: Request) -> Outcome:
        request_id = str(uuid.uuid4())
        # The web ACL sits in front of API Gateway: a request it blocks reaches no route, no
        # bucket and no authorizer.
        blocked = self.waf.check(request.remote_addr or "", request.headers)
        if blocked is not None:
            waf_response = Response(blocked.body, status=blocked.status, headers=blocked.headers)
            return Outcome(waf_response, f"waf:{blocked.name}")
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            index, params = adapter.match()
        except (NotFound, MethodNotAllowed):
            return Outcome(self.gateway_response("MISSING_AUTHENTICATION_TOKEN", request_id))
        route = self.stack.routes[index]
        # The stage's method throttling, before the authorizer: a throttled request costs nothing.
        bucket = self.method_buckets.get((route.path, route.method), self.bucket)
        if bucket is not None and not bucket.take():
            return Outcome(self.gateway_response("THROTTLED", request_id), route.function)
        authorizer_context: Any = None
        if route.authorizer is not None:
            decision = self.authorize(self.stack.authorizers[route.authorizer], request, request_id, route, params)
            if isinstance(decision, str):
                return Outcome(self.gateway_response(decision, request_id), route.function)
            authorizer_context = decision
        event = self.proxy_event(request, route, params, request_id, authorizer_context)
        result = self.runtime.invoke(route.function, event)
        response = self.proxy_response(result.payload, request_id) if result.ok else None
        if response is None:
            return Outcome(self.gateway_response("INTEGRATION_FAILURE", request_id), route.function)
        return Outcome(response, route.function)
