"""First-hour friction (issue 15), over HTTP against `apikeys-local serve`: a new account's dev
login starts on a usable plan, the printed quickstart shows each step's status, and the
browser's /favicon.ico request is no error."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

from apikeys_local.idp import LocalIdentityProvider
from apikeys_local.server import quickstart
from tests.helpers.local_server import ServerProcess, cli, http
from tests.local.test_console_browser import console as console
from tests.local.test_console_browser import run


def login(url: str, account: str, plan: str | None = None) -> str:
    reply = http("POST", f"{url}/_local/login", body={"account": account, "plan": plan})
    assert reply.status == 200, reply.text
    token: str = reply.json["token"]
    return token


def test_a_new_account_signs_in_on_pro_and_can_create_a_key(local_api: ServerProcess) -> None:
    """Before: "0 of 0 keys · No plan" and the first create refused with 403."""
    account = f"new-{uuid.uuid4().hex[:8]}"
    token = login(local_api.url, account)
    listing = http("GET", f"{local_api.url}/keys", token).json
    assert (listing["plan"], listing["key_limit"], listing["key_count"]) == ("pro", 3, 0)
    assert http("POST", f"{local_api.url}/keys", token, {"name": "first"}).status == 201


def test_dev_login_keeps_a_plan_the_account_already_has(
    local_api: ServerProcess, local_home: Path, tmp_path: Path
) -> None:
    account = f"agency-{uuid.uuid4().hex[:8]}"
    token = login(local_api.url, account, "agency")
    login(local_api.url, account)
    assert http("GET", f"{local_api.url}/keys", token).json["plan"] == "agency"

    cancelled = f"gone-{uuid.uuid4().hex[:8]}"
    token = login(local_api.url, cancelled)
    assert http("POST", f"{local_api.url}/keys", token, {"name": "kept"}).status == 201
    event = tmp_path / "cancel.json"
    event.write_text(json.dumps({"account_id": cancelled, "plan": None}))
    done = cli(local_home, "invoke", "SetPlanFunction", "--event", str(event))
    assert done.returncode == 0, done.stderr
    login(local_api.url, cancelled)  # keys kept after a cancellation: the account stays plan-less
    listing = http("GET", f"{local_api.url}/keys", token).json
    assert (listing["plan"], listing["key_count"]) == (None, 1)


def test_favicon_is_no_error(local_api: ServerProcess) -> None:
    reply = http("GET", f"{local_api.url}/favicon.ico")
    assert reply.status == 204 and reply.data == b""


def test_printed_quickstart_shows_each_status_and_names_the_token(local_api: ServerProcess, local_home: Path) -> None:
    token = LocalIdentityProvider(local_home).mint("demo-account")
    text = quickstart(local_api.url, token, "demo-account", "pro")
    assert "TOKEN below is its management token" in text
    assert "Management token (valid 12 h): apikeys-local token" not in text
    script = "\n".join(
        line for line in text.splitlines() if line.startswith(("API=", "TOKEN=", "CREATED=", "KEY", "curl "))
    )
    done = subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    statuses = [line for line in done.stdout.splitlines() if line.startswith("HTTP")]
    assert [s.split()[1] for s in statuses] == ["201", "200", "200", "204", "401"]


def test_console_first_hour_in_a_browser(console: ServerProcess) -> None:
    """Before: a new account's first page was "0 of 0 keys · No plan" with no way forward."""
    f = run(console, "firsthour")
    assert f["new_account_usage"] == "0 of 3 keys · Pro"
    assert f["planless_usage"] == "0 of 0 keys · No plan"
    assert f["planless_notice"] == (
        "This account has no plan yet. Sign out and sign in again with a plan chosen, or run "
        "`apikeys-local plan set ACCOUNT pro`, then reload."
    )
