"""The management reads are robust to a malformed attribute (issue 22, item 8): the authorizer's
role may `SET last_used_at` on any key item (IAM cannot tie the write to the key it authorized,
nor constrain the value), so whatever a compromised authorizer writes there, the key is still
listed, got, rolled, deleted and moved to a new plan, with `last_used_at` shown as null: never
a 500. On moto and DynamoDB Local."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from apikeys.config import get_settings
from tests.contract.test_mcp_handler import LEGACY, authorizer_context, call_tool
from tests.helpers.support import Api

ACCT = "acct-malformed"
MALFORMED = [
    ("number", {"N": "5"}),
    ("list", {"L": [{"S": "2026-01-01T00:00:00.000Z"}]}),
    ("map", {"M": {"a": {"N": "1"}}}),
    ("binary", {"B": b"\x00\x01"}),
    ("bool", {"BOOL": True}),
    ("string set", {"SS": ["a", "b"]}),
    ("not a timestamp", {"S": "yesterday"}),
    ("huge string", {"S": "9" * 5000}),
]


def _as_the_authorizer_may(key_id: str, value: dict[str, Any]) -> None:
    """The one write the authorizer's role allows (tests/unit/test_least_privilege.py): SET
    last_used_at on an ACCOUNT# item, returning nothing, with any value."""
    boto3.client("dynamodb").update_item(
        TableName=get_settings().table_name,
        Key={"pk": {"S": f"ACCOUNT#{ACCT}"}, "sk": {"S": f"KEY#{key_id}"}},
        UpdateExpression="SET last_used_at = :v",
        ExpressionAttributeValues={":v": value},
    )


@pytest.mark.parametrize(("case", "value"), MALFORMED, ids=[c for c, _ in MALFORMED])
def test_a_malformed_last_used_at_reads_as_null_and_breaks_nothing(api: Api, case: str, value: dict[str, Any]) -> None:
    api.set_plan(ACCT, "pro")
    bad, good = api.create(ACCT, "bad").body, api.create(ACCT, "good").body
    _as_the_authorizer_may(bad["id"], value)

    listing = api.list(ACCT)
    assert listing.status == 200, (case, listing.body)
    assert {k["id"]: k["last_used_at"] for k in listing.body["keys"]} == {bad["id"]: None, good["id"]: None}
    got = api.get(ACCT, bad["id"])
    assert got.status == 200 and got.body["last_used_at"] is None, (case, got.body)
    tool = call_tool(authorizer_context(api, good["key"]), "list_api_keys", LEGACY)
    assert tool["isError"] is False, (case, tool)

    assert api.set_plan(ACCT, "agency")["plan"] == "agency"
    assert api.bearer(bad["key"]) is not None  # the key still works
    rolled = api.roll(ACCT, bad["id"], grace=3600)
    assert rolled.status == 201, (case, rolled.body)
    assert api.get(ACCT, bad["id"]).body["status"] == "rolling"
    assert api.patch(ACCT, good["id"], {"name": "still good"}).status == 200
    assert api.delete(ACCT, bad["id"]).status == 204
    assert api.list(ACCT).body["key_count"] == 2


@pytest.mark.parametrize(("case", "value"), MALFORMED, ids=[c for c, _ in MALFORMED])
def test_the_next_use_replaces_a_malformed_last_used_at(api: Api, case: str, value: dict[str, Any]) -> None:
    """The authorizer's conditional write (at most once a minute) compared the stored value with
    a timestamp: a number, a set or a string sorting after every timestamp made it fail for good."""
    api.set_plan(ACCT, "pro")
    key = api.create(ACCT, "bad").body
    _as_the_authorizer_may(key["id"], value)
    assert api.bearer(key["key"]) is not None  # waits for the last-used write
    stamp = api.get(ACCT, key["id"]).body["last_used_at"]
    assert isinstance(stamp, str) and stamp.endswith("Z") and len(stamp) == 24, (case, stamp)
