"""All DynamoDB access, and the only module that knows the item layout.

One table, five item types:

    pk = ACCOUNT#<account_id>  sk = ACCOUNT       plan, key_count, version
    pk = ACCOUNT#<account_id>  sk = KEY#<key_id>  name, display, created_at, last_used_at, digest,
                                                  ttl, expires_in_days, rolling, scopes
    pk = ACCOUNT#<account_id>  sk = REVOKED#<key_id>  name, reason, revoked_at, url, source, ttl (30 days)
                                                  (a key revoked as leaked or reported: the console's notice)
    pk = DIGEST#<sha256 hex>   sk = DIGEST        account_id, key_id, plan, ttl, scopes  (the authorizer's one read)
                                                  or, once the key is revoked (delete, roll without grace,
                                                  leak or public report), a tombstone: revoked = true,
                                                  account_id, key_id, reason, revoked_at, ttl (90 days)
    pk = EVENT#<id>            sk = EVENT         detail_type, detail, ttl  (audit outbox, see audit.py)

Key items sort by key id, which sorts by creation time, so one descending Query lists an
account newest first. Every write that changes the set of keys is one TransactWriteItems
whose condition on the account item enforces the plan limit inside DynamoDB; `version`
counts those writes so a plan change can prove it saw every key. `ttl` (epoch seconds) is
the table's TTL attribute: expired keys and rolled-out keys are removed by DynamoDB, and the
authorizer refuses them from that second on without waiting for the removal.
`key_count` counts keys that are not `rolling` (a rolled-out key in its grace period has
given its slot to its replacement). A tombstone has no key item, so it never counts toward
the limit and no plan change touches it; the authorizer refuses it with its one GetItem, and a
late leak report of it is recognised as ours without changing anything.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
from typing import Any, cast

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from apikeys import clock, retries
from apikeys.audit import AuditEvent
from apikeys.errors import ServiceUnavailable
from apikeys.records import Account, Connection, KeyRecord, Principal, Revocation
from apikeys.scopes import Scopes, from_attribute, to_attribute

ACCOUNT_SK = "ACCOUNT"
DIGEST_SK = "DIGEST"
EVENT_SK = "EVENT"
EVENT_RETENTION_SECONDS = 24 * 3600  # outbox items only need to live until the stream delivers them
REVOKED_SK_PREFIX = "REVOKED#"
TOMBSTONE_SECONDS = 90 * 86400  # how long a revoked key's digest is still recognised (issue 14)
NOTICE_SECONDS = 30 * 86400  # how long the console shows a leaked or reported key
# Transaction cancellations that say "try again" rather than "the condition is false".
_RETRYABLE_REASONS = {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
_UNAVAILABLE_CODES = {
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
}


def client_config() -> Config:
    """The botocore settings of every AWS client of the service (DynamoDB here, EventBridge in
    audit_events). botocore's standard retry mode retries throttling, 5xx and connection errors
    with jittered backoff. The worst case of one call (3 attempts that each time out, plus at
    most 1 s + 2 s of backoff) is 7.5 s, inside the 10 s Lambda timeout
    (`tests/stress/test_faults.py` checks the arithmetic against template.yaml); the numbers
    live in `retries.py`. `total_max_attempts` counts the first attempt; botocore's
    `max_attempts` would not, and meant 4 attempts."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": retries.CALL_ATTEMPTS},
        connect_timeout=retries.CONNECT_TIMEOUT,
        read_timeout=retries.READ_TIMEOUT,
        tcp_keepalive=True,
    )


@functools.cache
def dynamodb_client() -> Any:
    """One client per container, with `client_config()`. The endpoint comes from the standard
    SDK settings (AWS_ENDPOINT_URL_DYNAMODB)."""
    return boto3.client("dynamodb", config=client_config())


class AccountMismatch(Exception):
    """The account item failed a write's condition; carries what DynamoDB says it holds."""

    def __init__(self, account: Account | None) -> None:
        super().__init__("account condition failed")
        self.account = account


def _account_pk(account_id: str) -> dict[str, str]:
    return {"S": f"ACCOUNT#{account_id}"}


def _key_sk(key_id: str) -> dict[str, str]:
    return {"S": f"KEY#{key_id}"}


def _digest_key(digest: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"DIGEST#{digest}"}, "sk": {"S": DIGEST_SK}}


def _account_key(account_id: str) -> dict[str, dict[str, str]]:
    return {"pk": _account_pk(account_id), "sk": {"S": ACCOUNT_SK}}


def _to_account(account_id: str, item: dict[str, Any] | None) -> Account | None:
    if not item:
        return None
    return Account(
        account_id=account_id,
        plan=item["plan"]["S"] if "plan" in item else None,
        key_count=int(item["key_count"]["N"]) if "key_count" in item else 0,
        version=int(item["version"]["N"]) if "version" in item else 0,
    )


def _to_key(item: dict[str, Any]) -> KeyRecord:
    return KeyRecord(
        key_id=item["key_id"]["S"],
        name=item["name"]["S"],
        display=item["display"]["S"],
        created_at=item["created_at"]["S"],
        last_used_at=item["last_used_at"]["S"] if "last_used_at" in item else None,
        digest=item["digest"]["S"],
        expires_at_epoch=int(item["ttl"]["N"]) if "ttl" in item else None,
        expires_in_days=int(item["expires_in_days"]["N"]) if "expires_in_days" in item else None,
        rolling=item.get("rolling", {}).get("BOOL", False),
        scopes=from_attribute(item["scopes"]["S"]) if "scopes" in item else None,
    )


def _key_item(account_id: str, key: KeyRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": _account_pk(account_id),
        "sk": _key_sk(key.key_id),
        "key_id": {"S": key.key_id},
        "name": {"S": key.name},
        "display": {"S": key.display},
        "created_at": {"S": key.created_at},
        "digest": {"S": key.digest},
    }
    if key.expires_at_epoch is not None:
        item["ttl"] = {"N": str(key.expires_at_epoch)}
    if key.expires_in_days is not None:
        item["expires_in_days"] = {"N": str(key.expires_in_days)}
    if key.scopes is not None:
        item["scopes"] = {"S": to_attribute(key.scopes)}
    return item


def _digest_item(account_id: str, key: KeyRecord, plan: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        **_digest_key(key.digest),
        "account_id": {"S": account_id},
        "key_id": {"S": key.key_id},
        "plan": {"S": plan},
        "created_at": {"S": key.created_at},
    }
    if key.expires_at_epoch is not None:
        item["ttl"] = {"N": str(key.expires_at_epoch)}
    if key.scopes is not None:
        item["scopes"] = {"S": to_attribute(key.scopes)}
    return item


def _tombstone_item(account_id: str, key: KeyRecord, reason: str, revoked_at: str) -> dict[str, Any]:
    """What a revoked key's digest item becomes: still found by the authorizer's one GetItem
    (which refuses it), never a principal, gone by TTL after TOMBSTONE_SECONDS."""
    return {
        **_digest_key(key.digest),
        "account_id": {"S": account_id},
        "key_id": {"S": key.key_id},
        "revoked": {"BOOL": True},
        "reason": {"S": reason},
        "revoked_at": {"S": revoked_at},
        "ttl": {"N": str(int(time.time()) + TOMBSTONE_SECONDS)},
    }


def _notice_item(account_id: str, notice: Revocation) -> dict[str, Any]:
    return {
        "pk": _account_pk(account_id),
        "sk": {"S": f"{REVOKED_SK_PREFIX}{notice.key_id}"},
        "key_id": {"S": notice.key_id},
        "name": {"S": notice.name},
        "reason": {"S": notice.reason},
        "revoked_at": {"S": notice.revoked_at},
        "url": {"S": notice.url},
        "source": {"S": notice.source},
        "ttl": {"N": str(int(time.time()) + NOTICE_SECONDS)},
    }


def _to_notice(item: dict[str, Any]) -> Revocation:
    return Revocation(
        key_id=item["key_id"]["S"],
        name=item["name"]["S"],
        reason=item["reason"]["S"],
        revoked_at=item["revoked_at"]["S"],
        url=item.get("url", {}).get("S", ""),
        source=item.get("source", {}).get("S", ""),
    )


def _event_put(table: str, event: AuditEvent, event_pk: str | None = None) -> dict[str, Any]:
    """The outbox item of a change, written in the change's own transaction."""
    ttl = int(time.time()) + EVENT_RETENTION_SECONDS
    return {
        "Put": {
            "TableName": table,
            "Item": {
                "pk": {"S": event_pk or f"EVENT#{event.event_id}"},
                "sk": {"S": EVENT_SK},
                "detail_type": {"S": event.detail_type},
                "detail": {"S": json.dumps(event.detail, ensure_ascii=False, separators=(",", ":"))},
                "ttl": {"N": str(ttl)},
            },
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def key_from_stream_image(image: dict[str, Any]) -> tuple[str, KeyRecord] | None:
    """(account_id, key) from a stream record's image of a key item; None for other items."""
    pk, sk = image.get("pk", {}).get("S", ""), image.get("sk", {}).get("S", "")
    if not (pk.startswith("ACCOUNT#") and sk.startswith("KEY#")):
        return None
    return pk.removeprefix("ACCOUNT#"), _to_key(image)


def event_from_stream_image(image: dict[str, Any]) -> tuple[str, str] | None:
    """(detail_type, detail JSON) from a stream record's image of an outbox item."""
    if not image.get("pk", {}).get("S", "").startswith("EVENT#"):
        return None
    return image["detail_type"]["S"], image["detail"]["S"]


def _is_transient(exc: Exception) -> bool:
    """Errors that retries could not cure but a later request may: connection errors, read
    timeouts, throttling and 5xx (a 503). Anything else is a bug or misconfiguration (a 500)."""
    return isinstance(exc, BotoCoreError) or (
        isinstance(exc, ClientError) and exc.response["Error"]["Code"] in _UNAVAILABLE_CODES
    )


_UNAVAILABLE = "The key service is temporarily unavailable. Please retry."


class Store:
    def __init__(self, table_name: str, client: Any | None = None) -> None:
        self.table = table_name
        self.client = client if client is not None else dynamodb_client()

    def _call(self, operation: str, **kwargs: Any) -> Any:
        """Run one DynamoDB call; errors that retries could not cure become a 503."""
        try:
            return getattr(self.client, operation)(TableName=self.table, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            if not _is_transient(exc):
                raise
            raise ServiceUnavailable(_UNAVAILABLE) from None

    def _transact(self, items: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """One TransactWriteItems, retried on conflicts. Returns None when committed, or the
        cancellation reasons when a condition was false (nothing was written then)."""
        for attempt in range(retries.TX_ATTEMPTS):
            try:
                self.client.transact_write_items(TransactItems=items)
                return None
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    if not _is_transient(exc):
                        raise
                    raise ServiceUnavailable(_UNAVAILABLE) from None
                reasons = cast(list[dict[str, Any]], exc.response.get("CancellationReasons", []))
                codes = {reason.get("Code") for reason in reasons}
                if "ConditionalCheckFailed" in codes:
                    return reasons
                if not codes & _RETRYABLE_REASONS:
                    raise
            except BotoCoreError:
                raise ServiceUnavailable(_UNAVAILABLE) from None
            delay = retries.backoff(attempt)
            if not retries.time_left_for(delay):
                break
            time.sleep(delay)
        raise ServiceUnavailable(retries.TOO_BUSY)

    # -- reads -------------------------------------------------------------------------

    def get_principal(self, digest: str) -> Principal | None:
        """The authorizer's single strongly consistent read. No ProjectionExpression: the
        digest item is ~200 bytes and costs 1 RRU whatever is projected, while the expression
        costs a parse per request (10 % of the read on DynamoDB Local, docs/performance.md)."""
        resp = self._call("get_item", Key=_digest_key(digest), ConsistentRead=True)
        item = resp.get("Item")
        if not item or "revoked" in item:
            return None  # unknown, or a tombstone: a revoked key
        expires = int(item["ttl"]["N"]) if "ttl" in item else None
        scopes = from_attribute(item["scopes"]["S"]) if "scopes" in item else None
        return Principal(item["account_id"]["S"], item["key_id"]["S"], item["plan"]["S"], expires, scopes)

    def find_digest(self, digest: str) -> tuple[str, str, bool] | None:
        """(account_id, key_id, revoked) of a digest item, tombstones included; None if the
        digest was never ours (or its item is gone: expired and removed, or tombstone aged out)."""
        resp = self._call("get_item", Key=_digest_key(digest), ConsistentRead=True)
        item = resp.get("Item")
        if not item:
            return None
        return item["account_id"]["S"], item["key_id"]["S"], "revoked" in item

    def list_revocations(self, account_id: str) -> list[Revocation]:
        """The account's leaked or reported keys still within their notice period (TTL removal
        may lag, so the caller filters by time too)."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :revoked)",
            "ExpressionAttributeValues": {":pk": _account_pk(account_id), ":revoked": {"S": REVOKED_SK_PREFIX}},
            "ConsistentRead": True,
        }
        notices: list[Revocation] = []
        while True:
            resp = self._call("query", **kwargs)
            notices += [_to_notice(item) for item in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                return notices
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def load_account(self, account_id: str) -> tuple[Account | None, list[KeyRecord]]:
        """Account item and keys, newest first, in one consistent Query per page."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": _account_pk(account_id)},
            "ConsistentRead": True,
            "ScanIndexForward": False,
        }
        account: Account | None = None
        keys: list[KeyRecord] = []
        while True:
            resp = self._call("query", **kwargs)
            for item in resp.get("Items", []):
                if item["sk"]["S"] == ACCOUNT_SK:
                    account = _to_account(account_id, item)
                elif item["sk"]["S"].startswith("KEY#"):
                    keys.append(_to_key(item))
            if "LastEvaluatedKey" not in resp:
                return account, keys
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    def get_key(self, account_id: str, key_id: str) -> KeyRecord | None:
        resp = self._call(
            "get_item",
            Key={"pk": _account_pk(account_id), "sk": _key_sk(key_id)},
            ConsistentRead=True,
        )
        item = resp.get("Item")
        return _to_key(item) if item else None

    # -- writes ------------------------------------------------------------------------

    def insert_key(
        self,
        account_id: str,
        key: KeyRecord,
        plan: str | None,
        limit: int,
        may_create_account: bool,
        event: AuditEvent,
    ) -> None:
        """Add a key if the account is on `plan` and below `limit`, all in one transaction.

        Raises AccountMismatch with the account's real state when the condition is false,
        so the caller can tell "limit reached" from "wrong plan guess" without another read.
        """
        match_plan = "#plan = :plan" if plan else "attribute_not_exists(#plan)"
        condition = f"{match_plan} AND key_count < :limit"
        if may_create_account:
            condition = f"attribute_not_exists(pk) OR ({condition})"
        values: dict[str, Any] = {
            ":limit": {"N": str(limit)},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
            ":acct": {"S": account_id},
        }
        update = "SET account_id = :acct, key_count = if_not_exists(key_count, :zero) + :one, "
        update += "version = if_not_exists(version, :zero) + :one"
        if plan:
            values[":plan"] = {"S": plan}
            update += ", #plan = if_not_exists(#plan, :plan)"
        reasons = self._transact(
            [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": _account_key(account_id),
                        "UpdateExpression": update,
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": {"#plan": "plan"},
                        "ExpressionAttributeValues": values,
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
                self._put_new(_key_item(account_id, key)),
                self._put_new(_digest_item(account_id, key, plan or "")),
                _event_put(self.table, event),
            ]
        )
        if reasons is None:
            return
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            raise AccountMismatch(_to_account(account_id, reasons[0].get("Item")))
        # A 190-bit id or digest collided: not reachable in practice, never silently overwritten.
        raise RuntimeError("key id or digest collision")

    def _put_new(self, item: dict[str, Any]) -> dict[str, Any]:
        return {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}

    def _remove_key(self, account_id: str, key: KeyRecord, reason: str) -> list[dict[str, Any]]:
        """Delete a key's item and turn its digest item into a tombstone, on the condition that
        the key is still in the state we read."""
        rolling = "attribute_exists(rolling)" if key.rolling else "attribute_not_exists(rolling)"
        return [
            {
                "Delete": {
                    "TableName": self.table,
                    "Key": {"pk": _account_pk(account_id), "sk": _key_sk(key.key_id)},
                    "ConditionExpression": f"attribute_exists(pk) AND {rolling}",
                }
            },
            {"Put": {"TableName": self.table, "Item": _tombstone_item(account_id, key, reason, clock.now_iso())}},
        ]

    def _count_change(self, account_id: str, delta: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table,
                "Key": _account_key(account_id),
                "UpdateExpression": "SET key_count = key_count + :delta, version = version + :one",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":delta": {"N": str(delta)}, ":one": {"N": "1"}},
            }
        }

    def delete_key(
        self,
        account_id: str,
        key: KeyRecord,
        event: AuditEvent,
        reason: str = "deleted",
        notice: Revocation | None = None,
    ) -> bool:
        """Revoke a key (leaving its tombstone) and, unless it had already given up its slot
        (rolling), decrement the count, in one transaction; with `notice`, also record it for
        the console. False if the key is gone or changed state since it was read, so of many
        identical deletes or leak reports exactly one decrements."""
        items = [
            *self._remove_key(account_id, key, reason),
            self._count_change(account_id, 0 if key.rolling else -1),
            _event_put(self.table, event),
        ]
        if notice is not None:
            items.append({"Put": {"TableName": self.table, "Item": _notice_item(account_id, notice)}})
        return self._transact(items) is None

    def rename_key(self, account_id: str, key_id: str, name: str, event: AuditEvent) -> bool:
        """False if the key no longer exists (a rename never recreates a deleted key)."""
        reasons = self._transact(
            [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": _account_pk(account_id), "sk": _key_sk(key_id)},
                        "UpdateExpression": "SET #name = :name",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#name": "name"},
                        "ExpressionAttributeValues": {":name": {"S": name}},
                    }
                },
                _event_put(self.table, event),
            ]
        )
        return reasons is None

    def update_key(self, account_id: str, key: KeyRecord, name: str, scopes: Scopes, event: AuditEvent) -> bool:
        """Set a key's name and scopes in one transaction with its digest item, so the very next
        authorization sees the new scopes. Conditioned on the key still having the digest that
        was read, and bumps the account's `version`, so a concurrent roll re-reads and never
        copies scopes this change replaced. False if the key is gone or was rolled meanwhile."""
        if scopes is None:
            key_update, digest_update, values = "SET #name = :name REMOVE scopes", "REMOVE scopes", {}
        else:
            key_update, digest_update = "SET #name = :name, scopes = :scopes", "SET scopes = :scopes"
            values = {":scopes": {"S": to_attribute(scopes)}}
        reasons = self._transact(
            [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": _account_key(account_id),
                        "UpdateExpression": "SET version = version + :one",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": _account_pk(account_id), "sk": _key_sk(key.key_id)},
                        "UpdateExpression": key_update,
                        "ConditionExpression": "attribute_exists(pk) AND digest = :digest",
                        "ExpressionAttributeNames": {"#name": "name"},
                        "ExpressionAttributeValues": {
                            ":name": {"S": name},
                            ":digest": {"S": key.digest},
                            **values,
                        },
                    }
                },
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": _digest_key(key.digest),
                        "UpdateExpression": digest_update,
                        # Never recreate a removed digest item as a stub, nor touch a tombstone.
                        "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(revoked)",
                        **({"ExpressionAttributeValues": values} if values else {}),
                    }
                },
                _event_put(self.table, event),
            ]
        )
        return reasons is None

    def roll_key(
        self,
        account: Account,
        old: KeyRecord,
        new: KeyRecord,
        grace_until_epoch: int | None,
        event: AuditEvent,
    ) -> bool:
        """Replace `old` by `new` in one transaction; the count does not change. With a grace
        period the old key stays valid until then (its TTL) and gives up its slot; without
        one it is deleted. Conditioned on the account's version (nothing changed since the
        caller read it), so of concurrent rolls of one key exactly one commits. False if
        the account changed: the caller re-reads and decides again."""
        account_id = account.account_id
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": _account_key(account_id),
                    "UpdateExpression": "SET version = version + :one",
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":v": {"N": str(account.version)}},
                }
            },
        ]
        if grace_until_epoch is None:
            items += self._remove_key(account_id, old, "rolled")
        else:
            ttl = {":ttl": {"N": str(grace_until_epoch)}}
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": {"pk": _account_pk(account_id), "sk": _key_sk(old.key_id)},
                        "UpdateExpression": "SET rolling = :true, #ttl = :ttl",
                        "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(rolling)",
                        "ExpressionAttributeNames": {"#ttl": "ttl"},
                        "ExpressionAttributeValues": {**ttl, ":true": {"BOOL": True}},
                    }
                }
            )
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": _digest_key(old.digest),
                        "UpdateExpression": "SET #ttl = :ttl",
                        "ConditionExpression": "attribute_exists(pk)",
                        "ExpressionAttributeNames": {"#ttl": "ttl"},
                        "ExpressionAttributeValues": ttl,
                    }
                }
            )
        items += [
            self._put_new(_key_item(account_id, new)),
            self._put_new(_digest_item(account_id, new, account.plan or "")),
            _event_put(self.table, event),
        ]
        return self._transact(items) is None

    def record_removal(self, account_id: str, key: KeyRecord, event: AuditEvent) -> bool:
        """After DynamoDB's TTL removed a key item: give back its slot (unless it was a rolled-out
        key, which had given it already) exactly once, however often the stream delivers the
        removal: the outbox item's id is derived from the key id and written only once."""
        items = [
            _event_put(self.table, event, event_pk=f"EVENT#removed#{account_id}#{key.key_id}"),
            self._count_change(account_id, 0 if key.rolling else -1),
        ]
        reasons = self._transact(items)
        return reasons is None

    def set_plan(self, account_id: str, plan: str | None, event: AuditEvent) -> Account:
        """Move the account and every live key's digest item to `plan` in one transaction;
        `None` removes the account's plan (digest items then carry "", which allows nothing).

        The condition on `version` proves no key was added or removed since the Query, so no
        digest item is left on the old plan; a concurrent create re-reads the plan and retries.
        TTL removes a key's two items independently, days apart: digest items of keys already
        expired are skipped (the authorizer refuses them whatever plan they carry), and a
        digest item found missing is left out of the next attempt instead of failing the change.
        """
        gone: set[str] = set()
        attempts = rounds = 0
        while attempts < retries.SET_PLAN_ATTEMPTS:
            if rounds and not retries.time_left_for(0):
                break
            rounds += 1
            account, keys = self.load_account(account_id)
            now = clock.now().timestamp()
            live = [
                k for k in keys if k.digest not in gone and (k.expires_at_epoch is None or now < k.expires_at_epoch)
            ]
            version = account.version if account else 0
            values: dict[str, Any] = {
                ":acct": {"S": account_id},
                ":zero": {"N": "0"},
                ":one": {"N": "1"},
            }
            update = "SET account_id = :acct, key_count = if_not_exists(key_count, :zero), "
            update += "version = if_not_exists(version, :zero) + :one"
            if plan is None:
                update += " REMOVE #plan"
            else:
                update += ", #plan = :plan"
                values[":plan"] = {"S": plan}
            if account is None:
                condition = "attribute_not_exists(pk)"
            else:
                condition = "version = :v"
                values[":v"] = {"N": str(version)}
            items: list[dict[str, Any]] = [
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": _account_key(account_id),
                        "UpdateExpression": update,
                        "ConditionExpression": condition,
                        "ExpressionAttributeNames": {"#plan": "plan"},
                        "ExpressionAttributeValues": values,
                    }
                },
                _event_put(self.table, event),
            ]
            for key in live:
                items.append(
                    {
                        "Update": {
                            "TableName": self.table,
                            "Key": _digest_key(key.digest),
                            "UpdateExpression": "SET #plan = :plan",
                            # Never recreate a removed digest item as a stub.
                            "ConditionExpression": "attribute_exists(pk)",
                            "ExpressionAttributeNames": {"#plan": "plan"},
                            "ExpressionAttributeValues": {":plan": {"S": plan or ""}},
                        }
                    }
                )
            reasons = self._transact(items)
            if reasons is None:
                return Account(account_id, plan, sum(not k.rolling for k in keys), version + 1)
            missing = {
                key.digest
                for key, reason in zip(live, reasons[2:], strict=False)
                if reason.get("Code") == "ConditionalCheckFailed"
            }
            if reasons[0].get("Code") == "ConditionalCheckFailed" or not missing:
                attempts += 1  # the account changed under us: read again
            # With `version` unchanged, a key item whose digest item is missing was half-removed
            # by TTL (a delete or roll removes both in one transaction and bumps `version`).
            gone |= missing
        raise ServiceUnavailable(retries.TOO_BUSY)

    def touch_last_used(self, account_id: str, key_id: str, now: str, cutoff: str) -> None:
        """Best effort: at most one write per key per minute across containers, and the
        condition on `pk` means a deleted key is never recreated by a late update."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key={"pk": _account_pk(account_id), "sk": _key_sk(key_id)},
                UpdateExpression="SET last_used_at = :now",
                ConditionExpression="attribute_exists(pk) AND "
                "(attribute_not_exists(last_used_at) OR last_used_at <= :cutoff)",
                ExpressionAttributeValues={":now": {"S": now}, ":cutoff": {"S": cutoff}},
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise


# == OAuth (issue 21) ======================================================================
# Kept as one appended block while store.py's item mapping is being rewritten elsewhere.
# Four item types, every secret as a SHA-256 digest only, every short-lived one with a TTL:
#
#   pk = OAUTH_CLIENT#<client_id>          sk = CLIENT   client (JSON, no secret), secret_digest
#   pk = OAUTH_CONSENT#<sha256(request)>   sk = CONSENT  request (JSON), expires_at, ttl, decided
#   pk = OAUTH_CODE#<sha256(code)>         sk = CODE     grant (JSON), expires_at, ttl (60 s)
#   pk = OAUTH_REFRESH#<sha256(token)>     sk = REFRESH  account_id, key_id, client_id, grant_id,
#                                                        scopes, resource, ttl, used
#
# and a connection's key item carries `connection` (JSON: client_id, client_name,
# redirect_host, grant_id). A refresh token is only honoured while its key item exists, so
# deleting the key (console, API, leak report, revocation) ends the connection.

OAUTH_CLIENT_SK = "CLIENT"
OAUTH_CONSENT_SK = "CONSENT"
OAUTH_CODE_SK = "CODE"
OAUTH_REFRESH_SK = "REFRESH"


def _oauth_key(kind: str, ident: str, sk: str) -> dict[str, dict[str, str]]:
    return {"pk": {"S": f"OAUTH_{kind}#{ident}"}, "sk": {"S": sk}}


def connection_of(item: dict[str, Any]) -> dict[str, str] | None:
    """The `connection` of a key item (None for a key made in the console or the API)."""
    raw = item.get("connection", {}).get("S")
    return cast(dict[str, str], json.loads(raw)) if raw else None


# The key item's mapping learns `connection` here, by wrapping the two functions above, so the
# block leaves their code untouched while that mapping is being rewritten; it moves into them
# when the rewrite lands. Every read (list, get, load) and every write of a key item (create,
# roll: a console roll of a connection's key keeps it a connection) goes through them.
_to_key_plain = _to_key
_key_item_plain = _key_item


def _to_key(item: dict[str, Any]) -> KeyRecord:  # type: ignore[no-redef]
    record = _to_key_plain(item)
    found = connection_of(item)
    if found is None:
        return record
    return dataclasses.replace(record, connection=Connection(**found))


def _key_item(account_id: str, key: KeyRecord) -> dict[str, Any]:  # type: ignore[no-redef]
    item = _key_item_plain(account_id, key)
    if key.connection is not None:
        item["connection"] = {"S": json.dumps(dataclasses.asdict(key.connection), separators=(",", ":"))}
    return item


class OAuthStore(Store):
    """The OAuth items, and the two key writes a connection makes: its key's creation (the
    plan-limited transaction of POST /keys, plus the code's consumption and the refresh
    token) and its refresh (a roll, plus the refresh token's rotation)."""

    # -- clients -------------------------------------------------------------------------

    def put_client(self, client_id: str, client: dict[str, Any], secret_digest: str | None) -> None:
        item: dict[str, Any] = {
            **_oauth_key("CLIENT", client_id, OAUTH_CLIENT_SK),
            "client": {"S": json.dumps(client, separators=(",", ":"))},
            "created_at": {"S": clock.now_iso()},
        }
        if secret_digest:
            item["secret_digest"] = {"S": secret_digest}
        self._call("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)")

    def get_client(self, client_id: str) -> tuple[dict[str, Any], str | None] | None:
        resp = self._call("get_item", Key=_oauth_key("CLIENT", client_id, OAUTH_CLIENT_SK), ConsistentRead=True)
        item = resp.get("Item")
        if not item:
            return None
        return json.loads(item["client"]["S"]), item.get("secret_digest", {}).get("S")

    # -- consent requests and codes ------------------------------------------------------------

    def put_consent(self, request_digest: str, request: dict[str, Any], expires_at: int) -> None:
        self._call(
            "put_item",
            Item={
                **_oauth_key("CONSENT", request_digest, OAUTH_CONSENT_SK),
                "request": {"S": json.dumps(request, separators=(",", ":"))},
                "expires_at": {"N": str(expires_at)},
                "ttl": {"N": str(expires_at)},
            },
            ConditionExpression="attribute_not_exists(pk)",
        )

    def get_consent(self, request_digest: str, now: int) -> dict[str, Any] | None:
        """An undecided, unexpired consent request (TTL removal lags; the time is checked here)."""
        key = _oauth_key("CONSENT", request_digest, OAUTH_CONSENT_SK)
        item = self._call("get_item", Key=key, ConsistentRead=True).get("Item")
        if not item or "decided" in item or int(item["expires_at"]["N"]) <= now:
            return None
        return cast(dict[str, Any], json.loads(item["request"]["S"]))

    def decide_consent(
        self, request_digest: str, now: int, decision: str, code_digest: str | None, grant: dict[str, Any] | None,
        code_expires_at: int,
    ) -> bool:  # fmt: skip
        """Mark the request decided and, on approval, store its code, in one transaction whose
        condition makes a request decided at most once. False if unknown, expired or decided."""
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": _oauth_key("CONSENT", request_digest, OAUTH_CONSENT_SK),
                    "UpdateExpression": "SET decided = :d",
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(decided) "
                    "AND expires_at > :now",
                    "ExpressionAttributeValues": {":d": {"S": decision}, ":now": {"N": str(now)}},
                }
            }
        ]
        if code_digest is not None and grant is not None:
            item = {
                **_oauth_key("CODE", code_digest, OAUTH_CODE_SK),
                "grant": {"S": json.dumps(grant, separators=(",", ":"))},
                "expires_at": {"N": str(code_expires_at)},
                "ttl": {"N": str(code_expires_at)},
            }
            items.append(self._put_new(item))
        return self._transact(items) is None

    def get_code(self, code_digest: str) -> tuple[dict[str, Any], int] | None:
        item = self._call("get_item", Key=_oauth_key("CODE", code_digest, OAUTH_CODE_SK), ConsistentRead=True).get(
            "Item"
        )
        if not item:
            return None
        return json.loads(item["grant"]["S"]), int(item["expires_at"]["N"])

    def delete_code(self, code_digest: str) -> None:
        self._call("delete_item", Key=_oauth_key("CODE", code_digest, OAUTH_CODE_SK))

    # -- refresh tokens ------------------------------------------------------------------------

    def _refresh_put(self, digest: str, refresh: dict[str, Any], ttl: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            **_oauth_key("REFRESH", digest, OAUTH_REFRESH_SK),
            **{name: {"S": str(refresh[name])} for name in ("account_id", "key_id", "client_id", "grant_id")},
            "scopes": {"S": " ".join(refresh["scopes"])},
            "resource": {"S": refresh.get("resource") or ""},
            "ttl": {"N": str(ttl)},
        }
        return self._put_new(item)

    def get_refresh(self, digest: str) -> dict[str, Any] | None:
        key = _oauth_key("REFRESH", digest, OAUTH_REFRESH_SK)
        item = self._call("get_item", Key=key, ConsistentRead=True).get("Item")
        if not item:
            return None
        return {
            "account_id": item["account_id"]["S"],
            "key_id": item["key_id"]["S"],
            "client_id": item["client_id"]["S"],
            "grant_id": item["grant_id"]["S"],
            "scopes": item["scopes"]["S"].split(),
            "resource": item["resource"]["S"] or None,
            "ttl": int(item["ttl"]["N"]),
            "used": "used" in item,
        }

    def delete_refresh(self, digest: str) -> None:
        self._call("delete_item", Key=_oauth_key("REFRESH", digest, OAUTH_REFRESH_SK))

    def connection_keys(self, account_id: str) -> list[tuple[KeyRecord, dict[str, str]]]:
        """The account's keys that are OAuth connections, with their `connection`."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :key)",
            "ExpressionAttributeValues": {":pk": _account_pk(account_id), ":key": {"S": "KEY#"}},
            "ConsistentRead": True,
        }
        found: list[tuple[KeyRecord, dict[str, str]]] = []
        while True:
            resp = self._call("query", **kwargs)
            for item in resp.get("Items", []):
                connection = connection_of(item)
                if connection is not None:
                    found.append((_to_key(item), connection))
            if "LastEvaluatedKey" not in resp:
                return found
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]

    # -- the two key writes of a connection -------------------------------------------------------

    def insert_connection_key(
        self,
        account: Account | None,
        account_id: str,
        key: KeyRecord,
        connection: dict[str, str],
        plan: str | None,
        limit: int,
        code_digest: str,
        refresh_digest: str,
        refresh: dict[str, Any],
        refresh_ttl: int,
        event: AuditEvent,
    ) -> str | None:
        """POST /keys's transaction (plan and count condition on the account item, key and digest
        items, audit event), plus: the account's `version` as read (so the name the caller made
        unique among the keys it read is still unique), the code deleted (so a code is exchanged
        at most once) and the refresh token stored. None when committed, else what failed:
        "code" (already used) or "account" (changed, full, or another plan)."""
        values: dict[str, Any] = {":zero": {"N": "0"}, ":one": {"N": "1"}, ":acct": {"S": account_id}}
        update = "SET account_id = :acct, key_count = if_not_exists(key_count, :zero) + :one, "
        update += "version = if_not_exists(version, :zero) + :one"
        if plan:
            values[":plan"] = {"S": plan}
        if account is None:
            # A new account on the default plan (the caller checked the limit allows a key).
            condition = "attribute_not_exists(pk)"
            if plan:
                update += ", #plan = :plan"
        else:
            condition = "version = :v AND key_count < :limit AND "
            condition += "#plan = :plan" if plan else "attribute_not_exists(#plan)"
            values[":v"] = {"N": str(account.version)}
            values[":limit"] = {"N": str(limit)}
        key_item = _key_item(account_id, dataclasses.replace(key, connection=Connection(**connection)))
        reasons = self._transact(
            [
                {
                    "Delete": {
                        "TableName": self.table,
                        "Key": _oauth_key("CODE", code_digest, OAUTH_CODE_SK),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": _account_key(account_id),
                        "UpdateExpression": update,
                        "ConditionExpression": condition,
                        **({"ExpressionAttributeNames": {"#plan": "plan"}} if "#plan" in update + condition else {}),
                        "ExpressionAttributeValues": values,
                    }
                },
                self._put_new(key_item),
                self._put_new(_digest_item(account_id, key, plan or "")),
                _event_put(self.table, event),
                self._refresh_put(refresh_digest, refresh, refresh_ttl),
            ]
        )
        if reasons is None:
            return None
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            return "code"
        if reasons[1].get("Code") == "ConditionalCheckFailed":
            return "account"
        raise RuntimeError("key id or digest collision")

    def roll_connection_key(
        self,
        account: Account,
        old: KeyRecord,
        new: KeyRecord,
        connection: dict[str, str],
        grace_until_epoch: int,
        stale: list[KeyRecord],
        used_refresh_digest: str,
        refresh_digest: str,
        refresh: dict[str, Any],
        refresh_ttl: int,
        event: AuditEvent,
    ) -> bool:
        """A refresh: `roll_key`'s transaction with a grace period (same slot, the old key working
        until `grace_until_epoch`), plus the used refresh token marked used (at most once) and
        its successor stored. `stale` are this connection's keys still in an earlier refresh's
        grace: removed now, so a connection never holds more than one key in grace (the bound a
        plan change's transaction size relies on). False if anything changed since the read."""
        account_id = account.account_id
        ttl = {":ttl": {"N": str(grace_until_epoch)}}
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table,
                    "Key": _account_key(account_id),
                    "UpdateExpression": "SET version = version + :one",
                    "ConditionExpression": "version = :v",
                    "ExpressionAttributeValues": {":one": {"N": "1"}, ":v": {"N": str(account.version)}},
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": _oauth_key("REFRESH", used_refresh_digest, OAUTH_REFRESH_SK),
                    "UpdateExpression": "SET used = :true",
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(used)",
                    "ExpressionAttributeValues": {":true": {"BOOL": True}},
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": {"pk": _account_pk(account_id), "sk": _key_sk(old.key_id)},
                    "UpdateExpression": "SET rolling = :true, #ttl = :ttl",
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(rolling)",
                    "ExpressionAttributeNames": {"#ttl": "ttl"},
                    "ExpressionAttributeValues": {**ttl, ":true": {"BOOL": True}},
                }
            },
            {
                "Update": {
                    "TableName": self.table,
                    "Key": _digest_key(old.digest),
                    "UpdateExpression": "SET #ttl = :ttl",
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(revoked)",
                    "ExpressionAttributeNames": {"#ttl": "ttl"},
                    "ExpressionAttributeValues": ttl,
                }
            },
            self._put_new(_key_item(account_id, dataclasses.replace(new, connection=Connection(**connection)))),
            self._put_new(_digest_item(account_id, new, account.plan or "")),
            _event_put(self.table, event),
            self._refresh_put(refresh_digest, refresh, refresh_ttl),
        ]
        for key in stale:
            items += self._remove_key(account_id, key, "rolled")
        return self._transact(items) is None
