"""Issue 14: POST /secret-scanning/github, GitHub's secret scanning partner endpoint. Reports
are signed with a P-256 key generated here and served in GitHub's JSON shape by a local HTTP
server; test keys are created at run time, never written to fixtures."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from collections.abc import Callable

import boto3
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from apikeys import keys
from tests.helpers.github_keys import GitHubKeys, finding, report
from tests.helpers.invariants import check_table, snapshot
from tests.helpers.support import Api, CallCounter


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _events(detail_type: str) -> list[dict[str, object]]:
    items = boto3.client("dynamodb").scan(TableName=os.environ["TABLE_NAME"])["Items"]
    return [json.loads(i["detail"]["S"]) for i in items if i.get("detail_type", {}).get("S") == detail_type]


def test_a_signed_report_revokes_a_live_key_at_once(api: Api, github: GitHubKeys) -> None:
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a", "Deploy").body
    url = "https://github.com/octo/app/blob/main/.env"
    body = report(finding(created["key"], url=url))
    reply = api.secret_scanning(body, github.sign(body))
    assert reply.status == 200
    assert reply.body == [{"token_hash": _sha(created["key"]), "token_type": "ot_api_key", "label": "true_positive"}]
    assert api.bearer(created["key"]) is None
    assert api.list("acct-a").body["key_count"] == 0
    [event] = _events("ApiKeyRevoked")
    assert event["reason"] == "leaked" and event["url"] == url and event["source"] == "content"
    assert (event["key_id"], event["key_name"], event["account_id"]) == (created["id"], "Deploy", "acct-a")
    assert event["actor"] == "github-secret-scanning" and len(event["request_id"]) == 36  # API Gateway's request id
    assert created["key"] not in json.dumps(event)
    assert github.accepts == ["application/json"]
    [notice] = api.revocations("acct-a").body["revocations"]
    assert (notice["name"], notice["reason"], notice["url"], notice["source"]) == ("Deploy", "leaked", url, "content")


def test_one_byte_changed_is_401_and_the_key_still_works(api: Api, github: GitHubKeys) -> None:
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a").body
    body = report(finding(created["key"]))
    headers = github.sign(body)
    tampered = body.replace(b"content", b"contenT")
    before = snapshot(os.environ["TABLE_NAME"])
    reply = api.secret_scanning(tampered, headers)
    assert reply.status == 401 and reply.body["error"] == {"code": "unauthorized", "message": "Bad signature."}
    # The right signature with a character outside base64 in it is no signature (not decoded leniently).
    signature = headers["Github-Public-Key-Signature"]
    lenient = {**headers, "Github-Public-Key-Signature": signature[:8] + "*" + signature[8:]}
    assert api.secret_scanning(body, lenient).body["error"]["message"] == "Bad signature."
    assert snapshot(os.environ["TABLE_NAME"]) == before
    assert api.bearer(created["key"]) is not None


@pytest.mark.parametrize("missing", ["Github-Public-Key-Identifier", "Github-Public-Key-Signature"])
def test_a_missing_header_or_unknown_identifier_is_401(api: Api, github: GitHubKeys, missing: str) -> None:
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a").body
    body = report(finding(created["key"]))
    headers = github.sign(body)
    del headers[missing]
    assert api.secret_scanning(body, headers).status == 401
    unknown = {**github.sign(body), "Github-Public-Key-Identifier": "nobody"}
    assert api.secret_scanning(body, unknown).status == 401
    garbage = {**github.sign(body), "Github-Public-Key-Signature": "not base64!"}
    assert api.secret_scanning(body, garbage).status == 401
    assert api.bearer(created["key"]) is not None


def test_keys_are_cached_and_a_new_identifier_triggers_exactly_one_refetch(
    api: Api, github: GitHubKeys, travel: Callable[[float], None]
) -> None:
    from apikeys import scanning

    body = report(finding("ot_nothing"))
    assert api.secret_scanning(body, github.sign(body)).status == 200
    lower = {name.lower(): value for name, value in github.sign(body).items()}
    assert api.secret_scanning(body, lower).status == 200  # header names in any case
    assert github.requests == 1
    github.add("key-2")  # GitHub rotates its key
    assert api.secret_scanning(body, github.sign(body, "key-2")).status == 503  # inside the interval: retry
    assert github.requests == 1
    travel(scanning.REFETCH_INTERVAL.total_seconds())
    assert api.secret_scanning(body, github.sign(body, "key-2")).status == 200
    assert github.requests == 2
    assert api.secret_scanning(body, github.sign(body, "key-2")).status == 200
    travel(scanning.REFETCH_INTERVAL.total_seconds())
    never = {**github.sign(body), "Github-Public-Key-Identifier": "f" * 64}
    assert api.secret_scanning(body, never).status == 401
    assert api.secret_scanning(body, never).status == 401
    assert github.requests == 3  # one refetch for the unknown identifier, not more


def test_a_key_fetch_error_is_503_so_github_retries(
    api: Api, github: GitHubKeys, travel: Callable[[float], None]
) -> None:
    from apikeys import scanning

    api.set_plan("acct-a", "pro")
    created = api.create("acct-a").body
    github.fail = True
    body = report(finding(created["key"]))
    reply = api.secret_scanning(body, github.sign(body))
    assert reply.status == 503 and reply.body["error"]["code"] == "service_unavailable"
    assert api.bearer(created["key"]) is not None
    github.fail = False
    assert api.secret_scanning(body, github.sign(body)).status == 503  # no second attempt inside the interval
    assert github.requests == 1
    travel(scanning.REFETCH_INTERVAL.total_seconds())
    assert api.secret_scanning(body, github.sign(body)).status == 200
    assert api.bearer(created["key"]) is None


@pytest.mark.parametrize(
    "raw",
    [
        b"{}",
        b"not json",
        b"[1, 2]",
        b'[{"type": "x"}]',
        b'[{"token": 5}]',
        json.dumps([{"token": "x"}] * 1001).encode(),
    ],
)
def test_bodies_that_are_not_a_report_are_400(api: Api, github: GitHubKeys, raw: bytes) -> None:
    reply = api.secret_scanning(raw, github.sign(raw))
    assert reply.status == 400 and reply.body["error"]["code"] == "invalid_request"


def test_a_mixed_batch_gets_the_right_labels_and_exact_counts(api: Api, github: GitHubKeys) -> None:
    api.set_plan("acct-a", "pro")
    api.set_plan("acct-b", "pro")
    live = api.create("acct-a", "live").body
    rolled = api.create("acct-a", "rolled").body
    replacement = api.roll("acct-a", rolled["id"], grace=3600).body
    deleted = api.create("acct-b", "deleted").body
    api.delete("acct-b", deleted["id"])
    kept = api.create("acct-b", "kept").body
    unknown = keys.generate("ot_")
    bad_checksum = live["key"][:-1] + ("A" if live["key"][-1] != "A" else "B")
    tokens = [live["key"], rolled["key"], deleted["key"], unknown, "ot_malformed", bad_checksum, live["key"]]
    body = report(*(finding(t) for t in tokens))
    reply = api.secret_scanning(body, github.sign(body))
    assert reply.status == 200
    labels = {entry["token_hash"]: entry["label"] for entry in reply.body}
    assert len(reply.body) == 6  # one per distinct token
    assert labels == {
        _sha(live["key"]): "true_positive",
        _sha(rolled["key"]): "true_positive",
        _sha(deleted["key"]): "true_positive",
        _sha(unknown): "false_positive",
        _sha("ot_malformed"): "false_positive",
        _sha(bad_checksum): "false_positive",
    }
    assert api.list("acct-a").body["key_count"] == 1  # the replacement keeps its slot
    assert api.list("acct-b").body["key_count"] == 1
    assert api.bearer(replacement["key"]) is not None and api.bearer(kept["key"]) is not None
    assert api.bearer(live["key"]) is None and api.bearer(rolled["key"]) is None
    assert len(_events("ApiKeyRevoked")) == 2
    check_table(os.environ["TABLE_NAME"])
    # The same report delivered again: same labels, nothing changes.
    before = snapshot(os.environ["TABLE_NAME"])
    again = api.secret_scanning(body, github.sign(body))
    assert again.body == reply.body
    assert snapshot(os.environ["TABLE_NAME"]) == before


def test_random_identifiers_cannot_make_us_hammer_github(
    api: Api, github: GitHubKeys, travel: Callable[[float], None]
) -> None:
    """Issue 22 item 2: thirty unsigned posts with random identifiers caused thirty fetches of
    GitHub's key list. Identifiers not shaped as GitHub's are refused before any fetch; the list
    is fetched at most once per REFETCH_INTERVAL per container whatever the identifiers; an
    identifier a fetch did not list is remembered; and with the key host refusing, a report
    signed with a key already known is still judged."""
    from apikeys import scanning

    api.set_plan("acct-a", "pro")
    body = report(finding("ot_nothing"))
    signed = github.sign(body)
    for shape in ("nobody", "A" * 64, "0" * 63, "0" * 65, "../../etc", "0" * 63 + "g", " " + "0" * 63):
        reply = api.secret_scanning(body, {**signed, "Github-Public-Key-Identifier": shape})
        assert reply.status == 401 and reply.body["error"]["code"] == "unauthorized", shape
    assert github.requests == 0  # refused before any fetch

    randoms = [secrets.token_hex(32) for _ in range(30)]
    statuses = [api.secret_scanning(body, {**signed, "Github-Public-Key-Identifier": i}).status for i in randoms]
    assert github.requests == 1, statuses  # the first one fetched; the others waited for the interval
    assert statuses[0] == 401 and set(statuses[1:]) == {503}  # unknown to GitHub / retry later
    assert api.secret_scanning(body, signed).status == 200  # known from that one fetch
    assert github.requests == 1

    travel(scanning.REFETCH_INTERVAL.total_seconds() + 1)
    github.fail = True  # GitHub's rate limit, say
    # The one identifier a fetch did not list is remembered: no fetch for it, ever.
    assert api.secret_scanning(body, {**signed, "Github-Public-Key-Identifier": randoms[0]}).status == 401
    assert github.requests == 1
    reply = api.secret_scanning(body, {**signed, "Github-Public-Key-Identifier": randoms[1]})
    assert reply.status == 503 and github.requests == 2  # one more attempt, after the interval
    for identifier in randoms[2:]:
        assert api.secret_scanning(body, {**signed, "Github-Public-Key-Identifier": identifier}).status == 503
    assert github.requests == 2
    created = api.create("acct-a").body
    leaked = report(finding(created["key"]))
    assert api.secret_scanning(leaked, github.sign(leaked)).status == 200  # a known key needs no fetch
    assert api.bearer(created["key"]) is None
    assert github.requests == 2


def test_the_key_fetch_does_not_follow_a_redirect_to_another_host(api: Api, github: GitHubKeys) -> None:
    """Issue 22 item 11: the key list decides which reports revoke keys, so a redirect must not
    hand that choice to another host (an open redirect, a hijacked DNS name). Another host's
    keys are never fetched: 503, GitHub retries. A redirect on the same host is followed."""
    other = GitHubKeys()  # signs with keys of its own, and is on another host name
    try:
        api.set_plan("acct-a", "pro")
        created = api.create("acct-a").body
        body = report(finding(created["key"]))
        github.redirect_to = other.url.replace("127.0.0.1", "localhost")
        reply = api.secret_scanning(body, other.sign(body))
        assert reply.status == 503 and reply.body["error"]["code"] == "service_unavailable"
        assert other.requests == 0
        assert api.bearer(created["key"]) is not None
    finally:
        other.close()


def test_a_redirect_on_the_same_host_is_followed(api: Api, github: GitHubKeys) -> None:
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a").body
    body = report(finding(created["key"]))
    github.redirect_to = github.url + "?moved=1"
    assert api.secret_scanning(body, github.sign(body)).status == 200
    assert github.requests == 2 and api.bearer(created["key"]) is None


def test_keys_other_than_p256_in_the_list_are_skipped(api: Api, github: GitHubKeys) -> None:
    """GitHub signs with P-256 only: an RSA or a P-384 key in the list is ignored, the rest kept."""
    p384 = ec.generate_private_key(ec.SECP384R1())
    others = {"a" * 64: rsa.generate_private_key(public_exponent=65537, key_size=2048), "b" * 64: p384}
    for identifier, private in others.items():
        pem = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        github.extra.append({"key_identifier": identifier, "key": pem.decode()})
    body = report(finding("ot_nothing"))
    signature = base64.b64encode(p384.sign(body, ec.ECDSA(hashes.SHA256()))).decode()
    reply = api.secret_scanning(
        body, {"Github-Public-Key-Identifier": "b" * 64, "Github-Public-Key-Signature": signature}
    )
    assert reply.status == 401 and reply.body["error"]["message"] == "Unknown public key identifier."
    assert api.secret_scanning(body, github.sign(body)).status == 200  # the P-256 key of that same fetch
    assert github.requests == 1


@pytest.mark.parametrize(("extra", "status"), [(0, 200), (1, 503)])
def test_a_key_list_longer_than_its_limit_is_refused(api: Api, github: GitHubKeys, extra: int, status: int) -> None:
    """Read up to MAX_KEYS_DOCUMENT_BYTES: a list one byte longer is cut, so it is not JSON."""
    from apikeys import scanning

    document = json.dumps(github.document()).encode()
    github.raw = document[:-1] + b" " * (scanning.MAX_KEYS_DOCUMENT_BYTES + extra - len(document)) + b"}"
    body = report(finding("ot_nothing"))
    reply = api.secret_scanning(body, github.sign(body))
    assert reply.status == status
    if status == 503:
        assert reply.body["error"]["message"] == "Could not fetch the secret scanning public keys. Please retry."


def test_no_more_of_the_key_list_is_read_than_its_limit(
    api: Api, github: GitHubKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A host that announces more and never sends it does not hold the fetch: one byte past the
    limit is all that is read (a list of exactly the limit, then a byte more, is judged)."""
    from apikeys import scanning

    monkeypatch.setattr(scanning, "FETCH_TIMEOUT_SECONDS", 0.05)
    document = json.dumps(github.document()).encode()
    github.raw = document + b" " * (scanning.MAX_KEYS_DOCUMENT_BYTES + 1 - len(document))
    github.announced_extra, github.stall = 1_000_000, 0.5
    body = report(finding("ot_nothing"))
    assert api.secret_scanning(body, github.sign(body)).status == 200


def test_a_key_host_slower_than_the_fetch_timeout_is_a_503(
    api: Api, github: GitHubKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apikeys import scanning

    monkeypatch.setattr(scanning, "FETCH_TIMEOUT_SECONDS", 0.05)
    github.delay = 0.5
    body = report(finding("ot_nothing"))
    assert api.secret_scanning(body, github.sign(body)).status == 503


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("file:///etc/passwd", "Secret scanning is misconfigured. Please retry later."),
        ("https://127.0.0.1:1/keys", "Could not fetch the secret scanning public keys. Please retry."),  # tried
    ],
)
def test_a_key_list_address_must_be_http_or_https(
    api: Api, github: GitHubKeys, monkeypatch: pytest.MonkeyPatch, url: str, message: str
) -> None:
    monkeypatch.setenv("SECRET_SCANNING_KEYS_URL", url)
    body = report(finding("ot_nothing"))
    reply = api.secret_scanning(body, github.sign(body))
    assert reply.status == 503 and reply.body["error"]["message"] == message


def test_each_distinct_token_is_labelled_once_in_the_order_reported(api: Api, github: GitHubKeys) -> None:
    """A duplicate anywhere in the report is skipped, not the end of it; a finding without a type
    is labelled with an empty one; a token that is not UTF-8 text (a lone surrogate) is hashed as sent."""
    body = b'[{"token": "ot_a"}, {"token": "ot_a", "type": "x"}, {"token": "ot_\\ud800", "type": "t"}]'
    reply = api.secret_scanning(body, github.sign(body))
    assert reply.status == 200
    lone = hashlib.sha256("ot_\ud800".encode("utf-8", "surrogatepass")).hexdigest()
    assert reply.body == [
        {"token_hash": _sha("ot_a"), "token_type": "", "label": "false_positive"},
        {"token_hash": lone, "token_type": "t", "label": "false_positive"},
    ]


def test_a_key_reported_again_costs_one_read(api: Api, github: GitHubKeys, calls: CallCounter) -> None:
    """Its digest item is a tombstone by then, which says it was ours: nothing more is read."""
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a").body
    body = report(finding(created["key"]))
    assert api.secret_scanning(body, github.sign(body)).status == 200
    calls.reset()
    again = api.secret_scanning(body, github.sign(body))
    assert again.body[0]["label"] == "true_positive" and calls.calls == ["GetItem"]
