"""Issue 14: concurrent duplicate deliveries of one secret scanning report (and a public report
and a DELETE racing them), each in its own process against DynamoDB Local: each key is revoked
once, the count stays exact, one ApiKeyRevoked event per key."""

from __future__ import annotations

import json
import os

import boto3
import pytest

from tests.helpers.github_keys import GitHubKeys, finding, report
from tests.helpers.invariants import check_table
from tests.helpers.race_worker import race_mixed
from tests.helpers.support import Api, rest_event

pytestmark = pytest.mark.engines("dynamodb_local")


def _report_event(body: bytes, headers: dict[str, str]) -> dict[str, object]:
    event = rest_event("POST", "/secret-scanning/github", None, raw_body=body.decode())
    event["headers"] = {"Content-Type": "application/json", **headers}
    return event


def test_duplicate_reports_racing_a_delete_revoke_each_key_once(api: Api, github: GitHubKeys) -> None:
    api.set_plan("acct-race", "pro")
    live = api.create("acct-race", "live").body
    rolled = api.create("acct-race", "rolled").body
    replacement = api.roll("acct-race", rolled["id"], grace=3600).body
    body = report(finding(live["key"]), finding(rolled["key"]))
    calls: list[tuple[str, dict[str, object]]] = [
        ("secret_scanning", _report_event(body, github.sign(body))) for _ in range(5)
    ]
    calls.append(
        ("revoke_credentials", rest_event("POST", "/v1/credentials/revoke", None, body={"credentials": [live["key"]]}))
    )
    calls.append(
        ("delete_key", rest_event("DELETE", f"/keys/{live['id']}", "acct-race", path_parameters={"key_id": live["id"]}))
    )
    statuses = race_mixed(calls)  # type: ignore[arg-type]
    assert statuses.count(200) == 5 and statuses.count(202) == 1
    assert sum(s in (204, 404) for s in statuses) == 1, statuses  # the DELETE: won or found it gone
    assert api.bearer(live["key"]) is None and api.bearer(rolled["key"]) is None
    assert api.bearer(replacement["key"]) is not None
    listing = api.list("acct-race").body
    assert listing["key_count"] == 1 and [k["id"] for k in listing["keys"]] == [replacement["id"]]
    items = boto3.client("dynamodb").scan(TableName=os.environ["TABLE_NAME"])["Items"]
    revocations = [
        json.loads(i["detail"]["S"])["key_id"]
        for i in items
        if i.get("detail_type", {}).get("S") in ("ApiKeyRevoked", "ApiKeyDeleted")
    ]
    assert sorted(revocations) == sorted([live["id"], rolled["id"]])  # each key revoked exactly once
    check_table(os.environ["TABLE_NAME"])
