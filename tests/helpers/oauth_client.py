"""An OAuth client written out by hand (no SDK), to drive the authorization server's rules one by
one over real HTTP: registration, authorization, consent, token, refresh, revocation."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from tests.helpers.local_server import Reply


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def call(method: str, url: str, body: Any = None, form: dict[str, str] | None = None, token: str | None = None,
         headers: dict[str, str] | None = None) -> Reply:  # fmt: skip
    """One request, redirects not followed (a 302 is an answer here)."""
    sent = dict(headers or {})
    data = None
    if body is not None:
        data, sent["Content-Type"] = json.dumps(body).encode(), "application/json"
    if form is not None:
        data, sent["Content-Type"] = urllib.parse.urlencode(form).encode(), "application/x-www-form-urlencoded"
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with _OPENER.open(request, timeout=60) as response:
            return Reply(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.headers, error.read())


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).items()}


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


@dataclass
class OAuthClient:
    """A registered client of the server at `api`, and every secret it was given (for log checks)."""

    api: str
    client_id: str
    client_secret: str | None
    redirect_uri: str
    seen: list[str] = field(default_factory=list)

    @classmethod
    def register(cls, api: str, name: str = "ChatGPT", redirect_uri: str = "https://chat.example/cb") -> OAuthClient:
        reply = call("POST", f"{api}/oauth/register", {"redirect_uris": [redirect_uri], "client_name": name})
        assert reply.status == 201, reply.text
        info = reply.json
        client = cls(api, info["client_id"], info.get("client_secret"), redirect_uri)
        if client.client_secret:
            client.seen.append(client.client_secret)
        return client

    def authorize(self, challenge: str, state: str = "st", **extra: str) -> Reply:
        params = {
            "response_type": "code",
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": state,
            "resource": f"{self.api}/mcp",
            **extra,
        }
        return call("GET", f"{self.api}/oauth/authorize?{urllib.parse.urlencode(params)}")

    def consent_id(self, challenge: str, **extra: str) -> str:
        reply = self.authorize(challenge, **extra)
        assert reply.status == 302, reply.text
        location = reply.headers["Location"]
        assert location.startswith(f"{self.api}/?consent=")
        return query_of(location)["consent"]

    def approve(self, token: str, challenge: str, **extra: str) -> str:
        """A code, approved by the user whose console token is `token`."""
        request_id = self.consent_id(challenge, **extra)
        reply = call("POST", f"{self.api}/oauth/consent/{request_id}", {"approve": True}, token=token)
        assert reply.status == 200, reply.text
        code = query_of(reply.json["redirect_to"])["code"]
        self.seen.append(code)
        return code

    def _auth(self) -> dict[str, str]:
        return {"client_id": self.client_id, **({"client_secret": self.client_secret} if self.client_secret else {})}

    def exchange(self, code: str, verifier: str, redirect_uri: str | None = None, **extra: str) -> Reply:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri or self.redirect_uri,
            "code_verifier": verifier,
            "resource": f"{self.api}/mcp",
            **self._auth(),
            **extra,
        }
        return self._remember(call("POST", f"{self.api}/oauth/token", form=form))

    def refresh(self, refresh_token: str) -> Reply:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **self._auth()}
        return self._remember(call("POST", f"{self.api}/oauth/token", form=form))

    def revoke(self, token: str) -> Reply:
        return call("POST", f"{self.api}/oauth/revoke", form={"token": token, **self._auth()})

    def connect(self, token: str) -> dict[str, Any]:
        """The whole flow: register → authorize → approve → exchange; the token response."""
        verifier, challenge = pkce()
        code = self.approve(token, challenge)
        reply = self.exchange(code, verifier)
        assert reply.status == 200, reply.text
        return reply.json  # type: ignore[no-any-return]

    def _remember(self, reply: Reply) -> Reply:
        if reply.status == 200 and reply.json:
            self.seen += [reply.json["access_token"], reply.json["refresh_token"]]
        return reply
