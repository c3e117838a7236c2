"""The metrics the operational alarms watch are emitted when the thing happens, and only then
(issue 24): a key revoked because it leaked or was reported, an audit event EventBridge refused.
Read from the EMF documents the functions print, as CloudWatch would read them."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from tests.helpers.github_keys import GitHubKeys, finding, report
from tests.helpers.support import Api, LambdaContext, load_function

pytestmark = pytest.mark.engines("moto")


class Emf:
    """Metric values (name -> sum) of the EMF documents printed since the last read, each checked
    to be in the ApiKeys namespace with the service dimension the alarms name. What was read is
    written back for the suite's hygiene check, and skipped by the next read."""

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self.capfd, self.echoed = capfd, ""

    def read(self) -> dict[str, float]:
        out, err = self.capfd.readouterr()
        new = out.removeprefix(self.echoed)
        self.echoed = out
        sys.stdout.write(out)
        sys.stderr.write(err)
        values: dict[str, float] = {}
        for line in new.splitlines():
            document = json.loads(line) if line.startswith("{") else {}
            if "_aws" not in document:
                continue
            [directive] = document["_aws"]["CloudWatchMetrics"]
            assert directive["Namespace"] == "ApiKeys" and directive["Dimensions"] == [["service"]]
            assert document["service"] == "apikeys"
            for metric in directive["Metrics"]:
                values[metric["Name"]] = values.get(metric["Name"], 0) + sum(document[metric["Name"]])
        return values


def test_a_leaked_key_is_counted_once_when_it_is_revoked(
    api: Api, github: GitHubKeys, capfd: pytest.CaptureFixture[str]
) -> None:
    emf = Emf(capfd)
    api.set_plan("acct-leak", "pro")
    first, second = (api.create("acct-leak", name).body["key"] for name in ("one", "two"))
    emf.read()
    body = report(finding(first), finding(second), finding("ot_" + "Z" * 40))
    assert api.secret_scanning(body, github.sign(body)).status == 200
    assert emf.read() == {"LeakReport": 1, "LeakedKeyRevoked": 2}
    # GitHub reports the same keys again: nothing is revoked, nothing counted.
    assert api.secret_scanning(body, github.sign(body)).status == 200
    assert emf.read() == {"LeakReport": 1}


def test_a_reported_key_is_counted_apart_from_leaked_ones(api: Api, capfd: pytest.CaptureFixture[str]) -> None:
    emf = Emf(capfd)
    api.set_plan("acct-report", "pro")
    key = api.create("acct-report").body["key"]
    emf.read()
    assert api.revoke_credentials({"credentials": [key, "ot_" + "Y" * 40]}).status == 202
    assert emf.read() == {"CredentialsReported": 1, "ReportedKeyRevoked": 1}
    assert api.revoke_credentials({"credentials": [key]}).status == 202
    assert emf.read() == {"CredentialsReported": 1}


class _Events:
    def __init__(self, answer: dict[str, Any] | Exception) -> None:
        self.answer = answer

    def put_events(self, **_: Any) -> dict[str, Any]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _audit_record() -> dict[str, Any]:
    image = {"pk": {"S": "EVENT#1"}, "detail_type": {"S": "ApiKeyCreated"}, "detail": {"S": "{}"}}
    return {"eventID": "1", "eventName": "INSERT", "eventSource": "aws:dynamodb", "dynamodb": {"NewImage": image}}


@pytest.mark.parametrize(
    "answer",
    [
        {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure"}]},
        ConnectionError("EventBridge unreachable"),
    ],
    ids=["refused", "unreachable"],
)
def test_an_audit_event_that_could_not_be_published_is_counted(
    db: Any, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, answer: Any
) -> None:
    emf = Emf(capfd)
    audit_events = load_function("audit_events")
    monkeypatch.setattr(audit_events, "events_client", lambda: _Events(answer))
    with pytest.raises(BatchProcessingError):  # the stream redelivers the record
        audit_events.lambda_handler({"Records": [_audit_record()]}, LambdaContext())
    assert emf.read() == {"AuditPublishFailed": 1}
    monkeypatch.setattr(audit_events, "events_client", lambda: _Events({"FailedEntryCount": 0, "Entries": [{}]}))
    audit_events.lambda_handler({"Records": [_audit_record()]}, LambdaContext())
    assert emf.read() == {}
