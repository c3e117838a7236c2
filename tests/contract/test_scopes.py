"""Scoped keys through the handlers and the authorizer, on moto and DynamoDB Local: the key
object's `scopes` on every response, invalid `scopes` refused with nothing written, the policy
and context a scoped key gets (a WebSocket, which has no routes, only for a full-access key),
and a PATCH that takes effect on the very next authorization."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apikeys.config import get_settings
from tests.helpers.invariants import snapshot
from tests.helpers.support import (
    METHOD_ARN,
    ROOT,
    Api,
    CallCounter,
    fresh_container,
    http_api_event,
    load_function,
    token_event,
)

STAGE = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1"
VALID = "Valid scopes: *, whoami, mcp, keys:read."


def _statement(answer: dict[str, Any] | None) -> dict[str, Any]:
    assert answer is not None
    statements = answer["policyDocument"]["Statement"]
    assert len(statements) == 1
    return dict(statements[0])


def _http(api: Api, key: str, route_key: str) -> dict[str, Any] | None:
    event = http_api_event({"authorization": f"Bearer {key}"})
    event["routeKey"] = route_key
    return api.authorize(event)


def test_scoped_key_shapes_on_create_list_get_and_roll(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a", scopes=["keys:read", "whoami"])
    assert created.status == 201
    assert created.body["scopes"] == ["whoami", "keys:read"]  # catalogue order
    key_id = created.body["id"]
    assert api.get("acct-a", key_id).body["scopes"] == ["whoami", "keys:read"]
    full = api.create("acct-a", "Full").body
    assert full["scopes"] == ["*"]
    star = api.create("acct-a", "Star", scopes=["*"]).body
    assert star["scopes"] == ["*"]
    listed = {k["id"]: k["scopes"] for k in api.list("acct-a").body["keys"]}
    assert listed == {key_id: ["whoami", "keys:read"], full["id"]: ["*"], star["id"]: ["*"]}
    rolled = api.roll("acct-a", key_id, grace=60)
    assert rolled.status == 201 and rolled.body["scopes"] == ["whoami", "keys:read"]
    # The new key is as restricted as the old one, in the authorizer too.
    assert api.bearer(rolled.body["key"])["context"]["scopes"] == "whoami keys:read"  # type: ignore[index]


BAD_SCOPES: list[Any] = [[], ["whoami", "whoami"], ["*", "mcp"], ["admin"], ["WHOAMI"], "whoami", [1], None]


@pytest.mark.parametrize("bad", BAD_SCOPES, ids=[repr(b) for b in BAD_SCOPES])
def test_invalid_scopes_are_400_and_write_nothing(api: Api, bad: Any) -> None:
    api.set_plan("acct-a", "pro")
    key = api.create("acct-a", scopes=["whoami"]).body
    before = snapshot(get_settings().table_name)
    created = api.create("acct-a", "Another", scopes=bad)
    patched = api.patch("acct-a", key["id"], {"scopes": bad})
    for reply in (created, patched):
        assert reply.status == 400, reply.body
        assert reply.body["error"]["code"] == "invalid_request"
        if isinstance(bad, list) and all(isinstance(x, str) for x in bad):
            assert reply.body["error"]["message"].endswith(VALID)
    assert snapshot(get_settings().table_name) == before
    assert api.bearer(key["key"])["context"]["scopes"] == "whoami"  # type: ignore[index]


def test_patch_without_name_or_scopes_is_400(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    key_id = api.create("acct-a").body["id"]
    before = snapshot(get_settings().table_name)
    for body in ({}, {"name": None}, {"name": "ok", "scopes": None}):
        reply = api.patch("acct-a", key_id, body)
        assert reply.status == 400 and reply.body["error"]["code"] == "invalid_request", body
    assert snapshot(get_settings().table_name) == before


def test_rest_policy_of_each_default_scope(api: Api) -> None:
    api.set_plan("acct-a", "advanced")
    whoami = api.create("acct-a", scopes=["whoami"]).body["key"]
    mcp = api.create("acct-a", scopes=["mcp"]).body["key"]
    both = api.create("acct-a", scopes=["mcp", "whoami"]).body["key"]
    capability = api.create("acct-a", scopes=["keys:read"]).body["key"]
    assert _statement(api.bearer(whoami))["Resource"] == [f"{STAGE}/GET/v1/whoami"]
    assert _statement(api.bearer(mcp))["Resource"] == [f"{STAGE}/POST/mcp"]
    assert _statement(api.bearer(both))["Resource"] == [f"{STAGE}/GET/v1/whoami", f"{STAGE}/POST/mcp"]
    denied = api.bearer(capability)
    assert _statement(denied) == {"Action": "execute-api:Invoke", "Effect": "Deny", "Resource": [f"{STAGE}/*/*"]}
    assert denied is not None and denied["context"]["scopes"] == "keys:read"
    # REQUEST authorizers answer the same policy.
    request = {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": {"Authorization": f"Bearer {mcp}"}}
    assert _statement(api.authorize(request))["Resource"] == [f"{STAGE}/POST/mcp"]


def test_http_api_refuses_routes_outside_the_scopes(api: Api, capfd: pytest.CaptureFixture[str]) -> None:
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a", scopes=["whoami"]).body
    whoami = created["key"]
    capability = api.create("acct-a", scopes=["keys:read", "mcp"]).body["key"]
    allowed = _http(api, whoami, "GET /v1/whoami")
    assert allowed is not None and allowed["isAuthorized"] is True
    assert allowed["context"]["scopes"] == "whoami"
    capfd.readouterr()
    assert _http(api, whoami, "POST /mcp") == {"isAuthorized": False}
    [line] = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]
    assert (line["level"], line["message"]) == ("INFO", "denied")  # with why, and which key
    assert (line["reason"], line["key_id"]) == ("route outside the key's scopes", created["id"])
    assert _http(api, capability, "GET /v1/whoami") == {"isAuthorized": False}
    answer = _http(api, capability, "POST /mcp")
    assert answer is not None and answer["isAuthorized"] and answer["context"]["scopes"] == "mcp keys:read"


def test_a_scoped_key_may_not_open_a_websocket(api: Api) -> None:
    """Scopes name HTTP routes; a WebSocket has none, so only a full-access key may connect."""
    api.set_plan("acct-ws-scoped", "pro")
    created = api.create("acct-ws-scoped", scopes=["whoami"]).body
    sample = (ROOT / "events/authorizer_websocket.json").read_text()
    event = json.loads(sample.replace("ot_PASTE_A_KEY_HERE", created["key"]))
    answer = api.authorize(event)
    assert answer is not None
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Resource"] == [event["methodArn"]]


def test_narrowing_with_patch_refuses_the_next_request(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a", "Zapier", scopes=["whoami", "mcp"]).body
    key, key_id = created["key"], created["id"]
    assert _http(api, key, "GET /v1/whoami")["isAuthorized"] is True  # type: ignore[index]
    patched = api.patch("acct-a", key_id, {"scopes": ["mcp"]})
    assert patched.status == 200 and patched.body["scopes"] == ["mcp"] and patched.body["name"] == "Zapier"
    assert _http(api, key, "GET /v1/whoami") == {"isAuthorized": False}
    assert _statement(api.bearer(key))["Resource"] == [f"{STAGE}/POST/mcp"]
    assert api.get("acct-a", key_id).body["scopes"] == ["mcp"]
    # Rename and widen back to full access in one PATCH.
    both = api.patch("acct-a", key_id, {"name": "Zapier (all)", "scopes": ["*"]})
    assert both.status == 200 and both.body["scopes"] == ["*"] and both.body["name"] == "Zapier (all)"
    assert _statement(api.bearer(key))["Resource"] == [f"{STAGE}/*/*"]
    # A name-only PATCH keeps the scopes.
    api.patch("acct-a", key_id, {"scopes": ["keys:read"]})
    renamed = api.patch("acct-a", key_id, {"name": "Renamed"})
    assert renamed.status == 200 and renamed.body["scopes"] == ["keys:read"]
    assert _statement(api.bearer(key))["Effect"] == "Deny"


def test_patch_scopes_of_a_deleted_key_is_404(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    key_id = api.create("acct-a").body["id"]
    api.delete("acct-a", key_id)
    reply = api.patch("acct-a", key_id, {"scopes": ["mcp"]})
    assert reply.status == 404 and reply.body["error"]["code"] == "not_found"


def test_scoped_authorization_costs_one_get_item(api: Api, calls: CallCounter) -> None:
    api.set_plan("acct-a", "pro")
    key = api.create("acct-a", scopes=["whoami", "keys:read"]).body["key"]
    api.bearer(key)  # the first use also records last_used_at, off the request path
    calls.reset()
    assert api.bearer(key) is not None
    assert _http(api, key, "POST /mcp") == {"isAuthorized": False}
    assert calls.calls == ["GetItem", "GetItem"]
    calls.reset()
    assert api.authorize(token_event(f"Bearer {key}x")) is None
    assert calls.calls == []


def test_scope_catalogue_route(api: Api) -> None:
    from tests.helpers.support import LambdaContext, rest_event

    reply = load_function("list_scopes").lambda_handler(rest_event("GET", "/scopes"), LambdaContext())
    assert reply["statusCode"] == 200
    import json

    assert json.loads(reply["body"]) == {
        "scopes": [
            {"name": "whoami", "routes": ["GET /v1/whoami"]},
            {"name": "mcp", "routes": ["POST /mcp"]},
            {"name": "keys:read", "routes": []},
        ]
    }
    anonymous = load_function("list_scopes").lambda_handler(rest_event("GET", "/scopes", None), LambdaContext())
    assert anonymous["statusCode"] == 401


# Issue 22 item 3: a `$default` route is matched on the canonical path, never the raw one.
CANONICAL_CATALOGUE = {"v1": ["GET /v1/*"], "whoami": ["GET /v1/whoami"], "keys:read": []}


def _default_route(key: str, raw_path: str, stage: str = "$default", method: str = "GET") -> dict[str, Any]:
    """A payload 2.0 event of an HTTP API's `$default` route, as API Gateway sends it: on a named
    stage `rawPath` carries the stage as its first segment."""
    event = http_api_event({"authorization": f"Bearer {key}"})
    event["routeKey"] = "$default"
    event["routeArn"] = f"arn:aws:execute-api:us-east-1:123456789012:abc123/{stage}/$default"
    event["rawPath"] = raw_path
    event["requestContext"] = {"stage": stage, "http": {"method": method, "path": raw_path}}
    return event


def _scoped_keys(api: Api, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, str]:
    from apikeys.config import parse_scope_catalogue

    # Loaded first: an authorizer first imported under this KEY_SCOPES would keep its catalogue as
    # the CATALOGUE monkeypatch restores, for every later test of the process.
    authorizer = load_function("authorizer")
    monkeypatch.setenv("KEY_SCOPES", json.dumps(CANONICAL_CATALOGUE))
    fresh_container()  # the layer reads KEY_SCOPES again, as a new container would
    monkeypatch.setattr(authorizer, "CATALOGUE", parse_scope_catalogue(json.dumps(CANONICAL_CATALOGUE)))
    api.set_plan("acct-a", "pro")
    v1 = api.create("acct-a", "v1", scopes=["v1"]).body["key"]
    whoami = api.create("acct-a", "whoami", scopes=["whoami"]).body["key"]
    full = api.create("acct-a", "full").body["key"]
    return v1, whoami, full


TRAVERSALS = [
    "/v1/../admin",
    "/v1/./../admin",
    "/v1/%2e%2e/admin",
    "/v1/%2E%2E/admin",
    "/v1/.%2e/admin",
    "/v1/..%2fadmin",
    "/v1/..%2Fadmin",
    "/v1/x%2f..%2f..%2fadmin",
    "/v1/..%5cadmin",
    "/v1/..\\admin",
    "/v1/x%00",
    "/v1/%252e%252e/admin",
    "/v1/.",
    "/v1/x/.",
    "/v1//admin",
    "/v1/%zz",
    "/v1/%c3%28",
    "/v1/x%0a",
]


@pytest.mark.parametrize("raw_path", TRAVERSALS)
def test_default_route_refuses_dot_segments_and_encoded_separators(
    api: Api, monkeypatch: pytest.MonkeyPatch, raw_path: str
) -> None:
    v1, _, full = _scoped_keys(api, monkeypatch)
    assert api.authorize(_default_route(v1, raw_path)) == {"isAuthorized": False}
    assert api.authorize(_default_route(v1, "/prod" + raw_path, stage="prod")) == {"isAuthorized": False}
    # A full-access key is not matched against routes: its backend sees the path as sent.
    assert api.authorize(_default_route(full, raw_path))["isAuthorized"] is True  # type: ignore[index]


def test_default_route_allows_canonical_paths_in_scope_on_every_stage(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    v1, whoami, _ = _scoped_keys(api, monkeypatch)
    for stage, prefix in (("$default", ""), ("prod", "/prod"), ("v1", "/v1")):
        for key, path, allowed in (
            (v1, "/v1/whoami", True),
            (v1, "/v1/orders/7", True),
            (v1, "/v1/%77hoami", True),  # an escaped letter is that letter
            (v1, "/v1", False),
            (v1, "/admin", False),
            (v1, "/v2/x", False),
            (whoami, "/v1/whoami", True),
            (whoami, "/v1/%77hoami", True),
            (whoami, "/v1/orders", False),
        ):
            answer = api.authorize(_default_route(key, prefix + path, stage=stage))
            assert answer is not None and answer["isAuthorized"] is allowed, (stage, path)
    # On a named stage the stage is not part of the route: `/prod/v1/...` is not `/v1/...` on $default.
    assert api.authorize(_default_route(v1, "/prod/v1/x")) == {"isAuthorized": False}
    assert api.authorize(_default_route(whoami, "/v1/whoami", stage="prod"))["isAuthorized"] is True  # type: ignore[index]
