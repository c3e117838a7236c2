"""The authorizer's hand-made fast paths give exactly what the slower originals gave:
the policy Powertools would build, and a redaction that skips work still removes every key."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import APIGatewayAuthorizerResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from apikeys import keys
from apikeys.observability import redact
from apikeys.records import Principal
from tests.helpers.support import load_function


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
