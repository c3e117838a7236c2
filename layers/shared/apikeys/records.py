"""The domain's records: what a key, an account and an authorized caller are.

Plain frozen dataclasses, free of DynamoDB and HTTP, so the domain, the handlers and the
authorizer share them without importing the data access layer (`store.py` maps them to
items) or pydantic (`bodies.py` holds the HTTP bodies).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Account:
    """An account's plan and counters; `version` counts every write that changes its set of keys."""

    account_id: str
    plan: str | None
    key_count: int
    version: int


@dataclass(frozen=True)
class Connection:
    """Who holds a key an OAuth client was given (issue 21): shown on the key, never a secret."""

    client_id: str
    client_name: str
    redirect_host: str
    grant_id: str  # one connection's keys across refreshes; reuse of a refresh token deletes them


@dataclass(frozen=True)
class KeyRecord:
    """One API key as stored: never the secret, only its digest and masked display."""

    key_id: str
    name: str
    display: str
    created_at: str
    last_used_at: str | None
    digest: str
    expires_at_epoch: int | None = None  # also the item's TTL
    expires_in_days: int | None = None  # the lifetime a roll gives the replacement
    rolling: bool = False  # rolled out, working until expires_at_epoch (its grace period)
    scopes: tuple[str, ...] | None = None  # catalogue names; None is full access
    connection: Connection | None = None  # an OAuth client's key (issue 21); None for the others
    # Who created it (issue 23): the signed-in user's email, else cognito:username, else sub; for a
    # roll, who rolled; for an OAuth connection, the user who consented. None on keys made before.
    created_by: str | None = None


@dataclass(frozen=True)
class Principal:
    """What the authorizer returns: all of it lives on the digest item."""

    account_id: str
    key_id: str
    plan: str
    expires_at_epoch: int | None = None
    scopes: tuple[str, ...] | None = None  # catalogue names; None is full access


@dataclass(frozen=True)
class Revocation:
    """A key revoked because it was found in public (`leaked`) or reported (`reported`):
    what the console tells the customer, kept 30 days."""

    key_id: str
    name: str
    reason: str
    revoked_at: str
    url: str = ""
    source: str = ""
