"""Lambda execution environments as local processes.

Each container is a child process that imports one function's handler (CodeUri + Handler),
with exactly that function's environment, and serves one invocation at a time, as Lambda
does. Separate processes keep module state (Powertools resolvers, metrics, caches) per
container, so concurrent requests behave as concurrent Lambda invocations do.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import threading
import time
import traceback
import uuid
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from apikeys_local.template import Function, load_module

# Heavy imports done once in the fork server, so a cold start is a fork, not a re-import.
_PRELOAD = ["boto3", "botocore.session", "aws_lambda_powertools", "aws_lambda_powertools.event_handler", "pydantic"]
_ctx = multiprocessing.get_context("forkserver")
_ctx.set_forkserver_preload(_PRELOAD)


@dataclass(frozen=True)
class InvokeResult:
    ok: bool
    payload: Any  # the handler's return value, or {"errorType", "errorMessage", "stackTrace"}
    duration_ms: float


class LambdaContext:
    """The attributes and method handlers read from Lambda's context object."""

    def __init__(self, function: str, memory: int, timeout: int, request_id: str) -> None:
        self.function_name = function
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function}"
        self.memory_limit_in_mb = memory
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function}"
        self.log_stream_name = f"local/{os.getpid()}"
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def load_handler(function: Function) -> Any:
    module = load_module(function.source, function.module_name)
    return getattr(module, function.handler.rpartition(".")[2])


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc)[-5:],
    }


def _container_main(
    conn: Connection, function: Function, env: dict[str, str], sys_path: list[str], logs_to_stderr: bool
) -> None:
    """Runs in the child: the Lambda runtime loop (init once, then one invocation at a time)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops containers; Ctrl-C stops the server
    if logs_to_stderr:
        os.dup2(2, 1)  # `invoke` keeps stdout for the result, as `sam local invoke` does
    os.environ.clear()
    os.environ.update(env)
    sys.path[:0] = [p for p in sys_path if p not in sys.path]
    try:
        handler = load_handler(function)
        conn.send(("ready", None))
    except BaseException as exc:  # noqa: BLE001 - an init error is reported like Lambda reports it
        conn.send(("init_error", _error(exc)))
        return
    while True:
        try:
            request_id, event_json = conn.recv()
        except EOFError:
            return
        context = LambdaContext(function.name, function.memory, function.timeout, request_id)
        try:
            result = handler(json.loads(event_json), context)
            _write_usage()
            conn.send(("ok", json.dumps(result)))
        except Exception as exc:  # noqa: BLE001 - the handler's error is the invocation's result
            conn.send(("error", json.dumps(_error(exc))))
        sys.stdout.flush()


def _write_usage() -> None:
    """Locally, a container writes the usage counts it holds after every invocation, before it
    answers, so a request's count is in the table when its response arrives (the console and
    the tests read it at once). In Lambda they are written at most once a minute per account
    (apikeys/usage.py); that timing is the unit tests'. Only a container that loaded the module
    (the authorizer's) holds any."""
    usage = sys.modules.get("apikeys.usage")
    if usage is not None:
        usage.flush()


class Container:
    def __init__(self, function: Function, env: dict[str, str], sys_path: list[str], logs_to_stderr: bool) -> None:
        self.function = function
        self.conn, child = _ctx.Pipe()
        self.process = _ctx.Process(
            target=_container_main,
            args=(child, function, env, sys_path, logs_to_stderr),
            daemon=True,
            name=function.name,
        )
        self.process.start()
        child.close()
        kind, detail = self.conn.recv()
        if kind != "ready":
            self.stop()
            raise RuntimeError(f"{function.name} failed to initialise: {detail['errorType']}: {detail['errorMessage']}")

    def invoke(self, event: Any) -> InvokeResult:
        started = time.perf_counter()
        self.conn.send((str(uuid.uuid4()), json.dumps(event)))
        if not self.conn.poll(self.function.timeout):
            self.stop()
            message = f"Task timed out after {self.function.timeout:.2f} seconds"
            return InvokeResult(False, {"errorType": "TimeoutError", "errorMessage": message}, self.function.timeout)
        kind, payload = self.conn.recv()
        return InvokeResult(kind == "ok", json.loads(payload), (time.perf_counter() - started) * 1000)

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def stop(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.terminate()
        self.process.join(5)


class Runtime:
    """Warm containers per function, created on demand (a cold start) up to `max_per_function`."""

    def __init__(
        self,
        root: Path,
        functions: dict[str, Function],
        base_env: dict[str, str],
        max_per_function: int = 10,
        logs_to_stderr: bool = False,
    ) -> None:
        self.logs_to_stderr = logs_to_stderr
        self.sys_path = project_sys_path(root)
        self.functions = functions
        self.base_env = base_env
        self.max_per_function = max_per_function
        self._idle: dict[str, list[Container]] = {name: [] for name in functions}
        self._count: dict[str, int] = dict.fromkeys(functions, 0)
        self._cond = threading.Condition()
        self._closed = False

    def env_for(self, function: Function) -> dict[str, str]:
        return {**self.base_env, **function.environment, "AWS_LAMBDA_FUNCTION_NAME": function.name}

    def _acquire(self, name: str) -> Container:
        with self._cond:
            while True:
                if self._closed:
                    raise RuntimeError("runtime is shut down")
                if self._idle[name]:
                    return self._idle[name].pop()
                if self._count[name] < self.max_per_function:
                    self._count[name] += 1
                    break
                self._cond.wait()
        try:
            function = self.functions[name]
            return Container(function, self.env_for(function), self.sys_path, self.logs_to_stderr)
        except BaseException:
            with self._cond:
                self._count[name] -= 1
                self._cond.notify_all()
            raise

    def _release(self, name: str, container: Container) -> None:
        with self._cond:
            if container.alive and not self._closed:
                self._idle[name].append(container)
            else:
                self._count[name] -= 1
                container.stop()
            self._cond.notify_all()

    def invoke(self, name: str, event: Any) -> InvokeResult:
        container = self._acquire(name)
        try:
            return container.invoke(event)
        finally:
            self._release(name, container)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle = [c for cs in self._idle.values() for c in cs]
            for cs in self._idle.values():
                cs.clear()
            self._cond.notify_all()
        for container in idle:
            container.stop()


def project_sys_path(root: Path) -> list[str]:
    """The layer's package and the emulator, importable in every container."""
    return [str(root / "layers" / "shared"), str(Path(__file__).resolve().parents[1])]
