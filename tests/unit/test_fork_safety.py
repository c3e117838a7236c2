"""A forked process keeps recording last-used updates (pre-forking servers, mutmut's workers)."""

from __future__ import annotations

import os

from apikeys import usage


def test_a_process_forked_after_an_update_still_runs_its_own_updates() -> None:
    """The child inherits the executor but not its thread. Without a fresh executor in the child,
    the wait (then `auth.wait_for_background_updates`) timed out after 10 s there: every `api`
    fixture teardown failed under `make mutation`, so every mutant was reported killed."""
    usage._executor().submit(lambda: None).result(timeout=5)  # the parent's worker thread exists
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            usage.wait_for_last_used()
            os.write(write, b"ran")
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    assert os.read(read, 3) == b"ran"
