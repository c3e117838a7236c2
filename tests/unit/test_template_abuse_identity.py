"""template.yaml: what abuse costs (stage throttling, Gateway Responses, the optional WAF) and
the identity that owns every key (the user pool survives, the account claim is not writable)."""

from __future__ import annotations

import json
import re
from typing import Any

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


def test_waf_is_optional_off_by_default_and_rate_limits_ip_and_authorization() -> None:
    template = load_template()
    params, resources = template["Parameters"], template["Resources"]
    assert params["WafEnabled"]["Default"] == "false"
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
