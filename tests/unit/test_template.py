"""template.yaml: the contract's logical IDs, routes, least privilege, and a clean cfn-lint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.support import ROOT, load_template

FUNCTIONS = {
    "CreateKeyFunction": ("functions/create_key/", "post", "/keys", "CognitoAuth"),
    "ListKeysFunction": ("functions/list_keys/", "get", "/keys", "CognitoAuth"),
    "DeleteKeyFunction": ("functions/delete_key/", "delete", "/keys/{key_id}", "CognitoAuth"),
    "WhoAmIFunction": ("functions/whoami/", "get", "/v1/whoami", "KeyAuthorizer"),
    "GetKeyFunction": ("functions/get_key/", "get", "/keys/{key_id}", "CognitoAuth"),
    "RenameKeyFunction": ("functions/rename_key/", "patch", "/keys/{key_id}", "CognitoAuth"),
    "RollKeyFunction": ("functions/roll_key/", "post", "/keys/{key_id}/roll", "CognitoAuth"),
    "ListScopesFunction": ("functions/list_scopes/", "get", "/scopes", "CognitoAuth"),
    "AuthorizerFunction": ("functions/authorizer/", None, None, None),
    "SetPlanFunction": ("functions/set_plan/", None, None, None),
    "KeyExpiryFunction": ("functions/key_expiry/", "stream", None, None),
    "AuditEventsFunction": ("functions/audit_events/", "stream", None, None),
    # Issue 14: GitHub's webhook and the public revocation API have no authorizer.
    "SecretScanningFunction": ("functions/secret_scanning/", "post", "/secret-scanning/github", None),
    "RevokeCredentialsFunction": ("functions/revoke_credentials/", "post", "/v1/credentials/revoke", None),
    "ListRevocationsFunction": ("functions/list_revocations/", "get", "/revocations", "CognitoAuth"),
    # Issue 23: a key's requests per UTC day.
    "KeyUsageFunction": ("functions/key_usage/", "get", "/keys/{key_id}/usage", "CognitoAuth"),
}


def resources() -> dict[str, Any]:
    return load_template()["Resources"]


def _actions(function: dict[str, Any]) -> set[str]:
    actions: set[str] = set()
    role = function["Properties"].get("Role")
    if role is not None:  # an explicit role (the stream consumers): its inline policies
        for policy in resources()[role["Fn::GetAtt"][0]]["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                actions.update(statement["Action"])
        return actions
    for policy in function["Properties"].get("Policies", []):
        if "Statement" not in policy:  # a SAM policy template, e.g. SQSSendMessagePolicy: scoped by SAM
            actions.update(f"template:{name}" for name in policy)
            continue
        for statement in policy["Statement"]:
            actions.update(statement["Action"])
    return actions


def test_functions_routes_and_authorizers_match_the_contract() -> None:
    res = resources()
    for logical_id, (code_uri, method, path, authorizer) in FUNCTIONS.items():
        fn = res[logical_id]
        assert fn["Type"] == "AWS::Serverless::Function"
        assert fn["Properties"]["CodeUri"] == code_uri
        assert fn["Properties"]["Handler"] == "app.lambda_handler"
        assert (ROOT / code_uri / "app.py").is_file()
        events = fn["Properties"].get("Events", {})
        if method is None:
            assert events == {}
            continue
        if method == "stream":
            [event] = events.values()
            assert event["Type"] == "DynamoDB"
            assert event["Properties"]["Stream"] == {"Fn::GetAtt": ["KeysTable", "StreamArn"]}
            assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
            continue
        [event] = events.values()
        assert event["Type"] == "Api"
        assert (event["Properties"]["Method"], event["Properties"]["Path"]) == (method, path)
        assert event["Properties"].get("Auth", {}).get("Authorizer") == authorizer
    tables = [r for r in res.values() if r["Type"] == "AWS::DynamoDB::Table"]
    assert len(tables) == 1


def test_least_privilege_per_function() -> None:
    res = resources()
    assert _actions(res["AuthorizerFunction"]) == {"dynamodb:GetItem", "dynamodb:UpdateItem"}
    assert _actions(res["ListKeysFunction"]) == {"dynamodb:Query"}
    assert _actions(res["WhoAmIFunction"]) == set()
    assert _actions(res["GetKeyFunction"]) == {"dynamodb:GetItem", "dynamodb:Query"}
    assert _actions(res["KeyUsageFunction"]) == {"dynamodb:Query"}
    stream = {"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}
    assert _actions(res["AuditEventsFunction"]) == {"events:PutEvents", "sqs:SendMessage", *stream}
    for name in FUNCTIONS:
        assert not any(a.endswith(":*") or a == "*" for a in _actions(res[name]))


def test_table_is_durable_and_encrypted() -> None:
    table = next(r for r in resources().values() if r["Type"] == "AWS::DynamoDB::Table")
    assert table["DeletionPolicy"] == "Retain"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_authorizer_cache_defaults_to_zero_and_gateway_responses_use_the_error_shape() -> None:
    template = load_template()
    assert template["Parameters"]["AuthorizerCacheTtl"]["Default"] == 0
    api = template["Resources"]["KeysApi"]["Properties"]
    key_auth = api["Auth"]["Authorizers"]["KeyAuthorizer"]
    assert key_auth["FunctionPayloadType"] == "TOKEN"
    assert key_auth["Identity"]["Header"] == "Authorization"
    assert key_auth["Identity"]["ReauthorizeEvery"] == {"Ref": "AuthorizerCacheTtl"}
    import json

    for name, status in (("UNAUTHORIZED", 401), ("ACCESS_DENIED", 403)):
        response = api["GatewayResponses"][name]
        assert response["StatusCode"] == status
        challenge = response["ResponseParameters"]["Headers"]["WWW-Authenticate"]
        # UNAUTHORIZED names the protected-resource metadata once PublicApiUrl is set (issue 21).
        assert challenge == "'Bearer'" or challenge["Fn::If"][2] == "'Bearer'"
        body = json.loads(response["ResponseTemplates"]["application/json"])
        assert set(body["error"]) == {"code", "message"}


def test_outputs_export_the_authorizer() -> None:
    outputs = load_template()["Outputs"]
    assert {"ApiUrl", "TableName", "AuthorizerFunctionArn"} <= set(outputs)
    assert "Export" in outputs["AuthorizerFunctionArn"]


def test_cfn_lint_reports_nothing() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), "template.yaml"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
    print("cfn-lint template.yaml: no errors, no warnings")


def test_every_checkov_skip_gives_a_written_reason() -> None:
    """A scanner finding is fixed or skipped on purpose; a skip without a reason is neither."""
    skips = 0
    for logical_id, resource in resources().items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert skip["id"].startswith("CKV_"), logical_id
            assert len(skip.get("comment", "").split()) >= 8, f"{logical_id} {skip['id']}: no reason given"
            skips += 1
    assert skips > 0
    print(f"checkov skips in template.yaml: {skips}, each with a written reason")


def test_api_access_logs_are_kept_and_name_no_header() -> None:
    res = resources()
    api = res["KeysApi"]["Properties"]
    assert api["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    assert "header" not in api["AccessLogSetting"]["Format"].lower()
    assert res["ApiAccessLogGroup"]["Properties"]["RetentionInDays"] >= 365


_GC_CHECK = (
    "import gc, importlib.util, sys; sys.path[:0] = [sys.argv[2]]; "
    "spec = importlib.util.spec_from_file_location('app', sys.argv[1]); "
    "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module); "
    "print(gc.isenabled())"
)


@pytest.mark.parametrize("name", [name for name, r in resources().items() if r["Type"] == "AWS::Serverless::Function"])
def test_every_function_resumes_garbage_collection_after_its_cold_start(name: str) -> None:
    """Handlers pause the cyclic GC while importing (apikeys.coldstart); one that forgot
    `coldstart.ready()` would run its whole container without it and leak cycles. One process
    per function, each its own test, so the fast tier spreads them over its workers."""
    app = ROOT / resources()[name]["Properties"]["CodeUri"] / "app.py"
    env = {"TABLE_NAME": "t", "AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-c", _GC_CHECK, str(app), str(ROOT / "layers" / "shared")],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert result.stdout.strip() == "True", f"{name}: {result.stdout}{result.stderr[-2000:]}"


def test_the_authorizer_never_imports_cryptography_and_secret_scanning_pins_it() -> None:
    """Issue 14: signature checks need `cryptography`, shipped with SecretScanningFunction only;
    the authorizer's import path (the cold start of every API) stays without it and pydantic."""
    probe = (
        "import sys; sys.path[:0] = ['layers/shared', 'functions/authorizer'];"
        "import app; print(sorted({m.split('.')[0] for m in sys.modules} & {'cryptography', 'pydantic'}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "[]"
    pinned = (ROOT / "functions/secret_scanning/requirements.txt").read_text().split()
    [pin] = [p for p in pinned if p.startswith("cryptography==")]
    assert "cryptography" not in (ROOT / "layers/shared/requirements.txt").read_text()
    assert pin in (ROOT / "requirements-local.txt").read_text().split()
