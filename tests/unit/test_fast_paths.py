"""The authorizer's hand-made fast paths give exactly what the slower originals gave:
the policy Powertools would build, a redaction that skips work still removes every key, the
digest item read as the codec reads it, the log lines Powertools' `inject_lambda_context` would
write, a scoped key's remembered policy the one its catalogue gives, built once per key and
stage, and the grants counted those API Gateway lets through."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import APIGatewayAuthorizerResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from apikeys import keys, store
from apikeys.config import parse_scope_catalogue
from apikeys.observability import inject_context_on_first_line, make_logger, redact
from apikeys.records import Principal
from tests.helpers.support import LambdaContext, load_function


@pytest.mark.parametrize(
    "method_arn",
    [
        "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET/v1/whoami",
        "arn:aws:execute-api:eu-west-3:210987654321:q1w2e3r4t5/prod/POST/orders/{id}/items",
        "arn:aws:execute-api:us-west-2:123456789012:zz9/$default/ANY/",
        "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET",
    ],
)
def test_allow_policy_is_the_one_powertools_builds(method_arn: str) -> None:
    principal = Principal("acct-a", "key_0SXg9cFh1a4Zb0qR7mWt", "pro")
    context = {"account_id": "acct-a", "key_id": "key_0SXg9cFh1a4Zb0qR7mWt", "plan": "pro", "scopes": "*"}
    expected = APIGatewayAuthorizerResponse.from_route_arn(method_arn, principal_id="acct-a", context=context)
    expected.allow_all_routes()
    assert load_function("authorizer").allow_policy(method_arn, principal) == expected.asdict()


def test_allow_policy_keeps_the_partition() -> None:
    """Powertools' from_route_arn drops it (always `arn:aws:`), which no China or GovCloud API
    would match; the authorizer keeps the partition of the method ARN."""
    policy = load_function("authorizer").allow_policy(
        "arn:aws-cn:execute-api:cn-north-1:123456789012:zz9/prod/GET/v1/whoami", Principal("a", "k", "pro")
    )
    assert policy["policyDocument"]["Statement"][0]["Resource"] == [
        "arn:aws-cn:execute-api:cn-north-1:123456789012:zz9/prod/*/*"
    ]


KEY = keys.generate("ot_")
PART = KEY[3:20]
# line -> what the log shows: literals from the contract (a key, a bearer token and an
# authorization header or field never reach a log), not from the implementation's patterns.
LINES = {
    '{"message":"denied","reason":"missing, malformed, unknown or revoked key","function_name":"authorizer"}': (
        '{"message":"denied","reason":"missing, malformed, unknown or revoked key","function_name":"authorizer"}'
    ),
    f'{{"headers":{{"Authorization":"Bearer {KEY}"}},"authorizationToken":"bearer {KEY}"}}': (
        '{"headers":{"Authorization":"[REDACTED]"},"authorizationToken":"[REDACTED]"}'
    ),
    f'{{"multiValueHeaders":{{"authorization":["Bearer a","Bearer {KEY}"]}}}}': (
        '{"multiValueHeaders":{"authorization":"[REDACTED]"}}'
    ),
    f"a key {KEY} inside text, and BEARER x": "a key [REDACTED] inside text, and BEARER [REDACTED]",
    f"sk_live_{PART}{PART} and xx_{PART}": f"sk_[REDACTED] and xx_{PART}",  # 17 characters are no key
    f'{{"authorİzation": "{KEY}", "AUTHORıZATIONTOKEN": ["x"]}}': (
        '{"authorİzation": "[REDACTED]", "AUTHORıZATIONTOKEN": "[REDACTED]"}'
    ),
    f"0{KEY}é{KEY}{KEY}": "0[REDACTED]é[REDACTED]",
}


@pytest.mark.parametrize("line", list(LINES), ids=[f"line{i}" for i in range(len(LINES))])
def test_redaction_of_known_lines(line: str) -> None:
    assert redact(line) == LINES[line]


# Prefixes a deployment may configure (KeyPrefix: a lowercase letter, up to 9 more, `_`).
PREFIXES = ["ot_", "a_", "sk_", "live2_", "abcdefghij_"]
CONTEXTS = ['"authorization": "', '"AuthorizationToken":"', "Bearer ", "bearer\t", "_", "ot_", '"', "\n", ","]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(CONTEXTS),
            st.sampled_from(PREFIXES).map(lambda prefix: ("key", prefix)),
        ),
        max_size=12,
    )
)
def test_redaction_removes_every_generated_key_from_any_text(parts: list[str | tuple[str, str]]) -> None:
    """The oracle is the real generator: every key it makes, in any text, leaves no 16 characters
    of its secret part behind; text with no key, bearer or authorization in it is kept as is."""
    made: list[tuple[str, str]] = []
    line = ""
    for part in parts:
        if isinstance(part, tuple):
            made.append((keys.generate(part[1]), part[1]))
            line += made[-1][0]
        else:
            line += part
    shown = redact(line)
    for key, prefix in made:
        body = key[len(prefix) :]
        assert not any(body[i : i + 16] in shown for i in range(len(body) - 15)), (line, shown)
    if not made and "bearer" not in line.lower() and "author" not in line.lower():
        assert shown == line


_ATTRIBUTE = st.one_of(
    st.text(max_size=12).map(lambda v: {"S": v}),
    st.integers(-(10**12), 10**12).map(lambda v: {"N": str(v)}),
    st.sampled_from(["1.5", "1e3", "1800000000.25"]).map(lambda v: {"N": v}),
    st.booleans().map(lambda v: {"BOOL": v}),
)


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {},
        optional={
            name: _ATTRIBUTE for name in ("account_id", "key_id", "plan", "ttl", "scopes", "created_at", "other")
        },
    )
)
def test_the_authorizers_read_of_a_digest_item_is_the_codecs(item: dict[str, Any]) -> None:
    """Any item, of any shape: the spelled-out read and `_PRINCIPAL.read` give the same record,
    or fail alike (a wrong type fails the authorization: it fails closed)."""

    def outcome(read: Any) -> object:
        try:
            return read(item)
        except Exception as error:  # the kind of failure is what is compared
            return type(error)

    assert outcome(store._read_principal) == outcome(store._PRINCIPAL.read)


def test_the_spelled_out_read_knows_every_attribute_the_codec_maps() -> None:
    """A field added to `Principal` and `_PRINCIPAL` but not to the spelled-out read fails here."""
    principal = Principal("acct-a", "key_0SXg9cFh1a4Zb0qR7mWt", "pro", 1_900_000_000, ("whoami", "mcp"))
    item = store._PRINCIPAL.item(principal, store._digest_key("a" * 64))
    assert store._read_principal(item) == principal == store._PRINCIPAL.read(item)


def test_the_spelled_out_read_takes_every_digest_item_the_store_writes_without_the_codec(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shortcut is the path of every authorization: a digest item as the store writes it,
    with or without expiry and scopes, never falls back to the codec's slower read."""
    full = Principal("acct-a", "key_0SXg9cFh1a4Zb0qR7mWt", "pro", 1_900_000_000, ("whoami", "mcp"))
    bare = Principal("acct-a", "key_0SXg9cFh1a4Zb0qR7mWu", "pro")
    items = [store._PRINCIPAL.item(p, store._digest_key(c * 64), created_at="x") for p, c in ((full, "a"), (bare, "b"))]

    class NoCodec:
        def read(self, item: Any) -> None:
            raise AssertionError("fell back to the codec")

    monkeypatch.setattr(store, "_PRINCIPAL", NoCodec())
    assert [store._read_principal(item) for item in items] == [full, bare]


def _lines(handler: Any, contexts: list[LambdaContext]) -> list[dict[str, Any]]:
    out, real = io.StringIO(), sys.stdout
    sys.stdout = out
    try:
        for context in contexts:
            handler({}, context)
    finally:
        sys.stdout = real
    return [{k: v for k, v in json.loads(line).items() if k != "timestamp"} for line in out.getvalue().splitlines()]


def test_context_keys_added_on_the_first_line_are_those_inject_lambda_context_adds() -> None:
    """Same keys and values on every line, the request id of the invocation that logs (not of an
    earlier one that logged nothing), cold_start only on the first invocation."""
    from aws_lambda_powertools.logging import logger as powertools_logger

    logger = make_logger()

    def handle(event: Any, context: LambdaContext) -> None:
        if context.function_name != "quiet":
            logger.info("denied", extra={"reason": "test"})

    contexts = [LambdaContext(function_name=name) for name in ("authorizer", "quiet", "authorizer", "authorizer")]
    powertools_logger.is_cold_start = True
    lazy = inject_context_on_first_line(handle)
    assert lazy is not None
    ours = _lines(lazy, contexts)
    powertools_logger.is_cold_start = True
    theirs = _lines(logger.inject_lambda_context(handle), contexts)
    assert ours == theirs and len(ours) == 3
    assert [line["function_request_id"] for line in ours] == [contexts[i].aws_request_id for i in (0, 2, 3)]
    assert [line["cold_start"] for line in ours] == [True, False, False]


def test_with_the_event_logged_the_authorizer_uses_powertools_decorator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_LOGGER_LOG_EVENT", "true")
    assert inject_context_on_first_line(lambda event, context: None) is None


def test_a_scoped_keys_remembered_policy_follows_a_swapped_catalogue(monkeypatch: pytest.MonkeyPatch) -> None:
    """The route ARNs are built once per key and stage, but never from another catalogue."""
    authorizer = load_function("authorizer")
    arn = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1/GET/v1/whoami"
    principal = Principal("acct-a", "key_0SXg9cFh1a4Zb0qR7mWt", "pro", None, ("whoami",))

    def resources() -> list[str]:
        return list(authorizer.allow_policy(arn, principal)["policyDocument"]["Statement"][0]["Resource"])

    monkeypatch.setattr(authorizer, "CATALOGUE", parse_scope_catalogue('{"whoami": ["GET /v1/whoami"]}'))
    stage = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1"
    assert resources() == resources() == [f"{stage}/GET/v1/whoami"]
    monkeypatch.setattr(authorizer, "CATALOGUE", parse_scope_catalogue('{"whoami": ["GET /v2/me", "GET /v2/you"]}'))
    assert resources() == [f"{stage}/GET/v2/me", f"{stage}/GET/v2/you"]


def _scoped_authorizer(monkeypatch: pytest.MonkeyPatch, catalogue: str) -> tuple[Any, list[Principal]]:
    """The authorizer with `catalogue`, every token the scoped key below (no read), and the
    grants `usage` was asked to count."""
    from apikeys import usage

    authorizer = load_function("authorizer")
    monkeypatch.setattr(authorizer, "CATALOGUE", parse_scope_catalogue(catalogue))
    principal = Principal("acct-a", "key_0SXg9cFh1a4Zb0qR7mWt", "pro", None, ("orders",))
    monkeypatch.setattr(authorizer, "authorize", lambda token: principal)
    counted: list[Principal] = []
    monkeypatch.setattr(usage, "record", counted.append)
    return authorizer, counted


def test_a_scoped_key_is_counted_on_each_of_its_routes_a_wildcards_included_and_no_other(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """API Gateway lets a scoped key through only on its policy's routes, reading `*` as any
    characters; the authorizer reads them the same way to count the grants that get through."""
    authorizer, counted = _scoped_authorizer(monkeypatch, '{"orders": ["GET /v1/orders/*", "POST /v1/orders"]}')
    stage = "arn:aws:execute-api:us-east-1:123456789012:abc123/v1"
    for route, through in (
        ("GET/v1/orders/7", True),
        ("GET/v1/orders/7/items", True),
        ("POST/v1/orders", True),
        ("GET/v1/orders", False),
        ("POST/v1/orders/7", False),
        ("DELETE/v1/orders/7", False),
    ):
        counted.clear()
        event = {"type": "TOKEN", "authorizationToken": "Bearer x", "methodArn": f"{stage}/{route}"}
        assert (
            authorizer.authorize_request(event, LambdaContext())["policyDocument"]["Statement"][0]["Effect"] == "Allow"
        )
        assert len(counted) == through, route


def test_a_scoped_keys_routes_are_built_once_per_key_and_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    """The policy and the count of every request of a scoped key read the same route ARNs: built
    on its first request on a stage, remembered for the next (docs/performance.md)."""
    from apikeys import scopes

    authorizer, counted = _scoped_authorizer(monkeypatch, '{"orders": ["GET /v1/orders/*", "POST /v1/orders"]}')
    built: list[str] = []
    real = scopes.resource_arns

    def resource_arns(names: tuple[str, ...], catalogue: Any, stage: str) -> list[str]:
        built.append(stage)
        return real(names, catalogue, stage)

    monkeypatch.setattr(scopes, "resource_arns", resource_arns)
    api = "arn:aws:execute-api:us-east-1:123456789012:abc123"
    for arn in (
        f"{api}/v1/GET/v1/orders/7",
        f"{api}/v1/POST/v1/orders",
        f"{api}/v1/GET/v1/orders/8",
        f"{api}/v2/POST/v1/orders",
    ):
        authorizer.authorize_request(
            {"type": "TOKEN", "authorizationToken": "Bearer x", "methodArn": arn}, LambdaContext()
        )
    assert built == [f"{api}/v1", f"{api}/v2"]
    assert len(counted) == 4
