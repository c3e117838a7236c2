"""All DynamoDB access, and the only module that knows the item layout.

One table, six item types (and the OAuth and expiry-notice items of the blocks at the end):

    pk = ACCOUNT#<account_id>  sk = ACCOUNT       plan, key_count, version
    pk = ACCOUNT#<account_id>  sk = KEY#<key_id>  name, display, created_at, last_used_at, digest,
                                                  ttl, expires_in_days, rolling, scopes, connection,
                                                  created_by, expires_on (see "Expiry notices" at the end)
    pk = ACCOUNT#<account_id>  sk = REVOKED#<key_id>  name, reason, revoked_at, url, source, ttl (30 days)
                                                  (a key revoked as leaked or reported: the console's notice)
    pk = DIGEST#<sha256 hex>   sk = DIGEST        account_id, key_id, plan, ttl, scopes  (the authorizer's one read)
                                                  or, once the key is revoked (delete, roll without grace,
                                                  leak or public report), a tombstone: revoked = true,
                                                  account_id, key_id, reason, revoked_at, ttl (90 days)
    pk = EVENT#<id>            sk = EVENT         detail_type, detail, ttl  (audit outbox, see audit.py)
    pk = ACCOUNT#<account_id>  sk = USAGE#<YYYY-MM-DD>  n_<key_id> (Number) per key used that UTC day,
                                                  ttl (that day 00:00 UTC + 91 days: 90 full days kept)
                                                  (issue 23: granted authorizations, see usage.py)

Key items sort by key id, which sorts by creation time, so one descending Query lists an
account newest first. Every write that changes the set of keys is one TransactWriteItems
whose condition on the account item enforces the plan limit inside DynamoDB; `version`
counts those writes so a plan change can prove it saw every key. `ttl` (epoch seconds) is
the table's TTL attribute: expired keys and rolled-out keys are removed by DynamoDB, and the
authorizer refuses them from that second on without waiting for the removal.
Usage items sort after every key item and every notice (`USAGE#` > `REVOKED#` > `KEY#`), so
`load_account` bounds its Query below them and a plan change or a listing never reads one.
`key_count` counts keys that are not `rolling` (a rolled-out key in its grace period has
given its slot to its replacement). A tombstone has no key item, so it never counts toward
the limit and no plan change touches it; the authorizer refuses it with its one GetItem, and a
late leak report of it is recognised as ours without changing anything.

Each item type is written and read through one mapping (`_Codec` for the ones that hold a
record), and every value goes through boto3's TypeSerializer: adding an attribute is one edit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

from apikeys import clock, container, retries
from apikeys.audit import AuditEvent
from apikeys.errors import ServiceUnavailable
from apikeys.keys import is_key_id
from apikeys.records import Account, Connection, KeyRecord, Principal, Revocation
from apikeys.scopes import Scopes, from_attribute, to_attribute

if TYPE_CHECKING:  # the stubs are a dev requirement: the Lambda runtime never imports them
    from _typeshed import DataclassInstance
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        QueryInputTypeDef,
        TransactWriteItemTypeDef,
        UpdateTypeDef,
    )

    Item = dict[str, AttributeValueTypeDef]

ACCOUNT_SK = "ACCOUNT"
DIGEST_SK = "DIGEST"
EVENT_SK = "EVENT"
EVENT_RETENTION_SECONDS = 24 * 3600  # outbox items only need to live until the stream delivers them
REVOKED_SK_PREFIX = "REVOKED#"
TOMBSTONE_SECONDS = 90 * 86400  # how long a revoked key's digest is still recognised (issue 14)
NOTICE_SECONDS = 30 * 86400  # how long the console shows a leaked or reported key
USAGE_SK_PREFIX = "USAGE#"  # one item per account per UTC day: each key's count that day (issue 23)
_USAGE_COUNT_PREFIX = "n_"  # a usage item's count attributes: n_<key_id>
USAGE_SECONDS = 91 * 86400  # a usage item's ttl after its day's 00:00 UTC: 90 full days readable
# DynamoDB's refusals of a write that say it was not applied (it may be sent again).
_THROTTLED = {"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded"}
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
_UNAVAILABLE = "The key service is temporarily unavailable. Please retry."
_NEW = "attribute_not_exists(pk)"  # a Put that never overwrites
_EXISTS = "attribute_exists(pk)"  # an Update or Delete that never recreates a removed item
_NOT_ROLLING = f"{_EXISTS} AND attribute_not_exists(rolling)"  # a PATCH of a key a roll has not replaced


def client_config() -> Config:
    """The botocore settings of every AWS client of the service (DynamoDB here, EventBridge in
    audit_events). botocore's standard retry mode retries throttling, 5xx and connection errors
    with jittered backoff. The worst case of one call (3 attempts that each time out, plus at
    most 1 s + 2 s of backoff) is 7.5 s, inside the 10 s Lambda timeout
    (`tests/stress/test_retry_budget.py` checks the arithmetic against template.yaml); the
    numbers live in `retries.py`, whose deadline hooks also cut a DynamoDB call short when the
    invocation's budget is spent. `total_max_attempts` counts the first attempt; botocore's
    `max_attempts` would not, and meant 4 attempts."""
    return Config(
        retries={"mode": "standard", "total_max_attempts": retries.CALL_ATTEMPTS},
        connect_timeout=retries.CONNECT_TIMEOUT,
        read_timeout=retries.READ_TIMEOUT,
        tcp_keepalive=True,
    )


@container.cached
def dynamodb_client() -> DynamoDBClient:
    """One client per container, with `client_config()`. The endpoint comes from the standard
    SDK settings (AWS_ENDPOINT_URL_DYNAMODB). Every attempt it makes is held to the
    invocation's deadline (`retries.hold_to_deadline`)."""
    client = boto3.client("dynamodb", config=client_config())
    retries.hold_to_deadline(client)
    return client


class AccountMismatch(Exception):
    """The account item failed a write's condition; carries what DynamoDB says it holds."""

    def __init__(self, account: Account | None) -> None:
        super().__init__("account condition failed")
        self.account = account


# -- the item layout ---------------------------------------------------------------------

_serializer, _deserializer = TypeSerializer(), TypeDeserializer()


def _attribute(value: object) -> AttributeValueTypeDef:
    """One plain value as an attribute value. Strings, the authorizer's every read and key, are
    spelled out: TypeSerializer's type dispatch costs ~2 µs a value, the bulk of the store's
    share of the authorizer's time (docs/performance.md, "Where the authorizer's time goes")."""
    if type(value) is str:
        return {"S": value}
    return _serializer.serialize(value)


def _typed(values: Mapping[str, object]) -> Item:
    """Plain values as DynamoDB attribute values (items, keys and expression values alike);
    None means "no such attribute"."""
    return {name: _attribute(value) for name, value in values.items() if value is not None}


def _plain_value(value: AttributeValueTypeDef) -> Any:
    """One attribute's plain value; numbers as int, as the table stores no fractions. Strings
    are read directly, as `_attribute` writes them."""
    if "S" in value:
        return value["S"]
    plain = _deserializer.deserialize(value)
    return int(plain) if isinstance(plain, Decimal) else plain


def _plain(item: Mapping[str, AttributeValueTypeDef]) -> dict[str, Any]:
    return {name: _plain_value(value) for name, value in item.items()}


def _account_pk(account_id: str) -> str:
    return f"ACCOUNT#{account_id}"


def _account_key(account_id: str) -> Item:
    return _typed({"pk": _account_pk(account_id), "sk": ACCOUNT_SK})


def _key_key(account_id: str, key_id: str) -> Item:
    return _typed({"pk": _account_pk(account_id), "sk": f"KEY#{key_id}"})


def _digest_key(digest: str) -> Item:
    # Spelled out: it is the authorizer's every read (`_typed` costs ~0.3 µs more).
    return {"pk": {"S": f"DIGEST#{digest}"}, "sk": {"S": DIGEST_SK}}


R = TypeVar("R", bound="DataclassInstance")


def _connection_attribute(connection: Connection | None) -> str | None:
    return None if connection is None else json.dumps(dataclasses.asdict(connection), separators=(",", ":"))


def _connection_record(value: str | None) -> Connection | None:
    return None if not value else Connection(**json.loads(value))


# Attributes stored in another form than their record's field: (to the item, from the item).
_FORMS: dict[str, tuple[Any, Any]] = {
    "scopes": (to_attribute, from_attribute),
    "connection": (_connection_attribute, _connection_record),  # OAuth (issue 21), JSON
}


class _Codec(Generic[R]):
    """The attributes of one item type and the record fields they hold; writing and reading
    both use this one table. Positional names are stored under the field's own name, keywords
    are attribute=field. None and a False flag are left out of the item; an attribute the
    item lacks reads as `absent` gives, else as the field's default, else None. An attribute
    `valid` names reads as if absent when its value fails the check: one another principal can
    write (the authorizer's `last_used_at`) must never make a read fail."""

    def __init__(
        self,
        record: type[R],
        *same: str,
        absent: Mapping[str, object] | None = None,
        valid: Mapping[str, Callable[[object], bool]] | None = None,
        **renamed: str,
    ) -> None:
        self.record = record
        self.fields = {**{name: name for name in same}, **renamed}  # attribute -> field
        defaults = {f.name: f.default for f in dataclasses.fields(record) if f.default is not dataclasses.MISSING}
        self.absent = {field: {**defaults, **(absent or {})}.get(field) for field in self.fields.values()}
        self.valid = dict(valid or {})

    def item(self, record: R, key: Item, **more: object) -> Item:
        values = {attr: getattr(record, field) for attr, field in self.fields.items()}
        values = {attr: _FORMS[attr][0](v) if attr in _FORMS else v for attr, v in values.items() if v is not False}
        return {**key, **_typed({**values, **more})}

    def read(self, item: Mapping[str, AttributeValueTypeDef], **more: object) -> R:
        fields = dict(self.absent)
        for attr, field in self.fields.items():
            if attr in item:
                value = _plain_value(item[attr])
                if attr in self.valid and not self.valid[attr](value):
                    continue
                fields[field] = _FORMS[attr][1](value) if attr in _FORMS else value
        return self.record(**fields, **more)


# pk = ACCOUNT#<account_id>, sk = ACCOUNT; written by Update expressions only (see Store).
_ACCOUNT = _Codec(Account, "plan", "key_count", "version", absent={"key_count": 0, "version": 0})
# An ISO 8601 UTC timestamp as clock.iso writes it (milliseconds), fractions optional.
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


def _iso_time(value: object) -> bool:
    return isinstance(value, str) and _ISO_TIME.fullmatch(value) is not None


# pk = ACCOUNT#<account_id>, sk = KEY#<key_id>. `last_used_at` is the one attribute the
# authorizer's role may write, to any key item (IAM cannot tie it to the key it authorized):
# anything but a timestamp reads as null, so it cannot break a listing, a roll or a plan change.
_KEY = _Codec(
    KeyRecord,
    "key_id",
    "name",
    "display",
    "created_at",
    "last_used_at",
    "digest",
    "expires_in_days",
    "rolling",
    "scopes",
    "connection",
    "created_by",
    valid={"last_used_at": _iso_time},
    ttl="expires_at_epoch",
)
# pk = DIGEST#<digest>, sk = DIGEST: what the authorizer reads (plus created_at).
_PRINCIPAL = _Codec(Principal, "account_id", "key_id", "plan", "scopes", ttl="expires_at_epoch")


def _read_principal(item: Mapping[str, AttributeValueTypeDef]) -> Principal:
    """`_PRINCIPAL.read`, spelled out for the shape every digest item has (~1 µs less on each
    authorization); any other shape goes to the codec itself. tests/unit/test_fast_paths.py
    checks both give the same record on any item, so `_PRINCIPAL` stays the one mapping."""
    try:
        ttl, scopes = item.get("ttl"), item.get("scopes")
        return Principal(
            item["account_id"]["S"],
            item["key_id"]["S"],
            item["plan"]["S"],
            None if ttl is None else int(ttl["N"]),
            None if scopes is None else from_attribute(scopes["S"]),
        )
    except (KeyError, ValueError):
        return _PRINCIPAL.read(item)


# pk = ACCOUNT#<account_id>, sk = REVOKED#<key_id> (plus its ttl)
_NOTICE = _Codec(Revocation, "key_id", "name", "reason", "revoked_at", "url", "source")


def _to_account(account_id: str, item: Mapping[str, AttributeValueTypeDef] | None) -> Account | None:
    return _ACCOUNT.read(item, account_id=account_id) if item else None


def _digest_item(account_id: str, key: KeyRecord, plan: str) -> Item:
    principal = Principal(account_id, key.key_id, plan, key.expires_at_epoch, key.scopes)
    return _PRINCIPAL.item(principal, _digest_key(key.digest), created_at=key.created_at)


def _tombstone_item(account_id: str, key: KeyRecord, reason: str, revoked_at: str) -> Item:
    """What a revoked key's digest item becomes: still found by the authorizer's one GetItem
    (which refuses it), never a principal, gone by TTL after TOMBSTONE_SECONDS."""
    values = {"account_id": account_id, "key_id": key.key_id, "revoked": True, "reason": reason}
    values |= {"revoked_at": revoked_at, "ttl": int(time.time()) + TOMBSTONE_SECONDS}
    return {**_digest_key(key.digest), **_typed(values)}


def _notice_item(account_id: str, notice: Revocation) -> Item:
    key = _typed({"pk": _account_pk(account_id), "sk": f"{REVOKED_SK_PREFIX}{notice.key_id}"})
    return _NOTICE.item(notice, key, ttl=int(time.time()) + NOTICE_SECONDS)


def _event_item(event: AuditEvent, event_pk: str | None = None) -> Item:
    """The outbox item of a change, written in the change's own transaction."""
    detail = json.dumps(event.detail, ensure_ascii=False, separators=(",", ":"))
    ttl = int(time.time()) + EVENT_RETENTION_SECONDS
    pk = event_pk or f"EVENT#{event.event_id}"
    return _typed({"pk": pk, "sk": EVENT_SK, "detail_type": event.detail_type, "detail": detail, "ttl": ttl})


def key_from_stream_image(image: dict[str, Any]) -> tuple[str, KeyRecord] | None:
    """(account_id, key) from a stream record's image of a key item; None for other items."""
    pk, sk = image.get("pk", {}).get("S", ""), image.get("sk", {}).get("S", "")
    if not (pk.startswith("ACCOUNT#") and sk.startswith("KEY#")):
        return None
    return pk.removeprefix("ACCOUNT#"), _KEY.read(image)


def event_from_stream_image(image: dict[str, Any]) -> tuple[str, str] | None:
    """(detail_type, detail JSON) from a stream record's image of an outbox item."""
    if not image.get("pk", {}).get("S", "").startswith("EVENT#"):
        return None
    values = _plain(image)
    return values["detail_type"], values["detail"]


# -- errors ----------------------------------------------------------------------------------


def _is_transient(exc: Exception) -> bool:
    """Errors that retries could not cure but a later request may: connection errors, read
    timeouts, throttling and 5xx (a 503). Anything else is a bug or misconfiguration (a 500)."""
    return isinstance(exc, BotoCoreError) or (
        isinstance(exc, ClientError) and exc.response["Error"]["Code"] in _UNAVAILABLE_CODES
    )


@contextlib.contextmanager
def _unavailable_on_transient_errors() -> Iterator[None]:
    """Around one DynamoDB call: errors that retries could not cure become a 503."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        if not _is_transient(exc):
            raise
        raise ServiceUnavailable(_UNAVAILABLE) from None


class Store:
    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self.table = table_name
        self.client = client if client is not None else dynamodb_client()

    # -- transaction items: the few shapes every write is made of ---------------------------

    def _put(self, item: Item, condition: str | None = None) -> TransactWriteItemTypeDef:
        if condition is None:
            return {"Put": {"TableName": self.table, "Item": item}}
        return {"Put": {"TableName": self.table, "Item": item, "ConditionExpression": condition}}

    def _update(
        self,
        key: Item,
        update: str,
        condition: str,
        values: Mapping[str, object] | None = None,
        names: Mapping[str, str] | None = None,
        return_old: bool = False,
    ) -> TransactWriteItemTypeDef:
        """One Update; `values` are plain (serialized here), and empty parts are left out, as
        DynamoDB refuses an empty ExpressionAttributeValues."""
        spec: UpdateTypeDef = {"TableName": self.table, "Key": key, "UpdateExpression": update}
        spec["ConditionExpression"] = condition
        if names:
            spec["ExpressionAttributeNames"] = names
        if typed := _typed(values or {}):
            spec["ExpressionAttributeValues"] = typed
        if return_old:
            spec["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"Update": spec}

    def _upsert_account(
        self, account_id: str, condition: str, plan: str, values: Mapping[str, object], *, add_key: bool
    ) -> TransactWriteItemTypeDef:
        """The account item's Update of a write that may create it (a create or a plan change):
        sets `account_id` and bumps `version`; `plan` is the plan's part of the expression
        (`#plan`), `values` what it and `condition` refer to. `add_key` counts one more key and
        returns the old item on a failed condition, so a create can say why it was refused."""
        count = "if_not_exists(key_count, :zero)" + (" + :one" if add_key else "")
        update = f"SET account_id = :acct, key_count = {count}, version = if_not_exists(version, :zero) + :one{plan}"
        values = {":acct": account_id, ":zero": 0, ":one": 1, **values}
        return self._update(_account_key(account_id), update, condition, values, {"#plan": "plan"}, return_old=add_key)

    def _count_change(self, account_id: str, delta: int) -> TransactWriteItemTypeDef:
        update = "SET key_count = key_count + :delta, version = version + :one"
        return self._update(_account_key(account_id), update, _EXISTS, {":delta": delta, ":one": 1})

    def _bump_version(self, account_id: str) -> TransactWriteItemTypeDef:
        """A change a concurrent roll must see: its condition on `version` makes it re-read."""
        return self._update(_account_key(account_id), "SET version = version + :one", _EXISTS, {":one": 1})

    def _event_put(self, event: AuditEvent, event_pk: str | None = None) -> TransactWriteItemTypeDef:
        return self._put(_event_item(event, event_pk), _NEW)

    def _remove_key(self, account_id: str, key: KeyRecord, reason: str) -> list[TransactWriteItemTypeDef]:
        """Delete a key's item and turn its digest item into a tombstone, on the condition that
        the key is still in the state we read."""
        rolling = "attribute_exists(rolling)" if key.rolling else "attribute_not_exists(rolling)"
        delete: TransactWriteItemTypeDef = {
            "Delete": {
                "TableName": self.table,
                "Key": _key_key(account_id, key.key_id),
                "ConditionExpression": f"{_EXISTS} AND {rolling}",
            }
        }
        return [delete, self._put(_tombstone_item(account_id, key, reason, clock.now_iso()))]

    def _transact(self, items: list[TransactWriteItemTypeDef]) -> list[dict[str, Any]] | None:
        """One TransactWriteItems, retried on conflicts. Returns None when committed, or the
        cancellation reasons when a condition was false (nothing was written then). Before
        every retry the budget is asked whether its backoff and one more attempt still fit."""
        for attempt in range(retries.TX_ATTEMPTS):
            if attempt:
                delay = retries.backoff(attempt - 1)
                if not retries.retrying(delay):
                    break
                time.sleep(delay)
            try:
                self.client.transact_write_items(TransactItems=items)
                return None
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "TransactionCanceledException":
                    if not _is_transient(exc):
                        raise
                    raise ServiceUnavailable(_UNAVAILABLE) from None
                reasons: list[dict[str, Any]] = [dict(reason) for reason in exc.response.get("CancellationReasons", [])]
                codes = {reason.get("Code") for reason in reasons}
                if "ConditionalCheckFailed" in codes:
                    return reasons
                if not codes & _RETRYABLE_REASONS:
                    raise
            except BotoCoreError:
                raise ServiceUnavailable(_UNAVAILABLE) from None
        raise ServiceUnavailable(retries.TOO_BUSY)

    # -- reads -------------------------------------------------------------------------

    def _get(self, key: Item) -> Item | None:
        # `_unavailable_on_transient_errors` spelled out: a generator context manager costs ~1 µs,
        # and this is the authorizer's one read (docs/performance.md).
        try:
            return self.client.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        except (ClientError, BotoCoreError) as exc:
            if not _is_transient(exc):
                raise
            raise ServiceUnavailable(_UNAVAILABLE) from None

    def _query(
        self,
        condition: str,
        values: Mapping[str, object],
        forward: bool = True,
        index: str | None = None,
        names: Mapping[str, str] | None = None,
    ) -> Iterator[Item]:
        """Every item a Query finds, page after page: consistent on the table; on a global
        secondary `index` eventually consistent, the only read an index offers."""
        kwargs: QueryInputTypeDef = {
            "TableName": self.table,
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": _typed(values),
            "ScanIndexForward": forward,
        }
        if index is None:
            kwargs["ConsistentRead"] = True
        else:
            kwargs["IndexName"] = index
        if names:
            kwargs["ExpressionAttributeNames"] = dict(names)
        while True:
            with _unavailable_on_transient_errors():
                page = self.client.query(**kwargs)
            yield from page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get_principal(self, digest: str) -> Principal | None:
        """The authorizer's single strongly consistent read. No ProjectionExpression: the
        digest item is ~200 bytes and costs 1 RRU whatever is projected, while the expression
        costs a parse per request (10 % of the read on DynamoDB Local, docs/performance.md)."""
        item = self._get(_digest_key(digest))
        if not item or "revoked" in item:
            return None  # unknown, or a tombstone: a revoked key
        return _read_principal(item)

    def find_digest(self, digest: str) -> tuple[str, str, bool] | None:
        """(account_id, key_id, revoked) of a digest item, tombstones included; None if the
        digest was never ours (or its item is gone: expired and removed, or tombstone aged out)."""
        item = self._get(_digest_key(digest))
        if not item:
            return None
        values = _plain(item)
        return values["account_id"], values["key_id"], "revoked" in values

    def list_revocations(self, account_id: str) -> list[Revocation]:
        """The account's leaked or reported keys still within their notice period (TTL removal
        may lag, so the caller filters by time too)."""
        condition = "pk = :pk AND begins_with(sk, :revoked)"
        items = self._query(condition, {":pk": _account_pk(account_id), ":revoked": REVOKED_SK_PREFIX})
        return [_NOTICE.read(item) for item in items]

    def load_account(self, account_id: str) -> tuple[Account | None, list[KeyRecord]]:
        """Account item and keys, newest first, in one consistent Query per page. The sort key is
        bounded below `USAGE#`: up to 90 usage items an account never costs a page of this."""
        account: Account | None = None
        keys: list[KeyRecord] = []
        below_usage = {":pk": _account_pk(account_id), ":usage": USAGE_SK_PREFIX}
        for item in self._query("pk = :pk AND sk < :usage", below_usage, forward=False):
            sk = item["sk"].get("S", "")
            if sk == ACCOUNT_SK:
                account = _to_account(account_id, item)
            elif sk.startswith("KEY#"):
                keys.append(_KEY.read(item))
        return account, keys

    def get_key(self, account_id: str, key_id: str) -> KeyRecord | None:
        item = self._get(_key_key(account_id, key_id))
        return _KEY.read(item) if item else None

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
        keep_plan = ", #plan = if_not_exists(#plan, :plan)" if plan else ""
        values = {":limit": limit, ":plan": plan or None}
        reasons = self._transact(
            [
                self._upsert_account(account_id, condition, keep_plan, values, add_key=True),
                self._put(_key_item(account_id, key), _NEW),
                self._put(_digest_item(account_id, key, plan or ""), _NEW),
                self._event_put(event),
            ]
        )
        if reasons is None:
            return
        if reasons[0].get("Code") == "ConditionalCheckFailed":
            raise AccountMismatch(_to_account(account_id, reasons[0].get("Item")))
        # A 190-bit id or digest collided: not reachable in practice, never silently overwritten.
        raise RuntimeError("key id or digest collision")

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
            self._event_put(event),
        ]
        if notice is not None:
            items.append(self._put(_notice_item(account_id, notice)))
        return self._transact(items) is None

    def rename_key(self, account_id: str, key_id: str, name: str, event: AuditEvent) -> bool:
        """False if the key no longer exists (a rename never recreates a deleted key) or is being
        rolled out. Bumps the account's `version`, as a scope change does, so a roll that read
        the old name re-reads and gives the new key the new one."""
        rename = self._update(
            _key_key(account_id, key_id), "SET #name = :name", _NOT_ROLLING, {":name": name}, {"#name": "name"}
        )
        return self._transact([self._bump_version(account_id), rename, self._event_put(event)]) is None

    def update_key(self, account_id: str, key: KeyRecord, name: str, scopes: Scopes, event: AuditEvent) -> bool:
        """Set a key's name and scopes in one transaction with its digest item, so the very next
        authorization sees the new scopes. Conditioned on the key still having the digest that
        was read, and bumps the account's `version`, so a concurrent roll re-reads and never
        copies scopes this change replaced; and on the key not being rolled out, so a roll that
        committed since the read makes this change fail instead of landing on the rolled-out key
        while the new key keeps the old scopes. False if the key is gone or was rolled meanwhile."""
        if scopes is None:
            key_update, digest_update = "SET #name = :name REMOVE scopes", "REMOVE scopes"
        else:
            key_update, digest_update = "SET #name = :name, scopes = :scopes", "SET scopes = :scopes"
        values = {":scopes": to_attribute(scopes)}  # None (no scopes) is left out
        key_values = {":name": name, ":digest": key.digest, **values}
        reasons = self._transact(
            [
                self._bump_version(account_id),
                self._update(
                    _key_key(account_id, key.key_id),
                    key_update,
                    f"{_NOT_ROLLING} AND digest = :digest",
                    key_values,
                    {"#name": "name"},
                ),
                # Never recreate a removed digest item as a stub, nor touch a tombstone.
                self._update(
                    _digest_key(key.digest), digest_update, f"{_EXISTS} AND attribute_not_exists(revoked)", values
                ),
                self._event_put(event),
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
        bump = {":one": 1, ":v": account.version}
        items = [self._update(_account_key(account_id), "SET version = version + :one", "version = :v", bump)]
        if grace_until_epoch is None:
            items += self._remove_key(account_id, old, "rolled")
        else:
            ttl, names = {":ttl": grace_until_epoch}, {"#ttl": "ttl"}
            rolling = f"{_EXISTS} AND attribute_not_exists(rolling)"
            items += [
                self._update(
                    _key_key(account_id, old.key_id),
                    _ROLL_OUT,
                    rolling,
                    {**ttl, ":true": True},
                    names,
                ),
                self._update(_digest_key(old.digest), "SET #ttl = :ttl", _EXISTS, ttl, names),
            ]
        items += [
            self._put(_key_item(account_id, new), _NEW),
            self._put(_digest_item(account_id, new, account.plan or ""), _NEW),
            self._event_put(event),
        ]
        return self._transact(items) is None

    def record_removal(self, account_id: str, key: KeyRecord, event: AuditEvent) -> bool:
        """After DynamoDB's TTL removed a key item: give back its slot (unless it was a rolled-out
        key, which had given it already) exactly once, however often the stream delivers the
        removal: the outbox item's id is derived from the key id and written only once."""
        items = [
            self._event_put(event, event_pk=f"EVENT#removed#{account_id}#{key.key_id}"),
            self._count_change(account_id, 0 if key.rolling else -1),
        ]
        return self._transact(items) is None

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
            if rounds and not retries.retrying():
                break
            rounds += 1
            account, keys = self.load_account(account_id)
            now = clock.now().timestamp()
            live = [
                k for k in keys if k.digest not in gone and (k.expires_at_epoch is None or now < k.expires_at_epoch)
            ]
            version = account.version if account else 0
            condition = "attribute_not_exists(pk)" if account is None else "version = :v"
            new_plan = " REMOVE #plan" if plan is None else ", #plan = :plan"
            values = {":plan": plan, ":v": None if account is None else version}
            account_update = self._upsert_account(account_id, condition, new_plan, values, add_key=False)
            # Never recreate a removed digest item as a stub.
            digests = [
                self._update(
                    _digest_key(key.digest), "SET #plan = :plan", _EXISTS, {":plan": plan or ""}, {"#plan": "plan"}
                )
                for key in live
            ]
            reasons = self._transact([account_update, self._event_put(event), *digests])
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
        condition on `pk` means a deleted key is never recreated by a late update. A value that
        is not a string, or sorts after now (junk, as the reads see it: shown as null), is
        replaced, so a malformed `last_used_at` cannot stop the key's usage being recorded."""
        try:
            self.client.update_item(
                TableName=self.table,
                Key=_key_key(account_id, key_id),
                UpdateExpression="SET last_used_at = :now",
                ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(last_used_at) "
                "OR NOT attribute_type(last_used_at, :string) OR last_used_at <= :cutoff OR last_used_at > :now)",
                ExpressionAttributeValues=_typed({":now": now, ":cutoff": cutoff, ":string": "S"}),
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    # -- usage, the read side (issue 23) ------------------------------------------------------

    def usage(self, account_id: str, first_day: str, last_day: str) -> dict[str, dict[str, int]]:
        """`{day: {key_id: count}}` for the UTC days `first_day`..`last_day` (YYYY-MM-DD, both
        included) that have a usage item, in one Query: 90 days of an account are far below a page.
        Another principal writes these items (the authorizer): a count that is not a whole number
        of at least 0 is left out, so it can never break a listing."""
        condition = "pk = :pk AND sk BETWEEN :first AND :last"
        values = {
            ":pk": _account_pk(account_id),
            ":first": f"{USAGE_SK_PREFIX}{first_day}",
            ":last": f"{USAGE_SK_PREFIX}{last_day}",
        }
        days: dict[str, dict[str, int]] = {}
        for item in self._query(condition, values):
            counts = days.setdefault(item["sk"].get("S", "").removeprefix(USAGE_SK_PREFIX), {})
            for name, value in item.items():
                count = _count(value) if name.startswith(_USAGE_COUNT_PREFIX) else None
                if count is not None:
                    counts[name.removeprefix(_USAGE_COUNT_PREFIX)] = count
        return days

    def find_key(self, account_id: str, key_id: str) -> KeyRecord | None:
        """`get_key` as a one-item Query, for a function granted Query alone (GET
        /keys/{key_id}/usage): the same answer, and the same read cost as a GetItem."""
        condition = "pk = :pk AND sk = :sk"
        items = self._query(condition, {":pk": _account_pk(account_id), ":sk": f"KEY#{key_id}"})
        return next((_KEY.read(item) for item in items), None)

    # -- usage, the write side (issue 23; see usage.py) ---------------------------------------

    def add_usage(self, account_id: str, day: date, counts: Mapping[str, int]) -> bool:
        """Add `counts` (key id -> granted authorizations) to the account's usage item of `day`
        (UTC), creating it with its ttl: one UpdateItem, sent once (an ADD retried after a lost
        answer would count twice). True when written; False when DynamoDB certainly did not
        apply it (throttled, or no connection was made), so the counts may be sent again. Any
        other failure raises: its outcome is unknown. Only key ids name attributes."""
        names, values, adds = {"#ttl": "ttl"}, {":ttl": _day_epoch(day) + USAGE_SECONDS}, []
        for i, (key_id, n) in enumerate(counts.items()):
            if is_key_id(key_id) and n > 0:
                names[f"#n{i}"], values[f":n{i}"] = f"{_USAGE_COUNT_PREFIX}{key_id}", n
                adds.append(f"#n{i} :n{i}")
        if not adds:
            return True
        sk = f"{USAGE_SK_PREFIX}{day.isoformat()}"
        try:
            with retries.one_attempt():
                self.client.update_item(
                    TableName=self.table,
                    Key=_typed({"pk": _account_pk(account_id), "sk": sk}),
                    UpdateExpression=f"SET #ttl = :ttl ADD {', '.join(adds)}",
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=_typed(values),
                )
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _THROTTLED:
                return False
            raise
        except (EndpointConnectionError, ConnectTimeoutError, retries.DeadlineReached):
            return False  # never sent
        return True


def _count(value: AttributeValueTypeDef) -> int | None:
    """A usage count as stored (a Number holding a whole number >= 0), else None."""
    raw = value.get("N") if isinstance(value, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        number = Decimal(raw)
    except ArithmeticError:
        return None
    whole = number.is_finite() and number == number.to_integral_value() and number >= 0
    return int(number) if whole else None


def _day_epoch(day: date) -> int:
    """00:00 UTC of `day` in epoch seconds."""
    return (day - date(1970, 1, 1)).days * 86400


# == OAuth (issue 21) ======================================================================
# Four item types, every secret as a SHA-256 digest only, every short-lived one with a TTL:
#
#   pk = OAUTH_CLIENT#<client_id>          sk = CLIENT   client (JSON, no secret), secret_digest
#   pk = OAUTH_CONSENT#<sha256(request)>   sk = CONSENT  request (JSON), expires_at, ttl, decided
#   pk = OAUTH_CODE#<sha256(code)>         sk = CODE     grant (JSON), expires_at, ttl (60 s)
#   pk = OAUTH_REFRESH#<sha256(token)>     sk = REFRESH  account_id, key_id, client_id, grant_id,
#                                                        scopes, resource, ttl, used
#
# and a connection's key item carries `connection` (JSON: client_id, client_name,
# redirect_host, grant_id). A refresh token is honoured only while its key item exists, so
# deleting the key (console, API, leak report, revocation) ends the connection.

_OAUTH_SK = {"CLIENT": "CLIENT", "CONSENT": "CONSENT", "CODE": "CODE", "REFRESH": "REFRESH"}


def _oauth_key(kind: str, ident: str) -> Item:
    return _typed({"pk": f"OAUTH_{kind}#{ident}", "sk": _OAUTH_SK[kind]})


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


class OAuthStore(Store):
    """The OAuth items, and the two key writes a connection makes: its key's creation (the
    plan-limited transaction of POST /keys, plus the code's consumption and the refresh
    token) and its refresh (a roll, plus the refresh token's rotation)."""

    # -- clients -------------------------------------------------------------------------

    def put_client(self, client_id: str, client: dict[str, Any], secret_digest: str | None) -> None:
        values = {"client": _compact(client), "created_at": clock.now_iso(), "secret_digest": secret_digest}
        item = {**_oauth_key("CLIENT", client_id), **_typed(values)}
        with _unavailable_on_transient_errors():
            self.client.put_item(TableName=self.table, Item=item, ConditionExpression=_NEW)

    def get_client(self, client_id: str) -> tuple[dict[str, Any], str | None] | None:
        item = self._get(_oauth_key("CLIENT", client_id))
        if not item:
            return None
        values = _plain(item)
        return json.loads(values["client"]), values.get("secret_digest")

    # -- consent requests and codes ------------------------------------------------------------

    def put_consent(self, request_digest: str, request: dict[str, Any], expires_at: int) -> None:
        values = {"request": _compact(request), "expires_at": expires_at, "ttl": expires_at}
        item = {**_oauth_key("CONSENT", request_digest), **_typed(values)}
        with _unavailable_on_transient_errors():
            self.client.put_item(TableName=self.table, Item=item, ConditionExpression=_NEW)

    def get_consent(self, request_digest: str, now: int) -> dict[str, Any] | None:
        """An undecided, unexpired consent request (TTL removal lags; the time is checked here)."""
        item = self._get(_oauth_key("CONSENT", request_digest))
        if not item:
            return None
        values = _plain(item)
        if "decided" in values or values["expires_at"] <= now:
            return None
        request: dict[str, Any] = json.loads(values["request"])
        return request

    def decide_consent(
        self, request_digest: str, now: int, decision: str, code_digest: str | None, grant: dict[str, Any] | None,
        code_expires_at: int,
    ) -> bool:  # fmt: skip
        """Mark the request decided and, on approval, store its code, in one transaction whose
        condition makes a request decided at most once. False if unknown, expired or decided."""
        condition = f"{_EXISTS} AND attribute_not_exists(decided) AND expires_at > :now"
        items = [
            self._update(
                _oauth_key("CONSENT", request_digest), "SET decided = :d", condition, {":d": decision, ":now": now}
            )
        ]
        if code_digest is not None and grant is not None:
            values = {"grant": _compact(grant), "expires_at": code_expires_at, "ttl": code_expires_at}
            items.append(self._put({**_oauth_key("CODE", code_digest), **_typed(values)}, _NEW))
        return self._transact(items) is None

    def get_code(self, code_digest: str) -> tuple[dict[str, Any], int] | None:
        item = self._get(_oauth_key("CODE", code_digest))
        if not item:
            return None
        values = _plain(item)
        return json.loads(values["grant"]), values["expires_at"]

    def delete_code(self, code_digest: str) -> None:
        with _unavailable_on_transient_errors():
            self.client.delete_item(TableName=self.table, Key=_oauth_key("CODE", code_digest))

    # -- refresh tokens ------------------------------------------------------------------------

    def _refresh_put(self, digest: str, refresh: dict[str, Any], ttl: int) -> TransactWriteItemTypeDef:
        values: dict[str, object] = {k: str(refresh[k]) for k in ("account_id", "key_id", "client_id", "grant_id")}
        values |= {"scopes": " ".join(refresh["scopes"]), "resource": refresh.get("resource") or None, "ttl": ttl}
        return self._put({**_oauth_key("REFRESH", digest), **_typed(values)}, _NEW)

    def get_refresh(self, digest: str) -> dict[str, Any] | None:
        item = self._get(_oauth_key("REFRESH", digest))
        if not item:
            return None
        values = _plain(item)
        return {
            **{name: values[name] for name in ("account_id", "key_id", "client_id", "grant_id", "ttl")},
            "scopes": values["scopes"].split(),
            "resource": values.get("resource"),
            "used": bool(values.get("used")),
        }

    def connection_keys(self, account_id: str) -> list[KeyRecord]:
        """The account's keys that are OAuth connections."""
        condition = "pk = :pk AND begins_with(sk, :key)"
        items = self._query(condition, {":pk": _account_pk(account_id), ":key": "KEY#"})
        return [record for record in (_KEY.read(item) for item in items) if record.connection is not None]

    # -- the two key writes of a connection -------------------------------------------------------

    def insert_connection_key(
        self,
        account: Account | None,
        account_id: str,
        key: KeyRecord,
        plan: str,
        limit: int,
        code_digest: str,
        refresh_digest: str,
        refresh: dict[str, Any],
        event: AuditEvent,
    ) -> str | None:
        """POST /keys's transaction (plan and count condition on the account item, key and digest
        items, audit event), plus: the account's `version` as read (so the name the caller made
        unique among the keys it read is still unique), the code deleted (so a code is exchanged
        at most once) and the refresh token stored. None when committed, else what failed:
        "code" (already used) or "account" (changed, full, or on another plan)."""
        values: dict[str, object]
        if account is None:
            # A new account on the default plan: the caller checked that its limit allows a key.
            condition, values = "attribute_not_exists(pk)", {":plan": plan}
        else:
            condition = "version = :v AND key_count < :limit AND #plan = :plan"
            values = {":v": account.version, ":limit": limit, ":plan": plan}
        consume: TransactWriteItemTypeDef = {
            "Delete": {"TableName": self.table, "Key": _oauth_key("CODE", code_digest), "ConditionExpression": _EXISTS}
        }
        reasons = self._transact(
            [
                consume,
                self._upsert_account(account_id, condition, ", #plan = :plan", values, add_key=True),
                self._put(_key_item(account_id, key), _NEW),
                self._put(_digest_item(account_id, key, plan), _NEW),
                self._event_put(event),
                self._refresh_put(refresh_digest, refresh, key.expires_at_epoch or 0),
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
        grace_until_epoch: int,
        stale: list[KeyRecord],
        used_refresh_digest: str,
        refresh_digest: str,
        refresh: dict[str, Any],
        event: AuditEvent,
    ) -> bool:
        """A refresh: `roll_key`'s transaction with a grace period (same slot, the old key working
        until `grace_until_epoch`), plus the used refresh token marked used (at most once) and
        its successor stored. `stale` are this connection's keys still in an earlier refresh's
        grace: removed now, so a connection never holds more than one key in grace (the bound a
        plan change's transaction size relies on). False if anything changed since the read."""
        account_id = account.account_id
        ttl, names = {":ttl": grace_until_epoch}, {"#ttl": "ttl"}
        bump = {":one": 1, ":v": account.version}
        items = [
            self._update(_account_key(account_id), "SET version = version + :one", "version = :v", bump),
            self._update(
                _oauth_key("REFRESH", used_refresh_digest),
                "SET used = :true",
                f"{_EXISTS} AND attribute_not_exists(used)",
                {":true": True},
            ),
            self._update(
                _key_key(account_id, old.key_id),
                _ROLL_OUT,
                f"{_EXISTS} AND attribute_not_exists(rolling)",
                {**ttl, ":true": True},
                names,
            ),
            self._update(
                _digest_key(old.digest), "SET #ttl = :ttl", f"{_EXISTS} AND attribute_not_exists(revoked)", ttl, names
            ),
            self._put(_key_item(account_id, new), _NEW),
            self._put(_digest_item(account_id, new, account.plan or ""), _NEW),
            self._event_put(event),
            self._refresh_put(refresh_digest, refresh, new.expires_at_epoch or 0),
        ]
        for key in stale:
            items += self._remove_key(account_id, key, "rolled")
        return self._transact(items) is None


# == Expiry notices (issue 24 item 5) =======================================================
# A daily run warns the owners of keys about to expire (ApiKeyExpiring, apikeys/expiry_notices.py).
# It finds them by day, never by a scan, through a sparse global secondary index:
#
#   key item (above)  + expires_on  the UTC day its `ttl` falls on, "2027-03-08": written with the
#                                   item by every Put (create, roll, OAuth), removed when a roll
#                                   rolls it out; only on a live key its owner must renew (not a
#                                   key without expiry, not a rolled-out key, not an OAuth
#                                   connection's key, which its client renews by refreshing)
#   index ExpiresOn: hash key expires_on, keys only (a last-used write costs the index nothing)
#
#   pk = EXPIRING#<account_id>#<key_id>#<ttl>#<notice days>  sk = EXPIRING  sent_at, ttl
#        the marker of one notice sent: written with its outbox event, on the condition that it
#        is new, so a repeated or retried run never warns twice for one key, expiry and notice
#        day; it lives until a day after the key's expiry, when no run can be due it again.
#
# Key items written before issue 24 have no expires_on: `backfill_expiry_days` adds it (once,
# a Scan; docs/operations.md "Expiry notices").

EXPIRES_ON = "expires_on"
EXPIRES_ON_INDEX = "ExpiresOn"
EXPIRING_SK = "EXPIRING"
# A roll's Update of the key it rolls out: working until its grace ends, no longer due a notice.
_ROLL_OUT = f"SET rolling = :true, #ttl = :ttl REMOVE {EXPIRES_ON}"


def expiry_day(key: KeyRecord) -> str | None:
    """The `expires_on` of a key item: the UTC day it expires, if its owner is to be warned."""
    if key.expires_at_epoch is None or key.rolling or key.connection is not None:
        return None
    return datetime.fromtimestamp(key.expires_at_epoch, UTC).date().isoformat()


def _key_item(account_id: str, key: KeyRecord) -> Item:
    """A key item as every Put writes it: the record, and the day the notices look it up by."""
    return _KEY.item(key, _key_key(account_id, key.key_id), **{EXPIRES_ON: expiry_day(key)})


def _marker_key(account_id: str, key: KeyRecord, notice_days: int) -> Item:
    pk = f"EXPIRING#{account_id}#{key.key_id}#{key.expires_at_epoch}#{notice_days}"
    return _typed({"pk": pk, "sk": EXPIRING_SK})


def _marker_item(account_id: str, key: KeyRecord, notice_days: int) -> Item:
    values = {"sent_at": clock.now_iso(), "ttl": (key.expires_at_epoch or 0) + 86400}
    return {**_marker_key(account_id, key, notice_days), **_typed(values)}


class NoticeStore(Store):
    """The daily run's reads and its one write; and the backfill of keys written before it."""

    def keys_expiring_on(self, day: str) -> Iterator[tuple[str, str]]:
        """(account_id, key_id) of every key item the index holds for `day`, page after page.
        The index is eventually consistent: the caller reads each key before warning."""
        items = self._query("#day = :day", {":day": day}, index=EXPIRES_ON_INDEX, names={"#day": EXPIRES_ON})
        for item in items:
            yield item["pk"]["S"].removeprefix("ACCOUNT#"), item["sk"]["S"].removeprefix("KEY#")

    def notice_sent(self, account_id: str, key: KeyRecord, notice_days: int) -> bool:
        """Whether this notice's marker exists: a run checks before it writes, so a key already
        warned costs one read a day, not a cancelled transaction."""
        return self._get(_marker_key(account_id, key, notice_days)) is not None

    def put_expiry_notice(self, account_id: str, key: KeyRecord, notice_days: int, event: AuditEvent) -> bool:
        """The notice's marker and its outbox event, in one transaction with a check that the key
        is as read: still there, not rolled out, expiring when it did. False (nothing written)
        if the marker exists (already sent) or the key was deleted, rolled or renewed since."""
        check: TransactWriteItemTypeDef = {
            "ConditionCheck": {
                "TableName": self.table,
                "Key": _key_key(account_id, key.key_id),
                "ConditionExpression": f"{_EXISTS} AND attribute_not_exists(rolling) AND #ttl = :ttl",
                "ExpressionAttributeNames": {"#ttl": "ttl"},
                "ExpressionAttributeValues": _typed({":ttl": key.expires_at_epoch}),
            }
        }
        items = [self._put(_marker_item(account_id, key, notice_days), _NEW), self._event_put(event), check]
        return self._transact(items) is None

    def backfill_expiry_days(self, now: int) -> int:
        """Add `expires_on` to key items written before it existed (a one-off Scan, re-runnable).
        Each Update is conditioned on the key being as scanned, so a key deleted, rolled or
        renewed meanwhile is left alone. Returns how many keys were added to the index."""
        added = 0
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "FilterExpression": (
                f"begins_with(sk, :key) AND attribute_exists(#ttl) AND attribute_not_exists({EXPIRES_ON})"
            ),
            "ExpressionAttributeNames": {"#ttl": "ttl"},
            "ExpressionAttributeValues": _typed({":key": "KEY#"}),
            "ConsistentRead": True,
        }
        while True:
            with _unavailable_on_transient_errors():
                page = self.client.scan(**kwargs)
            for item in page.get("Items", []):
                key = _KEY.read(item)
                day = expiry_day(key)
                if day is None or (key.expires_at_epoch or 0) <= now:
                    continue
                try:
                    with _unavailable_on_transient_errors():
                        self.client.update_item(
                            TableName=self.table,
                            Key={"pk": item["pk"], "sk": item["sk"]},
                            UpdateExpression=f"SET {EXPIRES_ON} = :day",
                            ConditionExpression=f"{_EXISTS} AND attribute_not_exists(rolling) AND #ttl = :ttl",
                            ExpressionAttributeNames={"#ttl": "ttl"},
                            ExpressionAttributeValues=_typed({":day": day, ":ttl": key.expires_at_epoch}),
                        )
                    added += 1
                except ClientError as exc:
                    if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
                        raise
            if "LastEvaluatedKey" not in page:
                return added
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
