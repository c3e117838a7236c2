"""The local table: moto's DynamoDB served in process by default, or whatever
AWS_ENDPOINT_URL_DYNAMODB points at (DynamoDB Local, a real table), created from the template
if missing. The embedded moto also stands in for the other AWS services handlers call."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from werkzeug.serving import BaseWSGIServer, make_server

from apikeys_local.template import Stack

_TRANSACT_WRITE = "DynamoDB_20120810.TransactWriteItems"
_MISMATCH = "The request uses the same client token as a previous, but non-identical request."
IDEMPOTENCY_WINDOW = 600.0  # seconds: DynamoDB honours a ClientRequestToken for 10 minutes


@dataclass
class _Applied:
    """A committed transaction's answer, replayed to a retry that carries its token."""

    fingerprint: str
    completed: float
    status: str
    headers: list[tuple[str, str]]
    body: bytes


class _OneCallAtATime:
    """DynamoDB applies each call, and each transaction, atomically; moto's backend does not
    lock, so concurrent transactions could both pass a condition. One lock restores that.

    It also honours TransactWriteItems' ClientRequestToken, which moto ignores: botocore sends
    one token per call and reuses it on its retries, so a retry after a read timeout (the
    first attempt was applied, its answer lost) must not apply the transaction again. As on
    DynamoDB: the same token and request within 10 minutes of a commit answer as the commit
    did without applying anything; the same token with another request is refused with
    IdempotentParameterMismatchException; a transaction that did not commit is not remembered.
    (TransactionInProgressException cannot happen here: calls run one at a time.)"""

    def __init__(self, app: Callable[..., Iterable[bytes]], clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.clock = clock
        self._applied: OrderedDict[str, _Applied] = OrderedDict()  # oldest commit first

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        token, fingerprint = None, ""
        if environ.get("HTTP_X_AMZ_TARGET") == _TRANSACT_WRITE:
            token, fingerprint = self._read_token(environ)
        with self.lock:
            if token is None:
                return list(self.app(environ, start_response))
            now = self.clock()
            self._forget_before(now - IDEMPOTENCY_WINDOW)
            applied = self._applied.get(token)
            if applied is not None:
                if applied.fingerprint != fingerprint:
                    return _error(start_response, "IdempotentParameterMismatchException", _MISMATCH)
                start_response(applied.status, applied.headers)
                return [applied.body]
            answer: dict[str, Any] = {}

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                answer.update(status=status, headers=headers)
                return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

            body = b"".join(self.app(environ, capture))
            if str(answer.get("status", "")).startswith("200"):
                self._applied[token] = _Applied(fingerprint, self.clock(), answer["status"], answer["headers"], body)
            return [body]

    @staticmethod
    def _read_token(environ: dict[str, Any]) -> tuple[str | None, str]:
        """The request's ClientRequestToken and a fingerprint of everything else in it; the
        body is read here, so it is put back for moto."""
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length > 0 else b""
        environ["wsgi.input"] = io.BytesIO(raw)
        try:
            request = json.loads(raw)
        except ValueError:
            return None, ""
        if not isinstance(request, dict) or not isinstance(request.get("ClientRequestToken"), str):
            return None, ""
        token = request.pop("ClientRequestToken")
        canonical = json.dumps(request, sort_keys=True, separators=(",", ":")).encode()
        return token, hashlib.sha256(canonical).hexdigest()

    def _forget_before(self, cutoff: float) -> None:
        while self._applied and next(iter(self._applied.values())).completed < cutoff:
            self._applied.popitem(last=False)


def _error(start_response: Callable[..., Any], error_type: str, message: str) -> list[bytes]:
    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{error_type}", "message": message}).encode()
    start_response(
        "400 Bad Request",
        [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", str(uuid.uuid4())),
        ],
    )
    return [body]


class EmbeddedDynamoDB:
    """moto's server mode on 127.0.0.1 and a free port, in a daemon thread of this process."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no access log line per DynamoDB call
        app = _OneCallAtATime(DomainDispatcherApplication(create_backend_app))
        self._server: BaseWSGIServer = make_server(
            "127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="moto")
        self._thread.start()
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(5)


def client(endpoint: str | None, credentials: dict[str, str]) -> Any:
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=credentials.get("AWS_REGION", "us-east-1"),
        aws_access_key_id=credentials.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=credentials.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=credentials.get("AWS_SESSION_TOKEN"),
        config=Config(retries={"mode": "standard"}),
    )


def ensure_table(stack: Stack, table_name: str, endpoint: str | None, credentials: dict[str, str]) -> bool:
    """Creates the table from the template's definition unless it exists; True if created."""
    ddb = client(endpoint, credentials)
    try:
        ddb.describe_table(TableName=table_name)
        return False
    except ddb.exceptions.ResourceNotFoundException:
        pass
    ddb.create_table(**stack.create_table_args(table_name))
    ddb.get_waiter("table_exists").wait(TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return True
