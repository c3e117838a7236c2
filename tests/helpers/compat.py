"""The compatibility fixture: items as a released version of the code wrote them, kept in
tests/fixtures/ so that tomorrow's code is tested against what is already in customers' tables.

The keys that made the items are never in the file: each is derived here, at test time, from its
label (a made-up key, not a secret), and the file holds only what the store wrote (digests).
`python -m tests.helpers.compat` writes the file; do that only on purpose, with a migration, when
the item layout changes (tests/contract/test_stored_items_compat.py says why). The file in the
repository was written by this script run against the code of 2506cc1 (the deploy before issue
20's store rewrite), so the new store is tested against what the old one wrote.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apikeys import keys

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "stored-items-v1.json"
# OAuth's items (issue 21: client, consent request, code, refresh token, connection key), written
# by the code that introduced them (e5a2be5), kept in a file of their own so that the key
# fixture above stays as the code before issue 20 wrote it.
OAUTH_FIXTURE = FIXTURE.with_name("stored-items-oauth-v1.json")
ACCOUNT = "acct-compat"
OAUTH_ACCOUNT = "acct-compat-oauth"
OAUTH_CLIENT = "client-compat"
OAUTH_REDIRECT = "https://chat.example/cb"
OAUTH_RESOURCE = "https://api.example.com/mcp"
# Every key and opaque secret of the OAuth fixture, in the order the code asks for them.
OAUTH_KEY_LABELS = ("conn", "conn-refreshed")
OAUTH_SECRET_LABELS = ("consent-a", "code-a", "refresh-a", "refresh-a2", "consent-b", "code-b", "consent-c")
# When the fixture's items were written: tests pin the clock shortly after it, so TTLs written
# relative to it (tombstones, notices, outbox, expiring keys) are as fresh as on that day.
WRITTEN_AT = datetime(2026, 12, 3, 8, 0, 0, tzinfo=UTC)
LABELS = ("full", "scoped", "rolled", "rolled-new", "deleted", "leaked")


def fixture_key(label: str) -> str:
    """The made-up key of `label`, the same on every run: base62 from SHA-256 of the label."""
    number = int.from_bytes(hashlib.sha256(f"compat:{label}".encode()).digest(), "big")
    body = "".join(keys.ALPHABET[(number >> (6 * i)) % 62] for i in range(keys.RANDOM_LEN))
    return f"ot_{body}{keys._checksum('ot_', body)}"


@contextmanager
def pinned_clock(moment: datetime) -> Iterator[None]:
    """The service's clock (`clock.now`, the store's `time.time`) at `moment`."""
    import time as real_time
    import types

    from apikeys import clock, store

    saved_now, saved_time = clock.now, store.time
    clock.now = lambda: moment  # type: ignore[assignment]
    store.time = types.SimpleNamespace(time=moment.timestamp, sleep=real_time.sleep)  # type: ignore[assignment]
    try:
        yield
    finally:
        clock.now, store.time = saved_now, saved_time  # type: ignore[assignment]


def fixture_secret(label: str) -> str:
    """A made-up opaque OAuth secret (request id, code, refresh token, PKCE verifier): 43
    URL-safe characters, as `secrets.token_urlsafe(32)`, the same on every run."""
    return base64.urlsafe_b64encode(hashlib.sha256(f"compat:{label}".encode()).digest()).decode().rstrip("=")


def pkce_challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def load_items(path: Path = FIXTURE) -> list[dict[str, Any]]:
    return list(json.loads(path.read_text())["items"])


def _write() -> None:
    """Make the items through the handlers on moto, as a customer would, and dump the table."""
    import os

    import boto3
    from moto import mock_aws

    from apikeys import container
    from tests.helpers.support import Api, table_definition

    os.environ.update(TABLE_NAME="compat", AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x")
    os.environ.update(AWS_SECRET_ACCESS_KEY="x", KEY_PREFIX="ot_")
    made = iter(LABELS)
    with mock_aws(), pinned_clock(WRITTEN_AT):
        container.reset()
        client = boto3.client("dynamodb")
        client.create_table(**table_definition("compat"))
        keys.generate = lambda prefix: fixture_key(next(made))  # type: ignore[assignment]
        api = Api()
        api.set_plan(ACCOUNT, "advanced")
        full = api.create(ACCOUNT, "Full access").body
        api.create(ACCOUNT, "Scoped", scopes=["whoami"], expires_in_days=365)
        rolled = api.create(ACCOUNT, "Rolled").body
        api.roll(ACCOUNT, rolled["id"], grace=86_400)
        deleted = api.create(ACCOUNT, "Deleted").body
        api.delete(ACCOUNT, deleted["id"])
        api.create(ACCOUNT, "Leaked")
        api.revoke_credentials({"credentials": [fixture_key("leaked")]})
        assert api.bearer(fixture_key("full")) is not None and full["name"] == "Full access"
        items = client.scan(TableName="compat")["Items"]
    _dump(FIXTURE, items, [fixture_key(label) for label in LABELS])


def _dump(path: Path, items: list[Any], secrets: list[str]) -> None:
    items.sort(key=lambda item: (item["pk"]["S"], item["sk"]["S"]))
    for secret in secrets:
        assert secret not in json.dumps(items), "a secret in the fixture"
    path.write_text(json.dumps({"written_at": WRITTEN_AT.isoformat(), "items": items}, indent=1) + "\n")
    print(f"wrote {len(items)} items to {path}", file=sys.stderr)


def _write_oauth() -> None:
    """OAuth's item types through the domain, as the OAuth endpoints call it: a registered public
    client; connection A approved, exchanged and refreshed once (its first key in grace, its first
    refresh token spent); an approved code never exchanged (B); a consent request never answered (C)."""
    import os
    import types

    import boto3
    from moto import mock_aws

    from apikeys import container, oauth
    from apikeys.audit import Caller
    from tests.helpers.support import Api, table_definition

    os.environ.update(TABLE_NAME="compat", AWS_DEFAULT_REGION="us-east-1", AWS_ACCESS_KEY_ID="x")
    os.environ.update(AWS_SECRET_ACCESS_KEY="x", KEY_PREFIX="ot_")
    made_keys, made_secrets = iter(OAUTH_KEY_LABELS), iter(OAUTH_SECRET_LABELS)
    user = Caller(actor="user-sub-compat", request_id="req-compat")
    with mock_aws(), pinned_clock(WRITTEN_AT):
        container.reset()
        client = boto3.client("dynamodb")
        client.create_table(**table_definition("compat"))
        keys.generate = lambda prefix: fixture_key(next(made_keys))  # type: ignore[assignment]
        oauth.secrets = types.SimpleNamespace(  # type: ignore[assignment]
            token_urlsafe=lambda n: fixture_secret(next(made_secrets)), compare_digest=oauth.secrets.compare_digest
        )
        Api.set_plan(OAUTH_ACCOUNT, "pro")
        info: dict[str, object] = {
            "client_id": OAUTH_CLIENT,
            "client_name": "Compat Chat",
            "redirect_uris": [OAUTH_REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        }
        oauth.register_client(info, None)
        registered = oauth.get_client(OAUTH_CLIENT)
        assert registered is not None
        for label in ("a", "b", "c"):
            challenge = pkce_challenge(fixture_secret(f"verifier-{label}"))
            oauth.authorize(
                registered,
                OAUTH_REDIRECT,
                True,
                f"state-{label}",
                ["whoami"],
                challenge,
                OAUTH_RESOURCE,
                "https://api.example.com",
            )
            if label == "c":
                break
            oauth.decide(fixture_secret(f"consent-{label}"), OAUTH_ACCOUNT, user, True)
            if label == "a":
                code = fixture_secret("code-a")
                grant = oauth.load_code(code)
                assert grant is not None
                oauth.exchange_code(code, grant, OAUTH_RESOURCE)
                refresh = oauth.load_refresh(fixture_secret("refresh-a"))
                assert refresh is not None
                oauth.refresh(refresh, OAUTH_RESOURCE)
        items = client.scan(TableName="compat")["Items"]
    labels = [fixture_key(label) for label in OAUTH_KEY_LABELS]
    _dump(OAUTH_FIXTURE, items, labels + [fixture_secret(label) for label in OAUTH_SECRET_LABELS])


if __name__ == "__main__":
    # `python -m tests.helpers.compat keys|oauth`: which fixture to write (on purpose only).
    {"keys": _write, "oauth": _write_oauth}[sys.argv[1]]()
