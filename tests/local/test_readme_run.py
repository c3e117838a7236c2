"""The README's "Run it" command, exactly as written, from a fresh clone: it serves the API and
the curl lines it prints work as shown. Then the test stops it."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers.local_server import ROOT, ServerProcess, clean_env


def readme_run_command() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Run it\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```bash\n(.*?)\n```", section, re.DOTALL)
    assert match, "the README's Run it section has no bash block"
    return match[1].strip()


def quickstart(output: str) -> str:
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("API="))
    end = max(i for i, line in enumerate(lines) if line.startswith("curl "))
    return "\n".join(lines[start : end + 1])


@pytest.mark.timeout(600)
def test_readme_run_command_from_a_fresh_clone(tmp_path: Path) -> None:
    command = readme_run_command()
    assert command == "make dev"
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    env = clean_env(PORT="0")  # the server binds a port of its own and prints it: no free-port race
    for var in ("VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL"):  # as a developer's shell would be
        env.pop(var, None)
    server = ServerProcess(["bash", "-c", command], clone, env, start_timeout=420)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:[1-9]\d*", server.url), server.url
        assert (clone / ".venv" / "bin" / "apikeys-local").exists()
        script = quickstart(server.output())
        done = subprocess.run(
            ["bash", "-e", "-c", script], capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path
        )
        assert done.returncode == 0, done.stderr
        out = done.stdout.splitlines()  # each step: its body (if any), then its HTTP status
        created = json.loads(out[0])
        assert created["name"] == "My first key" and created["key"].startswith("ot_")
        assert out[1] == "HTTP 201"
        whoami = {"account_id": "demo-account", "key_id": created["id"], "plan": "pro", "scopes": ["*"]}
        assert json.loads(out[2]) == whoami
        assert out[3] == "HTTP 200"
        listed = json.loads(out[4])
        assert [k["id"] for k in listed["keys"]] == [created["id"]] and listed["plan"] == "pro"
        assert out[5:7] == ["HTTP 200", "HTTP 204"]
        assert out[7].startswith("HTTP/1.1 401")
        assert any(line.lower().startswith("www-authenticate: bearer") for line in out)
        assert '"code":"unauthorized"' in done.stdout
        assert created["key"] not in server.output()
    finally:
        server.stop()
    assert not (clone / ".apikeys-local" / "server.json").exists()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True)
    assert status.stdout == "", "make dev left untracked files that are not gitignored"
