"""Least privilege as deployed: template.yaml translated by SAM's own translator (no AWS calls),
then every function's effective permissions read from the roles SAM generates. Reading
`Policies` alone misses what SAM adds by itself, e.g. AWSLambdaDynamoDBExecutionRole (every
stream in the account) for a DynamoDB event."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.helpers.sam import translate
from tests.helpers.support import ROOT, load_template

TABLE = "KeysTable.Arn"
STREAM = "KeysTable.StreamArn"
STREAM_READS = {
    ("dynamodb:DescribeStream", STREAM, None),
    ("dynamodb:GetRecords", STREAM, None),
    ("dynamodb:GetShardIterator", STREAM, None),
    ("dynamodb:ListStreams", "${KeysTable.Arn}/stream/*", None),
}
FAILURES = ("sqs:SendMessage", "StreamFailuresQueue.Arn", None)
LAST_USED_ONLY = json.dumps(
    {
        "ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "sk", "last_used_at"]},
        "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE"]},
    },
    sort_keys=True,
)


def _table(*actions: str) -> set[tuple[str, str, str | None]]:
    return {(f"dynamodb:{a}", TABLE, None) for a in actions}


# (action, resource, condition) per function: everything each one may do besides its logs.
EXPECTED: dict[str, set[tuple[str, str, str | None]]] = {
    "CreateKeyFunction": _table("PutItem", "UpdateItem"),
    "ListKeysFunction": _table("Query"),
    "DeleteKeyFunction": _table("GetItem", "DeleteItem", "UpdateItem", "PutItem"),
    "SetPlanFunction": _table("Query", "UpdateItem", "PutItem"),
    "GetKeyFunction": _table("GetItem"),
    "RenameKeyFunction": _table("GetItem", "UpdateItem", "PutItem"),
    "RollKeyFunction": _table("Query", "PutItem", "UpdateItem", "DeleteItem"),
    "KeyExpiryFunction": _table("PutItem", "UpdateItem") | STREAM_READS | {FAILURES},
    "AuditEventsFunction": {
        (
            "events:PutEvents",
            "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${AuditEventBusName}",
            None,
        ),
        *STREAM_READS,
        FAILURES,
    },
    "AuthorizerFunction": {("dynamodb:GetItem", TABLE, None), ("dynamodb:UpdateItem", TABLE, LAST_USED_ONLY)},
    "WhoAmIFunction": set(),
    "ListScopesFunction": set(),
    "McpFunction": _table("Query", "GetItem"),
    # Revocation by a leak or a public report goes through DELETE's transaction: DELETE's grants.
    "SecretScanningFunction": _table("GetItem", "DeleteItem", "UpdateItem", "PutItem"),
    "RevokeCredentialsFunction": _table("GetItem", "DeleteItem", "UpdateItem", "PutItem"),
    "ListRevocationsFunction": _table("Query"),
}
# CloudWatch Logs only (logs:CreateLogGroup, CreateLogStream, PutLogEvents), as for any Lambda.
LOGS_ONLY = {"service-role/AWSLambdaBasicExecutionRole"}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return translate(load_template())


def _text(value: Any) -> str:
    """A resource or managed-policy ARN as readable text: GetAtt as X.Y, Sub as its string."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and list(value) == ["Fn::GetAtt"]:
        return ".".join(value["Fn::GetAtt"])
    if isinstance(value, dict) and list(value) == ["Fn::Sub"] and isinstance(value["Fn::Sub"], str):
        return str(value["Fn::Sub"])
    return json.dumps(value, sort_keys=True)


def _role(translated: dict[str, Any], function: str) -> dict[str, Any]:
    role = translated["Resources"][function]["Properties"]["Role"]
    assert list(role) == ["Fn::GetAtt"] and role["Fn::GetAtt"][1] == "Arn", f"{function}: role {role}"
    resource: dict[str, Any] = translated["Resources"][role["Fn::GetAtt"][0]]
    assert resource["Type"] == "AWS::IAM::Role"
    return resource


def effective(translated: dict[str, Any], function: str) -> tuple[set[str], set[tuple[str, str, str | None]]]:
    """The managed policies (by name) and the inline (action, resource, condition) grants."""
    props = _role(translated, function)["Properties"]
    managed = {_text(arn).split(":policy/", 1)[1] for arn in props.get("ManagedPolicyArns", [])}
    grants: set[tuple[str, str, str | None]] = set()
    for policy in props.get("Policies", []):
        statements = policy["PolicyDocument"]["Statement"]
        for statement in statements if isinstance(statements, list) else [statements]:
            assert statement["Effect"] == "Allow"
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            condition = json.dumps(statement["Condition"], sort_keys=True) if "Condition" in statement else None
            grants.update((a, _text(r), condition) for a in actions for r in resources)
    return managed, grants


def test_every_function_has_exactly_its_grants_as_translated_by_sam(translated: dict[str, Any]) -> None:
    functions = sorted(n for n, r in translated["Resources"].items() if r["Type"] == "AWS::Lambda::Function")
    assert functions == sorted(EXPECTED)
    for function in functions:
        managed, grants = effective(translated, function)
        assert managed == LOGS_ONLY, f"{function}: managed policies {managed}"
        assert grants == EXPECTED[function], f"{function}: {sorted(grants, key=str)}"
        assert not any(a == "*" or a.endswith(":*") or r == "*" for a, r, _ in grants), function


def test_stream_consumers_read_only_this_tables_stream(translated: dict[str, Any]) -> None:
    """Not AWSLambdaDynamoDBExecutionRole, which SAM attaches to a DynamoDB event's generated
    role and which reads every stream in the account."""
    mappings = [r for r in translated["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert {m["Properties"]["FunctionName"]["Ref"] for m in mappings} == {"KeyExpiryFunction", "AuditEventsFunction"}
    for mapping in mappings:
        assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["KeysTable", "StreamArn"]}
        function = mapping["Properties"]["FunctionName"]["Ref"]
        managed, grants = effective(translated, function)
        assert not any("DynamoDB" in name for name in managed), managed
        stream_actions = {a for a, _, _ in STREAM_READS}
        assert {g for g in grants if g[0] in stream_actions} == STREAM_READS


def test_authorizer_update_is_limited_to_last_used_at(translated: dict[str, Any]) -> None:
    _, grants = effective(translated, "AuthorizerFunction")
    [(_, _, condition)] = [g for g in grants if g[0] == "dynamodb:UpdateItem"]
    assert condition is not None
    parsed = json.loads(condition)
    assert set(parsed["ForAllValues:StringEquals"]["dynamodb:Attributes"]) == {"pk", "sk", "last_used_at"}
    assert parsed["StringEqualsIfExists"]["dynamodb:ReturnValues"] == ["NONE"]
    # What the code writes: the update names only last_used_at, and asks for nothing back.
    source = (ROOT / "layers/shared/apikeys/store.py").read_text()
    start = source.index("def touch_last_used")
    end = source.find("\n    def ", start)
    touch = source[start : end if end > 0 else None]
    assert 'UpdateExpression="SET last_used_at = :now"' in touch
    assert "ReturnValues" not in touch
