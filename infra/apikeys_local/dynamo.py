"""The local table: moto's DynamoDB served in process by default, or whatever
AWS_ENDPOINT_URL_DYNAMODB points at (DynamoDB Local, a real table), created from the template
if missing. The embedded moto also stands in for the other AWS services handlers call."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

import boto3
from botocore.config import Config
from werkzeug.serving import BaseWSGIServer, make_server

from apikeys_local.template import Stack


class _OneCallAtATime:
    """DynamoDB applies each call, and each transaction, atomically; moto's backend does not
    lock, so concurrent transactions could both pass a condition. One lock restores that."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with self.lock:
            return list(self.app(environ, start_response))


class EmbeddedDynamoDB:
    """moto's server mode on 127.0.0.1 and a free port, in a daemon thread of this process."""

    def __init__(self) -> None:
        from moto.moto_server.threaded_moto_server import MotoRequestHandler
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

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
