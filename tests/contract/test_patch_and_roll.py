"""A scope change (or rename) and a roll cannot lose each other (issue 22, item 5), in process on
both engines: the concurrent request lands between the other's read and its write
(tests/helpers/interleave.py `before_each_write`). The separate-process versions on DynamoDB
Local are in tests/stress/test_race_interleavings.py and tests/stress/test_races.py.

The rule: a PATCH answered 200 is never lost, so any key rolled from that key afterwards carries
it; a PATCH of a key being rolled out, or rolled out between its read and its write, answers 409
and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.interleave import before_each_write
from tests.helpers.support import Api

ACCT = "acct-patch-roll"
CHANGES = [{"scopes": ["whoami"]}, {"name": "renamed"}, {"name": "renamed", "scopes": ["whoami"]}]
IDS = ["scopes", "name", "both"]


@pytest.fixture
def key(api: Api) -> dict[str, Any]:
    api.set_plan(ACCT, "pro")
    created = api.create(ACCT, "deploy")
    assert created.status == 201
    return created.body  # type: ignore[no-any-return]


def _scopes_of(api: Api, secret: str) -> str:
    answer = api.bearer(secret)
    assert answer is not None
    return str(answer["context"]["scopes"])


def _listed(api: Api) -> dict[str, dict[str, Any]]:
    return {k["status"]: k for k in api.list(ACCT).body["keys"]}


@pytest.mark.parametrize("change", CHANGES, ids=IDS)
def test_a_patch_of_a_rolling_key_is_refused(api: Api, key: dict[str, Any], change: dict[str, Any]) -> None:
    rolled = api.roll(ACCT, key["id"], grace=3600)
    assert rolled.status == 201
    refused = api.patch(ACCT, key["id"], change)
    assert refused.status == 409, refused.body
    assert refused.body["error"]["code"] == "conflict" and "rolled out" in refused.body["error"]["message"]
    keys = _listed(api)
    assert keys["rolling"]["name"] == keys["active"]["name"] == "deploy"
    assert keys["rolling"]["scopes"] == keys["active"]["scopes"] == ["*"]
    assert _scopes_of(api, key["key"]) == "*"


@pytest.mark.parametrize("change", CHANGES, ids=IDS)
def test_a_patch_that_read_before_a_roll_answers_409_and_never_lands_on_the_rolled_out_key(
    api: Api, key: dict[str, Any], change: dict[str, Any]
) -> None:
    """Before: the PATCH answered 200 and changed the rolled-out key, while the new key kept the
    full access (and name) the roll had copied: the change was lost, and the caller told it held."""
    rolls: list[Any] = []
    with before_each_write(lambda: rolls.append(api.roll(ACCT, key["id"], grace=3600))) as ran:
        patched = api.patch(ACCT, key["id"], change)
    assert ran == [1] and rolls[0].status == 201
    assert patched.status == 409, patched.body
    keys = _listed(api)
    assert keys["rolling"]["id"] == key["id"] and keys["active"]["id"] == rolls[0].body["id"]
    for state in ("rolling", "active"):
        assert (keys[state]["name"], keys[state]["scopes"]) == ("deploy", ["*"]), state
    assert _scopes_of(api, key["key"]) == _scopes_of(api, rolls[0].body["key"]) == "*"


@pytest.mark.parametrize("grace", [3600, 0])
def test_a_roll_that_read_before_a_patch_gives_the_new_key_what_the_patch_set(
    api: Api, key: dict[str, Any], grace: int
) -> None:
    """The PATCH commits between the roll's read and its write: the roll's condition on the
    account's version makes it read again. Before, a rename did not change the version, so the
    new key was made with the old name while the rename landed on the rolled-out key."""
    patches: list[Any] = []
    change = {"name": "renamed"}
    with before_each_write(lambda: patches.append(api.patch(ACCT, key["id"], change))) as ran:
        rolled = api.roll(ACCT, key["id"], grace=grace)
    assert ran == [1] and patches[0].status == 200
    assert rolled.status == 201 and rolled.body["name"] == "renamed"

    patches.clear()
    with before_each_write(lambda: patches.append(api.patch(ACCT, rolled.body["id"], {"scopes": ["whoami"]}))):
        again = api.roll(ACCT, rolled.body["id"], grace=0)
    assert patches[0].status == 200
    assert again.status == 201 and again.body["scopes"] == ["whoami"]
    assert _scopes_of(api, again.body["key"]) == "whoami"


def test_a_roll_without_grace_leaves_the_old_digest_as_a_rolled_tombstone(api: Api, key: dict[str, Any]) -> None:
    """The old key is refused at once and its digest item says why: `rolled`, not a leak."""
    import os

    import boto3

    from apikeys import keys

    assert api.roll(ACCT, key["id"], grace=0).status == 201
    digest_key = {"pk": {"S": f"DIGEST#{keys.digest(key['key'])}"}, "sk": {"S": "DIGEST"}}
    item = boto3.client("dynamodb").get_item(TableName=os.environ["TABLE_NAME"], Key=digest_key)["Item"]
    assert (item["revoked"], item["reason"], item["key_id"]) == ({"BOOL": True}, {"S": "rolled"}, {"S": key["id"]})
    assert item["revoked_at"]["S"].endswith("Z")  # when, as every timestamp of the table
    assert api.bearer(key["key"]) is None


@pytest.mark.parametrize("same", ["key", "id"])
def test_a_roll_whose_new_key_collides_with_a_stored_one_writes_nothing(
    api: Api, key: dict[str, Any], monkeypatch: pytest.MonkeyPatch, same: str
) -> None:
    """Random 256-bit keys never collide, nor do key ids (microseconds, increasing in each
    container); if one did, the roll would fail rather than take over the other key's items."""
    from apikeys import keys

    other = api.create(ACCT, "other").body
    with monkeypatch.context() as patched:
        if same == "key":
            patched.setattr(keys, "generate", lambda prefix: other["key"])
        else:
            patched.setattr(keys, "new_key_id", lambda: other["id"])
        assert api.roll(ACCT, key["id"]).status == 503
    for live in (key, other):
        answer = api.bearer(live["key"])
        assert answer is not None and answer["context"]["key_id"] == live["id"]
    assert api.get(ACCT, key["id"]).body["status"] == "active"
