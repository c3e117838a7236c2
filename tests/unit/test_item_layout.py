"""The item layout is stored data that outlives a deploy: every item type, written through the
store's one mapping, is pinned here attribute for attribute in DynamoDB's own typed form, and
reads back as the record it was written from. No key in here is a real API key: the digests
are made-up hex, the displays are masked."""

from __future__ import annotations

import dataclasses
import time
import types
from datetime import UTC, date, datetime
from typing import Any

import pytest

from apikeys import store
from apikeys.audit import AuditEvent
from apikeys.records import Account, Connection, KeyRecord, Principal, Revocation

NOW = 1_700_000_000
DIGEST = "d" * 64
FULL = KeyRecord(
    "k1", "CI é", "ot_…abcd", "2024-01-01T00:00:00Z", None, DIGEST, 1_800_000_000, 30, False, ("a", "b"),
    created_by="ana@example.com",
)  # fmt: skip
BARE = KeyRecord("k2", "Bare", "ot_…wxyz", "2024-01-02T00:00:00Z", None, "e" * 64)


@pytest.fixture(autouse=True)
def _fixed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "time", types.SimpleNamespace(time=lambda: NOW + 0.5, sleep=time.sleep))


def test_a_key_item_with_every_optional_attribute() -> None:
    item = store._key_item("acct", FULL)
    assert item == {
        "pk": {"S": "ACCOUNT#acct"},
        "sk": {"S": "KEY#k1"},
        "key_id": {"S": "k1"},
        "name": {"S": "CI é"},
        "display": {"S": "ot_…abcd"},
        "created_at": {"S": "2024-01-01T00:00:00Z"},
        "digest": {"S": DIGEST},
        "ttl": {"N": "1800000000"},
        "expires_in_days": {"N": "30"},
        "scopes": {"S": "a b"},
        "expires_on": {"S": "2027-01-15"},  # the UTC day of its ttl: the ExpiresOn index's key
        "created_by": {"S": "ana@example.com"},
    }
    assert store._KEY.read(item) == FULL


def test_a_key_item_without_optional_attributes_and_a_rolled_out_one() -> None:
    item = store._key_item("acct", BARE)
    assert set(item) == {"pk", "sk", "key_id", "name", "display", "created_at", "digest"}
    assert store._KEY.read(item) == BARE  # a key item from before issue 23: created_by reads as None
    rolled = {**item, "rolling": {"BOOL": True}, "last_used_at": {"S": "2024-03-01T00:00:00Z"}}
    assert store._KEY.read(rolled) == KeyRecord(
        **{**vars(BARE), "rolling": True, "last_used_at": "2024-03-01T00:00:00Z"}
    )
    assert store.key_from_stream_image(rolled) == ("acct", store._KEY.read(rolled))


def test_a_stream_image_of_any_other_item_is_neither_a_key_nor_an_event() -> None:
    """The stream consumers see every item type, and images without a string key too."""
    key = store._key_item("acct", BARE)
    others: list[dict[str, Any]] = [
        {},
        {"pk": {"N": "1"}, "sk": {"N": "2"}},
        {"pk": key["pk"]},  # no sort key
        {"pk": key["pk"], "sk": {"S": "META"}},  # the account's own item
        {"pk": {"S": "DIGEST#" + DIGEST}, "sk": key["sk"]},
    ]
    for image in others:
        assert store.key_from_stream_image(image) is None, image
        assert store.event_from_stream_image(image) is None, image
    assert store.key_from_stream_image({"sk": key["sk"]}) is None


@pytest.mark.parametrize(("key", "plan"), [(FULL, "pro"), (BARE, "")])
def test_a_digest_item_is_the_authorizers_principal(key: KeyRecord, plan: str) -> None:
    item = store._digest_item("acct", key, plan)
    expected: dict[str, Any] = {
        "pk": {"S": f"DIGEST#{key.digest}"},
        "sk": {"S": "DIGEST"},
        "account_id": {"S": "acct"},
        "key_id": {"S": key.key_id},
        "plan": {"S": plan},
        "created_at": {"S": key.created_at},
    }
    if key is FULL:
        expected |= {"ttl": {"N": "1800000000"}, "scopes": {"S": "a b"}}
    assert item == expected
    assert store._PRINCIPAL.read(item) == Principal("acct", key.key_id, plan, key.expires_at_epoch, key.scopes)


def test_a_tombstone() -> None:
    assert store._tombstone_item("acct", FULL, "leaked", "2024-05-05T00:00:00Z") == {
        "pk": {"S": f"DIGEST#{DIGEST}"},
        "sk": {"S": "DIGEST"},
        "account_id": {"S": "acct"},
        "key_id": {"S": "k1"},
        "revoked": {"BOOL": True},
        "reason": {"S": "leaked"},
        "revoked_at": {"S": "2024-05-05T00:00:00Z"},
        "ttl": {"N": str(NOW + store.TOMBSTONE_SECONDS)},
    }


def test_a_notice_keeps_empty_url_and_source() -> None:
    notice = Revocation("k1", "CI", "reported", "2024-05-05T00:00:00Z")
    item = store._notice_item("acct", notice)
    assert item == {
        "pk": {"S": "ACCOUNT#acct"},
        "sk": {"S": "REVOKED#k1"},
        "key_id": {"S": "k1"},
        "name": {"S": "CI"},
        "reason": {"S": "reported"},
        "revoked_at": {"S": "2024-05-05T00:00:00Z"},
        "url": {"S": ""},
        "source": {"S": ""},
        "ttl": {"N": str(NOW + store.NOTICE_SECONDS)},
    }
    assert store._NOTICE.read(item) == notice


def test_an_outbox_event() -> None:
    event = AuditEvent("ApiKeyCreated", {"key_name": "é", "n": 1}, "evt-1")
    item = store._event_item(event)
    assert item == {
        "pk": {"S": "EVENT#evt-1"},
        "sk": {"S": "EVENT"},
        "detail_type": {"S": "ApiKeyCreated"},
        "detail": {"S": '{"key_name":"é","n":1}'},
        "ttl": {"N": str(NOW + store.EVENT_RETENTION_SECONDS)},
    }
    assert store.event_from_stream_image(item) == ("ApiKeyCreated", '{"key_name":"é","n":1}')
    assert store._event_item(event, "EVENT#removed#acct#k1")["pk"] == {"S": "EVENT#removed#acct#k1"}


def test_an_account_item_reads_missing_counters_as_zero() -> None:
    item = {"pk": {"S": "ACCOUNT#acct"}, "sk": {"S": "ACCOUNT"}, "plan": {"S": "pro"}, "key_count": {"N": "2"}}
    assert store._to_account("acct", item) == Account("acct", "pro", 2, 0)
    assert store._to_account("acct", {"pk": {"S": "ACCOUNT#acct"}}) == Account("acct", None, 0, 0)
    assert store._to_account("acct", None) is None


def test_only_a_live_expiring_key_the_owner_renews_is_in_the_expiry_notice_index() -> None:
    connection = Connection("client-1", "Claude", "claude.ai", "grant-1")
    assert "expires_on" not in store._key_item("acct", dataclasses.replace(FULL, rolling=True))
    assert "expires_on" not in store._key_item("acct", dataclasses.replace(FULL, connection=connection))
    assert "expires_on" not in store._key_item("acct", BARE)  # no expiry
    assert store._ROLL_OUT == "SET rolling = :true, #ttl = :ttl REMOVE expires_on"


def test_an_expiry_notice_marker(monkeypatch: pytest.MonkeyPatch) -> None:
    from apikeys import clock

    monkeypatch.setattr(clock, "now", lambda: datetime.fromtimestamp(NOW, UTC))
    assert store._marker_item("acct", FULL, 7) == {
        "pk": {"S": "EXPIRING#acct#k1#1800000000#7"},
        "sk": {"S": "EXPIRING"},
        "sent_at": {"S": "2023-11-14T22:13:20.000Z"},
        "ttl": {"N": str(1_800_000_000 + 86400)},  # a day after the key expires: no run is due it again
    }


class _Answers:
    """A DynamoDB client that answers every Query with the given items, and keeps the requests."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.requests: list[dict[str, Any]] = []

    def query(self, **request: Any) -> dict[str, Any]:
        self.requests.append(request)
        return {"Items": self.items}


def test_usage_items_read_as_counts_per_day_and_key_and_junk_counts_are_left_out() -> None:
    """The usage item (issue 23; written by the authorizer's side): one per account and UTC day, a
    Number `n_<key_id>` per key. The read side asks for a range of days in one Query."""
    day = {"pk": {"S": "ACCOUNT#acct"}, "sk": {"S": "USAGE#2027-03-01"}, "ttl": {"N": "1811980800"}}
    items = [
        {**day, "n_key_a": {"N": "12"}, "n_key_b": {"N": "1"}},
        {**day, "sk": {"S": "USAGE#2027-03-02"}, "n_key_a": {"N": "-1"}, "n_key_b": {"N": "2.5"}},
        {**day, "sk": {"S": "USAGE#2027-03-03"}, "n_key_c": {"S": "7"}, "n_key_d": {"N": "0"}},
    ]
    client = _Answers(items)
    db = store.Store("t", client)  # type: ignore[arg-type]
    assert db.usage("acct", "2027-03-01", "2027-03-30") == {
        "2027-03-01": {"key_a": 12, "key_b": 1},
        "2027-03-02": {},
        "2027-03-03": {"key_d": 0},
    }
    [request] = client.requests
    assert request["KeyConditionExpression"] == "pk = :pk AND sk BETWEEN :first AND :last"
    assert request["ExpressionAttributeValues"] == {
        ":pk": {"S": "ACCOUNT#acct"},
        ":first": {"S": "USAGE#2027-03-01"},
        ":last": {"S": "USAGE#2027-03-30"},
    }


def test_a_usage_item_one_number_per_key_and_its_days_ttl(moto_db: None) -> None:
    """Issue 23: pk ACCOUNT#<account>, sk USAGE#<UTC day>, `n_<key id>` per key, and `ttl` at that
    day's 00:00 UTC + 91 days (90 full days readable). Written by ADD, so two writes add up."""
    import boto3

    from apikeys.config import get_settings

    table = get_settings().table_name
    db = store.Store(table)
    k1, k2 = "key_0SXg9cFh1a4Zb0qR7mWt", "key_0SXg9cFh1a4Zb0qR7mWu"
    day = date(2027, 1, 16)
    assert db.add_usage("acct", day, {k1: 3, k2: 1})
    assert db.add_usage("acct", day, {k1: 2, "not a key id": 5, k2: 0})
    key = {"pk": {"S": "ACCOUNT#acct"}, "sk": {"S": "USAGE#2027-01-16"}}
    item = boto3.client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True)["Item"]
    assert item == {
        "pk": {"S": "ACCOUNT#acct"},
        "sk": {"S": "USAGE#2027-01-16"},
        f"n_{k1}": {"N": "5"},
        f"n_{k2}": {"N": "1"},
        "ttl": {"N": str(1_800_057_600 + 91 * 86400)},  # 2027-01-16T00:00:00Z + 91 days
    }
    assert db.add_usage("acct", date(2027, 1, 17), {k1: 0})  # nothing to count: no write, no item
    key["sk"] = {"S": "USAGE#2027-01-17"}
    assert "Item" not in boto3.client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True)


def test_oauth_items_a_client_a_consent_request_its_code_and_a_refresh_token(
    moto_db: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21's four item types: secrets as digests, every short-lived one with the `ttl`
    DynamoDB removes it by, and each read back as written."""
    import boto3

    from apikeys import clock
    from apikeys.config import get_settings

    monkeypatch.setattr(clock, "now", lambda: datetime.fromtimestamp(NOW, UTC))
    table = get_settings().table_name
    db = store.OAuthStore(table)

    def stored(kind: str, ident: str) -> dict[str, Any]:
        key = {"pk": {"S": f"OAUTH_{kind}#{ident}"}, "sk": {"S": kind}}
        return dict(boto3.client("dynamodb").get_item(TableName=table, Key=key, ConsistentRead=True)["Item"])

    db.put_client("c1", {"client_name": "Claude", "redirect_uris": ["https://x.example/cb"]}, "s" * 64)
    db.put_client("c2", {"client_name": "Public"}, None)
    assert stored("CLIENT", "c1") == {
        "pk": {"S": "OAUTH_CLIENT#c1"},
        "sk": {"S": "CLIENT"},
        "client": {"S": '{"client_name":"Claude","redirect_uris":["https://x.example/cb"]}'},
        "created_at": {"S": "2023-11-14T22:13:20.000Z"},
        "secret_digest": {"S": "s" * 64},
    }
    assert db.get_client("c1") == ({"client_name": "Claude", "redirect_uris": ["https://x.example/cb"]}, "s" * 64)
    assert db.get_client("c2") == ({"client_name": "Public"}, None)

    db.put_consent("r" * 64, {"client_id": "c1"}, NOW + 600)
    assert db.decide_consent("r" * 64, NOW, "approved", "c" * 64, {"client_id": "c1"}, NOW + 60)
    assert stored("CONSENT", "r" * 64) == {
        "pk": {"S": f"OAUTH_CONSENT#{'r' * 64}"},
        "sk": {"S": "CONSENT"},
        "request": {"S": '{"client_id":"c1"}'},
        "expires_at": {"N": str(NOW + 600)},
        "ttl": {"N": str(NOW + 600)},
        "decided": {"S": "approved"},
    }
    assert stored("CODE", "c" * 64) == {
        "pk": {"S": f"OAUTH_CODE#{'c' * 64}"},
        "sk": {"S": "CODE"},
        "grant": {"S": '{"client_id":"c1"}'},
        "expires_at": {"N": str(NOW + 60)},
        "ttl": {"N": str(NOW + 60)},
    }
    assert db.get_code("c" * 64) == ({"client_id": "c1"}, NOW + 60)

    refresh = {"account_id": "acct", "key_id": "k1", "client_id": "c1", "grant_id": "g1", "scopes": ["whoami", "mcp"]}
    assert (
        db._transact([db._refresh_put("t" * 64, {**refresh, "resource": "https://api.example/mcp"}, NOW + 99)]) is None
    )
    assert db._transact([db._refresh_put("u" * 64, refresh, NOW + 99)]) is None
    assert stored("REFRESH", "t" * 64) == {
        "pk": {"S": f"OAUTH_REFRESH#{'t' * 64}"},
        "sk": {"S": "REFRESH"},
        **{name: {"S": str(refresh[name])} for name in ("account_id", "key_id", "client_id", "grant_id")},
        "scopes": {"S": "whoami mcp"},
        "resource": {"S": "https://api.example/mcp"},
        "ttl": {"N": str(NOW + 99)},
    }
    assert db.get_refresh("t" * 64) == {
        **refresh, "ttl": NOW + 99, "resource": "https://api.example/mcp", "used": False
    }  # fmt: skip
    assert "resource" not in stored("REFRESH", "u" * 64)
    assert db.get_refresh("u" * 64) == {**refresh, "ttl": NOW + 99, "resource": None, "used": False}


@dataclasses.dataclass(frozen=True)
class _Thing:
    name: str
    count: int = 7
    label: str | None = "default"
    until: int | None = None


def test_a_codec_renames_attributes_and_reads_a_missing_or_invalid_one_as_absent_or_the_default() -> None:
    """Every item type above is one `_Codec`, built once when store.py is imported; this one is
    built here, so a change to how a codec is built shows: positional attributes under the
    field's name, keywords as attribute=field; a missing attribute read as `absent` gives, else
    as the field's default, else None; one failing its `valid` check read as missing."""
    codec = store._Codec(
        _Thing,
        "name",
        "count",
        absent={"label": "unset"},
        valid={"count": lambda v: isinstance(v, int) and v >= 0},
        tag="label",
        ttl="until",
    )
    key = {"pk": {"S": "THING#a"}, "sk": {"S": "THING"}}
    item = codec.item(_Thing("a", 3, "x", 99), key)
    assert item == {**key, "name": {"S": "a"}, "count": {"N": "3"}, "tag": {"S": "x"}, "ttl": {"N": "99"}}
    assert codec.read(item) == _Thing("a", 3, "x", 99)
    assert codec.read({"name": {"S": "b"}}) == _Thing("b", 7, "unset", None)
    assert codec.read({"name": {"S": "c"}, "count": {"N": "-1"}}) == _Thing("c", 7, "unset", None)
