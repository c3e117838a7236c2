"""The local server applies template.yaml's stage throttling (MethodSettings): over HTTP, a
request beyond the bucket gets 429 in the error shape with Retry-After and no-store, before
the authorizer or any function runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from apikeys_local.template import load_stack
from tests.helpers.local_server import ROOT, ServerProcess, http, start_server, wait_for

# One token per ~17 minutes after a burst of 3: the fourth request is throttled, however slow
# the machine is, without any timing in the test.
OVERRIDES = ("--parameter-overrides", "ThrottlingRateLimit=0.001", "ThrottlingBurstLimit=3")


@pytest.fixture(scope="module")
def throttled_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = start_server(tmp_path_factory.mktemp("throttled-home"), args=OVERRIDES)
    yield server
    assert server.stop() == 0, server.output()[-4000:]


def test_template_defaults_are_what_the_local_server_applies() -> None:
    template_default = load_stack(ROOT, "unused").throttle
    assert template_default == (100.0, 200.0)
    overridden = load_stack(ROOT, "unused", {"ThrottlingRateLimit": "0.001", "ThrottlingBurstLimit": "3"})
    assert overridden.throttle == (0.001, 3.0)


def test_requests_beyond_the_stage_bucket_get_429_in_the_error_shape(throttled_api: ServerProcess) -> None:
    url = throttled_api.url
    for _ in range(3):
        # No credentials: refused by API Gateway itself, yet each one spends a token.
        assert http("GET", f"{url}/v1/whoami").status == 401
    for method, path in (("GET", "/v1/whoami"), ("GET", "/keys"), ("POST", "/keys")):
        reply = http(method, f"{url}{path}", headers={"Authorization": "Bearer anything"})
        assert reply.status == 429, (path, reply.text)
        assert reply.json == {
            "error": {
                "code": "rate_limited",
                "message": "Too many requests. Retry after the number of seconds in Retry-After.",
            }
        }
        assert reply.headers["Retry-After"] == "1"
        assert reply.headers["Cache-Control"] == "no-store"
        assert reply.headers["Content-Type"] == "application/json"
    # The server's access log is read from its output by a thread: wait for the lines to arrive.
    throttled = lambda: len([line for line in throttled_api.lines if " 429 " in line])  # noqa: E731
    wait_for(lambda: throttled() >= 3)
    assert throttled() == 3


def test_unknown_parameter_override_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="unknown template parameters"):
        start_server(tmp_path, args=("--parameter-overrides", "NoSuchParameter=1"))


def test_the_public_revocation_route_has_its_own_bucket(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Issue 14: POST /v1/credentials/revoke is throttled by its own MethodSettings (template
    parameters), which replace the stage's for that method, as API Gateway applies them."""
    assert load_stack(ROOT, "unused").method_throttles == {
        ("/v1/credentials/revoke", "POST"): (5.0, 20.0),
        ("/secret-scanning/github", "POST"): (2.0, 10.0),  # issue 22 item 2
    }
    overrides = ("--parameter-overrides", "RevokeThrottlingRateLimit=0.001", "RevokeThrottlingBurstLimit=2")
    server = start_server(tmp_path_factory.mktemp("revoke-throttle-home"), args=overrides)
    try:
        url = f"{server.url}/v1/credentials/revoke"
        for _ in range(2):
            assert http("POST", url, body={"credentials": ["ot_unknown"]}).status == 202
        refused = http("POST", url, body={"credentials": ["ot_unknown"]})
        assert refused.status == 429 and refused.json["error"]["code"] == "rate_limited"
        assert http("GET", f"{server.url}/v1/whoami").status == 401  # the stage's bucket is untouched
    finally:
        assert server.stop() == 0, server.output()[-4000:]
