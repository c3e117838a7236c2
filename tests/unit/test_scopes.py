"""Scopes without I/O: the KEY_SCOPES catalogue, the policy ARNs a scoped key gets, the HTTP API
route matching, and a malformed catalogue failing the cold start rather than each request."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from apikeys import scopes
from apikeys.config import DEFAULT_KEY_SCOPES, ConfigError, get_scope_catalogue, parse_scope_catalogue
from apikeys.errors import InvalidRequest
from apikeys.records import Principal
from tests.helpers.support import FUNCTIONS, load_function, load_template

STAGE = "arn:aws:execute-api:eu-west-1:123456789012:abc123/prod"
FORMS = {
    "exact": ["GET /v1/whoami"],
    "any_method": ["* /v1/orders"],
    "one_segment": ["POST /v1/orders/*/items"],
    "below": ["GET /v1/reports/*"],
    "root": ["GET /"],
    "two": ["GET /a", "DELETE /a/b"],
    "capability": [],
}


def test_default_catalogue_is_exactly_the_contract() -> None:
    expected = {"whoami": ["GET /v1/whoami"], "mcp": ["POST /mcp"], "keys:read": []}
    assert json.loads(load_template()["Parameters"]["KeyScopes"]["Default"]) == expected
    assert json.loads(DEFAULT_KEY_SCOPES) == expected
    catalogue = get_scope_catalogue()
    assert {name: [r.pattern for r in routes] for name, routes in catalogue.items()} == expected
    assert list(catalogue) == ["whoami", "mcp", "keys:read"]


@pytest.mark.parametrize(
    "raw",
    [
        "not json",
        "[]",
        '{"Whoami": []}',
        '{"a b": []}',
        '{"x": "GET /a"}',
        '{"x": ["GET"]}',
        '{"x": ["FETCH /a"]}',
        '{"x": ["get /a"]}',
        '{"x": ["GET a"]}',
        '{"x": ["GET /a//b"]}',
        '{"x": ["GET /a/"]}',
        '{"x": ["GET /a*"]}',
        '{"x": ["GET /a?"]}',
        '{"x": ["GET  /a"]}',
        '{"x": [1]}',
        '{"' + "a" * 65 + '": []}',
        '{"x": ["APPSYNC /a/b"]}',
        '{"x": ["APPSYNC a"]}',
        '{"x": ["APPSYNC /"]}',
        '{"x": ["APPSYNC /a-b"]}',
    ],
)
def test_malformed_catalogue_is_a_config_error(raw: str) -> None:
    with pytest.raises(ConfigError, match="KEY_SCOPES"):
        parse_scope_catalogue(raw)


@pytest.mark.parametrize("function", ["authorizer", "create_key", "rename_key", "list_keys", "list_scopes"])
def test_malformed_catalogue_fails_the_cold_start(function: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An init error Lambda reports once per container, not a 500 on every request."""
    from apikeys_local.template import load_module

    monkeypatch.setenv("KEY_SCOPES", '{"whoami": ["GET whoami"]}')
    name = f"scopes_cold_start_{function}"
    try:
        with pytest.raises(ConfigError, match="KEY_SCOPES"):
            load_module(FUNCTIONS / function / "app.py", name)
    finally:
        sys.modules.pop(name, None)


def test_request_scopes_are_normalized_to_catalogue_order() -> None:
    catalogue = get_scope_catalogue()
    assert scopes.normalize(None, catalogue) is None
    assert scopes.normalize(["*"], catalogue) is None
    assert scopes.normalize(["keys:read", "whoami"], catalogue) == ("whoami", "keys:read")
    assert scopes.listed(None, catalogue) == ["*"]
    assert scopes.listed(("gone", "mcp"), catalogue) == ["mcp", "gone"]


@pytest.mark.parametrize("bad", [[], ["whoami", "whoami"], ["*", "whoami"], ["nope"], ["*", "*"]])
def test_invalid_request_scopes_name_the_valid_ones(bad: list[str]) -> None:
    with pytest.raises(InvalidRequest) as raised:
        scopes.normalize(bad, get_scope_catalogue())
    assert raised.value.message.endswith("Valid scopes: *, whoami, mcp, keys:read.")


@pytest.mark.parametrize(
    ("form", "arns"),
    [
        ("exact", [f"{STAGE}/GET/v1/whoami"]),
        ("any_method", [f"{STAGE}/*/v1/orders"]),
        ("one_segment", [f"{STAGE}/POST/v1/orders/*/items"]),
        ("below", [f"{STAGE}/GET/v1/reports/*"]),
        ("root", [f"{STAGE}/GET/"]),
        ("two", [f"{STAGE}/GET/a", f"{STAGE}/DELETE/a/b"]),
    ],
)
def test_policy_allows_exactly_the_scopes_routes(form: str, arns: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    authorizer = load_function("authorizer")
    monkeypatch.setattr(authorizer, "CATALOGUE", parse_scope_catalogue(json.dumps(FORMS)))
    policy = authorizer.allow_policy(f"{STAGE}/GET/v1/whoami", Principal("acct", "key_x", "pro", None, (form,)))
    assert policy["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": arns}
    ]
    assert policy["context"]["scopes"] == form


def test_policy_of_several_scopes_lists_each_route_once(monkeypatch: pytest.MonkeyPatch) -> None:
    authorizer = load_function("authorizer")
    monkeypatch.setattr(authorizer, "CATALOGUE", parse_scope_catalogue(json.dumps(FORMS)))
    principal = Principal("acct", "key_x", "pro", None, ("exact", "two", "capability"))
    policy = authorizer.allow_policy(f"{STAGE}/POST/mcp", principal)
    resources = policy["policyDocument"]["Statement"][0]["Resource"]
    assert resources == [f"{STAGE}/GET/v1/whoami", f"{STAGE}/GET/a", f"{STAGE}/DELETE/a/b"]
    assert policy["context"]["scopes"] == "exact two capability"


def test_capability_only_key_is_explicitly_denied_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    authorizer = load_function("authorizer")
    monkeypatch.setattr(authorizer, "CATALOGUE", parse_scope_catalogue(json.dumps(FORMS)))
    for key_scopes in (("capability",), ("gone-from-catalogue",)):
        policy = authorizer.allow_policy(f"{STAGE}/GET/a", Principal("acct", "key_x", "pro", None, key_scopes))
        assert policy["policyDocument"]["Statement"] == [
            {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [f"{STAGE}/*/*"]}
        ]


def test_a_scope_of_every_route_is_still_an_allow(monkeypatch: pytest.MonkeyPatch) -> None:
    authorizer = load_function("authorizer")
    monkeypatch.setattr(authorizer, "CATALOGUE", parse_scope_catalogue('{"all": ["* /*"]}'))
    policy = authorizer.allow_policy(f"{STAGE}/GET/a", Principal("acct", "key_x", "pro", None, ("all",)))
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert policy["policyDocument"]["Statement"][0]["Resource"] == [f"{STAGE}/*/*"]


HTTP_CASES: list[tuple[str, str, str, bool]] = [
    ("exact", "GET", "/v1/whoami", True),
    ("exact", "POST", "/v1/whoami", False),
    ("exact", "GET", "/v1/whoami/x", False),
    ("exact", "GET", "/v1", False),
    ("any_method", "DELETE", "/v1/orders", True),
    ("any_method", "ANY", "/v1/orders", True),
    ("one_segment", "POST", "/v1/orders/{id}/items", True),
    ("one_segment", "POST", "/v1/orders/a/b/items", False),
    ("below", "GET", "/v1/reports/2024/05", True),
    ("below", "GET", "/v1/reports", False),
    ("below", "GET", "/v1/reports/{proxy+}", True),
    ("root", "GET", "/", True),
    ("root", "GET", "/a", False),
    ("capability", "GET", "/v1/whoami", False),
    ("exact", "ANY", "/v1/whoami", False),
]


@pytest.mark.parametrize(("form", "method", "path", "allowed"), HTTP_CASES)
def test_http_api_route_matching(form: str, method: str, path: str, allowed: bool) -> None:
    catalogue = parse_scope_catalogue(json.dumps(FORMS))
    assert scopes.route_allowed((form,), catalogue, method, path) is allowed


def _http_event(route_key: str, method: str = "GET", raw_path: str = "/v1/whoami") -> dict[str, Any]:
    return {"routeKey": route_key, "rawPath": raw_path, "requestContext": {"http": {"method": method}}}


def test_http_api_uses_the_route_key_or_for_default_the_request() -> None:
    allowed = load_function("authorizer")._http_route_allowed
    assert allowed(_http_event("GET /v1/whoami"), ("whoami",))
    assert not allowed(_http_event("GET /v1/whoami"), ("mcp",))
    assert allowed(_http_event("$default", "POST", "/mcp"), ("mcp",))
    assert not allowed(_http_event("$default", "GET", "/mcp"), ("mcp",))
    assert not allowed({"routeKey": "$default"}, ("mcp",))
    assert not allowed({"routeKey": None}, ("whoami",))
    # A route key is METHOD, one space, path: anything else is outside every scope.
    assert not allowed(_http_event("GET  /v1/whoami"), ("whoami",))
    assert not allowed(_http_event("GET /v1/whoami extra"), ("whoami",))


def test_a_default_route_request_without_a_method_path_or_readable_stage_is_outside_every_scope(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    authorizer = load_function("authorizer")
    monkeypatch.setattr(authorizer, "CATALOGUE", parse_scope_catalogue('{"any": ["* /v1/*"]}'))
    event = _http_event("$default", raw_path="/v1/x")
    event["requestContext"]["stage"] = "$default"
    assert authorizer._http_route_allowed(event, ("any",))
    for broken in ({"http": {}}, {"http": {"method": "GET"}, "stage": 5}):
        assert not authorizer._http_route_allowed(
            {**event, "requestContext": {"stage": "$default", **broken}}, ("any",)
        )
    assert not authorizer._http_route_allowed({**event, "rawPath": None}, ("any",))


def test_local_gateway_matches_policies_as_api_gateway_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """IAM globbing over the whole ARN: `*` also matches `/`, so a mid-path `*` is broader on a
    REST API than on an HTTP API; an explicit Deny wins over every Allow."""
    from apikeys_local.gateway import policy_allows

    authorizer = load_function("authorizer")
    monkeypatch.setattr(authorizer, "CATALOGUE", parse_scope_catalogue(json.dumps(FORMS)))

    def allows(form: str, method: str, path: str) -> bool | None:
        principal = Principal("acct", "key_x", "pro", None, (form,))
        policy = authorizer.allow_policy(f"{STAGE}/GET/x", principal)["policyDocument"]
        return policy_allows(policy, f"{STAGE}/{method}{path}")

    assert allows("exact", "GET", "/v1/whoami") is True
    assert allows("exact", "GET", "/v1/whoami/x") is False
    assert allows("exact", "POST", "/v1/whoami") is False
    assert allows("any_method", "PATCH", "/v1/orders") is True
    assert allows("one_segment", "POST", "/v1/orders/7/items") is True
    assert allows("one_segment", "POST", "/v1/orders/7/8/items") is True  # `*` crosses `/` in an ARN
    assert allows("below", "GET", "/v1/reports/a/b") is True
    assert allows("below", "GET", "/v1/reports") is False
    assert allows("root", "GET", "/") is True
    assert allows("capability", "GET", "/v1/whoami") is False
    deny_wins = {
        "Statement": [
            {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [f"{STAGE}/GET/a"]},
            {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [f"{STAGE}/*/*"]},
        ]
    }
    assert policy_allows(deny_wins, f"{STAGE}/GET/a") is False


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([], 'scopes: must not be empty; omit it or use ["*"] for full access.'),
        (["whoami", "whoami"], "scopes: must not repeat a scope."),
        (["*", "whoami"], 'scopes: "*" (full access) cannot be combined with other scopes.'),
        (["x" * 80], f"scopes: unknown scope {'x' * 70!r}."),
    ],
)
def test_invalid_request_scopes_say_what_is_wrong(bad: list[str], message: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        scopes.normalize(bad, get_scope_catalogue())
    assert raised.value.message == f"{message} Valid scopes: *, whoami, mcp, keys:read."


def test_a_stored_scopes_attribute_is_read_back_and_its_absence_is_full_access() -> None:
    assert scopes.from_attribute(None) is None
    assert scopes.from_attribute("whoami keys:read") == ("whoami", "keys:read")
    assert scopes.to_attribute(None) is None
    assert scopes.to_attribute(("whoami", "keys:read")) == "whoami keys:read"
    assert scopes.context_value(None) == "*"


def test_a_wildcard_segment_before_a_trailing_wildcard_matches_any_segment() -> None:
    catalogue = parse_scope_catalogue('{"reports": ["GET /v1/*/reports/*"]}')
    assert scopes.route_allowed(("reports",), catalogue, "GET", "/v1/acme/reports/2024")
    assert not scopes.route_allowed(("reports",), catalogue, "GET", "/v1/acme/orders/2024")
    assert not scopes.route_allowed(("reports",), catalogue, "GET", "/v1/acme/reports")


def test_a_path_without_its_leading_slash_matches_no_route() -> None:
    catalogue = parse_scope_catalogue('{"all": ["* /*"]}')
    assert scopes.route_allowed(("all",), catalogue, "GET", "/v1")
    assert not scopes.route_allowed(("all",), catalogue, "GET", "v1")


@pytest.mark.parametrize(
    ("raw", "stage", "canonical"),
    [
        ("/", None, "/"),
        ("/prod", "prod", "/"),  # the stage's own root
        ("/prod/", "prod", "/"),
        ("/prod/v1/whoami", "prod", "/v1/whoami"),
        ("/$default/v1/whoami", "$default", "/$default/v1/whoami"),  # $default is no path prefix
        ("/a%20b", None, "/a b"),  # a space is no control character
        ("/a%1Fb", None, None),
        ("/a%7Fb", None, None),  # DEL is one
        ("/a%7Eb", None, "/a~b"),
    ],
)
def test_default_route_paths_are_made_canonical(raw: str, stage: str | None, canonical: str | None) -> None:
    assert scopes.canonical_path(raw, stage) == canonical
