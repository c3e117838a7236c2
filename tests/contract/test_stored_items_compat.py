"""Tomorrow's code on today's items. tests/fixtures/stored-items-v1.json holds every item type
(account, key, rolled-out key, digest, tombstone, leak notice, outbox) as the last landed code
(2506cc1, before issue 20's store rewrite) wrote them on 2026-12-03; loaded into an empty table
they must authorize, list, roll, delete and change plan as they did then. OAuth's items (client,
consent request, code, refresh token, connection key) are in stored-items-oauth-v1.json, written
by the code that introduced them (e5a2be5): the flows they are part of must complete. A change to the
item layout, the digest or the checksum fails here: it needs a migration and a new fixture,
on purpose (tests/helpers/compat.py writes one)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from apikeys import keys, oauth
from apikeys.audit import Caller
from apikeys.config import get_settings
from tests.helpers.compat import (
    ACCOUNT,
    OAUTH_ACCOUNT,
    OAUTH_CLIENT,
    OAUTH_FIXTURE,
    OAUTH_REDIRECT,
    OAUTH_RESOURCE,
    WRITTEN_AT,
    fixture_key,
    fixture_secret,
    load_items,
    pinned_clock,
    pkce_challenge,
)
from tests.helpers.invariants import check_table
from tests.helpers.oauth_client import query_of
from tests.helpers.support import Api, LambdaContext, load_function


@pytest.fixture
def stored(api: Api) -> Iterator[Api]:
    """The fixture's items in the test's empty table, the clock an hour after they were written."""
    from apikeys.store import dynamodb_client

    client, table = dynamodb_client(), get_settings().table_name
    for item in load_items():
        client.put_item(TableName=table, Item=item)
    with pinned_clock(WRITTEN_AT + timedelta(hours=1)):
        yield api


def _ids(api: Api) -> dict[str, str]:
    return {key["name"]: key["id"] for key in api.list(ACCOUNT).body["keys"] if key["status"] == "active"}


def _display(label: str) -> str:
    return keys.display(fixture_key(label), "ot_")


def _context(api: Api, label: str) -> dict[str, Any] | None:
    allowed = api.bearer(fixture_key(label))
    return None if allowed is None else allowed["context"]


def test_stored_keys_authorize_as_they_did(stored: Api) -> None:
    assert _context(stored, "full") == {
        "account_id": ACCOUNT,
        "key_id": _ids(stored)["Full access"],
        "plan": "advanced",
        "scopes": "*",
    }
    assert (_context(stored, "scoped") or {}).get("scopes") == "whoami"
    assert _context(stored, "rolled") is not None, "a rolled-out key in its grace period"
    assert _context(stored, "rolled-new") is not None
    assert _context(stored, "deleted") is None and _context(stored, "leaked") is None


def test_stored_keys_list_with_their_names_scopes_and_states(stored: Api) -> None:
    listing = stored.list(ACCOUNT).body
    assert (listing["plan"], listing["key_limit"], listing["key_count"]) == ("advanced", 10, 3)
    shown = [
        (key["name"], key["display"], key["status"], key["scopes"], key["expires_at"], key["last_used_at"])
        for key in listing["keys"]
    ]
    assert shown == [  # newest first
        ("Rolled", _display("rolled-new"), "active", ["*"], None, None),
        ("Rolled", _display("rolled"), "rolling", ["*"], "2026-12-04T08:00:00.000Z", None),
        ("Scoped", _display("scoped"), "active", ["whoami"], "2027-12-03T08:00:00.000Z", None),
        ("Full access", _display("full"), "active", ["*"], None, "2026-12-03T08:00:00.000Z"),
    ]
    [notice] = stored.revocations(ACCOUNT).body["revocations"]
    assert (notice["name"], notice["reason"], notice["revoked_at"]) == (
        "Leaked",
        "reported",
        "2026-12-03T08:00:00.000Z",
    )


def test_stored_keys_roll_delete_and_follow_a_plan_change(stored: Api) -> None:
    keys_by_name = _ids(stored)
    rolled = stored.roll(ACCOUNT, keys_by_name["Full access"])
    assert rolled.status == 201
    assert _context(stored, "full") is None, "a roll without grace revokes the old key at once"
    assert stored.delete(ACCOUNT, keys_by_name["Scoped"]).status == 204
    assert _context(stored, "scoped") is None
    assert stored.set_plan(ACCOUNT, "pro")["key_limit"] == 3
    new = stored.bearer(rolled.body["key"])
    assert new is not None and new["context"]["plan"] == "pro"
    assert (_context(stored, "rolled-new") or {}).get("plan") == "pro"
    assert stored.list(ACCOUNT).body["key_count"] == 2
    check_table(get_settings().table_name)


def _expiry_run(moment: datetime) -> int:
    with pinned_clock(moment):
        sent: int = load_function("expiry_notices").lambda_handler({}, LambdaContext())["sent"]
    return sent


def test_stored_keys_are_warned_before_expiry_only_once_backfilled(stored: Api) -> None:
    """Issue 24 item 5: key items written before the expiry notices lack `expires_on`, so the run
    does not find them; the one-off backfill (scripts/backfill_expiry_days.py) adds it to the live
    expiring key only (not the rolled-out one, not the one without expiry), and it is warned."""
    from apikeys.expiry_notices import backfill

    week_before = datetime(2027, 11, 26, 9, 0, tzinfo=UTC)  # "Scoped" expires 2027-12-03T08:00Z
    assert _expiry_run(week_before) == 0
    with pinned_clock(WRITTEN_AT + timedelta(hours=1)):
        assert backfill() == 1
        assert backfill() == 0  # re-runnable
    assert _expiry_run(week_before) == 1
    assert _expiry_run(week_before) == 0
    check_table(get_settings().table_name)


# -- OAuth's items (tests/fixtures/stored-items-oauth-v1.json, written by e5a2be5) --------------


@pytest.fixture
def stored_oauth(api: Api) -> Iterator[Api]:
    """The OAuth fixture's items, the clock 30 s after they were written: the unexchanged code
    (60 s), the pending consent request (10 minutes) and the refreshed key's grace (120 s) live."""
    from apikeys.store import dynamodb_client

    client, table = dynamodb_client(), get_settings().table_name
    for item in load_items(OAUTH_FIXTURE):
        client.put_item(TableName=table, Item=item)
    with pinned_clock(WRITTEN_AT + timedelta(seconds=30)):
        yield api


def test_stored_connection_keys_authorize_and_list_as_the_connection(stored_oauth: Api) -> None:
    current = stored_oauth.bearer(fixture_key("conn-refreshed"))
    assert current is not None and current["context"]["account_id"] == OAUTH_ACCOUNT
    assert current["context"]["scopes"] == "whoami"
    assert stored_oauth.bearer(fixture_key("conn")) is not None, "the refreshed-out key in its grace"
    shown = [(k["name"], k["status"], k["scopes"]) for k in stored_oauth.list(OAUTH_ACCOUNT).body["keys"]]
    assert shown == [("Compat Chat", "active", ["whoami"]), ("Compat Chat", "rolling", ["whoami"])]
    registered = oauth.get_client(OAUTH_CLIENT)
    assert registered is not None and registered.info["redirect_uris"] == [OAUTH_REDIRECT]
    assert oauth.secret_matches(registered, None), "a public client: no secret"


def test_stored_refresh_token_rotates_and_the_spent_one_ends_the_connection(stored_oauth: Api) -> None:
    grant = oauth.load_refresh(fixture_secret("refresh-a2"))
    assert grant is not None and grant.client_id == OAUTH_CLIENT
    tokens = oauth.refresh(grant, OAUTH_RESOURCE)
    assert stored_oauth.bearer(tokens.access_token) is not None
    assert oauth.load_refresh(fixture_secret("refresh-a")) is None, "the token the fixture already spent"
    assert stored_oauth.bearer(tokens.access_token) is None, "its reuse ended the connection"
    assert stored_oauth.list(OAUTH_ACCOUNT).body["keys"] == []
    check_table(get_settings().table_name)


def test_stored_code_and_consent_request_complete_their_flows(stored_oauth: Api) -> None:
    code = oauth.load_code(fixture_secret("code-b"))
    assert code is not None and (code.account_id, code.client_id) == (OAUTH_ACCOUNT, OAUTH_CLIENT)
    assert code.code_challenge == pkce_challenge(fixture_secret("verifier-b"))
    exchanged = oauth.exchange_code(fixture_secret("code-b"), code, OAUTH_RESOURCE)
    assert (stored_oauth.bearer(exchanged.access_token) or {}).get("context", {}).get("scopes") == "whoami"
    assert oauth.consent(fixture_secret("consent-c"), OAUTH_ACCOUNT).client_name == "Compat Chat"
    approved = oauth.decide(fixture_secret("consent-c"), OAUTH_ACCOUNT, Caller(actor="u", request_id="r"), True)
    third = oauth.load_code(query_of(approved)["code"])
    assert third is not None and third.code_challenge == pkce_challenge(fixture_secret("verifier-c"))
    assert stored_oauth.list(OAUTH_ACCOUNT).body["key_count"] == 2


def test_stored_connection_keys_are_left_out_of_expiry_notices(stored_oauth: Api) -> None:
    """Issue 24 item 5: an OAuth connection's key is renewed by its client, so the backfill leaves
    it out of the expiry-notice index, as every write of one does."""
    from apikeys.expiry_notices import backfill

    with pinned_clock(WRITTEN_AT + timedelta(seconds=30)):
        assert backfill() == 0
