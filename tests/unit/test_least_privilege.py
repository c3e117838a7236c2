"""Least privilege as deployed: template.yaml translated by SAM's own translator (no AWS calls),
then every function's effective permissions read from the roles SAM generates, and the
authorizer run in process to show every call it makes is one its translated role allows.
Reading `Policies` alone misses what SAM adds by itself, e.g. AWSLambdaDynamoDBExecutionRole
(every stream in the account) for a DynamoDB event."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from apikeys import keys
from apikeys.config import get_settings
from tests.helpers.sam import translate
from tests.helpers.support import Api, load_template

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
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ACCOUNT#*"]},
        "ForAllValues:StringEquals": {"dynamodb:Attributes": ["pk", "sk", "last_used_at"]},
        "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE"]},
    },
    sort_keys=True,
)
# The day's usage count (issue 23): `ttl` and `n_<key id>` on an account partition, nothing back.
USAGE_COUNTS = json.dumps(
    {
        "ForAllValues:StringLike": {
            "dynamodb:LeadingKeys": ["ACCOUNT#*"],
            "dynamodb:Attributes": ["pk", "sk", "ttl", "n_key_*"],
        },
        "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE"]},
    },
    sort_keys=True,
)
DIGESTS_ONLY = json.dumps({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["DIGEST#*"]}}, sort_keys=True)
ACCOUNTS_ONLY = json.dumps({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["ACCOUNT#*"]}}, sort_keys=True)


def _leading(*patterns: str) -> str:
    return json.dumps({"ForAllValues:StringLike": {"dynamodb:LeadingKeys": list(patterns)}}, sort_keys=True)


EXPIRES_ON_INDEX = "${KeysTable.Arn}/index/ExpiresOn"


def _table(*actions: str) -> set[tuple[str, str, str | None]]:
    return {(f"dynamodb:{a}", TABLE, None) for a in actions}


# (action, resource, condition) per function: everything each one may do besides its logs.
EXPECTED: dict[str, set[tuple[str, str, str | None]]] = {
    "CreateKeyFunction": _table("PutItem", "UpdateItem"),
    "ListKeysFunction": _table("Query"),
    "DeleteKeyFunction": _table("GetItem", "DeleteItem", "UpdateItem", "PutItem"),
    "SetPlanFunction": _table("Query", "UpdateItem", "PutItem"),
    # Issue 23: the Query reads the account's usage for the key object's requests_30d.
    "GetKeyFunction": _table("GetItem", "Query"),
    "RenameKeyFunction": _table("GetItem", "UpdateItem", "PutItem", "Query"),
    # The key and its usage, both by Query, and only in account partitions.
    "KeyUsageFunction": {("dynamodb:Query", TABLE, ACCOUNTS_ONLY)},
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
    "AuthorizerFunction": {
        ("dynamodb:GetItem", TABLE, DIGESTS_ONLY),
        ("dynamodb:UpdateItem", TABLE, LAST_USED_ONLY),
        ("dynamodb:UpdateItem", TABLE, USAGE_COUNTS),
    },
    "WhoAmIFunction": set(),
    "ListScopesFunction": set(),
    "McpFunction": _table("Query", "GetItem"),
    # Revocation by a leak or a public report goes through DELETE's transaction: DELETE's grants.
    "SecretScanningFunction": _table("GetItem", "DeleteItem", "UpdateItem", "PutItem"),
    "RevokeCredentialsFunction": _table("GetItem", "DeleteItem", "UpdateItem", "PutItem"),
    "ListRevocationsFunction": _table("Query"),
    # OAuth (issue 21): clients, codes, refresh tokens; a connection's key is created, rolled
    # and (on refresh-token reuse or revocation) deleted through the keys' own transactions.
    "OAuthFunction": _table("GetItem", "Query", "PutItem", "UpdateItem", "DeleteItem"),
    # Reads the request and the account's keys; one transaction answers it and stores the code.
    "OAuthConsentFunction": _table("GetItem", "Query", "PutItem", "UpdateItem"),
    # Issue 24 item 5: a day's keys from the sparse index, each key and its marker read, one
    # transaction (the marker and the outbox event put, the key checked); failed runs queued.
    "ExpiryNoticesFunction": {
        ("dynamodb:Query", EXPIRES_ON_INDEX, None),
        ("dynamodb:GetItem", TABLE, _leading("ACCOUNT#*", "EXPIRING#*")),
        ("dynamodb:PutItem", TABLE, _leading("EXPIRING#*", "EVENT#*")),
        ("dynamodb:ConditionCheckItem", TABLE, _leading("ACCOUNT#*")),
        ("sqs:SendMessage", "ExpiryNoticesFailuresQueue.Arn", None),
    },
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


def test_authorizer_updates_are_limited_to_last_used_at_and_the_usage_counts(translated: dict[str, Any]) -> None:
    _, grants = effective(translated, "AuthorizerFunction")
    conditions = [json.loads(c) for a, _, c in grants if a == "dynamodb:UpdateItem" and c is not None]
    assert len(conditions) == len([g for g in grants if g[0] == "dynamodb:UpdateItem"]) == 2
    last_used, counts = sorted(conditions, key=lambda c: "ForAllValues:StringEquals" not in c)
    assert set(last_used["ForAllValues:StringEquals"]["dynamodb:Attributes"]) == {"pk", "sk", "last_used_at"}
    assert set(counts["ForAllValues:StringLike"]["dynamodb:Attributes"]) == {"pk", "sk", "ttl", "n_key_*"}
    for condition in (last_used, counts):
        assert condition["StringEqualsIfExists"]["dynamodb:ReturnValues"] == ["NONE"]
        assert condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["ACCOUNT#*"]


def test_the_usage_count_write_is_allowed_only_as_an_add_of_counts_on_an_account_partition(
    translated: dict[str, Any],
) -> None:
    """Issue 23: the authorizer's policy grows by the one write usage needs, as translated. The
    same grant cannot rewrite a key, an account's plan or count, a digest item or the outbox,
    nor return an item. (It can set `ttl` or an `n_key_*` attribute on any item of an account
    partition: IAM cannot tell a usage item from a key item of the same partition; see the
    template's comment.)"""
    table = get_settings().table_name

    def update(pk: str, sk: str, expression: str, names: dict[str, str], **more: Any) -> dict[str, Any]:
        key = {"pk": {"S": pk}, "sk": {"S": sk}}
        return {"TableName": table, "Key": key, "UpdateExpression": expression, "ExpressionAttributeNames": names,
                **more}  # fmt: skip

    names = {"#ttl": "ttl", "#n0": "n_key_0SXg9cFh1a4Zb0qR7mWt", "#n1": "n_key_0SXg9cFh1a4Zb0qR7mWu"}
    add = "SET #ttl = :ttl ADD #n0 :n0, #n1 :n1"
    assert _authorizer_may(translated, "UpdateItem", update("ACCOUNT#acct-a", "USAGE#2026-12-03", add, names))
    for pk, sk in (("DIGEST#" + "a" * 64, "DIGEST"), ("EVENT#e", "EVENT")):
        assert not _authorizer_may(translated, "UpdateItem", update(pk, sk, add, names)), pk
    for expression, more_names in (
        ("SET #p = :p", {"#p": "plan"}),
        ("ADD #c :one", {"#c": "key_count"}),
        ("SET #d = :d", {"#d": "digest"}),
        ("SET #n0 = :n0, #s = :s", {"#s": "scopes"}),
        ("ADD #x :n", {"#x": "n_not_a_key"}),
    ):
        params = update("ACCOUNT#acct-a", "USAGE#2026-12-03", expression, {**names, **more_names})
        assert not _authorizer_may(translated, "UpdateItem", params), expression
    returning = update("ACCOUNT#acct-a", "USAGE#2026-12-03", add, names, ReturnValues="ALL_NEW")
    assert not _authorizer_may(translated, "UpdateItem", returning)


def _authorizer_may(translated: dict[str, Any], action: str, params: dict[str, Any]) -> bool:
    _, grants = effective(translated, "AuthorizerFunction")
    return any(_allows(c, params) for a, r, c in grants if a == f"dynamodb:{action}" and r == TABLE)


def test_the_authorizer_reads_only_digest_items_and_writes_only_key_partitions(translated: dict[str, Any]) -> None:
    """Issue 22 item 8. Before, its role could GetItem any item (an account's keys, names,
    notices, the audit outbox) and SET last_used_at on a digest item or an outbox item."""
    table = get_settings().table_name

    def key(pk: str, sk: str) -> dict[str, Any]:
        return {"TableName": table, "Key": {"pk": {"S": pk}, "sk": {"S": sk}}}

    assert _authorizer_may(translated, "GetItem", key("DIGEST#" + "a" * 64, "DIGEST"))
    for pk, sk in (("ACCOUNT#acct-a", "KEY#key_x"), ("ACCOUNT#acct-a", "ACCOUNT"), ("EVENT#e", "EVENT")):
        assert not _authorizer_may(translated, "GetItem", key(pk, sk)), pk

    touch = {"UpdateExpression": "SET last_used_at = :now", "ConditionExpression": "attribute_exists(pk)"}
    assert _authorizer_may(translated, "UpdateItem", {**key("ACCOUNT#acct-a", "KEY#key_x"), **touch})
    for pk, sk in (("DIGEST#" + "a" * 64, "DIGEST"), ("EVENT#e", "EVENT")):
        assert not _authorizer_may(translated, "UpdateItem", {**key(pk, sk), **touch}), pk
    rewrite = {**key("ACCOUNT#acct-a", "KEY#key_x"), "UpdateExpression": "SET scopes = :s"}
    assert not _authorizer_may(translated, "UpdateItem", rewrite)


# Words of DynamoDB's expression syntax, as opposed to attribute names.
_EXPRESSION_WORDS = {
    "SET", "REMOVE", "ADD", "DELETE", "AND", "OR", "NOT", "BETWEEN", "IN",
    "attribute_exists", "attribute_not_exists", "attribute_type", "begins_with", "contains", "size",
    "if_not_exists", "list_append",
}  # fmt: skip


def _attributes(params: dict[str, Any]) -> set[str]:
    """The top-level attributes a DynamoDB request names (IAM's `dynamodb:Attributes`): its key
    and every attribute of its expressions, `#name` placeholders resolved."""
    names = set(params.get("Key", {}))
    aliases = params.get("ExpressionAttributeNames", {})
    for field in ("UpdateExpression", "ConditionExpression", "ProjectionExpression"):
        for word in re.findall(r"[#:]?[A-Za-z_][A-Za-z0-9_]*", params.get(field, "")):
            if not word.startswith(":") and word not in _EXPRESSION_WORDS:
                names.add(aliases.get(word, word))
    return names


def _allows(condition: str | None, params: dict[str, Any]) -> bool:
    """Whether an IAM condition of the kinds this template uses allows the request."""
    if condition is None:
        return True
    for operator, keys_values in json.loads(condition).items():
        for key, allowed in keys_values.items():
            if (operator, key) == ("ForAllValues:StringEquals", "dynamodb:Attributes"):
                if not _attributes(params) <= set(allowed):
                    return False
            elif (operator, key) == ("ForAllValues:StringLike", "dynamodb:Attributes"):
                if not all(any(fnmatch.fnmatchcase(a, p) for p in allowed) for a in _attributes(params)):
                    return False
            elif (operator, key) == ("ForAllValues:StringLike", "dynamodb:LeadingKeys"):
                leading = params["Key"]["pk"]["S"]
                if not any(fnmatch.fnmatchcase(leading, pattern) for pattern in allowed):
                    return False
            elif (operator, key) == ("StringEqualsIfExists", "dynamodb:ReturnValues"):
                if "ReturnValues" in params and params["ReturnValues"] not in allowed:
                    return False
            else:
                raise AssertionError(f"no evaluator for IAM condition {operator} {key}")
    return True


@contextmanager
def _sent_requests() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """(operation, parameters) of every DynamoDB request the container's client makes meanwhile,
    as the caller wrote them (before botocore serializes them)."""
    from apikeys.store import dynamodb_client

    sent: list[tuple[str, dict[str, Any]]] = []

    def record(model: Any, params: dict[str, Any], **_: Any) -> None:
        sent.append((model.name, params))

    client = dynamodb_client()
    client.meta.events.register("before-parameter-build.dynamodb", record)
    try:
        yield sent
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb", record)


@pytest.mark.engines("moto")
def test_every_call_the_authorizer_makes_is_one_its_translated_role_allows(
    api: Api, translated: dict[str, Any]
) -> None:
    """The authorizer run in process, its DynamoDB requests recorded: each names an action its
    role grants, on this table, within the grant's condition. Its two writes set only what they
    own (the day's usage count, `last_used_at`) and ask for nothing back."""
    _, grants = effective(translated, "AuthorizerFunction")
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a").body
    key = created["key"]
    with _sent_requests() as sent:
        assert api.bearer(key) is not None  # waits for the last-used write off the request path
        assert api.bearer(keys.generate("ot_")) is None  # well formed, unknown

    # The read, the day's count (on the request: the account's first in this container), last used.
    assert [name for name, _ in sent] == ["GetItem", "UpdateItem", "UpdateItem", "GetItem"]
    for name, params in sent:
        assert params["TableName"] == get_settings().table_name, name
        conditions = [c for a, r, c in grants if a == f"dynamodb:{name}" and r == TABLE]
        assert conditions, f"{name}: not granted to the authorizer"
        assert any(_allows(c, params) for c in conditions), f"{name} {params} is outside {conditions}"
    count, touch = [params for name, params in sent if name == "UpdateItem"]
    assert _attributes(touch) - set(touch["Key"]) <= {"last_used_at"} and "ReturnValues" not in touch
    assert re.fullmatch(r"SET last_used_at = :\w+", touch["UpdateExpression"])
    assert count["Key"]["sk"]["S"].startswith("USAGE#") and "ReturnValues" not in count
    assert re.fullmatch(r"SET #ttl = :ttl ADD #n0 :n0", count["UpdateExpression"])
    assert _attributes(count) - set(count["Key"]) == {"ttl", f"n_{created['id']}"}


def _requests_as_iam_sees_them(name: str, params: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(action, resource, params) IAM evaluates for one call: a transaction is one action per item."""
    table = get_settings().table_name
    if name != "TransactWriteItems":
        index = params.get("IndexName")
        return [(name, f"${{KeysTable.Arn}}/index/{index}" if index else TABLE, params)]
    evaluated = []
    for entry in params["TransactItems"]:
        [(kind, spec)] = entry.items()
        assert spec["TableName"] == table
        key = spec.get("Key") or {"pk": spec["Item"]["pk"], "sk": spec["Item"]["sk"]}
        action = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}.get(kind, "ConditionCheckItem")
        evaluated.append((action, TABLE, {**spec, "Key": key}))
    return evaluated


@pytest.mark.engines("moto")
def test_every_call_the_expiry_notices_make_is_one_their_translated_role_allows(
    api: Api, translated: dict[str, Any]
) -> None:
    """ExpiryNoticesFunction run in process on a day it warns a key: every DynamoDB request (each
    item of its transaction on its own, as IAM evaluates them) is within its grants."""
    from tests.helpers.support import LambdaContext, load_function

    _, grants = effective(translated, "ExpiryNoticesFunction")
    api.set_plan("acct-a", "pro")
    assert api.create("acct-a", "Trial", expires_in_days=7).status == 201
    with _sent_requests() as sent:
        assert load_function("expiry_notices").lambda_handler({}, LambdaContext())["sent"] == 1

    assert {name for name, _ in sent} == {"Query", "GetItem", "TransactWriteItems"}
    for name, params in sent:
        for action, resource, evaluated in _requests_as_iam_sees_them(name, params):
            conditions = [c for a, r, c in grants if a == f"dynamodb:{action}" and r == resource]
            assert conditions, f"{action} on {resource}: not granted to ExpiryNoticesFunction"
            assert any(_allows(c, evaluated) for c in conditions), f"{action} {evaluated} is outside {conditions}"
