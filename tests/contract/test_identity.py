"""Management routes accept Cognito ID tokens only (`token_use` = `id`): an access token, which
API Gateway's Cognito authorizer also lets through, is refused with 401 and changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from apikeys_local.idp import LocalIdentityProvider
from tests.helpers.local_server import ServerProcess, http
from tests.helpers.support import Api, rest_event


def _calls(account: str, key_id: str) -> dict[str, tuple[str, dict[str, Any]]]:
    one = {"key_id": key_id}
    return {
        "create": ("create_key", {"method": "POST", "path": "/keys", "body": {"name": "x"}}),
        "list": ("list_keys", {"method": "GET", "path": "/keys"}),
        "get": ("get_key", {"method": "GET", "path": f"/keys/{key_id}", "path_parameters": one}),
        "rename": (
            "rename_key",
            {"method": "PATCH", "path": f"/keys/{key_id}", "body": {"name": "renamed"}, "path_parameters": one},
        ),
        "roll": ("roll_key", {"method": "POST", "path": f"/keys/{key_id}/roll", "path_parameters": one}),
        "delete": ("delete_key", {"method": "DELETE", "path": f"/keys/{key_id}", "path_parameters": one}),
    }


def test_management_handlers_refuse_anything_but_an_id_token(db: Any) -> None:
    api = Api()
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a", "Original")
    assert created.status == 201
    key_id = created.body["id"]
    before = api.list("acct-a").body
    for token_use in ("access", None, "ID", ""):
        for name, (function, spec) in _calls("acct-a", key_id).items():
            event = rest_event(spec["method"], spec["path"], "acct-a", body=spec.get("body"),
                               path_parameters=spec.get("path_parameters"), token_use=str(token_use))  # fmt: skip
            if token_use is None:
                del event["requestContext"]["authorizer"]["claims"]["token_use"]
            reply = api._invoke(function, event)
            assert reply.status == 401, (token_use, name, reply.status)
            assert reply.body["error"]["code"] == "unauthorized"
            assert reply.headers["WWW-Authenticate"] == "Bearer"
    # Nothing was created, renamed, rolled or deleted.
    assert api.list("acct-a").body == before
    assert api.get("acct-a", key_id).body["name"] == "Original"


def test_local_identity_providers_access_tokens_get_401(local_api: ServerProcess, local_home: Path) -> None:
    idp = LocalIdentityProvider(local_home)
    account = "acct-access-token"
    access = idp.mint_access(account)
    assert http("GET", f"{local_api.url}/keys", idp.mint(account)).status == 200
    for method, path, body in (("GET", "/keys", None), ("POST", "/keys", {"name": "x"})):
        reply = http(method, f"{local_api.url}{path}", access, body)
        # API Gateway's Cognito authorizer accepts the token; the handler refuses it.
        assert reply.status == 401, reply.text
        assert reply.json["error"]["code"] == "unauthorized"
        assert reply.headers["Cache-Control"] == "no-store"
    assert http("GET", f"{local_api.url}/keys", idp.mint(account)).json["keys"] == []
