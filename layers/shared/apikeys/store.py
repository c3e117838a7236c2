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
from apikeys.records import Account, KeyRecord, Principal, Revocation
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
