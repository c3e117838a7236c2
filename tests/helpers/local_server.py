"""Runs `apikeys-local` as its own process (a real server on 127.0.0.1, a free port) and talks
to it over real HTTP with the standard library."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(sys.executable).parent / "apikeys-local"
SERVING = re.compile(r"^Serving on (http://\S+)$")


def clean_env(**extra: str) -> dict[str, str]:
    """The developer's environment, without what the test fixtures set for in-process tests."""
    env = {k: v for k, v in os.environ.items() if k not in ("TABLE_NAME", "AWS_ENDPOINT_URL_DYNAMODB")}
    env.update(extra)
    return env


@dataclass
class Reply:
    status: int
    headers: Message  # case-insensitive, as HTTP headers are
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode()

    @property
    def json(self) -> Any:
        return json.loads(self.text) if self.text else None


def http(method: str, url: str, token: str | None = None, body: Any = None, raw: bytes | None = None,
         headers: dict[str, str] | None = None) -> Reply:  # fmt: skip
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


class ServerProcess:
    """A command that serves the API; its output is kept for assertions about the log."""

    def __init__(self, args: list[str], cwd: Path, env: dict[str, str], start_timeout: float = 120) -> None:
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.url = ""
        self.process = subprocess.Popen(
            args,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,  # its own process group: stopping it stops its containers too
        )
        threading.Thread(target=self._read, daemon=True).start()
        if not self._ready.wait(start_timeout) or not self.url:
            self.stop()
            raise RuntimeError("server did not start:\n" + "\n".join(self.lines[-40:]))

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            match = SERVING.match(line.strip())
            if match:
                self.url = match[1]
                self._ready.set()
        self._ready.set()

    def output(self) -> str:
        return "\n".join(self.lines)

    def _group_alive(self) -> bool:
        try:
            os.killpg(self.process.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self) -> int:
        """SIGTERM to the server's process group, as Ctrl-C reaches all of `make dev`; then wait
        until every process of it (server, containers) is gone."""
        if self._group_alive():
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        if not wait_for(lambda: not self._group_alive(), 20):
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.process.returncode


def start_server(home: Path, cwd: Path = ROOT, args: tuple[str, ...] = (), **env: str) -> ServerProcess:
    command = [str(CLI), "serve", "--port", "0", *args]
    return ServerProcess(command, cwd, clean_env(APIKEYS_LOCAL_HOME=str(home), **env))


def cli(home: Path, *args: str, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CLI), *args],
        cwd=cwd,
        env=clean_env(APIKEYS_LOCAL_HOME=str(home), **env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def wait_for(predicate: Any, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
