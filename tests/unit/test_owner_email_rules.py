"""docs/leaks.md "The customer is told" (the README links it as the owner's email rule): the
EventBridge rules and SNS topic that email the owner when a key is revoked as leaked or reported,
and before a key expires (issue 24 item 5). A rule that reads a field the event does not carry
mails an empty placeholder, and a rule the topic's policy does not name is silently dropped by
SNS: both are checked here, against events the code really writes."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest

from apikeys.config import get_settings
from apikeys_local.template import parse_template
from tests.helpers.support import ROOT, Api, LambdaContext, load_function


def _email_snippet() -> dict[str, Any]:
    text = (ROOT / "docs" / "leaks.md").read_text()
    start = text.index("\n## The customer is told\n")
    section = text[start : text.index("\n## ", start + 1)]
    [block] = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    snippet: dict[str, Any] = parse_template(block)
    return snippet


def _details_the_code_writes(api: Api) -> dict[str, dict[str, Any]]:
    """detail-type -> the detail of one event of it, read from the audit outbox."""
    api.set_plan("acct-a", "pro")
    expiring = api.create("acct-a", "Trial", expires_in_days=7).body
    assert load_function("expiry_notices").lambda_handler({}, LambdaContext())["sent"] == 1
    assert api.revoke_credentials({"credentials": [expiring["key"]]}).status == 202
    items = boto3.client("dynamodb").scan(TableName=get_settings().table_name)["Items"]
    return {
        item["detail_type"]["S"]: json.loads(item["detail"]["S"])
        for item in items
        if item["pk"]["S"].startswith("EVENT#")
    }


@pytest.mark.engines("moto")
def test_each_email_rule_reads_only_fields_of_the_event_it_matches(api: Api) -> None:
    snippet = _email_snippet()
    rules = {name: r["Properties"] for name, r in snippet.items() if r["Type"] == "AWS::Events::Rule"}
    details = _details_the_code_writes(api)
    matched = set()
    for name, rule in rules.items():
        [detail_type] = rule["EventPattern"]["detail-type"]
        assert rule["EventPattern"]["source"] == ["apikeys"], name  # AuditEventSource's default
        detail = details[detail_type]
        for wanted, allowed in rule["EventPattern"].get("detail", {}).items():
            assert wanted in detail and set(allowed) <= {"leaked", "reported"}, name
        [target] = rule["Targets"]
        paths = target["InputTransformer"]["InputPathsMap"]
        for placeholder, path in paths.items():
            field = path.removeprefix("$.detail.")
            assert path.startswith("$.detail.") and field in detail, f"{name}: <{placeholder}> reads {path}"
        used = set(re.findall(r"<(\w+)>", target["InputTransformer"]["InputTemplate"]))
        assert used == set(paths), name
        matched.add(detail_type)
    assert matched == {"ApiKeyRevoked", "ApiKeyExpiring"}


def test_the_topic_admits_exactly_the_rules_that_target_it() -> None:
    snippet = _email_snippet()
    [topic] = [name for name, r in snippet.items() if r["Type"] == "AWS::SNS::Topic"]
    [policy] = [r["Properties"] for r in snippet.values() if r["Type"] == "AWS::SNS::TopicPolicy"]
    [statement] = policy["PolicyDocument"]["Statement"]
    admitted = {arn["Fn::GetAtt"][0] for arn in statement["Condition"]["ArnEquals"]["aws:SourceArn"]}
    targeting = {
        name
        for name, r in snippet.items()
        if r["Type"] == "AWS::Events::Rule" and r["Properties"]["Targets"][0]["Arn"] == {"Ref": topic}
    }
    assert admitted == targeting == {"LeakedKeyRule", "ExpiringKeyRule"}
    assert policy["Topics"] == [{"Ref": topic}] and statement["Principal"] == {"Service": "events.amazonaws.com"}
