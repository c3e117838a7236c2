"""Every AWS client of the service retries on one budget: a DynamoDB call of the store and an
EventBridge call of the audit stream consumer are each sent at most `CALL_ATTEMPTS` times, with
the same retry mode and socket timeouts. The consumer publishes to the bus and source its
settings name. No network: every request is answered 500 where botocore would send it."""

from __future__ import annotations

import json
import types
from typing import Any
from urllib.parse import urlsplit

import botocore.endpoint
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from botocore.awsrequest import AWSResponse
from botocore.client import BaseClient

from apikeys import retries
from tests.helpers.support import Api, LambdaContext, load_function


class _Refused:
    """A raw HTTP body botocore can read: the service's 500."""

    def stream(self, **_: Any) -> Any:
        return iter([b'{"__type": "InternalServerError", "message": "injected"}'])


class RefusingAws:
    """Records what each client sends (service, body) and the config each call goes out with."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.configs: dict[str, set[tuple[str, int, float, float]]] = {}

    def sends(self, service: str) -> list[dict[str, Any]]:
        return [body for name, body in self.sent if name == service]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> RefusingAws:
    recorder = RefusingAws()
    make_api_call = BaseClient._make_api_call

    def recording_call(self: BaseClient, operation: str, params: dict[str, Any]) -> Any:
        config = self.meta.config
        retry = config.retries or {}
        recorder.configs.setdefault(self.meta.service_model.service_name, set()).add(
            (retry.get("mode"), retry.get("total_max_attempts"), config.connect_timeout, config.read_timeout)
        )
        return make_api_call(self, operation, params)

    def refuse(self: Any, request: Any) -> AWSResponse:
        service = urlsplit(request.url).hostname.split(".")[0]
        recorder.sent.append((service, json.loads(request.body)))
        return AWSResponse(request.url, 500, {}, _Refused())

    monkeypatch.setattr(BaseClient, "_make_api_call", recording_call)
    monkeypatch.setattr(botocore.endpoint.Endpoint, "_send", refuse)
    monkeypatch.setattr(botocore.endpoint, "time", types.SimpleNamespace(sleep=lambda _: None))  # no backoff waits
    return recorder


def _audit_record() -> dict[str, Any]:
    image = {"pk": {"S": "EVENT#1"}, "detail_type": {"S": "KeyCreated"}, "detail": {"S": "{}"}}
    return {
        "eventID": "1",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {"NewImage": image, "SequenceNumber": "1"},
    }


def test_a_refused_audit_event_is_sent_to_the_configured_bus_and_source_then_left_to_the_stream_to_retry(
    aws: RefusingAws, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_EVENT_BUS", "audit-bus")
    monkeypatch.setenv("AUDIT_EVENT_SOURCE", "apikeys.test")
    handler = load_function("audit_events").lambda_handler
    with pytest.raises(BatchProcessingError):  # a failed invocation: the stream delivers the batch again
        handler({"Records": [_audit_record()]}, LambdaContext(function_name="audit_events"))
    sent = aws.sends("events")
    assert len(sent) == retries.CALL_ATTEMPTS  # botocore's `max_attempts: 3` would make 4
    assert {e["EventBusName"] for s in sent for e in s["Entries"]} == {"audit-bus"}
    assert {e["Source"] for s in sent for e in s["Entries"]} == {"apikeys.test"}


def test_dynamodb_and_eventbridge_calls_go_out_with_one_retry_budget(aws: RefusingAws) -> None:
    refused = Api().list("acct-a")  # the store's Query, refused on every attempt
    assert refused.status == 503 and refused.body["error"]["code"] == "service_unavailable"
    with pytest.raises(BatchProcessingError):  # the EventBridge call, refused on every attempt
        load_function("audit_events").lambda_handler({"Records": [_audit_record()]}, LambdaContext())

    assert len(aws.sends("dynamodb")) == len(aws.sends("events")) == retries.CALL_ATTEMPTS
    budget = ("standard", retries.CALL_ATTEMPTS, retries.CONNECT_TIMEOUT, retries.READ_TIMEOUT)
    assert aws.configs == {"dynamodb": {budget}, "events": {budget}}


def test_only_errors_a_later_request_may_not_meet_are_a_503() -> None:
    """Throttling, 5xx and connection errors are worth a retry later (503); a refused request
    (a ValidationException) or a bug is a 500, whatever its type."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    from apikeys.store import _is_transient

    def refused(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": ""}}, "PutItem")

    assert _is_transient(refused("ThrottlingException")) and _is_transient(refused("InternalServerError"))
    assert _is_transient(EndpointConnectionError(endpoint_url="https://dynamodb"))
    assert not _is_transient(refused("ValidationException"))
    assert not _is_transient(ValueError("a bug"))


@pytest.mark.parametrize(
    ("error", "written"),
    [
        ("ThrottlingException", False),
        ("ProvisionedThroughputExceededException", False),
        ("RequestLimitExceeded", False),
        ("EndpointConnectionError", False),
        ("ConnectTimeoutError", False),
        ("ValidationException", None),
    ],
)
def test_a_usage_write_never_applied_is_reported_unwritten_and_any_other_failure_raises(
    error: str, written: bool | None
) -> None:
    """A throttled ADD, or one that never reached DynamoDB, was certainly not applied: its counts
    may be sent again (False). Any other failure's outcome is unknown, and raises (the counts
    are then dropped, not doubled)."""
    from datetime import date

    from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError

    from apikeys.store import Store

    class Failing:
        def update_item(self, **_: Any) -> None:
            if error == "EndpointConnectionError":
                raise EndpointConnectionError(endpoint_url="https://dynamodb.invalid")
            if error == "ConnectTimeoutError":
                raise ConnectTimeoutError(endpoint_url="https://dynamodb.invalid")
            raise ClientError({"Error": {"Code": error, "Message": "injected"}}, "UpdateItem")

    db = Store("t", Failing())  # type: ignore[arg-type]
    counts = {"key_0SXg9cFh1a4Zb0qR7mWt": 1}
    if written is None:
        with pytest.raises(ClientError):
            db.add_usage("acct", date(2027, 1, 16), counts)
    else:
        assert db.add_usage("acct", date(2027, 1, 16), counts) is written
