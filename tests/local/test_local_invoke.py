"""`apikeys-local invoke FUNCTION --event FILE` with every sample in events/, against the running
local server's table: each sample does what it is for."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from apikeys_local.template import load_stack
from tests.helpers.local_server import ROOT, ServerProcess, cli, http
from tests.helpers.support import PLAN_LIMITS

EVENTS = ROOT / "events"
STACK = load_stack(ROOT, "unused")
NOT_EVENTS = {"env.json"}  # `sam local invoke --env-vars`, not an event


def function_for(sample: Path) -> str:
    """The function whose CodeUri folder names the sample: create_key.json -> functions/create_key."""
    matches = [
        f.name for f in STACK.functions.values() if sample.stem == f.code_uri.name or sample.stem.startswith(
            f.code_uri.name + "_")
    ]  # fmt: skip
    assert len(matches) == 1, (sample.name, matches)
    return matches[0]


def invoke(home: Path, function: str, event: Path) -> tuple[int, Any]:
    done = cli(home, "invoke", function, "--event", str(event))
    assert done.stdout, done.stderr
    return done.returncode, json.loads(done.stdout)


def with_key(sample: Path, key: str, tmp: Path) -> Path:
    text = sample.read_text().replace("ot_PASTE_A_KEY_HERE", key)
    out = tmp / sample.name
    out.write_text(text)
    return out


def test_every_sample_event_does_what_it_is_for(local_api: ServerProcess, local_home: Path, tmp_path: Path) -> None:
    samples = sorted(p for p in EVENTS.glob("*.json") if p.name not in NOT_EVENTS)
    seen: set[str] = set()

    def run(name: str, event: Path | None = None) -> tuple[int, Any]:
        seen.add(name)
        sample = EVENTS / name
        return invoke(local_home, function_for(sample), event or sample)

    # The server set demo-account's plan at startup; the sample sets it again.
    rc, plan = run("set_plan.json")
    assert rc == 0 and plan == {"account_id": "demo-account", "plan": "pro", "key_limit": PLAN_LIMITS["pro"]}

    rc, created = run("create_key.json")
    assert rc == 0 and created["statusCode"] == 201, created
    key_body = json.loads(created["body"])
    assert key_body["name"] == "Zapier Integration" and key_body["key"].startswith("ot_")
    key, key_id = key_body["key"], key_body["id"]

    rc, listed = run("list_keys.json")
    assert rc == 0 and listed["statusCode"] == 200
    assert key_id in [k["id"] for k in json.loads(listed["body"])["keys"]]

    rc, whoami = run("whoami.json")
    assert rc == 0 and whoami["statusCode"] == 200
    assert json.loads(whoami["body"]) == {"account_id": "demo-account", "key_id": "key_00000000000000000000",
                                          "plan": "pro", "scopes": ["*"]}  # fmt: skip

    # The authorizer samples carry a placeholder: refused as such, allowed with a real key.
    rc, refused = run("authorizer_token.json")
    assert rc == 1 and refused["errorMessage"] == "Unauthorized"
    rc, refused = run("authorizer_request.json")
    assert rc == 1 and refused["errorMessage"] == "Unauthorized"
    rc, refused = run("authorizer_websocket.json")
    assert rc == 1 and refused["errorMessage"] == "Unauthorized"
    rc, refused = run("authorizer_http_api.json")
    assert rc == 0 and refused == {"isAuthorized": False}
    rc, refused = run("authorizer_appsync.json")
    assert rc == 0 and refused == {"isAuthorized": False, "ttlOverride": 0}
    context = {"account_id": "demo-account", "key_id": key_id, "plan": "pro", "scopes": "*"}
    rc, allowed = run("authorizer_appsync.json", with_key(EVENTS / "authorizer_appsync.json", key, tmp_path))
    assert rc == 0 and allowed == {"isAuthorized": True, "resolverContext": context, "ttlOverride": 0}
    for name in ("authorizer_token.json", "authorizer_request.json", "authorizer_websocket.json"):
        rc, allowed = run(name, with_key(EVENTS / name, key, tmp_path))
        assert rc == 0 and allowed["principalId"] == "demo-account" and allowed["context"] == context
        assert allowed["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    rc, allowed = run("authorizer_http_api.json", with_key(EVENTS / "authorizer_http_api.json", key, tmp_path))
    assert rc == 0 and allowed == {"isAuthorized": True, "context": context}

    def with_id(name: str, key_id: str) -> Path:
        out = tmp_path / f"real-{name}"
        out.write_text((EVENTS / name).read_text().replace("key_00000000000000000000", key_id))
        return out

    # The key samples name a key that does not exist (404); with a real id they do their job.
    for name in ("get_key.json", "key_usage.json", "rename_key.json", "roll_key.json", "delete_key.json"):
        rc, missing = run(name)
        assert rc == 0 and missing["statusCode"] == 404, (name, missing)
        assert json.loads(missing["body"])["error"]["code"] == "not_found"
    rc, got = run("get_key.json", with_id("get_key.json", key_id))
    assert rc == 0 and got["statusCode"] == 200 and json.loads(got["body"])["id"] == key_id
    rc, usage = run("key_usage.json", with_id("key_usage.json", key_id))
    assert rc == 0 and usage["statusCode"] == 200, usage
    usage_body = json.loads(usage["body"])  # ?days=7: a week, the last day today (UTC)
    assert usage_body["key_id"] == key_id and len(usage_body["days"]) == 7 and usage_body["total"] >= 0
    rc, renamed = run("rename_key.json", with_id("rename_key.json", key_id))
    assert rc == 0 and renamed["statusCode"] == 200 and json.loads(renamed["body"])["name"] == "Zapier (prod)"
    rc, rolled = run("roll_key.json", with_id("roll_key.json", key_id))
    assert rc == 0 and rolled["statusCode"] == 201, rolled
    new_key = json.loads(rolled["body"])
    assert new_key["id"] != key_id and new_key["key"].startswith("ot_") and new_key["key"] != key
    rc, deleted = run("delete_key.json", with_id("delete_key.json", new_key["id"]))
    assert rc == 0 and deleted["statusCode"] == 204

    # Scopes: the catalogue, a key created with one scope, a scope change (404 for the placeholder id).
    rc, catalogue = run("list_scopes.json")
    assert rc == 0 and catalogue["statusCode"] == 200
    assert [s["name"] for s in json.loads(catalogue["body"])["scopes"]] == ["whoami", "mcp", "keys:read"]
    rc, scoped = run("create_key_scoped.json")
    assert rc == 0 and scoped["statusCode"] == 201 and json.loads(scoped["body"])["scopes"] == ["whoami"], scoped
    rc, missing = run("rename_key_scopes.json")
    assert rc == 0 and missing["statusCode"] == 404
    scoped_id = json.loads(scoped["body"])["id"]
    rc, changed = run("rename_key_scopes.json", with_id("rename_key_scopes.json", scoped_id))
    assert rc == 0 and changed["statusCode"] == 200 and json.loads(changed["body"])["scopes"] == ["mcp"]

    # Issue 14: the public revocation sample carries the placeholder (202, nothing revoked); with a
    # real key it revokes it, and the account's revocations list names it.
    rc, accepted = run("revoke_credentials.json")
    assert rc == 0 and accepted["statusCode"] == 202 and json.loads(accepted["body"]) == {}
    rc, listed = run("list_revocations.json")
    assert rc == 0 and listed["statusCode"] == 200 and json.loads(listed["body"]) == {"revocations": []}
    rc, other = run("create_key.json")
    leaked = json.loads(other["body"])
    rc, accepted = run("revoke_credentials.json", with_key(EVENTS / "revoke_credentials.json", leaked["key"], tmp_path))
    assert rc == 0 and accepted["statusCode"] == 202
    rc, listed = run("list_revocations.json")
    assert [r["key_id"] for r in json.loads(listed["body"])["revocations"]] == [leaked["id"]]

    # Stream samples: the batch is processed with no item failure.
    for name in ("key_expiry.json", "audit_events.json"):
        rc, result = run(name)
        assert rc == 0 and result == {"batchItemFailures": []}, (name, result)

    # Samples added later still run: no function error, no 5xx.
    for sample in samples:
        if sample.name not in seen:
            rc, result = run(sample.name)
            assert rc == 0 and (not isinstance(result, dict) or result.get("statusCode", 200) < 500), sample.name
    assert {p.name for p in samples} <= seen


def test_invoke_reports_unknown_functions_and_logs_on_stderr(local_api: ServerProcess, local_home: Path) -> None:
    done = cli(local_home, "invoke", "NoSuchFunction", "--event", str(EVENTS / "whoami.json"))
    assert done.returncode == 2 and "CreateKeyFunction" in done.stderr
    done = cli(local_home, "invoke", "SetPlanFunction", "--event", str(EVENTS / "set_plan.json"))
    assert json.loads(done.stdout)["plan"] == "pro" and '"message":"plan set"' in done.stderr


def test_schedule_runs_a_scheduled_function_as_its_schedule_would(local_api: ServerProcess, local_home: Path) -> None:
    """`apikeys-local schedule ExpiryNoticesFunction --at T`: the template's Scheduler input with
    the scheduled time filled in, against the running server's table. Issue 24 item 5: a key 7
    days from expiry is warned, and a second run for the same day (another process) warns nobody."""
    listed = cli(local_home, "schedule")
    assert listed.returncode == 0 and "ExpiryNoticesFunction  cron(0 9 * * ? *)" in listed.stdout

    account = f"schedule-{uuid.uuid4().hex[:8]}"
    assert cli(local_home, "plan", "set", account, "pro").returncode == 0
    token = cli(local_home, "token", "--account", account).stdout.strip()
    created = http("POST", f"{local_api.url}/keys", token, {"name": "Trial", "expires_in_days": 7})
    assert created.status == 201
    expires = datetime.fromisoformat(created.json["expires_at"])
    at = (expires - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")

    done = cli(local_home, "schedule", "ExpiryNoticesFunction", "--at", at)
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)
    assert first["day"] == at[:10] and first["sent"] >= 1  # other tests' 7-day keys may share the day
    assert f'"key_id":"{created.json["id"]}","days_left":7' in done.stderr  # its log line
    again = json.loads(cli(local_home, "schedule", "ExpiryNoticesFunction", "--at", at).stdout)
    assert again["sent"] == 0

    bad = cli(local_home, "schedule", "ExpiryNoticesFunction", "--at", "tomorrow")
    assert bad.returncode == 2 and "ISO 8601" in bad.stderr
    assert cli(local_home, "schedule", "CreateKeyFunction").returncode == 2
