"""Delete racing roll, rename racing delete: separate processes on DynamoDB Local, each
interleaving forced (tests/helpers/interleave.py), so the stale writer's condition expression
decides every run. DynamoDB Local serialises transactions: these tests prove the conditions
(nothing resurrected, counts exact), not how the store retries a `TransactionConflict`; the
injected-conflict cases of test_faults.py cover that."""

from __future__ import annotations

import pytest

from apikeys.config import get_settings
from tests.helpers.interleave import interleave
from tests.helpers.invariants import check_table, scan
from tests.helpers.support import Api, rest_event

pytestmark = pytest.mark.engines("dynamodb_local")

ACCT = "acct-interleave"


def _delete(key_id: str) -> tuple[str, dict[str, object]]:
    return "delete_key", rest_event("DELETE", f"/keys/{key_id}", ACCT, path_parameters={"key_id": key_id})


def _roll(key_id: str, grace: int) -> tuple[str, dict[str, object]]:
    body = {"grace_period_seconds": grace}
    return "roll_key", rest_event("POST", f"/keys/{key_id}/roll", ACCT, body=body, path_parameters={"key_id": key_id})


def _rename(key_id: str, name: str) -> tuple[str, dict[str, object]]:
    return "rename_key", rest_event(
        "PATCH", f"/keys/{key_id}", ACCT, body={"name": name}, path_parameters={"key_id": key_id}
    )


def _key_items() -> list[str]:
    return sorted(i["sk"]["S"] for i in scan(get_settings().table_name) if i["sk"]["S"].startswith("KEY#"))


def test_a_delete_that_read_before_a_grace_roll_removes_the_rolled_out_key_without_freeing_a_slot(
    api: Api,
) -> None:
    """The delete read the key as active; a roll with grace then moved it out of its slot. The
    delete's condition (the key is still not rolling) makes it re-read, so it removes the rolled
    out key without decrementing: the new key keeps its slot and the count stays exact."""
    api.set_plan(ACCT, "pro")
    old = api.create(ACCT, "old").body
    statuses = interleave(late=_delete(old["id"]), early=_roll(old["id"], grace=3600))
    assert statuses == {"early": 201, "late": 204}

    listing = api.list(ACCT).body
    assert [k["status"] for k in listing["keys"]] == ["active"]
    assert listing["key_count"] == 1, listing
    assert _key_items() == [f"KEY#{listing['keys'][0]['id']}"]
    refused = api.bearer(old["key"])  # not inside the assert: a failure must not print the key
    assert refused is None, "deleted key allowed"
    check_table(get_settings().table_name)


def test_a_roll_that_read_before_a_delete_answers_404_and_resurrects_nothing(api: Api) -> None:
    api.set_plan(ACCT, "pro")
    old = api.create(ACCT, "old").body
    statuses = interleave(late=_roll(old["id"], grace=3600), early=_delete(old["id"]))
    assert statuses == {"early": 204, "late": 404}
    listing = api.list(ACCT).body
    assert listing["keys"] == [] and listing["key_count"] == 0
    assert _key_items() == []
    check_table(get_settings().table_name)


def test_a_rename_that_read_before_a_delete_answers_404_and_resurrects_nothing(api: Api) -> None:
    """Without rename's `attribute_exists` its update would recreate the deleted key's item."""
    api.set_plan(ACCT, "pro")
    doomed = api.create(ACCT, "doomed").body
    statuses = interleave(late=_rename(doomed["id"], "renamed"), early=_delete(doomed["id"]))
    assert statuses == {"early": 204, "late": 404}
    assert _key_items() == []
    listing = api.list(ACCT).body
    assert listing["keys"] == [] and listing["key_count"] == 0
    assert api.get(ACCT, doomed["id"]).status == 404
    check_table(get_settings().table_name)


def test_a_delete_that_read_before_a_rename_still_deletes(api: Api) -> None:
    api.set_plan(ACCT, "pro")
    key = api.create(ACCT, "before").body
    statuses = interleave(late=_delete(key["id"]), early=_rename(key["id"], "after"))
    assert statuses == {"early": 200, "late": 204}
    assert _key_items() == []
    assert api.list(ACCT).body["key_count"] == 0
    refused = api.bearer(key["key"])
    assert refused is None, "deleted key allowed"


def _patch(key_id: str, body: dict[str, object]) -> tuple[str, dict[str, object]]:
    return "rename_key", rest_event("PATCH", f"/keys/{key_id}", ACCT, body=body, path_parameters={"key_id": key_id})


def test_a_scope_change_that_read_before_a_roll_answers_409_and_the_new_key_keeps_what_the_roll_read(
    api: Api,
) -> None:
    """Issue 22 item 5. Before: the PATCH answered 200, its scopes landed on the rolled-out key,
    and the new key kept full access."""
    api.set_plan(ACCT, "pro")
    old = api.create(ACCT, "deploy").body
    statuses = interleave(late=_patch(old["id"], {"scopes": ["whoami"]}), early=_roll(old["id"], grace=3600))
    assert statuses == {"early": 201, "late": 409}
    keys = {k["status"]: k for k in api.list(ACCT).body["keys"]}
    assert keys["rolling"]["scopes"] == keys["active"]["scopes"] == ["*"]
    check_table(get_settings().table_name)


def test_a_roll_that_read_before_a_rename_gives_the_new_key_the_new_name(api: Api) -> None:
    """The roll's condition on the account's version makes it read again after the PATCH, which
    now bumps the version for a rename too (a scope change always did). Before: the new key got
    the old name and the rename landed on the rolled-out key."""
    api.set_plan(ACCT, "pro")
    old = api.create(ACCT, "deploy").body
    statuses = interleave(late=_roll(old["id"], grace=3600), early=_patch(old["id"], {"name": "renamed"}))
    assert statuses == {"early": 200, "late": 201}
    keys = {k["status"]: k for k in api.list(ACCT).body["keys"]}
    assert keys["active"]["name"] == keys["rolling"]["name"] == "renamed"
    check_table(get_settings().table_name)
