"""The authorizer answers API Gateway WebSocket `$connect` and AWS AppSync `AWS_LAMBDA`
authorization as it answers REST and HTTP APIs: the same key check and context, each in its own
answer shape, refusals that are refusals, one GetItem for a well-formed key and none for a
malformed one, and a store failure that fails closed. On moto and DynamoDB Local."""

from __future__ import annotations

import json
from typing import Any

import pytest

from apikeys import keys
from apikeys.auth import MAX_HEADER_BYTES
from apikeys_local.gateway import policy_allows
from tests.helpers.support import ROOT, Api, CallCounter

EVENTS = ROOT / "events"
STAGE_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1"


def sample(name: str, key: str) -> dict[str, Any]:
    """A sample event from events/ with its placeholder replaced by `key`."""
    event: dict[str, Any] = json.loads((EVENTS / name).read_text().replace("ot_PASTE_A_KEY_HERE", key))
    return event


def websocket(key: str) -> dict[str, Any]:
    return sample("authorizer_websocket.json", key)


def appsync(token: str) -> dict[str, Any]:
    event = sample("authorizer_appsync.json", "")
    event["authorizationToken"] = event["requestHeaders"]["authorization"] = token
    return event


def test_websocket_connect_is_allowed_by_a_policy_that_covers_connect(api: Api) -> None:
    """The policy names $connect itself: a REST-style resource api/stage/*/* does not match
    api/stage/$connect, and API Gateway would refuse every connection (403) for a valid key."""
    api.set_plan("acct-ws", "pro")
    created = api.create("acct-ws").body
    event = websocket(created["key"])
    answer = api.authorize(event)
    assert answer is not None and answer["principalId"] == "acct-ws"
    assert answer["context"] == {"account_id": "acct-ws", "key_id": created["id"], "plan": "pro", "scopes": "*"}
    assert answer["context"] == api.bearer(created["key"])["context"]  # type: ignore[index]
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "execute-api:Invoke"
    assert policy_allows(answer["policyDocument"], event["methodArn"]) is True
    # Detected from the ARN alone, whatever the event type says...
    by_arn = websocket(created["key"])
    by_arn["requestContext"].pop("eventType")
    (statement,) = api.authorize(by_arn)["policyDocument"]["Statement"]  # type: ignore[index]
    assert statement["Resource"] == [by_arn["methodArn"]]
    # ...and from eventType alone too, whatever the route's name in the ARN.
    event["methodArn"] = event["methodArn"].replace("$connect", "$default")
    assert policy_allows(api.authorize(event)["policyDocument"], event["methodArn"]) is True  # type: ignore[index]


def test_websocket_connect_is_refused_for_a_wrong_missing_or_deleted_key(api: Api) -> None:
    api.set_plan("acct-ws", "pro")
    created = api.create("acct-ws").body
    assert (
        api.authorize(websocket(created["key"][:-1] + ("A" if created["key"][-1] != "A" else "B"))) is None
    )  # Unauthorized: 401
    assert api.authorize(websocket("")) is None
    no_header = websocket(created["key"])
    no_header.pop("headers"), no_header.pop("multiValueHeaders")
    assert api.authorize(no_header) is None
    assert api.delete("acct-ws", created["id"]).status == 204
    assert api.authorize(websocket(created["key"])) is None  # deleted: refused on the next connect


def test_websocket_connect_of_a_plan_less_account_is_an_explicit_deny(api: Api) -> None:
    api.set_plan("acct-ws", "pro")
    key = api.create("acct-ws").body["key"]
    from tests.contract.test_downgrades import _set_plan

    _set_plan({"account_id": "acct-ws", "plan": None})
    event = websocket(key)
    answer = api.authorize(event)
    assert answer is not None and answer["principalId"] == "acct-ws"
    assert answer["policyDocument"]["Statement"][0]["Effect"] == "Deny"
    assert answer["policyDocument"]["Statement"][0]["Resource"] == [event["methodArn"]]
    assert policy_allows(answer["policyDocument"], event["methodArn"]) is False


def test_appsync_answers_its_own_shape_with_the_rest_context(api: Api) -> None:
    api.set_plan("acct-gql", "advanced")
    created = api.create("acct-gql").body
    key = created["key"]
    rest_context = api.bearer(key)["context"]  # type: ignore[index]
    assert rest_context == {"account_id": "acct-gql", "key_id": created["id"], "plan": "advanced", "scopes": "*"}
    at_the_limit = key + " " * (MAX_HEADER_BYTES - len(key))  # as long as a header may be
    for form, token in enumerate((key, f"Bearer {key}", f"bearer\t{key}", f" {key} ", at_the_limit)):
        assert api.authorize(appsync(token)) == {
            "isAuthorized": True,
            "resolverContext": rest_context,
            "ttlOverride": 0,
        }, form  # the index, never the key, in a failure message


def test_appsync_refusals_are_is_authorized_false_never_an_exception(api: Api) -> None:
    api.set_plan("acct-gql", "pro")
    created = api.create("acct-gql").body
    key = created["key"]
    refused = {"isAuthorized": False, "ttlOverride": 0}
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")  # one checksum character changed
    # Only spaces and tabs are trimmed from a bare token: a newline is not, nor any other character.
    over = key + " " * (MAX_HEADER_BYTES + 1 - len(key))
    bad = ("", "Bearer", tampered, f"Basic {key}", f"Bearer {key} x", f"{key} {key}", "ot_é", 9000 * "a", over)
    bad += (f"{key}\n", f"X{key}", f"{key}X")
    for form, token in enumerate(bad):
        assert api.authorize(appsync(token)) == refused, form
    missing = appsync(key)
    missing["authorizationToken"] = None
    assert api.authorize(missing) == refused
    assert api.authorize(appsync(keys.generate("ot_"))) == refused  # well formed, unknown

    from tests.contract.test_downgrades import _set_plan

    _set_plan({"account_id": "acct-gql", "plan": None})
    assert api.authorize(appsync(key)) == refused  # plan-less: REST's explicit Deny
    _set_plan({"account_id": "acct-gql", "plan": "pro"})
    assert api.authorize(appsync(key))["isAuthorized"] is True  # type: ignore[index]
    assert api.delete("acct-gql", created["id"]).status == 204
    assert api.authorize(appsync(key)) == refused  # deleted: refused on the very next request


def test_websocket_and_appsync_cost_one_get_item_for_a_well_formed_key_and_none_for_a_malformed_one(
    api: Api, calls: CallCounter
) -> None:
    from apikeys.usage import wait_for_last_used

    api.set_plan("acct-io", "pro")
    key = api.create("acct-io").body["key"]
    tampered = key[:-1] + ("A" if key[-1] != "A" else "B")
    for form, event in enumerate((appsync(tampered), appsync("ot_short"), websocket(tampered), websocket("ot_x"))):
        calls.reset()
        api.authorize(event)
        assert calls.calls == [], form
    unknown = keys.generate("ot_")
    for form, event in enumerate((appsync(unknown), websocket(unknown), appsync(key), websocket(key))):
        calls.reset()
        api.authorize(event)
        wait_for_last_used()
        assert calls.calls[:1] == ["GetItem"] and calls.calls.count("GetItem") == 1, form
        assert set(calls.calls) <= {"GetItem", "UpdateItem"}  # the last-used write, off the request path


def test_a_store_failure_fails_closed_on_websocket_and_appsync(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key that could not be checked is neither allowed nor reported as refused: the error
    propagates (API Gateway: 5xx on $connect; AppSync: 401), and an alarm sees a Lambda error."""
    from apikeys.store import Store

    api.set_plan("acct-down", "pro")
    key = api.create("acct-down").body["key"]

    def unavailable(self: Store, digest: str) -> None:
        raise ConnectionError("DynamoDB unreachable")

    monkeypatch.setattr(Store, "get_principal", unavailable)
    for event in (appsync(key), websocket(key)):
        with pytest.raises(ConnectionError):
            api.authorize(event)


def test_a_scoped_key_of_the_default_catalogue_is_refused_on_appsync(
    api: Api, capfd: pytest.CaptureFixture[str]
) -> None:
    """Issue 22 item 4: AppSync has no policy to narrow, so a scoped key must not reach more there
    than on REST. The default catalogue grants no AppSync route: every scoped key is refused,
    each refusal with its INFO line."""
    api.set_plan("acct-gql", "agency")
    refused = {"isAuthorized": False, "ttlOverride": 0}
    for scopes in (["keys:read"], ["whoami"], ["mcp"], ["whoami", "mcp", "keys:read"]):
        created = api.create("acct-gql", scopes=scopes).body
        key = created["key"]
        capfd.readouterr()
        assert api.authorize(appsync(key)) == refused, scopes
        [line] = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
        assert (line["level"], line["message"]) == ("INFO", "denied")
        assert (line["reason"], line["key_id"]) == ("AppSync outside the key's scopes", created["id"])
        assert api.authorize(appsync(f"Bearer {key}")) == refused, scopes
    full = api.create("acct-gql").body["key"]
    assert api.authorize(appsync(full))["isAuthorized"] is True  # type: ignore[index]


def test_a_scoped_key_reaches_appsync_only_when_its_scopes_grant_it(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A scope grants AppSync only by an `APPSYNC /<api id>` (or `APPSYNC /*`) route; a `*`
    method or a capability grants nothing there, and the scopes still reach resolvers."""
    from apikeys.config import parse_scope_catalogue
    from tests.helpers.support import fresh_container, load_function

    catalogue = {
        "whoami": ["GET /v1/whoami"],
        "anything": ["* /v1/*"],
        "keys:read": [],
        "graphql": ["APPSYNC /gql1234abcdexample"],
        "other-graphql": ["APPSYNC /otherapi"],
        "any-graphql": ["APPSYNC /*"],
    }
    authorizer = load_function("authorizer")  # before KEY_SCOPES: see tests/contract/test_scopes.py
    monkeypatch.setenv("KEY_SCOPES", json.dumps(catalogue))
    fresh_container()
    monkeypatch.setattr(authorizer, "CATALOGUE", parse_scope_catalogue(json.dumps(catalogue)))
    api.set_plan("acct-gql", "agency")
    refused = {"isAuthorized": False, "ttlOverride": 0}
    for scopes in (["keys:read"], ["whoami"], ["anything"], ["other-graphql"], ["whoami", "keys:read"]):
        key = api.create("acct-gql", scopes=scopes).body["key"]
        assert api.authorize(appsync(key)) == refused, scopes
    for scopes in (["graphql"], ["any-graphql"], ["graphql", "keys:read"], ["whoami", "graphql"]):
        created = api.create("acct-gql", scopes=scopes).body
        answer = api.authorize(appsync(f"Bearer {created['key']}"))
        assert answer is not None and answer["isAuthorized"] is True, scopes
        assert answer["resolverContext"]["scopes"] == " ".join(created["scopes"])
        # On REST an AppSync route is no route: it adds nothing to the policy.
        statement = api.bearer(created["key"])["policyDocument"]["Statement"][0]  # type: ignore[index]
        if "whoami" in scopes:
            assert statement["Effect"] == "Allow" and statement["Resource"] == [f"{STAGE_ARN}/GET/v1/whoami"]
        else:
            assert statement["Effect"] == "Deny"
    full = api.create("acct-gql").body["key"]
    assert api.authorize(appsync(full))["isAuthorized"] is True  # type: ignore[index]


def test_an_event_is_appsyncs_only_without_a_type_with_a_token_and_an_api_id(api: Api) -> None:
    """API Gateway's events have a `type`; AppSync's has none, but a token and an API id. Anything
    else is answered as API Gateway's: a policy, or Unauthorized."""
    from tests.helpers.support import token_event

    api.set_plan("acct-gql", "pro")
    key = api.create("acct-gql").body["key"]
    rest = token_event(f"Bearer {key}")
    rest["requestContext"] = {"apiId": "gql1234abcdexample"}
    assert api.authorize(rest)["policyDocument"]["Statement"][0]["Effect"] == "Allow"  # type: ignore[index]
    no_token = appsync(key)
    del no_token["authorizationToken"]
    assert api.authorize(no_token) is None
