"""The authorizer's hand-made fast paths give exactly what the slower originals gave:
the policy Powertools would build, and the redaction of the three unconditional substitutions."""

from __future__ import annotations

import re

import pytest
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import APIGatewayAuthorizerResponse
from hypothesis import given, settings
from hypothesis import strategies as st

from apikeys import keys
from apikeys.observability import _AUTH_FIELD_RE, _BEARER_RE, _KEY_RE, redact
from apikeys.records import Principal
from tests.helpers.support import load_function


def reference_redact(text: str) -> str:
    text = _AUTH_FIELD_RE.sub(r'\1"[REDACTED]"', text)
    text = _BEARER_RE.sub(r"\1 [REDACTED]", text)
    return _KEY_RE.sub("[REDACTED]", text)


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


LINES = [
    '{"message":"denied","reason":"missing, malformed, unknown or revoked key","function_name":"authorizer"}',
    '{"headers":{"Authorization":"Bearer {k}"},"authorizationToken":"bearer {k}"}',
    '{"multiValueHeaders":{"authorization":["Bearer a","Bearer {k}"]}}',
    "a key {k} inside text, and BEARER x",
    "sk_live_{b}{b} and xx_{b}",
    '{"authorİzation": "{k}", "AUTHORıZATIONTOKEN": ["x"]}',
]


@pytest.mark.parametrize("template", LINES)
def test_redaction_matches_the_unconditional_substitutions(template: str) -> None:
    key = keys.generate("ot_")
    line = template.replace("{k}", key).replace("{b}", key[3:20])
    assert redact(line) == reference_redact(line)
    assert key not in redact(line)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.sampled_from(['"authorization": ', '"AuthorizationToken":"', "Bearer ", "bearer\t", "_", "ot_"]),
            st.from_regex(re.compile(r"[a-z]{1,3}_[A-Za-z0-9]{28,34}"), fullmatch=True),
        ),
        max_size=12,
    )
)
def test_redaction_matches_on_any_text(parts: list[str]) -> None:
    line = "".join(parts)
    assert redact(line) == reference_redact(line)
