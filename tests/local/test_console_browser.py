"""The Settings → API Keys page in a real browser (Debian's chromium driven by playwright-core)
against the real local server. Each test runs one scenario of tests/local/browser/console.mjs on a
fresh account and asserts the facts it reports; screenshots land in test-artifacts/screenshots/."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from apikeys_local.idp import LocalIdentityProvider
from tests.helpers.github_keys import GitHubKeys
from tests.helpers.local_server import ROOT, ServerProcess, http, start_server
from tests.helpers.node_driver import NodeDriver
from tests.helpers.support import PLAN_LIMITS
from tests.helpers.usage import seed_usage

SCRIPT = ROOT / "tests" / "local" / "browser" / "console.mjs"
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"


class Browser(NodeDriver):
    """The module's one headless Chromium: console.mjs reading a scenario per stdin line."""

    def __init__(self, server: ServerProcess, github: GitHubKeys) -> None:
        env = {
            "CONSOLE_URL": server.url,
            "SCREENSHOT_DIR": str(SCREENSHOTS),
            "CHROMIUM": CHROMIUM,
            "GITHUB_KEY_ID": github.identifier("key-1"),
            "GITHUB_KEY_PEM": github.private_pem(),
        }
        super().__init__(SCRIPT, env)

    def run(self, scenario: str, account: str, env: dict[str, str]) -> dict[str, Any]:
        return self.send({"scenario": scenario, "account": account, "env": env})


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, github_server: GitHubKeys) -> Iterator[ServerProcess]:
    assert Path(CHROMIUM).is_file(), "Chromium is missing: `make test` installs it (scripts/ensure-chromium.sh)"
    assert (ROOT / "node_modules" / "playwright-core").is_dir(), "playwright-core is missing: run `npm ci`"
    overrides = ("--parameter-overrides", f"SecretScanningKeysUrl={github_server.url}")
    home = tmp_path_factory.mktemp("console-home")
    server = start_server(home, args=overrides)
    server.github = github_server  # type: ignore[attr-defined]
    server.home = home  # type: ignore[attr-defined]
    browser = Browser(server, github_server)
    server.browser = browser  # type: ignore[attr-defined]
    yield server
    browser.close()
    server.stop()


def run(console: ServerProcess, scenario: str, account: str | None = None, **extra: str) -> dict[str, Any]:
    """One scenario of console.mjs in the module's browser, on a fresh account: its facts."""
    browser: Browser = console.browser  # type: ignore[attr-defined]
    facts = browser.run(scenario, account or f"browser-{scenario}-{uuid.uuid4().hex[:8]}", extra)
    assert facts["error"] is None, f"scenario {scenario} failed:\n{facts['error']}"
    assert facts["page_errors"] == []
    return facts


def test_create_copy_use_and_delete_a_key(console: ServerProcess) -> None:
    f = run(console, "lifecycle")
    assert f["empty_usage"] == "0 of 3 keys · Pro"
    # Validation: the API's message, shown on the field, marked invalid.
    assert f["validation_message"] == f["api_validation_message"]
    assert f["name_invalid"] == "true"
    # The key is shown once, with the warning, focus in the dialog, and the copy is exact.
    assert f["key_format_ok"]
    assert "won't be shown again" in f["dialog_warning"]
    assert f["focus_in_dialog"] == "secret-value"
    assert f["name_error_cleared"]
    assert f["copied_equals_shown"]
    assert f["whoami_before"] == 200
    assert f["whoami_account"].startswith("browser-lifecycle-")
    # Closing the dialog forgets the key: only the masked form remains, in the page and after a reload.
    assert f["key_left_in_page"] is False
    assert f["key_left_after_reload"] is False
    assert f["row_display"] == f["expected_display"]
    assert f["rows"] == 1
    assert f["usage_after_create"] == "1 of 3 keys · Pro"
    assert f["focus_after_dialog"] == "key-name"
    assert f["last_used_text"] == "just now"  # the page's clock pinned 10 s after the use
    assert f["last_used_text_later"] == "5 minutes ago"
    assert f["last_used_title"].endswith("UTC")  # the exact time, on hover
    # Delete: the confirmation names the key and the immediate 401; Escape cancels.
    assert "“Zapier Integration”" in f["confirm_text"]
    assert "401 Unauthorized" in f["confirm_text"]
    assert f["focus_on_cancel"] == "delete-cancel"
    assert f["focus_back_on_delete"].startswith("Delete")
    assert f["whoami_after_cancel"] == 200
    assert f["usage_after_delete"] == "0 of 3 keys · Pro"
    assert f["whoami_after_delete"] == 401


def test_over_limit_account_sees_a_notice_and_keeps_working_keys(console: ServerProcess) -> None:
    f = run(console, "overlimit")
    assert f["over_limit_notice"] == (
        "This account has 4 API keys and the Pro plan allows 3. They keep working, but keys cannot be "
        "created or rolled until you delete 1 key or upgrade your plan."
    )
    assert f["usage_over"] == "4 of 3 keys · Pro"
    assert f["whoami_over"] == 200
    assert (f["roll_status"], f["roll_code"]) == (403, "key_limit_reached")
    assert f["roll_message"] == (
        "This account has 4 API keys and the Pro plan allows 3. Delete 1 key to roll a key, "
        "or upgrade to Advanced (10 keys)."
    )
    assert f["notice_hidden_at_limit"]


def test_plan_limit_shows_the_apis_message(console: ServerProcess) -> None:
    f = run(console, "limit")
    assert f["usage_at_cap"] == "3 of 3 keys · Pro"
    assert "at-limit" in f["usage_at_cap_class"]
    assert f["api_limit_status"] == 403
    assert f["api_limit_code"] == "key_limit_reached"
    assert f["limit_hint"] == f["api_limit_message"]
    assert "Pro" in f["limit_hint"]
    assert f["dialog_opened"] is False
    assert f["rows"] == 3
    assert f["hint_hidden_after_delete"]
    assert f["usage_after_delete"] == "2 of 3 keys · Pro"


def test_roll_with_grace_period_rename_and_phone_width(console: ServerProcess) -> None:
    f = run(console, "roll")
    assert f["roll_focus"] == "roll-grace"
    assert f["new_key_format_ok"]
    assert f["new_key_differs"]
    assert f["old_display"] in f["roll_context"]
    assert "keeps working until" in f["roll_context"]
    assert sorted(f["statuses"]) == ["Active", "Rolling out"]
    assert f["rolling_expires"]
    assert f["usage_after_roll"] == "1 of 3 keys · Pro"
    assert f["whoami_old"] == 200
    assert f["whoami_new"] == 200
    assert f["keys_left_in_page"] is False
    assert "64" in f["rename_error"]
    assert f["names"].count("Production server (eu-west-1)") == 1
    assert f["usage_full"] == "3 of 3 keys · Pro"
    assert f["phone_overflow"] <= 0
    assert f["phone_delete_visible"]


def test_create_a_scoped_key_and_narrow_it(console: ServerProcess) -> None:
    f = run(console, "scopes")
    assert f["offered"] == ["whoami", "mcp", "keys:read"]  # the catalogue, served by GET /scopes
    assert f["boxes_disabled_when_full"] is True
    assert f["listed_scopes"] == "whoami"
    assert f["reset_to_full"] is True
    assert f["whoami_scoped"] == 200
    assert f["dialog_whoami_checked"] is True
    assert f["listed_after_patch"] == "mcp"
    assert f["whoami_after_patch"] == 403  # API Gateway's ACCESS_DENIED: outside the key's scopes
    assert f["key_left_in_page"] is False


def test_a_key_near_its_expiry_says_so_in_the_warning_style(console: ServerProcess) -> None:
    f = run(console, "expiring")
    assert f["soon_text"] == "Expires in 7 days"
    assert f["soon_title"].endswith("UTC")  # the exact time, on hover
    assert f["soon_colors"] == ["rgb(255, 250, 235)", "rgb(147, 55, 13)"]  # --warn-bg, as a rolling key's badge
    assert f["warnings"] == 1
    assert f["later_text"] == "next month" and f["never_text"] == "Never"
    assert f["last_day_text"] == "Expires in 1 day"
    assert f["before_window_text"] == "next week" and f["before_window_warnings"] == 1  # the 1-day key's, now 9


def test_loading_error_and_ended_session_states(console: ServerProcess) -> None:
    f = run(console, "states")
    assert f["loading_busy"] == "true"
    assert "Could not reach the API" in f["error_text"]
    assert f["recovered"]
    assert f["session_message"] == f["api_unauthorized_message"]


def test_cognito_hosted_sign_in_with_pkce(console: ServerProcess) -> None:
    f = run(console, "cognito")
    c = f["cognito"]
    assert c["response_type"] == "code"
    assert c["client_id"] == "client123"
    assert c["method"] == "S256"
    assert c["redirect_uri"] == f"{console.url}/"
    assert c["token_request_ok"]
    assert "code=" not in f["url_after_sign_in"]
    assert f["account_shown"].startswith("browser-cognito-")


def test_local_server_serves_the_page_and_a_dev_login(console: ServerProcess) -> None:
    page = http("GET", f"{console.url}/")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<title>API Keys · Settings</title>" in page.text
    script = http("GET", f"{console.url}/app.js")
    assert script.headers["Content-Type"].startswith(("text/javascript", "application/javascript"))
    assert http("GET", f"{console.url}/nope.js").status == 403  # not a page file: the gateway's answer

    login = f"{console.url}/_local/login"
    assert http("GET", login).status == 405
    text_plain = http("POST", login, raw=b'{"account": "a"}', headers={"Content-Type": "text/plain"})
    assert text_plain.status == 415  # a cross-site form post cannot reach it
    unknown = http("POST", login, body={"account": "a", "plan": "platinum"})
    assert unknown.status == 400
    assert "platinum" in unknown.json["error"]["message"]
    assert http("POST", login, body={"account": " "}).status == 400
    assert http("POST", login, body={"account": "a", "extra": 1}).status == 400

    account = f"dev-login-{uuid.uuid4().hex[:8]}"
    signed_in = http("POST", login, body={"account": account, "plan": "advanced"})
    assert signed_in.status == 200
    assert signed_in.headers["Cache-Control"] == "no-store"
    listing = http("GET", f"{console.url}/keys", token=signed_in.json["token"])
    assert listing.status == 200
    assert (listing.json["plan"], listing.json["key_limit"], listing.json["key_count"]) == (
        "advanced",
        PLAN_LIMITS["advanced"],
        0,
    )


def test_a_leaked_key_is_revoked_and_the_page_says_where_it_was_found(console: ServerProcess) -> None:
    f = run(console, "leaked")
    assert f["whoami_before"] == 200 and f["notice_hidden_before"]
    assert (f["report_status"], f["report_label"]) == (200, "true_positive")
    assert f["whoami_after"] == 401
    assert f["notice_text"] == (
        "“CI deploy key” was revoked just now because it was found in public at "
        "https://github.com/octo/app/blob/main/.env."
    )
    assert f["notice_link"] == "https://github.com/octo/app/blob/main/.env"
    assert f["notice_time_title"].endswith("UTC")
    assert f["rows"] == 1 and f["usage"] == "1 of 3 keys · Pro"
    assert f["key_in_page"] is False


def test_a_route_the_hosting_does_not_forward_is_a_visible_load_error(console: ServerProcess) -> None:
    """Issue 22 item 1: deployed, a route CloudFront does not forward reached the S3 origin (403
    XML) and the page swallowed it: no leaked-key notices, only "Full access" offered, no word."""
    f = run(console, "unrouted")
    assert f["rows"] == 1
    assert f["revocations_error"] is not None and "leaked" in f["revocations_error"].lower()
    assert "403" in f["revocations_error"]
    assert f["scopes_error"] is not None and "scopes" in f["scopes_error"].lower() and "403" in f["scopes_error"]
    assert f["revocations_error_after"] is None and f["scopes_error_after"] is None
    assert f["scope_boxes_after"] == 3


def test_each_key_shows_its_30_days_of_requests_and_who_created_it(console: ServerProcess) -> None:
    """Issue 23: known counts seeded in the running server's table as the authorizer's side
    writes them; the page draws one bar a day, oldest first, today last, with the total, names
    the chart for screen readers, and says who created each key."""
    account = f"browser-usage-{uuid.uuid4().hex[:8]}"
    home: Path = console.home  # type: ignore[attr-defined]
    assert http("POST", f"{console.url}/_local/login", body={"account": account, "plan": "pro"}).status == 200
    idp = LocalIdentityProvider(home)
    zapier = http("POST", f"{console.url}/keys", idp.mint(account, email="ana@example.com"), {"name": "Zapier"}).json
    ci = http("POST", f"{console.url}/keys", idp.mint(account), {"name": "CI deploy"}).json
    today = datetime.now(UTC).date()
    # Oldest first: four working weeks growing a little, quiet weekends, then today the busiest; 1,234 in all.
    week = [45, 48, 52, 47, 43, 11, 8]
    busy = [n + 2 * w for w in range(4) for n in week] + [53, 81]
    quiet = [0] * 24 + [3] + [0] * 5  # one day with 3, six days ago
    days = {
        (today - timedelta(days=29 - n)).isoformat(): {zapier["id"]: busy[n], ci["id"]: quiet[n]} for n in range(30)
    }
    days[(today - timedelta(days=30)).isoformat()] = {zapier["id"]: 5000, ci["id"]: 5000}  # day 31: not shown
    server = json.loads((home / "server.json").read_text())
    client = boto3.client("dynamodb", endpoint_url=server["dynamodb_endpoint"])
    seed_usage(account, days, table=server["table_name"], client=client)

    seeded = [{"id": zapier["id"], "name": "Zapier"}, {"id": ci["id"], "name": "CI deploy"}]
    f = run(console, "usage", account=account, USAGE_KEYS=json.dumps(seeded))
    dates = [(today - timedelta(days=29 - n)).isoformat() for n in range(30)]
    busy_key, quiet_key = f["keys"]["Zapier"], f["keys"]["CI deploy"]
    assert busy_key["role"] == quiet_key["role"] == "img"
    assert busy_key["label"] == "1,234 requests in the last 30 days"
    assert quiet_key["label"] == "3 requests in the last 30 days"
    assert busy_key["images_named"] == quiet_key["images_named"] == 1  # exposed as one named image each
    assert (busy_key["bars"], busy_key["dates"]) == (busy, dates)
    assert (quiet_key["bars"], quiet_key["dates"]) == (quiet, dates)
    assert (busy_key["total"], quiet_key["total"]) == ("1,234", "3")
    # Heights: each day scaled to the key's busiest, a 1 px stub for a day without requests.
    assert sum(busy) == 1234 and busy_key["heights"][-1] == max(busy_key["heights"]) == 24
    assert busy_key["heights"][:7] == [13, 14, 15, 14, 13, 3, 2]  # round(24 * n / 81), at least 2 px
    assert quiet_key["heights"] == [1] * 24 + [24] + [1] * 5
    assert busy_key["last_tip"].endswith(": 81 requests")
    assert busy_key["created_by"] == "Created by ana@example.com"
    assert quiet_key["created_by"] == f"Created by {account}"  # no email in that token: the username
    assert f["phone_overflow"] <= 0
    for chart in f["phone_charts"]:
        assert chart["width"] == 90 and chart["left"] >= 0 and chart["right"] <= chart["viewport"]
