"""A long-running node script driven by JSON lines (one command in, one answer out), so a test
module shares one headless Chromium across its tests (tests/local/browser/*.mjs)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from tests.helpers.local_server import ROOT


class NodeDriver:
    def __init__(self, script: Path, env: dict[str, str]) -> None:
        node = shutil.which("node")
        assert node, "node is required"
        self.process = subprocess.Popen(
            [node, str(script)], cwd=ROOT, env={**os.environ, **env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip

    def send(self, command: dict[str, Any]) -> dict[str, Any]:
        """One command; the script's one-line JSON answer."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the browser process ended (exit {self.process.poll()})"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def close(self) -> None:
        """End of input: the script closes its browser and exits (an open stdin keeps node alive)."""
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
