"""template.yaml: what abuse costs (stage throttling, Gateway Responses, the optional WAF) and
the identity that owns every key (the user pool survives, the account claim is not writable)."""

from __future__ import annotations

import json
import re
import sys
from typing import Any

import pytest

from tests.helpers.support import ROOT, load_template


def _api() -> dict[str, Any]:
    return dict(load_template()["Resources"]["KeysApi"]["Properties"])


def test_stage_throttling_comes_from_parameters_with_sensible_defaults() -> None:
    template = load_template()
    setting, *per_method = _api()["MethodSettings"]
    assert per_method == [REVOKE_THROTTLING, SCANNING_THROTTLING]
    assert (setting["ResourcePath"], setting["HttpMethod"]) == ("/*", "*")
    assert setting["ThrottlingRateLimit"] == {"Ref": "ThrottlingRateLimit"}
    assert setting["ThrottlingBurstLimit"] == {"Ref": "ThrottlingBurstLimit"}
    rate = template["Parameters"]["ThrottlingRateLimit"]["Default"]
    burst = template["Parameters"]["ThrottlingBurstLimit"]["Default"]
    # Far below API Gateway's account default (10,000 rps), above what one product needs.
    assert 0 < rate <= 1000 and rate <= burst <= 5000


REVOKE_THROTTLING = {
    "ResourcePath": "/~1v1~1credentials~1revoke",
    "HttpMethod": "POST",
    "ThrottlingRateLimit": {"Ref": "RevokeThrottlingRateLimit"},
    "ThrottlingBurstLimit": {"Ref": "RevokeThrottlingBurstLimit"},
}


SCANNING_THROTTLING = {
    "ResourcePath": "/~1secret-scanning~1github",
    "HttpMethod": "POST",
    "ThrottlingRateLimit": {"Ref": "SecretScanningThrottlingRateLimit"},
    "ThrottlingBurstLimit": {"Ref": "SecretScanningThrottlingBurstLimit"},
}


def test_the_secret_scanning_route_has_its_own_small_bucket_as_deployed() -> None:
    """Issue 22 item 2: unsigned posts to the partner endpoint can make us fetch GitHub's key
    list; besides the per-container refetch interval, the route has a bucket of its own, far
    below the stage's, as SAM translates it into the deployed stage."""
    from tests.helpers.sam import translate

    template = load_template()
    params = template["Parameters"]
    [stage] = [r for r in translate(template)["Resources"].values() if r["Type"] == "AWS::ApiGateway::Stage"]
    settings = {(m["ResourcePath"], m["HttpMethod"]): m for m in stage["Properties"]["MethodSettings"]}
    scanning = settings[("/~1secret-scanning~1github", "POST")]
    assert scanning["ThrottlingRateLimit"] == {"Ref": "SecretScanningThrottlingRateLimit"}
    assert scanning["ThrottlingBurstLimit"] == {"Ref": "SecretScanningThrottlingBurstLimit"}
    rate = params["SecretScanningThrottlingRateLimit"]["Default"]
    burst = params["SecretScanningThrottlingBurstLimit"]["Default"]
    assert 0 < rate <= 5 and rate <= burst <= 20 and burst < params["ThrottlingBurstLimit"]["Default"]


def test_the_public_revocation_route_has_its_own_small_bucket() -> None:
    """Unauthenticated and able to revoke: throttled on its own, well below the stage."""
    template = load_template()
    params = template["Parameters"]
    assert REVOKE_THROTTLING in _api()["MethodSettings"]
    rate, burst = params["RevokeThrottlingRateLimit"]["Default"], params["RevokeThrottlingBurstLimit"]["Default"]
    assert 0 < rate < params["ThrottlingRateLimit"]["Default"] and rate <= burst
    for name in ("RevokeCredentialsFunction", "SecretScanningFunction"):
        [event] = template["Resources"][name]["Properties"]["Events"].values()
        assert "Auth" not in event["Properties"] and "DefaultAuthorizer" not in _api()["Auth"], name
    scanning = template["Resources"]["SecretScanningFunction"]["Properties"]
    assert scanning["Environment"]["Variables"]["SECRET_SCANNING_KEYS_URL"] == {"Ref": "SecretScanningKeysUrl"}
    assert params["SecretScanningKeysUrl"]["Default"] == "https://api.github.com/meta/public_keys/secret_scanning"


def test_every_gateway_response_has_the_error_shape_and_no_store() -> None:
    responses = _api()["GatewayResponses"]
    assert {"THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX", "UNAUTHORIZED", "ACCESS_DENIED"} <= set(responses)
    for kind, response in responses.items():
        assert response["ResponseParameters"]["Headers"]["Cache-Control"] == "'no-store'", kind
        body = response["ResponseTemplates"]["application/json"]
        # $context.error.messageString is API Gateway's message, already a quoted JSON string.
        parsed = json.loads(body.replace("$context.error.messageString", '"message"'))
        assert set(parsed) == {"error"} and set(parsed["error"]) == {"code", "message"}, kind
    throttled = responses["THROTTLED"]
    assert throttled["StatusCode"] == 429
    assert json.loads(throttled["ResponseTemplates"]["application/json"])["error"]["code"] == "rate_limited"
    assert throttled["ResponseParameters"]["Headers"]["Retry-After"] == "'1'"
    # The defaults keep the status of the response type they stand in for.
    assert "StatusCode" not in responses["DEFAULT_4XX"] and "StatusCode" not in responses["DEFAULT_5XX"]


def test_waf_is_on_by_default_and_rate_limits_ip_and_authorization() -> None:
    """Issue 22 item 10: off by default, one client's flood starved every other client of the
    stage's shared bucket. On by default; "false" remains a choice."""
    template = load_template()
    params, resources = template["Parameters"], template["Resources"]
    assert params["WafEnabled"]["Default"] == "true"
    assert params["WafEnabled"]["AllowedValues"] == ["true", "false"]
    assert template["Conditions"]["CreateWebAcl"] == {"Fn::Equals": [{"Ref": "WafEnabled"}, "true"]}
    acl = resources["KeysApiWebAcl"]
    association = resources["KeysApiWebAclAssociation"]
    assert acl["Condition"] == association["Condition"] == "CreateWebAcl"
    assert acl["Properties"]["Scope"] == "REGIONAL"
    rules = {rule["Name"]: rule for rule in acl["Properties"]["Rules"]}
    by_ip = rules["RatePerClientIp"]["Statement"]["RateBasedStatement"]
    assert (by_ip["AggregateKeyType"], by_ip["Limit"]) == ("IP", {"Ref": "WafIpRateLimit"})
    by_auth = rules["RatePerAuthorizationHeader"]["Statement"]["RateBasedStatement"]
    assert by_auth["AggregateKeyType"] == "CUSTOM_KEYS"
    assert by_auth["Limit"] == {"Ref": "WafAuthorizationRateLimit"}
    assert [k["Header"]["Name"].lower() for k in by_auth["CustomKeys"]] == ["authorization"]
    bodies = acl["Properties"]["CustomResponseBodies"]
    for rule in rules.values():
        response = rule["Action"]["Block"]["CustomResponse"]
        assert response["ResponseCode"] == 429
        headers = {h["Name"]: h["Value"] for h in response["ResponseHeaders"]}
        assert headers["Cache-Control"] == "no-store" and int(headers["Retry-After"]) > 0
        body = json.loads(bodies[response["CustomResponseBodyKey"]]["Content"])
        assert body["error"]["code"] == "rate_limited"
    arn = association["Properties"]["ResourceArn"]["Fn::Sub"]
    assert "${KeysApi}/stages/${KeysApi.Stage}" in arn


def test_checkov_skips_citing_api_gateway_throttling_are_true() -> None:
    resources = load_template()["Resources"]
    cited = [
        name
        for name, r in resources.items()
        for skip in r.get("Metadata", {}).get("checkov", {}).get("skip", [])
        if "API Gateway throttling" in skip.get("comment", "")
    ]
    assert cited
    assert "MethodSettings" in resources["KeysApi"]["Properties"]


def test_user_pool_is_retained_and_protected_from_deletion() -> None:
    pool = load_template()["Resources"]["ManagementUserPool"]
    assert pool["DeletionPolicy"] == "Retain"
    assert pool["UpdateReplacePolicy"] == "Retain"
    assert pool["Properties"]["DeletionProtection"] == "ACTIVE"


def test_account_claim_is_sub_or_a_custom_attribute_users_cannot_write() -> None:
    template = load_template()
    pattern = re.compile(template["Parameters"]["AccountIdClaim"]["AllowedPattern"])
    for good in ("sub", "custom:account_id", "custom:tenant"):
        assert pattern.fullmatch(good), good
    # email (and username, phone) can be changed by the user: they must never pick an account.
    for bad in ("email", "cognito:username", "phone_number", "custom:", "sub ", "custom:a b", "Sub"):
        assert not pattern.fullmatch(bad), bad
    client = template["Resources"]["ManagementUserPoolClient"]["Properties"]
    assert client["WriteAttributes"] == ["email"]
    assert not any(a.startswith("custom:") for a in client["WriteAttributes"])


def test_docs_state_what_a_forged_key_really_costs() -> None:
    """A valid CRC32 is public knowledge: a forged key with one costs one GetItem (asserted by
    test_unknown_well_formed_key_is_denied_after_one_read); only malformed ones cost nothing."""
    for doc in ("README.md", "SECURITY.md", "layers/shared/apikeys/keys.py"):
        text = " ".join((ROOT / doc).read_text().split())
        assert not re.search(r"forged keys? costs? \**zero", text, re.IGNORECASE), doc
        assert not re.search(r"forged keys cost zero|reject typos and forgeries", text, re.IGNORECASE), doc
        assert re.search(r"forged key with a (correct|valid) (checksum|CRC32)[^.]*costs? one `?GetItem", text), doc


def _waf_transform(value: str, transformations: list[dict[str, Any]]) -> str:
    """AWS WAF's text transformations, as AWS documents them, in priority order."""
    for step in sorted(transformations, key=lambda t: t["Priority"]):
        kind = step["Type"]
        if kind == "LOWERCASE":
            value = value.lower()
        elif kind == "COMPRESS_WHITE_SPACE":
            # \f \t \n \r \v and non-breaking space become a space; runs of spaces become one.
            value = re.sub(" +", " ", re.sub("[\f\t\n\r\v\xa0]", " ", value))
        elif kind != "NONE":
            raise AssertionError(f"transformation {kind} not modelled here")
    return value


def test_the_waf_counts_a_key_not_a_spelling_of_its_header() -> None:
    """Issue 22 item 7: 141 spellings of one key's header (case of `Bearer`, 1-39 spaces or
    tabs), all authorized, were each counted apart (`TextTransformations: NONE`). The rule as
    deployed (translated by SAM) lowercases and compresses white space, so they are one client."""
    from apikeys import keys
    from tests.helpers.sam import translate

    acl = translate(load_template())["Resources"]["KeysApiWebAcl"]["Properties"]
    rules = {rule["Name"]: rule for rule in acl["Rules"]}
    (custom,) = rules["RatePerAuthorizationHeader"]["Statement"]["RateBasedStatement"]["CustomKeys"]
    transformations = custom["Header"]["TextTransformations"]
    key = keys.generate("ot_")
    spellings = {
        f"{bearer}{gap}{key}"
        for bearer in ("Bearer", "bearer", "BEARER", "bEaReR")
        for gap in [" " * n for n in range(1, 40)] + ["\t", "\t\t", " \t ", "\t \t"]
    }
    assert len(spellings) > 141
    aggregated = {_waf_transform(spelling, transformations) for spelling in spellings}
    counters = len(aggregated)  # a count, never the key, in a failure message
    assert counters == 1
    # Still one counter per key: another key is another client.
    assert _waf_transform(f"Bearer {keys.generate('ot_')}", transformations) not in aggregated


@pytest.mark.parametrize("function", ["authorizer", "list_keys", "create_key", "mcp", "whoami"])
@pytest.mark.parametrize("claim", ["email", "cognito:username", "custom:", "Sub", "sub "])
def test_account_claim_outside_the_templates_rule_fails_the_cold_start(
    function: str, claim: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 22 item 11: the runtime and the emulator accepted ACCOUNT_ID_CLAIM=email (a claim a
    user can set for themselves) where the template's AllowedPattern refuses it. Every function's
    cold start checks it by the template's own rule, and the emulator refuses the parameter."""
    from apikeys.config import ConfigError, get_settings
    from apikeys_local.template import TemplateError, load_module, load_stack

    monkeypatch.setenv("ACCOUNT_ID_CLAIM", claim)
    name = f"claim_cold_start_{function}"
    try:
        with pytest.raises(ConfigError, match="ACCOUNT_ID_CLAIM"):
            load_module(ROOT / "functions" / function / "app.py", name)
    finally:
        sys.modules.pop(name, None)
    with pytest.raises(ConfigError, match="ACCOUNT_ID_CLAIM"):
        get_settings()
    with pytest.raises(TemplateError, match="AccountIdClaim"):
        load_stack(ROOT, "unused", {"AccountIdClaim": claim})


def test_the_runtime_checks_the_account_claim_by_the_templates_own_pattern(monkeypatch: pytest.MonkeyPatch) -> None:
    from apikeys import config, container

    pattern = load_template()["Parameters"]["AccountIdClaim"]["AllowedPattern"]
    assert config.ACCOUNT_ID_CLAIM_RE.pattern == pattern
    for good in ("sub", "custom:account_id", "custom:T1"):
        monkeypatch.setenv("ACCOUNT_ID_CLAIM", good)
        container.reset()
        assert config.get_settings().account_id_claim == good


def test_a_stack_update_cannot_replace_the_user_pool_or_the_table() -> None:
    """Issue 22 item 11: replacing the user pool (a changed immutable property) gives every user
    a new `sub`, orphaning every account's keys, and CloudFormation would do it silently
    (Retain keeps the old pool, not its users' ids in the new one). A stack policy denies
    `Update:Replace` and `Update:Delete` of the pool and the table; the deploy instructions set
    it, and docs/user-pool-recovery.md says how to recover if a pool was replaced anyway."""
    policy = json.loads((ROOT / "stack-policy.json").read_text())
    resources = load_template()["Resources"]
    protected = {"ManagementUserPool": "AWS::Cognito::UserPool", "KeysTable": "AWS::DynamoDB::Table"}
    for name, kind in protected.items():
        assert resources[name]["Type"] == kind
    denies = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    denied = {
        (action, resource.removeprefix("LogicalResourceId/"))
        for s in denies
        for action in s["Action"]
        for resource in s["Resource"]
    }
    for name in protected:
        assert {("Update:Replace", name), ("Update:Delete", name)} <= denied, name
    # Everything else stays updatable: one Allow of every update on every resource.
    assert {"Effect": "Allow", "Principal": "*", "Action": "Update:*", "Resource": "*"} in policy["Statement"]
    deploy = " ".join((ROOT / "README.md").read_text().split("## Deploy", 1)[1].split("\n## ", 1)[0].split())
    assert "aws cloudformation set-stack-policy" in deploy and "file://stack-policy.json" in deploy
    runbook = " ".join((ROOT / "docs" / "user-pool-recovery.md").read_text().split())
    for step in ("ListUsers", "sub", "custom:account_id", "AccountIdClaim", "set-stack-policy"):
        assert step in runbook, step
