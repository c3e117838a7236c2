"""The management API and authorizer contract, end to end through the real handlers,
on moto and on DynamoDB Local."""

from __future__ import annotations

import re
from typing import Any

import pytest

from apikeys import keys
from tests.helpers.interleave import before_each_write
from tests.helpers.support import (
    PLAN_LIMITS,
    Api,
    CallCounter,
    counting_calls,
    http_api_event,
    load_function,
    request_event,
    token_event,
)

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
# Fields the key lifecycle issue added to every key object (the core fields stay as they were).
# connection: issue 21 (OAuth); created_by, requests_30d: issue 23
LIFECYCLE_FIELDS = {"expires_at", "status", "scopes", "connection", "created_by", "requests_30d"}


def test_create_shows_key_once_and_list_masks_it(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a", "  Zapier Integration  ")
    assert created.status == 201
    body = created.body
    assert set(body) == {"id", "name", "key", "display", "created_at", "last_used_at"} | LIFECYCLE_FIELDS
    assert body["name"] == "Zapier Integration"
    assert body["key"].startswith("ot_") and keys.is_well_formed(body["key"], "ot_")
    assert re.fullmatch(r"ot_[A-Za-z0-9]+", body["key"])
    assert body["display"].startswith("ot_")
    revealed = body["display"].replace("ot_", "", 1).replace("…", "")
    assert len(revealed) <= 8 and body["key"] not in body["display"]
    assert ISO.fullmatch(body["created_at"]) and body["last_used_at"] is None
    assert created.headers.get("Cache-Control") == "no-store"

    listed = api.list("acct-a")
    assert listed.status == 200
    assert (
        listed.body["plan"] == "pro"
        and listed.body["key_limit"] == PLAN_LIMITS["pro"]
        and listed.body["key_count"] == 1
    )
    [item] = listed.body["keys"]
    assert set(item) == {"id", "name", "display", "created_at", "last_used_at"} | LIFECYCLE_FIELDS
    assert item["id"] == body["id"] and item["display"] == body["display"]
    assert body["key"] not in str(listed.body)


def test_stored_items_hold_only_the_digest(api: Api) -> None:
    import boto3

    from apikeys.config import get_settings

    api.set_plan("acct-a", "pro")
    key = api.create("acct-a").body["key"]
    items = boto3.client("dynamodb").scan(TableName=get_settings().table_name)["Items"]
    dump = str(items)
    assert key not in dump and key[3:11] not in dump and key[3:15] not in dump
    assert keys.digest(key) in dump


def test_list_is_newest_first_even_within_one_second(api: Api) -> None:
    api.set_plan("acct-a", "agency")
    ids = [api.create("acct-a", f"k{i}").body["id"] for i in range(6)]
    listed = api.list("acct-a").body["keys"]
    assert [k["id"] for k in listed] == list(reversed(ids))
    assert [k["name"] for k in listed] == [f"k{i}" for i in reversed(range(6))]


@pytest.mark.parametrize(
    ("plan", "limit", "upgrade"),
    [
        ("pro", PLAN_LIMITS["pro"], "Advanced"),
        ("advanced", PLAN_LIMITS["advanced"], "Agency"),
        ("agency", PLAN_LIMITS["agency"], None),
    ],
)
def test_every_plan_limit_is_enforced(api: Api, plan: str, limit: int, upgrade: str | None) -> None:
    assert api.set_plan("acct-a", plan) == {"account_id": "acct-a", "plan": plan, "key_limit": limit}
    for i in range(limit):
        assert api.create("acct-a", f"key {i}").status == 201
    refused = api.create("acct-a", "one too many")
    assert refused.status == 403
    error = refused.body["error"]
    assert error["code"] == "key_limit_reached"
    assert plan.capitalize() in error["message"] and str(limit) in error["message"]
    if upgrade:
        assert upgrade in error["message"]
    listing = api.list("acct-a").body
    assert listing["key_count"] == limit == len(listing["keys"])


def test_account_without_plan_may_hold_no_keys(api: Api) -> None:
    refused = api.create("acct-new")
    assert refused.status == 403 and refused.body["error"]["code"] == "key_limit_reached"
    assert "Pro" in refused.body["error"]["message"]
    listed = api.list("acct-new").body
    assert listed.pop("requests_by_day")["keys"] == {}
    assert listed == {"keys": [], "plan": None, "key_limit": 0, "key_count": 0}


def test_default_plan_applies_to_accounts_never_set(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from apikeys.config import get_settings

    monkeypatch.setenv("DEFAULT_PLAN", "pro")
    get_settings.cache_clear()
    assert api.create("acct-default").status == 201
    assert api.list("acct-default").body["plan"] == "pro"
    principal = api.bearer(api.secrets[-1])
    assert principal is not None and principal["context"]["plan"] == "pro"


def test_downgrade_keeps_keys_but_refuses_new_ones_until_under_limit(api: Api) -> None:
    api.set_plan("acct-a", "advanced")
    created = [api.create("acct-a", f"k{i}").body for i in range(5)]
    assert api.set_plan("acct-a", "pro")["key_limit"] == PLAN_LIMITS["pro"]
    for key in created:  # every existing key still works, and reports the new plan
        allowed = api.bearer(key["key"])
        assert allowed is not None and allowed["context"]["plan"] == "pro"
    assert api.create("acct-a", "refused").status == 403
    for key in created[:3]:
        assert api.delete("acct-a", key["id"]).status == 204
    assert api.create("acct-a", "still refused at 2 of 3? no: 2 < 3").status == 201
    assert api.create("acct-a", "over").status == 403
    assert api.list("acct-a").body["key_count"] == 3


def test_upgrade_reaches_existing_keys_and_lifts_the_limit(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    key = api.create("acct-a").body["key"]
    for _ in range(2):
        api.create("acct-a")
    assert api.create("acct-a").status == 403
    api.set_plan("acct-a", "agency")
    assert api.bearer(key)["context"]["plan"] == "agency"  # type: ignore[index]
    assert api.create("acct-a").status == 201


def test_set_plan_rejects_unknown_plan_naming_the_valid_ones(api: Api) -> None:
    with pytest.raises(Exception, match="pro, advanced, agency"):
        api.set_plan("acct-a", "platinum")
    with pytest.raises(Exception, match="account_id"):
        api.set_plan("", "pro")
    assert api.list("acct-a").body["plan"] is None


def test_delete_revokes_on_the_very_next_authorization(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a").body
    allowed = api.bearer(created["key"])
    assert allowed is not None
    assert allowed["principalId"] == "acct-a"
    assert allowed["context"] == {"account_id": "acct-a", "key_id": created["id"], "plan": "pro", "scopes": "*"}
    deleted = api.delete("acct-a", created["id"])
    assert deleted.status == 204 and deleted.body is None
    assert api.bearer(created["key"]) is None
    assert api.list("acct-a").body["key_count"] == 0
    assert api.delete("acct-a", created["id"]).status == 404


def test_tenant_isolation(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    api.set_plan("acct-b", "pro")
    a_key = api.create("acct-a", "A's key").body
    assert api.list("acct-b").body["keys"] == []
    refused = api.delete("acct-b", a_key["id"])
    assert refused.status == 404 and refused.body["error"]["code"] == "not_found"
    assert api.list("acct-a").body["key_count"] == 1
    assert api.bearer(a_key["key"])["principalId"] == "acct-a"  # type: ignore[index]


def test_unknown_key_id_is_404_and_changes_nothing(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    api.create("acct-a")
    for key_id in ["key_00000000000000000000", "nope", "key_" + "a" * 200, "../keys"]:
        reply = api.delete("acct-a", key_id)
        assert reply.status == 404 and reply.body["error"]["code"] == "not_found"
    assert api.list("acct-a").body["key_count"] == 1


def test_no_identity_is_401(api: Api) -> None:
    for reply in (api.create(None), api.list(None), api.delete(None, "key_00000000000000000000")):
        assert reply.status == 401
        assert reply.body["error"]["code"] == "unauthorized"


BAD_BODIES = [
    ("not json", "{"),
    ("array", "[]"),
    ("string", '"x"'),
    ("null", "null"),
    ("empty", ""),
    ("missing name", "{}"),
    ("empty name", '{"name": ""}'),
    ("blank name", '{"name": "   "}'),
    ("too long", '{"name": "' + "x" * 65 + '"}'),
    ("number", '{"name": 5}'),
    ("null name", '{"name": null}'),
    ("control char", '{"name": "a\\u0007b"}'),
    ("newline", '{"name": "a\\nb"}'),
    ("unknown field", '{"name": "ok", "admin": true}'),
    ("huge", '{"name": "' + "x" * 20000 + '"}'),
]


@pytest.mark.parametrize(("case", "raw"), BAD_BODIES, ids=[c for c, _ in BAD_BODIES])
def test_bad_bodies_get_400_and_change_nothing(api: Api, case: str, raw: str) -> None:
    api.set_plan("acct-a", "pro")
    reply = api.create("acct-a", raw_body=raw)
    assert reply.status == 400, case
    assert set(reply.body) == {"error"} and reply.body["error"]["code"] == "invalid_request"
    assert reply.body["error"]["message"]
    assert api.list("acct-a").body["key_count"] == 0


def test_names_accept_unicode_up_to_64_characters(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    name = "Zapier 🔑 Ünïcødé " + "名" * 47
    assert len(name) == 64
    assert api.create("acct-a", name).body["name"] == name


AUTH_HEADERS = ["Bearer {k}", "bearer {k}", "BEARER {k}", "Bearer   {k}  "]
BAD_HEADERS = ["{k}", "Basic {k}", "Bearer", "Bearer {k} {k}", "Bearer {k}x", "Token {k}", ""]


def test_authorizer_event_shapes_and_schemes(api: Api) -> None:
    api.set_plan("acct-a", "advanced")
    key_body = api.create("acct-a").body
    key = key_body["key"]
    context = {"account_id": "acct-a", "key_id": key_body["id"], "plan": "advanced", "scopes": "*"}
    for template in AUTH_HEADERS:
        header = template.format(k=key)
        allowed = api.authorize(token_event(header))
        assert allowed is not None, template
        statement = allowed["policyDocument"]["Statement"][0]
        assert statement["Effect"] == "Allow" and statement["Action"] == "execute-api:Invoke"
        assert statement["Resource"] == ["arn:aws:execute-api:us-east-1:123456789012:abc123/v1/*/*"]
        assert allowed["context"] == context
        for name in ("Authorization", "authorization", "AUTHORIZATION"):
            assert api.authorize(request_event({name: header}))["context"] == context  # type: ignore[index]
        v2 = api.authorize(http_api_event({"authorization": header}))
        assert v2 == {"isAuthorized": True, "context": context}
    for template in BAD_HEADERS:
        header = template.format(k=key)
        assert api.authorize(token_event(header)) is None, template
        assert api.authorize(request_event({"Authorization": header})) is None, template
        assert api.authorize(http_api_event({"authorization": header})) == {"isAuthorized": False}
    assert api.authorize(request_event({})) is None
    assert api.authorize(http_api_event({})) == {"isAuthorized": False}
    two = request_event({"Authorization": f"Bearer {key}"})
    two["multiValueHeaders"]["Authorization"].append("Bearer ot_other")
    assert api.authorize(two) is None
    # A method ARN that names no API, stage and method is refused (401), and so is an event that
    # is not an object or a TOKEN event whose token is not text.
    for arn in ("arn:aws:execute-api:us-east-1:123456789012", "arn:aws:execute-api:us-east-1:123456789012:abc123/v1"):
        event = token_event(f"Bearer {key}")
        event["methodArn"] = arn
        assert api.authorize(event) is None, arn
    for not_an_event in (None, "Bearer", [token_event(f"Bearer {key}")]):
        assert api.authorize(not_an_event) is None  # type: ignore[arg-type]
    not_text = token_event(f"Bearer {key}")
    not_text["authorizationToken"] = [f"Bearer {key}"]
    assert api.authorize(not_text) is None
    # A value that is not text, in either map, is no header (a 401), never an error.
    for value in (7, [f"Bearer {key}"]):
        not_text = request_event({"Authorization": f"Bearer {key}"})
        not_text["headers"]["Authorization"], not_text["multiValueHeaders"]["Authorization"] = value, [value]
        assert api.authorize(not_text) is None


def test_malformed_and_tampered_keys_cost_zero_dynamodb_calls(api: Api, calls: CallCounter) -> None:
    api.set_plan("acct-a", "pro")
    key = api.create("acct-a").body["key"]
    calls.reset()
    last = key[-1]
    tampered = [
        key[:-1] + ("A" if last != "A" else "B"),  # checksum no longer matches
        key[:10] + ("x" if key[10] != "x" else "y") + key[11:],  # body changed
        "ot_" + "A" * 38,
        key[:-2],
        key + "0",
        "sk_" + key[3:],
        key.replace("ot_", "OT_"),
        "ot_" + "é" * 38,
    ]
    for bad in tampered:
        assert api.bearer(bad) is None, bad
    assert calls.calls == []
    assert api.bearer(key) is not None
    from apikeys.usage import wait_for_last_used

    wait_for_last_used()
    # exactly one read for a live key, plus the first use's two writes (at most once a minute):
    # the usage count's on the request, then last_used_at's off it
    assert calls.calls == ["GetItem", "UpdateItem", "UpdateItem"]


def test_denials_are_logged_and_allows_only_at_debug(api: Api, capfd: pytest.CaptureFixture[str]) -> None:
    """Every refusal leaves an INFO line with the request id; an allowed request leaves none
    (API Gateway's access log has it), so the hot path pays for no log line."""
    import json

    api.set_plan("acct-a", "pro")
    key = api.create("acct-a").body["key"]
    capfd.readouterr()
    assert api.bearer(key) is not None
    assert capfd.readouterr().out == ""
    assert api.bearer(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    lines = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    assert [(line["level"], line["message"]) for line in lines] == [("INFO", "denied")]
    assert lines[0]["function_request_id"] and lines[0]["function_name"] == "authorizer"
    assert lines[0]["reason"] == "missing, malformed, unknown or revoked key"
    # A live key of an account whose plan allows no keys: its own reason, and the account.
    from tests.contract.test_downgrades import _set_plan

    _set_plan({"account_id": "acct-a", "plan": None})
    capfd.readouterr()
    assert api.bearer(key)["policyDocument"]["Statement"][0]["Effect"] == "Deny"  # type: ignore[index]
    [line] = [json.loads(line) for line in capfd.readouterr().out.splitlines() if '"denied"' in line]
    assert (line["message"], line["reason"], line["account_id"]) == ("denied", "plan allows no keys", "acct-a")


def test_at_debug_an_allowed_request_is_logged_with_its_account_and_key(
    api: Api, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """POWERTOOLS_LOG_LEVEL=DEBUG (read once per container): each allowed request is a line too."""
    import json

    api.set_plan("acct-a", "pro")
    created = api.create("acct-a").body
    authorizer = load_function("authorizer")
    monkeypatch.setattr(authorizer, "DEBUG", True)
    level = authorizer.logger.log_level
    authorizer.logger.setLevel("DEBUG")
    try:
        capfd.readouterr()
        assert api.bearer(created["key"]) is not None
        lines = [json.loads(line) for line in capfd.readouterr().out.splitlines()]
    finally:
        authorizer.logger.setLevel(level)
    allowed = [(line["message"], line["account_id"], line["key_id"]) for line in lines if line["level"] == "DEBUG"]
    assert allowed == [("allowed", "acct-a", created["id"])]


def test_a_malformed_method_arn_is_refused_before_any_io(api: Api, calls: CallCounter) -> None:
    api.set_plan("acct-a", "pro")
    event = token_event(f"Bearer {api.create('acct-a').body['key']}")
    event["methodArn"] = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1"
    calls.reset()
    assert api.authorize(event) is None and calls.calls == []


def test_unknown_well_formed_key_is_denied_after_one_read(api: Api, calls: CallCounter) -> None:
    calls.reset()
    assert api.bearer(keys.generate("ot_")) is None
    assert calls.calls == ["GetItem"]


def test_last_used_is_recorded_once_a_minute_and_never_resurrects(api: Api, calls: CallCounter) -> None:
    from apikeys.usage import wait_for_last_used

    api.set_plan("acct-a", "pro")
    created = api.create("acct-a").body
    calls.reset()
    for _ in range(5):
        assert api.bearer(created["key"]) is not None
    wait_for_last_used()
    # one last-used write, and one usage write (the account's first count in this container)
    assert calls.calls.count("GetItem") == 5 and calls.calls.count("UpdateItem") == 2
    used = api.list("acct-a").body["keys"][0]["last_used_at"]
    assert ISO.fullmatch(used)

    # A late update for a deleted key must not bring its item back.
    from apikeys.config import get_settings
    from apikeys.store import Store

    assert api.delete("acct-a", created["id"]).status == 204
    Store(get_settings().table_name).touch_last_used("acct-a", created["id"], "2999-01-01T00:00:00.000Z", "2998")
    assert api.list("acct-a").body["keys"] == []


def test_create_is_one_call_without_reads_in_a_warm_container(api: Api, calls: CallCounter) -> None:
    api.set_plan("acct-a", "agency")
    api.create("acct-a")
    calls.reset()
    api.create("acct-a")
    assert calls.calls == ["TransactWriteItems"]
    calls.reset()
    api.list("acct-a")
    assert calls.calls == ["Query", "Query"]  # the keys, then their 30 days of usage (issue 23)
    key_id = api.list("acct-a").body["keys"][0]["id"]
    calls.reset()
    api.delete("acct-a", key_id)
    assert calls.calls == ["GetItem", "TransactWriteItems"]


def test_a_new_container_learns_the_plan_from_a_list_so_its_first_create_is_one_write(api: Api) -> None:
    """The console lists before it creates: the list's plan is the create's guess, so a container
    that never saw the account still creates with one transaction and no retry."""
    api.set_plan("acct-a", "agency")
    with counting_calls(new_container=True) as calls:
        assert api.list("acct-a").body["plan"] == "agency"
        calls.reset()
        assert api.create("acct-a").status == 201
        assert calls.calls == ["TransactWriteItems"]


def test_a_new_account_on_the_default_plan_is_created_with_its_first_key_in_one_write(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DEFAULT_PLAN is the guess for an account no billing call has set: the first create makes
    the account and the key in one transaction, with no retry."""
    monkeypatch.setenv("DEFAULT_PLAN", "pro")
    with counting_calls(new_container=True) as calls:
        assert api.create("acct-new").status == 201
        assert calls.calls == ["TransactWriteItems"]
    assert api.list("acct-new").body["plan"] == "pro"


def test_a_wrong_plan_guess_costs_one_retry_once_per_container(api: Api) -> None:
    """A new container guesses DEFAULT_PLAN (here none); DynamoDB's answer corrects it, and the
    container's next create is one write."""
    api.set_plan("acct-a", "agency")
    with counting_calls(new_container=True) as calls:
        assert api.create("acct-a", "first").status == 201
        assert calls.calls == ["TransactWriteItems", "TransactWriteItems"]
        calls.reset()
        assert api.create("acct-a", "second").status == 201
        assert calls.calls == ["TransactWriteItems"]


def test_a_key_created_while_a_plan_change_is_in_flight_ends_on_the_new_plan(api: Api) -> None:
    """The other order: the plan change has read the keys, a create commits on the old plan,
    then the plan change writes. Its condition on the account's `version` fails, it reads again
    and moves the new key too, so no digest item (what the authorizer reads) keeps the old plan."""
    api.set_plan("acct-a", "pro")
    made: list[Any] = []
    with before_each_write(lambda: made.append(api.create("acct-a", "raced"))) as ran:
        api.set_plan("acct-a", "advanced")
    assert ran == [1] and made[0].status == 201
    allowed = api.bearer(made[0].body["key"])
    assert allowed is not None and allowed["context"]["plan"] == "advanced"
    listing = api.list("acct-a").body
    assert (listing["plan"], listing["key_count"]) == ("advanced", 1)


def test_a_create_whose_plan_changes_before_its_write_lands_its_key_on_the_new_plan(api: Api) -> None:
    """A plan change between the create's guess and its write fails the write's condition: the
    store's answer names the new plan and the create writes again on it, so the key's digest item
    (what the authorizer reads) never carries the old one."""
    api.set_plan("acct-a", "pro")
    with counting_calls() as calls, before_each_write(lambda: api.set_plan("acct-a", "advanced")) as ran:
        created = api.create("acct-a", "raced")
    assert (created.status, ran) == (201, [1])
    plan_change = ["Query", "TransactWriteItems"]  # set plan's own calls, before the create's write
    assert calls.calls == [*plan_change, "TransactWriteItems", "TransactWriteItems"]
    allowed = api.bearer(created.body["key"])
    assert allowed is not None and allowed["context"]["plan"] == "advanced"
    assert api.list("acct-a").body["key_count"] == 1


def test_a_plan_set_in_the_same_process_is_the_next_create_s_guess(api: Api) -> None:
    """One process serves every route locally (apikeys-local, the bench): a plan it set is known,
    so the account's first create there is one write."""
    with counting_calls() as calls:
        api.set_plan("acct-a", "advanced")
        calls.reset()
        assert api.create("acct-a").status == 201
        assert calls.calls == ["TransactWriteItems"]


def test_a_create_refused_at_the_limit_teaches_the_container_the_plan(api: Api) -> None:
    """The first refusal in a new container costs a wrong guess; the next one is one write."""
    api.set_plan("acct-a", "pro")
    for i in range(3):
        api.create("acct-a", f"key {i}")
    with counting_calls(new_container=True) as calls:
        assert api.create("acct-a").status == 403
        assert calls.calls == ["TransactWriteItems", "TransactWriteItems"]
        calls.reset()
        assert api.create("acct-a").status == 403
        assert calls.calls == ["TransactWriteItems"]


def test_list_costs_one_query_per_page(api: Api, calls: CallCounter) -> None:
    """A real table pages at 1 MB; forcing 3 items a page shows each page costs one Query and
    nothing else (no read of the account item, none per key), and no key is lost between pages.
    Then one more Query, whatever the number of keys: their last 30 days of usage (issue 23)."""
    api.set_plan("acct-a", "agency")
    created = [api.create("acct-a", f"key {i}").body["id"] for i in range(10)]

    def three_per_page(params: dict[str, Any], **_: Any) -> None:
        params["Limit"] = 3

    events = calls._client.meta.events
    events.register("before-parameter-build.dynamodb.Query", three_per_page)
    try:
        calls.reset()
        listing = api.list("acct-a").body
    finally:
        events.unregister("before-parameter-build.dynamodb.Query", three_per_page)
    assert calls.calls == ["Query"] * 4 + ["Query"]  # 11 items (10 keys, then the account item), 3 a page
    assert [k["id"] for k in listing["keys"]] == created[::-1]
    assert (listing["plan"], listing["key_count"], listing["key_limit"]) == ("agency", 10, PLAN_LIMITS["agency"])


def test_whoami_echoes_the_authorizer_context(api: Api) -> None:
    from tests.helpers.support import LambdaContext, load_function, rest_event

    event = rest_event("GET", "/v1/whoami", account=None)
    event["requestContext"]["authorizer"] = {
        "principalId": "acct-a",
        "account_id": "acct-a",
        "key_id": "key_x",
        "plan": "pro",
        "scopes": "*",
        "integrationLatency": 12,
    }
    result = load_function("whoami").lambda_handler(event, LambdaContext())
    assert result["statusCode"] == 200
    import json

    assert json.loads(result["body"]) == {"account_id": "acct-a", "key_id": "key_x", "plan": "pro", "scopes": ["*"]}
    event["requestContext"]["authorizer"] = None
    result = load_function("whoami").lambda_handler(event, LambdaContext())
    assert result["statusCode"] == 401


def test_oversized_body_is_refused_before_it_is_parsed(
    api: Api, calls: CallCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    import apikeys.api

    api.set_plan("acct-a", "pro")
    calls.reset()

    def no_parsing(*_: Any, **__: Any) -> Any:
        raise AssertionError("an oversized body was parsed")

    import json
    from types import SimpleNamespace

    monkeypatch.setattr(apikeys.api, "json", SimpleNamespace(dumps=json.dumps, loads=no_parsing))
    for raw in ('{"name": "' + "x" * 10_300 + '"}', "[" * 10_300, "é" * 6_000):
        reply = api.create("acct-a", raw_body=raw)
        assert reply.status == 400
        assert reply.body["error"]["code"] == "invalid_request" and "10240 bytes" in reply.body["error"]["message"]
    assert calls.calls == []


def test_oversized_authorization_header_is_refused_without_hashing_or_io(
    api: Api, calls: CallCounter, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apikeys import auth

    api.set_plan("acct-a", "pro")
    key = api.create("acct-a").body["key"]
    calls.reset()

    def no_hashing(_: str) -> str:
        raise AssertionError("an oversized header was hashed")

    monkeypatch.setattr(auth.keys, "digest", no_hashing)
    padded = f"Bearer {key}" + " " * 9000  # a live key, but the header is over 8 KB
    assert api.authorize(token_event(padded)) is None
    assert api.authorize(request_event({"Authorization": padded})) is None
    assert api.authorize(http_api_event({"authorization": padded})) == {"isAuthorized": False}
    assert calls.calls == []
