"""One OpenAPI 3 document for the API, generated from the code: each routed function's
Powertools resolver emits its operations (from the route annotations and pydantic models),
and the template says which authorizer guards each route."""

from __future__ import annotations

import json
import sys
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from apikeys_local.template import Function, Stack, load_module

_UNUSED = {"HTTPValidationError", "ValidationError", "ResponseValidationError"}


def resolver_of(function: Function) -> APIGatewayRestResolver:
    """The function's resolver, imported from its CodeUri + Handler module (no invocation)."""
    name = f"apikeys_local_spec_{function.name}"
    source = function.source
    if name not in sys.modules:
        load_module(source, name)
    resolvers = [v for v in vars(sys.modules[name]).values() if isinstance(v, APIGatewayRestResolver)]
    if len(resolvers) != 1:
        raise LookupError(f"{function.name}: expected one APIGatewayRestResolver in {source}, found {len(resolvers)}")
    return resolvers[0]


def security_schemes(stack: Stack) -> dict[str, Any]:
    schemes: dict[str, Any] = {}
    for name, authorizer in stack.authorizers.items():
        if authorizer.kind == "cognito":
            description = "Cognito ID token (locally: `apikeys-local token --account ACCOUNT`)."
            schemes[name] = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": description}
        else:
            description = f"API key checked by the Lambda authorizer {authorizer.function}: `Bearer ot_...`."
            schemes[name] = {"type": "http", "scheme": "bearer", "description": description}
    return schemes


def build_spec(stack: Stack, server_url: str | None = None, strict: bool = True) -> dict[str, Any]:
    """strict=False documents a route whose handler has no Powertools resolver as a bare
    operation instead of failing (the emulator serves any template; this project's is strict)."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    for route in stack.routes:
        try:
            resolver = resolver_of(stack.functions[route.function])
        except LookupError:
            if strict:
                raise
            bare = {"summary": f"{route.function} (no Powertools resolver to document it)"}
            paths.setdefault(route.path, {})[route.method.lower()] = {
                **bare,
                "responses": {"default": {"description": "Whatever the function answers."}},
            }
            continue
        generated = json.loads(resolver.get_openapi_json_schema(title=route.function, version="0"))
        method = route.method.lower()
        operation = generated["paths"].get(route.path, {}).get(method)
        if operation is None:
            raise LookupError(f"{route.function} has no handler for {route.method} {route.path}")
        operation["operationId"] = f"{route.function}_{method}"
        for status, response in operation.get("responses", {}).items():
            if status == "204":
                response.pop("content", None)  # 204 has no body
        if stack.throttle is not None and "ErrorOut" in generated.get("components", {}).get("schemas", {}):
            # API Gateway's stage throttling (the THROTTLED Gateway Response) answers before the handler.
            operation["responses"]["429"] = {
                "description": "Too many requests for this stage; retry after Retry-After seconds.",
                "headers": {
                    "Retry-After": {"description": "Seconds to wait before retrying.", "schema": {"type": "string"}}
                },
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
            }
        # An empty list says "no authentication" (the public revocation API, GitHub's webhook).
        operation["security"] = [{route.authorizer: []}] if route.authorizer is not None else []
        paths.setdefault(route.path, {})[method] = operation
        for name, schema in generated.get("components", {}).get("schemas", {}).items():
            if name not in _UNUSED:
                schemas[name] = schema
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "API keys",
            "version": "1.0.0",
            "description": "Settings → API Keys: create, list, get, rename, roll and delete `ot_` keys; "
            "`/v1/whoami` is an example "
            'API behind the key authorizer. Errors are `{"error": {"code", "message"}}`.',
        },
        "servers": [{"url": server_url or "/"}],
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": security_schemes(stack)},
    }
