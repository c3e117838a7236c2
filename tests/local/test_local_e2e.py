"""End to end over real HTTP: `apikeys-local serve` in its own process, the real handlers behind
the emulated API Gateway and authorizers, on the embedded DynamoDB."""

from __future__ import annotations

import json
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from apikeys_local.idp import AUDIENCE, ISSUER, LocalIdentityProvider
from apikeys_local.template import load_stack
from tests.helpers.local_server import ROOT, ServerProcess, cli, http, wait_for
from tests.helpers.support import PLAN_LIMITS

STACK = load_stack(ROOT, "unused")


def challenge(url: str) -> str:
    """The 401's challenge: where an MCP client finds how to get a key by OAuth (RFC 9728, issue 21)."""
    return f'Bearer resource_metadata="{url}/.well-known/oauth-protected-resource/mcp"'


def gateway_body(kind: str) -> dict[str, Any]:
    return json.loads(STACK.gateway_responses[kind].body)


def account() -> str:
    return f"acct-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def idp(local_home: Path) -> LocalIdentityProvider:
    return LocalIdentityProvider(local_home)


def with_plan(home: Path, plan: str) -> str:
    acct = account()
    done = cli(home, "plan", "set", acct, plan)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["plan"] == plan
    return acct


def test_full_lifecycle_over_http(local_api: ServerProcess, local_home: Path) -> None:
    url = local_api.url
    acct = with_plan(local_home, "pro")
    minted = cli(local_home, "token", "--account", acct)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()

    created = http("POST", f"{url}/keys", token, {"name": "  Zapier Integration  "})
    assert created.status == 201, created.text
    body = created.json
    assert {"id", "name", "key", "display", "created_at", "last_used_at"} <= set(body)
    assert body["name"] == "Zapier Integration" and body["key"].startswith("ot_")
    assert created.headers["Cache-Control"] == "no-store"
    assert created.headers["Content-Type"].startswith("application/json")
    key = body["key"]

    whoami = http("GET", f"{url}/v1/whoami", key)
    assert whoami.status == 200
    assert whoami.json == {"account_id": acct, "key_id": body["id"], "plan": "pro", "scopes": ["*"]}

    listed = http("GET", f"{url}/keys", token)
    assert listed.status == 200
    assert (
        listed.json["key_count"] == 1
        and listed.json["plan"] == "pro"
        and listed.json["key_limit"] == PLAN_LIMITS["pro"]
    )
    [item] = listed.json["keys"]
    assert item["id"] == body["id"] and item["display"] == body["display"] and key not in listed.text

    deleted = http("DELETE", f"{url}/keys/{body['id']}", token)
    assert deleted.status == 204 and deleted.text == ""

    refused = http("GET", f"{url}/v1/whoami", key)
    assert refused.status == 401
    assert refused.json == gateway_body("UNAUTHORIZED")
    assert refused.headers["WWW-Authenticate"] == challenge(url)
    assert http("DELETE", f"{url}/keys/{body['id']}", token).json["error"]["code"] == "not_found"

    # One access-log line per request: method, path, status, milliseconds, function.
    assert wait_for(lambda: f"DELETE /keys/{body['id']} 204" in local_api.output())
    assert re.search(r"POST /keys 201 \d+ms CreateKeyFunction", local_api.output())
    assert re.search(r"GET /v1/whoami 200 \d+ms WhoAmIFunction", local_api.output())
    # Function logs pass through; the full key never does.
    assert '"message":"key created"' in local_api.output()
    assert key not in local_api.output() and key[3:20] not in local_api.output()


def test_management_errors_have_the_contract_shape(local_api: ServerProcess, idp: LocalIdentityProvider) -> None:
    url = local_api.url
    acct = account()
    token = idp.mint(acct)
    no_plan = http("POST", f"{url}/keys", token, {"name": "x"})
    assert no_plan.status == 403 and no_plan.json["error"]["code"] == "key_limit_reached"
    cases = [
        (b"{", 400, "invalid_request"),
        (b"[]", 400, "invalid_request"),
        (b'{"name": "ok", "admin": true}', 400, "invalid_request"),
        (b'{"name": "   "}', 400, "invalid_request"),
        (json.dumps({"name": "x" * 20000}).encode(), 400, "invalid_request"),
        (b"\xff\xfe not utf-8", 400, "invalid_request"),
    ]
    for raw, status, code in cases:
        reply = http("POST", f"{url}/keys", token, raw=raw)
        assert reply.status == status, (raw[:20], reply.text)
        assert set(reply.json) == {"error"} and reply.json["error"]["code"] == code
        assert reply.json["error"]["message"]
    missing = http("DELETE", f"{url}/keys/key_00000000000000000000", token)
    assert missing.status == 404 and missing.json["error"]["code"] == "not_found"
    assert http("GET", f"{url}/keys", token).json["key_count"] == 0


def _forged_tokens(idp: LocalIdentityProvider, acct: str) -> dict[str, str]:
    good = idp.mint(acct)
    header, payload, signature = good.split(".")
    claims = json.loads(jwt.utils.base64url_decode(payload))
    tampered = json.dumps({**claims, "sub": "someone-else"}).encode()
    now = int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    base = {"iss": ISSUER, "aud": AUDIENCE, "sub": acct, "iat": now, "exp": now + 600}
    return {
        "expired": idp.mint(acct, ttl_seconds=-10),
        "tampered": f"{header}.{jwt.utils.base64url_encode(tampered).decode()}.{signature}",
        "unsigned": jwt.encode(base, None, algorithm="none"),
        "foreign signer": jwt.encode(base, other_key, algorithm="RS256"),
        "hmac with public key": jwt.encode(base, "a-shared-secret-of-32-bytes-long!", algorithm="HS256"),
        "garbage": "not-a-jwt",
    }


def test_cognito_emulation_refuses_bad_tokens(local_api: ServerProcess, idp: LocalIdentityProvider) -> None:
    url = local_api.url
    acct = account()
    assert http("GET", f"{url}/keys", idp.mint(acct)).status == 200
    for name, token in _forged_tokens(idp, acct).items():
        reply = http("GET", f"{url}/keys", token)
        assert reply.status == 401, name
        assert reply.json == gateway_body("UNAUTHORIZED")
        assert reply.headers["WWW-Authenticate"] == challenge(url)
    missing = http("GET", f"{url}/keys")
    assert missing.status == 401 and missing.json == gateway_body("UNAUTHORIZED")


def _usage(home: Path, account: str, days: set[str]) -> dict[str, int]:
    """The account's usage counts over `days` as the local server's table holds them (issue 23)."""
    import boto3

    server = json.loads((home / "server.json").read_text())
    client = boto3.client("dynamodb", endpoint_url=server["dynamodb_endpoint"], region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
    total: dict[str, int] = {}
    for day in days:
        key = {"pk": {"S": f"ACCOUNT#{account}"}, "sk": {"S": f"USAGE#{day}"}}
        item = client.get_item(TableName=server["table_name"], Key=key, ConsistentRead=True).get("Item", {})
        for name, value in item.items():
            if name.startswith("n_"):
                total[name.removeprefix("n_")] = total.get(name.removeprefix("n_"), 0) + int(value["N"])
    return total


def test_key_authorizer_over_http(local_api: ServerProcess, local_home: Path, idp: LocalIdentityProvider) -> None:
    url = local_api.url
    days = {datetime.now(UTC).date().isoformat()}  # UTC days of the requests, midnight or not
    acct = with_plan(local_home, "advanced")
    created = http("POST", f"{url}/keys", idp.mint(acct), {"name": "k"}).json
    key = created["key"]
    for header in (f"bearer {key}", f"BEARER {key}"):
        reply = http("GET", f"{url}/v1/whoami", headers={"Authorization": header})
        assert reply.status == 200 and reply.json["plan"] == "advanced"
    bad = [key[:-1] + ("A" if key[-1] != "A" else "B"), "ot_short", f"Basic {key}", idp.mint(acct)]
    for value in bad:
        header = value if value.startswith("Basic") else f"Bearer {value}"
        reply = http("GET", f"{url}/v1/whoami", headers={"Authorization": header})
        assert reply.status == 401, value[:12]
        assert reply.json == gateway_body("UNAUTHORIZED") and reply.headers["WWW-Authenticate"] == challenge(url)
    # The local server writes the counts after every invocation: both grants are in the table
    # as their responses arrive, the refusals are not (production: once a minute per account).
    days.add(datetime.now(UTC).date().isoformat())
    assert _usage(local_home, acct, days) == {created["id"]: 2}

    # No Authorization header: API Gateway answers 401 without invoking the authorizer. The
    # authorizer logs its decision before the access-log line of the request it decided.
    access = re.compile(r"^[A-Z]+ /\S* \d{3} \d+ms ")

    def refusals() -> int:
        return sum(1 for x in local_api.lines[:] if access.match(x) and x.startswith("GET /v1/whoami 401"))

    before = refusals()
    reply = http("GET", f"{url}/v1/whoami")
    assert reply.status == 401 and reply.json == gateway_body("UNAUTHORIZED")
    assert wait_for(lambda: refusals() > before)
    lines = local_api.lines[:]
    last = max(i for i, x in enumerate(lines) if access.match(x) and x.startswith("GET /v1/whoami 401"))
    previous = max(i for i, x in enumerate(lines[:last]) if access.match(x))
    decisions = [x for x in lines[previous + 1 : last] if '"message":"denied"' in x or '"message":"allowed"' in x]
    assert decisions == []


def test_unknown_routes_get_api_gateways_answer(local_api: ServerProcess, idp: LocalIdentityProvider) -> None:
    for method, path in (("GET", "/nope"), ("PUT", "/keys"), ("GET", "/keys/a/b")):
        reply = http(method, f"{local_api.url}{path}", idp.mint("a"))
        assert reply.status == 403
        # DEFAULT_4XX: API Gateway's status and message, in the error shape.
        assert reply.json == {"error": {"code": "request_refused", "message": "Missing Authentication Token"}}
        assert reply.headers["Cache-Control"] == "no-store"


def test_plan_limit_through_http(local_api: ServerProcess, local_home: Path, idp: LocalIdentityProvider) -> None:
    acct = with_plan(local_home, "pro")
    token = idp.mint(acct)
    for i in range(3):
        assert http("POST", f"{local_api.url}/keys", token, {"name": f"k{i}"}).status == 201
    refused = http("POST", f"{local_api.url}/keys", token, {"name": "k4"})
    assert refused.status == 403 and refused.json["error"]["code"] == "key_limit_reached"
    message = refused.json["error"]["message"]
    assert "Pro" in message and "3" in message and "Advanced" in message
    assert http("GET", f"{local_api.url}/keys", token).json["key_count"] == 3


def test_twenty_concurrent_creates_over_http_on_pro_create_exactly_three_on_the_embedded_store(
    local_api: ServerProcess, local_home: Path, idp: LocalIdentityProvider
) -> None:
    """What it proves: the server runs concurrent requests in several containers and answers
    each with the contract. The embedded store applies calls under one lock, so no two writes
    race at the database here: test_twenty_concurrent_creates_race_at_dynamodb_local does."""
    acct = with_plan(local_home, "pro")
    token = idp.mint(acct)
    with ThreadPoolExecutor(max_workers=20) as pool:
        replies = list(
            pool.map(lambda i: http("POST", f"{local_api.url}/keys", token, {"name": f"race {i}"}), range(20))
        )
    statuses = sorted(r.status for r in replies)
    assert statuses == [201] * 3 + [403] * 17, statuses
    assert all(r.json["error"]["code"] == "key_limit_reached" for r in replies if r.status == 403)
    listed = http("GET", f"{local_api.url}/keys", token).json
    assert listed["key_count"] == 3 and len(listed["keys"]) == 3
    # Served concurrently: more than one CreateKeyFunction container had a cold start.
    assert local_api.output().count('"cold_start":true,"function_name":"CreateKeyFunction"') >= 2


def test_docs_and_openapi_are_served(local_api: ServerProcess) -> None:
    spec = http("GET", f"{local_api.url}/openapi.json")
    assert spec.status == 200 and spec.json["openapi"].startswith("3.")
    docs = http("GET", f"{local_api.url}/docs")
    assert docs.status == 200 and "swagger-ui-bundle.js" in docs.text and "/openapi.json" in docs.text
    bundle = http("GET", f"{local_api.url}/docs/swagger-ui-bundle.js")
    assert bundle.status == 200 and len(bundle.text) > 100_000


def test_on_dynamodb_local_via_the_sdk_variable(dynamodb_local: Any, tmp_path: Path) -> None:
    """AWS_ENDPOINT_URL_DYNAMODB points the server at DynamoDB Local; the table is created from
    the template and the demo account's key works through the authorizer."""
    from tests.helpers.local_server import start_server

    server = start_server(tmp_path, AWS_ENDPOINT_URL_DYNAMODB=dynamodb_local.endpoint)
    try:
        idp = LocalIdentityProvider(tmp_path)
        token = idp.mint("demo-account")  # the server set its plan (pro) at start
        created = http("POST", f"{server.url}/keys", token, {"name": "first"})
        assert created.status == 201
        assert http("GET", f"{server.url}/v1/whoami", created.json["key"]).json["account_id"] == "demo-account"
    finally:
        assert server.stop() == 0


def test_twenty_concurrent_creates_race_at_dynamodb_local(dynamodb_local: Any, tmp_path: Path) -> None:
    """The same 20 concurrent creates over HTTP, with the server on DynamoDB Local: the
    containers' reads and conditional transactions interleave at the database (which
    serialises transactions, so the conditions, not luck, keep the count at three)."""
    from tests.helpers.local_server import start_server

    server = start_server(tmp_path, AWS_ENDPOINT_URL_DYNAMODB=dynamodb_local.endpoint)
    try:
        token = LocalIdentityProvider(tmp_path).mint(with_plan(tmp_path, "pro"))  # a fresh account
        with ThreadPoolExecutor(max_workers=20) as pool:
            replies = list(pool.map(lambda i: http("POST", f"{server.url}/keys", token, {"name": f"r{i}"}), range(20)))
        statuses = sorted(r.status for r in replies)
        assert statuses == [201] * 3 + [403] * 17, statuses
        assert all(r.json["error"]["code"] == "key_limit_reached" for r in replies if r.status == 403)
        listed = http("GET", f"{server.url}/keys", token).json
        assert listed["key_count"] == 3 and len(listed["keys"]) == 3
        assert server.output().count('"cold_start":true,"function_name":"CreateKeyFunction"') >= 2
    finally:
        assert server.stop() == 0


def test_rotation_without_downtime_over_http(local_api: ServerProcess, local_home: Path) -> None:
    """Roll with a 60 s grace on a full Pro plan: both keys work, the count never changes, and
    the old key is refused once the grace period is over (the test really waits it out)."""
    url = local_api.url
    acct = with_plan(local_home, "pro")
    token = cli(local_home, "token", "--account", acct).stdout.strip()
    old = http("POST", f"{url}/keys", token, {"name": "MCP server"}).json
    for name in ("second", "third"):
        assert http("POST", f"{url}/keys", token, {"name": name}).status == 201

    rolled = http("POST", f"{url}/keys/{old['id']}/roll", token, {"grace_period_seconds": 60})
    assert rolled.status == 201, rolled.text
    new = rolled.json
    assert new["name"] == "MCP server" and new["key"] != old["key"]
    for key in (old["key"], new["key"]):
        assert http("GET", f"{url}/v1/whoami", key).status == 200
    listing = http("GET", f"{url}/keys", token).json
    assert listing["key_count"] == 3
    grace_end = next(k["expires_at"] for k in listing["keys"] if k["id"] == old["id"])
    assert {k["id"]: k["status"] for k in listing["keys"]}[old["id"]] == "rolling"
    assert http("POST", f"{url}/keys/{old['id']}/roll", token, {}).json["error"]["code"] == "conflict"

    end = datetime.fromisoformat(grace_end.replace("Z", "+00:00")).timestamp()
    # No margin to guess: a request answered wholly before the grace period's end must be
    # allowed, one sent after it refused; a request that straddles the end decides nothing.
    while True:
        sent = time.time()
        status = http("GET", f"{url}/v1/whoami", old["key"]).status
        answered = time.time()
        if answered < end:
            assert status == 200, f"old key refused {end - answered:.1f} s before its grace period ended"
            assert http("GET", f"{url}/v1/whoami", new["key"]).status == 200
        if sent >= end:
            assert status == 401, f"old key allowed {sent - end:.1f} s after its grace period ended"
            break
        time.sleep(min(10.0, max(0.0, end - time.time())))
    assert http("GET", f"{url}/v1/whoami", new["key"]).json["key_id"] == new["id"]
    listing = http("GET", f"{url}/keys", token).json
    assert listing["key_count"] == 3
    assert {k["id"]: k["status"] for k in listing["keys"]}[old["id"]] == "expired"


def test_audit_outbox_is_pumped_from_the_stream_to_the_audit_function(
    local_api: ServerProcess, local_home: Path
) -> None:
    """The local server delivers the table's stream to the template's stream functions: a rename
    reaches AuditEventsFunction through its FilterCriteria and is published, nothing failed."""
    url = local_api.url
    acct = with_plan(local_home, "pro")
    token = cli(local_home, "token", "--account", acct).stdout.strip()
    key = http("POST", f"{url}/keys", token, {"name": "before"}).json
    marker = '"detail_type":"ApiKeyRenamed"'
    before = local_api.output().count(marker)
    assert http("PATCH", f"{url}/keys/{key['id']}", token, {"name": "after"}).status == 200
    assert wait_for(lambda: local_api.output().count(marker) > before, timeout=20), local_api.output()[-6000:]
    assert "stream AuditEventsFunction:" in local_api.output()
    assert not re.search(r"stream \w+: \d+ record\(s\), [1-9]\d* failed", local_api.output())
