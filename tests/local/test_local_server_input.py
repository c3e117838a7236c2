"""The local server's own input handling, over HTTP (issue 10, item 6): overlong paths answer
in the error shape, never 500, and the access log redacts key-shaped query values."""

from __future__ import annotations

import secrets
import string

import pytest

from tests.helpers.local_server import ServerProcess, http, wait_for

BASE62 = string.digits + string.ascii_letters


def _key_shaped() -> str:
    """The shape of a key (prefix + 38 base62), not a key: no checksum, never stored."""
    return "ot_" + "".join(secrets.choice(BASE62) for _ in range(38))


@pytest.mark.parametrize(
    "path",
    [
        "/" + "a" * 5000,
        "/keys/" + "k" * 5000,
        "/docs/" + "d" * 5000,
        "/" + "a/" * 2500,
        "/" + "a" * 300,  # one segment longer than a file name may be
        "/docs/" + "d" * 300,
    ],
    ids=["5000 flat", "5000 key id", "5000 docs asset", "5000 nested", "300 segment", "300 docs asset"],
)
def test_overlong_paths_answer_in_the_error_shape(local_api: ServerProcess, path: str) -> None:
    reply = http("GET", local_api.url + path)
    assert reply.status != 500 and reply.status < 500, (reply.status, reply.text[:200])
    assert reply.headers["Content-Type"].startswith("application/json")
    body = reply.json
    assert set(body) == {"error"} or set(body) == {"message"}, body  # ours, or the gateway's own
    if len(path) > 2048:
        assert reply.status == 414
        assert body["error"]["code"] == "uri_too_long"
    if path.startswith("/docs/"):
        assert reply.status in (404, 414) and set(body) == {"error"}


def test_access_log_redacts_key_shaped_query_values(local_api: ServerProcess) -> None:
    plain, encoded, bearer = _key_shaped(), _key_shaped(), _key_shaped()
    query = f"api_key={plain}&k={encoded.replace('_', '%5F')}&auth=Bearer%20{bearer}&page=2"
    reply = http("GET", f"{local_api.url}/v1/whoami?{query}")
    assert reply.status == 401
    assert wait_for(lambda: "GET /v1/whoami?api_key=" in local_api.output())
    line = next(line for line in local_api.lines if line.startswith("GET /v1/whoami?api_key="))
    for secret in (plain, encoded, bearer):
        assert secret[3:] not in line, "a key-shaped value reached the access log"
    assert "api_key=[REDACTED]" in line and "k=[REDACTED]" in line and "auth=[REDACTED]" in line
    assert "page=2" in line  # the rest of the query is still there to debug with


@pytest.mark.parametrize("host", ["evil.example", "evil.example:3000", "127.0.0.1.evil.example", "localhost.evil"])
def test_local_login_refuses_a_host_that_is_not_loopback(local_api: ServerProcess, host: str) -> None:
    """Issue 22 item 11: a DNS-rebinding page (evil.example resolving to 127.0.0.1) could mint
    management tokens on a developer's machine: `/_local/*` answers only a loopback `Host`."""
    body = {"account": "acct-rebind", "plan": "pro"}
    refused = http("POST", f"{local_api.url}/_local/login", body=body, headers={"Host": host})
    assert refused.status == 403, refused.text[:200]
    assert refused.json["error"]["code"] == "forbidden" and "token" not in refused.json
    port = local_api.url.rsplit(":", 1)[1]
    for loopback in (f"127.0.0.1:{port}", f"localhost:{port}", "127.0.0.1", "[::1]:" + port):
        reply = http("POST", f"{local_api.url}/_local/login", body=body, headers={"Host": loopback})
        assert reply.status == 200 and reply.json["token"], loopback


def test_access_log_escapes_control_characters(local_api: ServerProcess) -> None:
    """Issue 22 item 11: `%0A` in a path forged a whole access-log line."""
    forged = "GET /keys 200 1ms forged_line"
    reply = http("GET", f"{local_api.url}/v1/whoami%0A{forged.replace(' ', '%20')}%0D%1B[31m%7F?q=a%0Ab")
    assert reply.status in (401, 403, 404)
    assert wait_for(lambda: "forged_line" in local_api.output())
    assert not any(line.startswith(forged) for line in local_api.lines)
    [line] = [line for line in local_api.lines if "forged_line" in line]
    assert line.startswith("GET /v1/whoami\\x0a") and "\\x0d\\x1b[31m\\x7f" in line
    assert not any(ch < " " or ch == "\x7f" for ch in line)
