"""Audit events: what changed, who did it, when. Written to DynamoDB in the same
transaction as the change (an outbox), then published to EventBridge from the table's
stream, so each committed change is delivered at least once and a failing PutEvents
never fails the customer's request. Never carries a key or its digest."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from apikeys import clock

SYSTEM_ACTOR = "system"
KEY_CREATED = "ApiKeyCreated"
KEY_RENAMED = "ApiKeyRenamed"
KEY_SCOPES_CHANGED = "ApiKeyScopesChanged"
KEY_ROLLED = "ApiKeyRolled"
KEY_DELETED = "ApiKeyDeleted"
KEY_EXPIRED = "ApiKeyExpired"
KEY_EXPIRING = "ApiKeyExpiring"  # a notice before a key expires (apikeys/expiry_notices.py)
KEY_REVOKED = "ApiKeyRevoked"  # found in public (reason `leaked`) or reported (reason `reported`)
PLAN_CHANGED = "AccountPlanChanged"


@dataclass(frozen=True)
class Caller:
    """Who asked, for the audit trail: a user's claim or `system`, and the request id; `user` is
    the same person as people read it (issue 23: email, else username, else sub), when known."""

    actor: str = SYSTEM_ACTOR
    request_id: str = ""
    user: str | None = None

    @property
    def created_by(self) -> str:
        """What a key this caller creates or rolls says in `created_by`."""
        return self.user or self.actor


@dataclass(frozen=True)
class AuditEvent:
    detail_type: str
    detail: dict[str, Any]
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def event(detail_type: str, caller: Caller, account_id: str, **detail: Any) -> AuditEvent:
    event_id = str(uuid.uuid4())
    body = {
        "event_id": event_id,
        "account_id": account_id,
        **detail,
        "actor": caller.actor,
        "time": clock.now_iso(),
        "request_id": caller.request_id,
    }
    return AuditEvent(detail_type, body, event_id)
