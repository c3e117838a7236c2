"""Settings a deployment configures take effect through the handlers and the authorizer: a
configured ACCOUNT_ID_CLAIM decides the account a key belongs to, and a plan that allows one key
lets that key call the API. In process on moto."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.support import Api, rest_event

pytestmark = pytest.mark.engines("moto")


def test_a_plan_that_allows_one_key_lets_that_key_call_the_api(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.helpers.support import fresh_container

    monkeypatch.setenv("PLAN_LIMITS", '{"solo": 1, "pro": 3}')
    fresh_container()
    api.set_plan("acct-a", "solo")
    created = api.create("acct-a", "the one").body
    allowed = api.bearer(created["key"])
    assert allowed is not None and allowed["context"]["plan"] == "solo"
    assert [s["Effect"] for s in allowed["policyDocument"]["Statement"]] == ["Allow"]


def _as(claims: dict[str, str], method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    event = rest_event(method, path, "ignored", **kwargs)
    event["requestContext"]["authorizer"]["claims"] = {**claims, "token_use": "id"}
    return event


def test_a_configured_account_claim_decides_the_account_end_to_end(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from apikeys import logic
    from tests.helpers.support import fresh_container

    monkeypatch.setenv("ACCOUNT_ID_CLAIM", "custom:account_id")
    monkeypatch.setenv("DEFAULT_PLAN", "pro")
    fresh_container()
    alice = {"sub": "user-alice", "custom:account_id": "acct-team"}
    bob = {"sub": "user-bob", "custom:account_id": "acct-team"}

    created = api._remember(api._invoke("create_key", _as(alice, "POST", "/keys", body={"name": "team key"})))
    assert created.status == 201, created.body
    # Both users of the team account see the key; the key authorizes as the team account.
    listing = api._invoke("list_keys", _as(bob, "GET", "/keys")).body
    assert [k["id"] for k in listing["keys"]] == [created.body["id"]]
    allowed = api.bearer(created.body["key"])
    assert allowed is not None and allowed["context"]["account_id"] == "acct-team"
    assert logic.list_keys("user-alice").keys == []  # nothing was filed under the `sub`

    missing = api._invoke("list_keys", _as({"sub": "user-alice"}, "GET", "/keys"))
    assert missing.status == 401
    assert missing.body["error"]["code"] == "unauthorized"
    refused = api._invoke("create_key", _as({"sub": "user-alice"}, "POST", "/keys", body={"name": "x"}))
    assert refused.status == 401
    assert [k.name for k in logic.list_keys("acct-team").keys] == ["team key"]
    assert logic.list_keys("user-alice").keys == []
