"""Issue 14 end to end over real HTTP: `apikeys-local serve` pointed at a local stand-in for
GitHub's public keys (SecretScanningKeysUrl), a key created through the API, a signed report,
and the very next request with the key refused. Records the report → refusal latency."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import figures
from tests.helpers.github_keys import GitHubKeys, finding, report
from tests.helpers.local_server import ServerProcess, cli, http, start_server

WARM_TRIES = 10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, github_server: GitHubKeys) -> Iterator[tuple[ServerProcess, Path]]:
    home = tmp_path_factory.mktemp("leaks-home")
    process = start_server(home, args=("--parameter-overrides", f"SecretScanningKeysUrl={github_server.url}"))
    yield process, home
    assert process.stop() == 0, process.output()[-4000:]


def _account_with_key(home: Path, url: str, name: str) -> tuple[str, dict[str, str]]:
    account = f"acct-{uuid.uuid4().hex[:10]}"
    assert cli(home, "plan", "set", account, "pro").returncode == 0
    token = cli(home, "token", "--account", account).stdout.strip()
    created = http("POST", f"{url}/keys", token, {"name": name})
    assert created.status == 201, created.text
    return token, created.json


def test_a_signed_report_revokes_the_key_before_its_next_request(
    server: tuple[ServerProcess, Path], github_server: GitHubKeys
) -> None:
    process, home = server
    url = process.url
    token, created = _account_with_key(home, url, "Leaky")
    assert http("GET", f"{url}/v1/whoami", created["key"]).status == 200
    body = report(finding(created["key"]))
    started = time.perf_counter()
    reply = http("POST", f"{url}/secret-scanning/github", raw=body, headers=github_server.sign(body))
    refused = http("GET", f"{url}/v1/whoami", created["key"])
    latency_ms = (time.perf_counter() - started) * 1000
    assert reply.status == 200, reply.text
    assert reply.json[0]["label"] == "true_positive"
    assert refused.status == 401 and refused.json["error"]["code"] == "unauthorized"
    figures.add("leaked keys (local server)", "report -> refusal, ms, cold function", round(latency_ms))
    # Warm: the same containers, ten more keys, each reported and then used once.
    warm: list[float] = []
    for i in range(WARM_TRIES):
        _, leaked = _account_with_key(home, url, f"Leaky {i}")
        assert http("GET", f"{url}/v1/whoami", leaked["key"]).status == 200
        body = report(finding(leaked["key"]))
        started = time.perf_counter()
        assert http("POST", f"{url}/secret-scanning/github", raw=body, headers=github_server.sign(body)).status == 200
        assert http("GET", f"{url}/v1/whoami", leaked["key"]).status == 401  # the very next request
        warm.append((time.perf_counter() - started) * 1000)
    figures.add(
        "leaked keys (local server)",
        f"report -> refusal, ms, warm median of {WARM_TRIES}",
        round(statistics.median(warm)),
    )
    figures.add("leaked keys (local server)", f"report -> refusal, ms, warm max of {WARM_TRIES}", round(max(warm)))
    listed = http("GET", f"{url}/revocations", token).json["revocations"]
    assert [(r["name"], r["reason"], r["url"]) for r in listed] == [("Leaky", "leaked", finding("")["url"])]
    assert http("GET", f"{url}/keys", token).json["key_count"] == 0
    assert created["key"] not in process.output()


def test_a_tampered_report_is_401_and_the_key_still_works(
    server: tuple[ServerProcess, Path], github_server: GitHubKeys
) -> None:
    process, home = server
    _, created = _account_with_key(home, process.url, "Safe")
    body = report(finding(created["key"]))
    tampered = body.replace(b"content", b"c0ntent")
    reply = http("POST", f"{process.url}/secret-scanning/github", raw=tampered, headers=github_server.sign(body))
    assert reply.status == 401 and reply.json["error"]["code"] == "unauthorized"
    assert http("GET", f"{process.url}/v1/whoami", created["key"]).status == 200


def test_public_revocation_over_http(server: tuple[ServerProcess, Path]) -> None:
    process, home = server
    token, created = _account_with_key(home, process.url, "Found on a forum")
    url = f"{process.url}/v1/credentials/revoke"
    unknown = http("POST", url, body={"credentials": ["ot_not_a_key"]})
    assert (unknown.status, unknown.json) == (202, {})
    assert http("GET", f"{process.url}/v1/whoami", created["key"]).status == 200
    assert http("POST", url, body={"credentials": []}).status == 400
    revoked = http("POST", url, body={"credentials": [created["key"]]})
    assert (revoked.status, revoked.json) == (202, {})
    assert http("GET", f"{process.url}/v1/whoami", created["key"]).status == 401
    listed = http("GET", f"{process.url}/revocations", token).json["revocations"]
    assert [(r["name"], r["reason"]) for r in listed] == [("Found on a forum", "reported")]
    assert json.dumps(listed).count("ot_") == 0
