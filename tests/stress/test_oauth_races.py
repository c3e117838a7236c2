"""OAuth races (issue 21), each caller its own process (a cold container of OAuthFunction) on
DynamoDB Local: one code exchanged at once by many gets one key; one refresh token presented
at once by many is a refresh token used twice, and ends the connection."""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlencode

import pytest

from apikeys import oauth
from apikeys.audit import Caller
from tests.helpers.oauth_client import pkce, query_of
from tests.helpers.race_worker import race
from tests.helpers.support import Api

pytestmark = pytest.mark.engines("dynamodb_local")
BASE = "https://api.example.com"
REDIRECT = "https://chat.example/cb"


def token_event(form: dict[str, str]) -> dict[str, Any]:
    """POST /oauth/token as API Gateway hands it to OAuthFunction (no authorizer)."""
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Host": "api.example.com"}
    return {
        "resource": "/oauth/token",
        "path": "/oauth/token",
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/oauth/token",
            "httpMethod": "POST",
            "path": "/v1/oauth/token",
            "stage": "v1",
            "requestId": str(uuid.uuid4()),
            "domainName": "api.example.com",
            "identity": {"sourceIp": "127.0.0.1"},
        },
        "body": urlencode(form),
        "isBase64Encoded": False,
    }


def connect(api: Api) -> tuple[str, str, str]:
    """A public client, approved by acct-race: (client_id, code, verifier)."""
    client_id = f"client-{uuid.uuid4().hex[:8]}"
    oauth.register_client(
        {"client_id": client_id, "client_name": "Racer", "redirect_uris": [REDIRECT],
         "token_endpoint_auth_method": "none", "grant_types": ["authorization_code", "refresh_token"]},
        None,
    )  # fmt: skip
    client = oauth.get_client(client_id)
    assert client is not None
    verifier, challenge = pkce()
    url = oauth.authorize(client, REDIRECT, True, "s", None, challenge, None, BASE)
    answer = oauth.decide(query_of(url)["consent"], "acct-race", Caller("user"), True)
    return client_id, query_of(answer)["code"], verifier


def test_one_code_exchanged_by_five_at_once_makes_one_key(api: Api) -> None:
    api.set_plan("acct-race", "pro")
    client_id, code, verifier = connect(api)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
            "code_verifier": verifier, "client_id": client_id}  # fmt: skip
    statuses = race("oauth", [token_event(form) for _ in range(5)])
    assert sorted(statuses) == [200] + [400] * 4
    listing = api.list("acct-race").body
    assert listing["key_count"] == 1 and len(listing["keys"]) == 1


def test_one_refresh_token_presented_by_three_at_once_ends_the_connection(api: Api) -> None:
    api.set_plan("acct-race", "pro")
    client_id, code, _ = connect(api)
    grant = oauth.load_code(code)
    assert grant is not None
    tokens = oauth.exchange_code(code, grant, None)
    api.secrets.append(tokens.access_token)
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token, "client_id": client_id}
    statuses = race("oauth", [token_event(form) for _ in range(3)])
    assert statuses.count(200) <= 1 and statuses.count(400) >= 2
    # Presented twice: whoever holds a copy, the connection's keys are gone.
    assert api.list("acct-race").body["key_count"] == 0
