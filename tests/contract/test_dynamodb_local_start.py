"""The DynamoDB Local the suite starts comes up on its own port even when the port it picked is
taken before Java binds it (DynamoDB Local refuses `-port 0`, so a bind-then-release gap exists)."""

from __future__ import annotations

import socket

import boto3

from tests.helpers.dynamodb_local import DynamoDBLocal, listens


def test_a_port_taken_before_java_binds_it_is_retried_on_a_fresh_port() -> None:
    with socket.socket() as thief:
        thief.bind(("127.0.0.1", 0))
        thief.listen()
        taken = thief.getsockname()[1]
        server = DynamoDBLocal()
        server.port, server.endpoint = taken, f"http://127.0.0.1:{taken}"  # lost the race to `thief`
        server.start()
        try:
            assert server.port != taken and server.process is not None
            assert listens(server.process.pid, server.port)
            assert not listens(server.process.pid, taken)
            client = boto3.client("dynamodb", endpoint_url=server.endpoint, region_name="us-east-1")
            assert client.list_tables()["TableNames"] == []
        finally:
            server.stop()
