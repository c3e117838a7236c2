"""DynamoDB fault injection at botocore's HTTP layer.

A `before-send` handler answers a request with an error response (or raises a connection
error) instead of sending it, so botocore parses it, its standard retry mode decides on a
retry with its own backoff, and the store's own transaction-conflict loop runs: everything
above the socket is the real code. Needs a real endpoint behind it (DynamoDB Local): moto
intercepts the same event and would apply the request anyway.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

# fault name -> (HTTP status, error type) for faults DynamoDB answers with an error body.
ERROR_FAULTS: dict[str, tuple[int, str]] = {
    "ThrottlingException": (400, "ThrottlingException"),
    "ProvisionedThroughputExceededException": (400, "ProvisionedThroughputExceededException"),
    "InternalServerError": (500, "InternalServerError"),
    "TransactionConflictException": (400, "TransactionConflictException"),
}
# Faults that never reach DynamoDB (the request was not applied).
CONNECTION_FAULTS = {
    "EndpointConnectionError": EndpointConnectionError,
    "ConnectionClosedError": ConnectionClosedError,
    "ReadTimeoutError": ReadTimeoutError,
}
# The request reached DynamoDB and was applied, but the answer was lost (a read timeout).
APPLIED_THEN_TIMEOUT = "ReadTimeoutError(after apply)"
# A transaction cancelled because another transaction touched one of its items.
TRANSACTION_CONFLICT = "TransactionCanceled(TransactionConflict)"


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Any:
        yield self._data


def _error_response(url: str, status: int, error_type: str, extra: dict[str, Any] | None = None) -> AWSResponse:
    body = {"__type": f"com.amazonaws.dynamodb.v20120810#{error_type}", "message": f"injected {error_type}"}
    body.update(extra or {})
    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "injected"}
    return AWSResponse(url, status, headers, _Body(json.dumps(body).encode()))


@dataclass
class Fault:
    """Fail the next `times` attempts of `operation` (None: every attempt) with `kind`."""

    client: Any
    operation: str
    kind: str
    times: int | None = 1
    injected: int = 0
    passed: int = 0
    _session: URLLib3Session = field(default_factory=URLLib3Session)

    def __post_init__(self) -> None:
        self.event = f"before-send.dynamodb.{self.operation}"
        self.client.meta.events.register(self.event, self._hook)

    def remove(self) -> None:
        self.client.meta.events.unregister(self.event, self._hook)

    def _hook(self, request: Any, **_: Any) -> AWSResponse | None:
        if self.times is not None and self.injected >= self.times:
            self.passed += 1
            return None
        self.injected += 1
        url = request.url
        if self.kind in ERROR_FAULTS:
            status, error_type = ERROR_FAULTS[self.kind]
            return _error_response(url, status, error_type)
        if self.kind == TRANSACTION_CONFLICT:
            items = json.loads(request.body)["TransactItems"]
            reasons = [{"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}]
            reasons += [{"Code": "None"}] * (len(items) - 1)
            return _error_response(url, 400, "TransactionCanceledException", {"CancellationReasons": reasons})
        if self.kind == APPLIED_THEN_TIMEOUT:
            self._session.send(request)  # DynamoDB applies it; the answer is then "lost"
            raise ReadTimeoutError(endpoint_url=url)
        if self.kind in CONNECTION_FAULTS:
            raise CONNECTION_FAULTS[self.kind](endpoint_url=url, error="injected")
        raise AssertionError(f"unknown fault {self.kind}")
