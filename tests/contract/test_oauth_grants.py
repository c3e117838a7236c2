"""OAuth grants against the table (issue 21), on moto and DynamoDB Local: what time does to
consent requests and codes, the plan filling up between consent and exchange, the audit
trail of a connection, and that the table holds digests only."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import boto3
import pytest

from apikeys import oauth
from apikeys.audit import Caller
from apikeys.errors import KeyLimitReached, NotFound
from tests.helpers.oauth_client import pkce, query_of
from tests.helpers.support import Api

BASE = "https://api.example.com"
USER = Caller(actor="user-sub-1", request_id="req-1")


def _client(api: Api, name: str = "ChatGPT") -> oauth.Client:
    info: dict[str, object] = {
        "client_id": f"client-{name.lower()}",
        "client_name": name,
        "redirect_uris": ["https://chat.example/cb"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
    }
    oauth.register_client(info, None)
    client = oauth.get_client(str(info["client_id"]))
    assert client is not None and client.kind == "registered"
    return client


def _consent(client: oauth.Client, scopes: list[str] | None = None) -> tuple[str, str]:
    verifier, challenge = pkce()
    url = oauth.authorize(client, "https://chat.example/cb", True, "s1", scopes, challenge, f"{BASE}/mcp", BASE)
    assert url.startswith(f"{BASE}/?consent=")
    return query_of(url)["consent"], verifier


def _approve(request_id: str, account: str = "acct-a") -> str:
    return query_of(oauth.decide(request_id, account, USER, True))["code"]


def _connect(api: Api, resource: str | None = None, plan: str | None = "pro") -> oauth.Tokens:
    """acct-a (on `plan`, or as the table finds it if None) connects ChatGPT: the tokens of the
    code's exchange."""
    if plan is not None:
        api.set_plan("acct-a", plan)
    request_id, _ = _consent(_client(api))
    code = _approve(request_id)
    grant = oauth.load_code(code)
    assert grant is not None
    tokens = oauth.exchange_code(code, grant, resource)
    api.secrets += [tokens.access_token, tokens.refresh_token]
    return tokens


def _items() -> list[dict[str, Any]]:
    table = os.environ["TABLE_NAME"]
    return boto3.client("dynamodb").scan(TableName=table, ConsistentRead=True)["Items"]  # type: ignore[no-any-return]


def test_a_consent_request_expires_after_10_minutes(api: Api, travel: Callable[[float], None]) -> None:
    api.set_plan("acct-a", "pro")
    request_id, _ = _consent(_client(api))
    travel(590)  # a margin for the time the test itself takes on a busy machine
    assert oauth.consent(request_id, "acct-a").key_name == "ChatGPT"
    travel(11)
    with pytest.raises(NotFound):
        oauth.consent(request_id, "acct-a")
    with pytest.raises(NotFound):
        oauth.decide(request_id, "acct-a", USER, True)


def test_a_code_expires_after_60_seconds(api: Api, travel: Callable[[float], None]) -> None:
    api.set_plan("acct-a", "pro")
    request_id, _ = _consent(_client(api))
    code = _approve(request_id)
    travel(50)  # a margin for the time the test itself takes on a busy machine
    assert oauth.load_code(code) is not None
    travel(11)
    assert oauth.load_code(code) is None
    assert api.list("acct-a").body["key_count"] == 0


def test_plan_filled_between_consent_and_exchange_creates_nothing(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    request_id, _ = _consent(_client(api))
    code = _approve(request_id)
    for n in range(3):
        assert api.create("acct-a", f"k{n}").status == 201
    grant = oauth.load_code(code)
    assert grant is not None
    with pytest.raises(oauth.OAuthError) as refused:
        oauth.exchange_code(code, grant, None)
    assert refused.value.error == "invalid_grant"
    assert api.list("acct-a").body["key_count"] == 3
    assert oauth.load_code(code) is None  # spent: a retry cannot slip in later


def test_consent_at_the_limit_is_refused_and_issues_nothing(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    for n in range(3):
        api.create("acct-a", f"k{n}")
    request_id, _ = _consent(_client(api))
    with pytest.raises(KeyLimitReached):
        oauth.decide(request_id, "acct-a", USER, True)
    assert not [i for i in _items() if i["pk"]["S"].startswith("OAUTH_CODE#")]


def test_a_connection_is_audited_as_the_client_and_stored_as_digests(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    client = _client(api, "Claude")
    request_id, _ = _consent(client, ["mcp"])
    code = _approve(request_id)
    grant = oauth.load_code(code)
    assert grant is not None
    tokens = oauth.exchange_code(code, grant, f"{BASE}/mcp")
    api.secrets.append(tokens.access_token)
    assert tokens.scopes == ["mcp"] and tokens.access_token.startswith("ot_")
    dumped = json.dumps(_items())
    for secret in (tokens.access_token, tokens.refresh_token, code, request_id):
        assert secret not in dumped  # digests only
    [created] = [
        json.loads(i["detail"]["S"])
        for i in _items()
        if i["pk"]["S"].startswith("EVENT#") and i["detail_type"]["S"] == "ApiKeyCreated"
    ]
    assert created["actor"] == "oauth:client-claude"
    assert created["client_name"] == "Claude" and created["approved_by"] == "user-sub-1"
    [key] = api.list("acct-a").body["keys"]
    assert key["connection"] == {"client_id": "client-claude", "client_name": "Claude", "redirect_host": "chat.example"}


def test_a_console_roll_keeps_the_connection(api: Api) -> None:
    api.set_plan("acct-a", "pro")
    request_id, _ = _consent(_client(api))
    code = _approve(request_id)
    grant = oauth.load_code(code)
    assert grant is not None
    api.secrets.append(oauth.exchange_code(code, grant, None).access_token)
    [key] = api.list("acct-a").body["keys"]
    rolled = api.roll("acct-a", key["id"])
    assert rolled.status == 201 and rolled.body["connection"] == key["connection"]


def test_a_deny_answers_the_client_and_the_request_is_spent(api: Api) -> None:
    request_id, _ = _consent(_client(api))
    answer = query_of(oauth.decide(request_id, "acct-a", USER, False))
    assert answer == {"error": "access_denied", "state": "s1"}
    with pytest.raises(NotFound):
        oauth.decide(request_id, "acct-a", USER, True)


def test_a_refresh_after_expires_in_still_rolls_the_key_until_the_leeway_ends(
    api: Api, travel: Callable[[float], None]
) -> None:
    first = _connect(api)
    travel(first.expires_in + 60)  # the client noticed its token expired a minute ago
    refresh = oauth.load_refresh(first.refresh_token)
    assert refresh is not None
    second = oauth.refresh(refresh, None)
    api.secrets.append(second.access_token)
    assert second.expires_in == 30 * 86400 and api.list("acct-a").body["key_count"] == 1
    travel(second.expires_in + oauth.REFRESH_LEEWAY_SECONDS + 1)
    assert oauth.load_refresh(second.refresh_token) is None  # the key has expired: connect again


def test_a_connections_key_is_created_by_the_user_who_consented_across_refreshes(api: Api) -> None:
    """Issue 23: `created_by` of a connection's key is the consenting user as people read them
    (the `actor` of its events stays the client), and a refresh, the client's roll, keeps it."""
    api.set_plan("acct-a", "pro")
    ana = Caller(actor="user-sub-1", request_id="req-1", user="ana@example.com")
    request_id, _ = _consent(_client(api))
    code = query_of(oauth.decide(request_id, "acct-a", ana, True))["code"]
    grant = oauth.load_code(code)
    assert grant is not None and grant.created_by == "ana@example.com"
    first = oauth.exchange_code(code, grant, None)
    api.secrets.append(first.access_token)
    [key] = api.list("acct-a").body["keys"]
    assert key["created_by"] == "ana@example.com"
    refresh = oauth.load_refresh(first.refresh_token)
    assert refresh is not None
    api.secrets.append(oauth.refresh(refresh, None).access_token)
    assert {k["created_by"] for k in api.list("acct-a").body["keys"]} == {"ana@example.com"}  # old and new key
    events = {
        i["detail_type"]["S"]: json.loads(i["detail"]["S"]) for i in _items() if i["pk"]["S"].startswith("EVENT#")
    }
    assert events["ApiKeyCreated"]["created_by"] == events["ApiKeyRolled"]["created_by"] == "ana@example.com"
    assert events["ApiKeyCreated"]["actor"] == events["ApiKeyRolled"]["actor"] == "oauth:client-chatgpt"


def test_a_code_issued_before_created_by_was_recorded_names_the_users_sub(api: Api) -> None:
    """A code lives 60 s: one issued by the code before issue 23 carries only `approved_by`."""
    api.set_plan("acct-a", "pro")
    request_id, _ = _consent(_client(api))
    code = _approve(request_id)
    [item] = [i for i in _items() if i["pk"]["S"].startswith("OAUTH_CODE#")]
    stored = json.loads(item["grant"]["S"])
    del stored["created_by"]
    item["grant"] = {"S": json.dumps(stored)}
    boto3.client("dynamodb").put_item(TableName=os.environ["TABLE_NAME"], Item=item)
    grant = oauth.load_code(code)
    assert grant is not None and grant.created_by == "user-sub-1"
    api.secrets.append(oauth.exchange_code(code, grant, None).access_token)
    assert [k["created_by"] for k in api.list("acct-a").body["keys"]] == ["user-sub-1"]


def test_a_refresh_token_read_by_two_before_either_rolls_ends_the_connection(api: Api) -> None:
    """The race of tests/stress/test_oauth_races.py, in its losing order: both requests read
    the token unused, one rolls the key, the other then finds the key already rolled. That is
    a token presented twice, so the second ends the connection rather than only refusing."""
    first = _connect(api)
    winner, loser = oauth.load_refresh(first.refresh_token), oauth.load_refresh(first.refresh_token)
    assert winner is not None and loser is not None
    api.secrets.append(oauth.refresh(winner, None).access_token)
    with pytest.raises(oauth.OAuthError) as refused:
        oauth.refresh(loser, None)
    assert refused.value.error == "invalid_grant"
    listing = api.list("acct-a").body
    assert listing["key_count"] == 0 and listing["keys"] == []


def test_an_account_the_table_does_not_hold_yet_connects_on_the_default_plan(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A user's first key may be a connection's: its account is created with it, on DEFAULT_PLAN."""
    from tests.helpers.support import fresh_container

    monkeypatch.setenv("DEFAULT_PLAN", "pro")
    fresh_container()
    tokens = _connect(api, plan=None)
    assert api.list("acct-a").body["key_count"] == 1
    answer = api.bearer(tokens.access_token)
    assert answer is not None and answer["context"]["account_id"] == "acct-a" and answer["context"]["plan"] == "pro"


def test_each_refresh_hands_over_a_working_key_and_a_refresh_token_for_the_next(
    api: Api, travel: Callable[[float], None]
) -> None:
    """Two refreshes in a row: each new key works as the account's on its plan, each new refresh
    token keeps the resource the first was issued for, the key still in its grace at the next
    refresh is removed then (its digest marked `rolled`), and a rolled-out key stops when its
    grace ends."""
    from apikeys import keys

    api.set_plan("acct-a", "pro")
    first = _connect(api, f"{BASE}/mcp")
    grant = oauth.load_refresh(first.refresh_token)
    assert grant is not None and grant.resource == f"{BASE}/mcp"
    with pytest.raises(oauth.OAuthError) as refused:
        oauth.refresh(grant, f"{BASE}/other")
    assert refused.value.error == "invalid_target"
    second = oauth.refresh(grant, f"{BASE}/mcp/")
    api.secrets += [second.access_token, second.refresh_token]
    for token in (first.access_token, second.access_token):  # the first in its grace
        answer = api.bearer(token)
        assert answer is not None and (answer["context"]["account_id"], answer["context"]["plan"]) == ("acct-a", "pro")
    grant = oauth.load_refresh(second.refresh_token)
    assert grant is not None and grant.resource == f"{BASE}/mcp"
    third = oauth.refresh(grant, None)
    api.secrets += [third.access_token, third.refresh_token]
    digest_key = {"pk": {"S": f"DIGEST#{keys.digest(first.access_token)}"}, "sk": {"S": "DIGEST"}}
    item = boto3.client("dynamodb").get_item(TableName=os.environ["TABLE_NAME"], Key=digest_key)["Item"]
    assert (item["revoked"], item["reason"]) == ({"BOOL": True}, {"S": "rolled"})
    assert api.bearer(first.access_token) is None
    assert api.bearer(second.access_token) is not None  # in its grace
    travel(oauth.REFRESH_GRACE_SECONDS + 1)
    assert api.bearer(second.access_token) is None
    assert api.bearer(third.access_token) is not None


def _code(api: Api) -> tuple[str, oauth.CodeGrant]:
    request_id, _ = _consent(_client(api))
    code = _approve(request_id)
    grant = oauth.load_code(code)
    assert grant is not None
    return code, grant


def test_a_key_made_between_the_exchanges_read_and_its_write_is_read_again_and_both_kept(api: Api) -> None:
    """The exchange's transaction is conditioned on the account as read: another key created in
    between cancels it, and the exchange reads again and creates its key next to that one."""
    from tests.helpers.interleave import before_each_write

    api.set_plan("acct-a", "pro")
    code, grant = _code(api)
    with before_each_write(lambda: api.secrets.append(api.create("acct-a", "Console").body["key"])) as ran:
        tokens = oauth.exchange_code(code, grant, None)
    api.secrets += [tokens.access_token, tokens.refresh_token]
    assert ran == [1]
    assert sorted(k["name"] for k in api.list("acct-a").body["keys"]) == ["ChatGPT", "Console"]
    assert api.bearer(tokens.access_token) is not None


def test_a_code_exchanged_by_another_request_between_read_and_write_is_refused_as_used(api: Api) -> None:
    from tests.helpers.interleave import before_each_write

    api.set_plan("acct-a", "pro")
    code, grant = _code(api)
    won: list[oauth.Tokens] = []
    with (
        before_each_write(lambda: won.append(oauth.exchange_code(code, grant, None))),
        pytest.raises(oauth.OAuthError) as refused,
    ):
        oauth.exchange_code(code, grant, None)
    api.secrets += [won[0].access_token, won[0].refresh_token]
    assert (refused.value.error, refused.value.description) == ("invalid_grant", "authorization code does not exist")
    assert api.list("acct-a").body["key_count"] == 1


@pytest.mark.parametrize("same", ["key", "id"])
def test_a_new_connection_key_that_collides_with_a_stored_one_fails_and_writes_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch, same: str
) -> None:
    """Random 256-bit keys never collide, nor do key ids (microseconds, increasing in each
    container); if one did, the exchange fails loudly, not as the account's or the code's
    fault, and nothing is written."""
    from apikeys import keys

    api.set_plan("acct-a", "pro")
    existing = api.create("acct-a", "Console").body
    code, grant = _code(api)
    if same == "key":
        monkeypatch.setattr(keys, "generate", lambda prefix: existing["key"])
    else:
        monkeypatch.setattr(keys, "new_key_id", lambda: existing["id"])
    with pytest.raises(RuntimeError, match=r"^key id or digest collision$"):
        oauth.exchange_code(code, grant, None)
    assert api.list("acct-a").body["key_count"] == 1
    assert oauth.load_code(code) is not None


def test_a_consent_request_is_refused_from_the_second_it_expires(api: Api, set_clock: Callable[[float], None]) -> None:
    api.set_plan("acct-a", "pro")
    set_clock(1_800_000_000)
    request_id, _ = _consent(_client(api))
    set_clock(1_800_000_000 + oauth.CONSENT_SECONDS - 1)
    assert oauth.consent(request_id, "acct-a").key_name == "ChatGPT"
    set_clock(1_800_000_000 + oauth.CONSENT_SECONDS)
    with pytest.raises(NotFound):
        oauth.consent(request_id, "acct-a")


@pytest.mark.parametrize("same", ["key", "id"])
def test_a_refresh_whose_new_key_collides_with_a_stored_one_writes_nothing(
    api: Api, monkeypatch: pytest.MonkeyPatch, same: str
) -> None:
    from apikeys import keys

    api.set_plan("acct-a", "pro")
    first = _connect(api)
    console = api.create("acct-a", "Console").body
    grant = oauth.load_refresh(first.refresh_token)
    assert grant is not None
    with monkeypatch.context() as patched:
        if same == "key":
            patched.setattr(keys, "generate", lambda prefix: console["key"])
        else:
            patched.setattr(keys, "new_key_id", lambda: console["id"])
        with pytest.raises(oauth.OAuthError) as refused:
            oauth.refresh(grant, None)
    assert refused.value.error == "temporarily_unavailable"
    answer = api.bearer(console["key"])
    assert answer is not None and answer["context"]["key_id"] == console["id"]
    assert oauth.load_refresh(first.refresh_token) is not None  # not spent: the client may retry
