"""Alarms as deployed (issue 24): template.yaml translated by SAM, then each alarm's metric,
dimensions, threshold and action read from what CloudFormation would create. CloudWatch, SNS and
SQS cannot run here; the template is what a deploy gets, so it is what is checked."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.helpers.sam import translate
from tests.helpers.support import ROOT, load_template

TOPIC = [{"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}]
MANAGEMENT = {
    "CreateKeyFunction",
    "ListKeysFunction",
    "DeleteKeyFunction",
    "SetPlanFunction",
    "GetKeyFunction",
    "RenameKeyFunction",
    "RollKeyFunction",
    "ListScopesFunction",
    "ListRevocationsFunction",
    "KeyUsageFunction",
}
TABLE_OPERATIONS = {"GetItem", "Query", "UpdateItem", "TransactWriteItems"}

# alarm -> (namespace, metric, {dimension: value}, statistic, threshold) for single-metric alarms.
SINGLE: dict[str, tuple[str, str, dict[str, Any], str, Any]] = {
    "AuthorizerFailuresAlarm": ("ApiKeys", "AuthorizerFailed", {}, "Sum", 1),
    "AuthorizerLatencyAlarm": (
        "AWS/Lambda",
        "Duration",
        {"FunctionName": {"Ref": "AuthorizerFunction"}},
        "p99",
        {"Ref": "AuthorizerP99ThresholdMs"},
    ),
    "ApiServerErrorsAlarm": (
        "AWS/ApiGateway",
        "5XXError",
        {"ApiName": {"Ref": "AWS::StackName"}, "Stage": {"Ref": "StageName"}},
        "Sum",
        5,
    ),
    "ApiServerErrorRateAlarm": (
        "AWS/ApiGateway",
        "5XXError",
        {"ApiName": {"Ref": "AWS::StackName"}, "Stage": {"Ref": "StageName"}},
        "Average",
        0.05,
    ),
    "KeyExpiryIteratorAgeAlarm": (
        "AWS/Lambda",
        "IteratorAge",
        {"FunctionName": {"Ref": "KeyExpiryFunction"}},
        "Maximum",
        300000,
    ),
    "AuditEventsIteratorAgeAlarm": (
        "AWS/Lambda",
        "IteratorAge",
        {"FunctionName": {"Ref": "AuditEventsFunction"}},
        "Maximum",
        300000,
    ),
    "StreamFailuresAlarm": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": {"Fn::GetAtt": ["StreamFailuresQueue", "QueueName"]}},
        "Maximum",
        1,
    ),
    "AuditPublishFailuresAlarm": ("ApiKeys", "AuditPublishFailed", {"service": "apikeys"}, "Sum", 5),
    "KeyUsageErrorsAlarm": ("AWS/Lambda", "Errors", {"FunctionName": {"Ref": "KeyUsageFunction"}}, "Sum", 3),
    "ExpiryNoticesFailuresAlarm": (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
        {"QueueName": {"Fn::GetAtt": ["ExpiryNoticesFailuresQueue", "QueueName"]}},
        "Maximum",
        1,
    ),
}
THROTTLES_ALARMS = (
    "ManagementThrottlesAlarm",
    "KeyPathThrottlesAlarm",
    "ExpiryNoticesThrottlesAlarm",
    "UsageThrottlesAlarm",
)


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return translate(load_template())


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^a-z0-9 -]", "", heading.strip().lower()).replace(" ", "-")


def _alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: r["Properties"] for k, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def _math(alarm: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], str]]:
    """A metric-math alarm's metrics: (namespace, metric, dimensions, stat)."""
    return [
        (
            q["MetricStat"]["Metric"]["Namespace"],
            q["MetricStat"]["Metric"]["MetricName"],
            {d["Name"]: d["Value"] for d in q["MetricStat"]["Metric"].get("Dimensions", [])},
            q["MetricStat"]["Stat"],
        )
        for q in alarm["Metrics"]
        if "MetricStat" in q
    ]


def test_every_alarm_says_what_it_means_and_notifies_the_topic(translated: dict[str, Any]) -> None:
    alarms = _alarms(translated)
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", (ROOT / "docs/operations.md").read_text(), re.M)}
    assert len(alarms) == 18
    for name, alarm in alarms.items():
        description = alarm["AlarmDescription"]
        assert "\n" not in description and len(description) <= 1024, name
        [anchor] = re.findall(r"docs/operations\.md#([a-z0-9-]+)", description)
        assert anchor in anchors, f"{name}: no section #{anchor} in docs/operations.md"
        assert alarm["AlarmActions"] == TOPIC and alarm["OKActions"] == TOPIC, name
        assert alarm["TreatMissingData"] == "notBreaching", name


def test_single_metric_alarms_read_the_metric_they_name(translated: dict[str, Any]) -> None:
    alarms = _alarms(translated)
    for name, (namespace, metric, dims, stat, threshold) in SINGLE.items():
        alarm = alarms[name]
        assert (alarm["Namespace"], alarm["MetricName"]) == (namespace, metric), name
        assert {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])} == dims, name
        assert alarm.get("ExtendedStatistic", alarm.get("Statistic")) == stat, name
        assert alarm["Threshold"] == threshold, name


def test_every_function_of_the_stack_is_in_a_throttles_alarm_and_management_ones_in_the_errors_alarm(
    translated: dict[str, Any],
) -> None:
    functions = {k for k, r in translated["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    alarms = _alarms(translated)
    throttled = [
        dims["FunctionName"]["Ref"]
        for name in THROTTLES_ALARMS
        for ns, metric, dims, stat in _math(alarms[name])
        if (ns, metric, stat) == ("AWS/Lambda", "Throttles", "Sum")
    ]
    assert sorted(throttled) == sorted(functions)  # each once, none missing (a new function must join one)
    errors = {dims["FunctionName"]["Ref"] for *_, dims, _ in _math(alarms["ManagementErrorsAlarm"])}
    errors.add(next(d["Value"]["Ref"] for d in alarms["KeyUsageErrorsAlarm"]["Dimensions"]))
    assert errors == MANAGEMENT and functions >= MANAGEMENT
    for alarm in alarms.values():
        assert len([q for q in alarm.get("Metrics", []) if "MetricStat" in q]) <= 10  # CloudWatch's hard limit


def test_table_alarms_cover_every_operation_the_code_calls(translated: dict[str, Any]) -> None:
    alarms = _alarms(translated)
    for name, metric in (("TableSystemErrorsAlarm", "SystemErrors"), ("TableThrottlesAlarm", "ThrottledRequests")):
        series = _math(alarms[name])
        assert {(ns, m) for ns, m, _, _ in series} == {("AWS/DynamoDB", metric)}
        assert all(d["TableName"] == {"Ref": "KeysTable"} for _, _, d, _ in series)
        assert {d["Operation"] for _, _, d, _ in series} == TABLE_OPERATIONS
    revocations = _math(alarms["KeyRevocationsAlarm"])
    assert {m for _, m, _, _ in revocations} == {"LeakedKeyRevoked", "ReportedKeyRevoked"}
    assert alarms["KeyRevocationsAlarm"]["Threshold"] == {"Ref": "KeyRevocationsAlarmThreshold"}


def test_no_stream_record_vanishes_silently(translated: dict[str, Any]) -> None:
    """Every event source mapping retries a bounded number of times, splits a failing batch to
    find the bad record, then sends it to an encrypted queue whose depth is alarmed."""
    resources = translated["Resources"]
    mappings = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    consumers = {m["FunctionName"]["Ref"] for m in mappings}
    assert consumers == {"KeyExpiryFunction", "AuditEventsFunction"}
    alarmed = _alarms(translated)["StreamFailuresAlarm"]["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
    for mapping in mappings:
        assert 0 <= mapping["MaximumRetryAttempts"] <= 10000 and mapping["BisectBatchOnFunctionError"] is True
        queue = mapping["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
        assert queue == alarmed and resources[queue]["Type"] == "AWS::SQS::Queue"
        assert resources[queue]["Properties"]["SqsManagedSseEnabled"] is True


def test_an_empty_alarm_topic_arn_creates_an_encrypted_topic_with_an_optional_email(translated: dict[str, Any]) -> None:
    resources, conditions = translated["Resources"], translated["Conditions"]
    assert conditions["CreateAlarmTopic"] == {"Fn::Equals": [{"Ref": "AlarmTopicArn"}, ""]}
    assert resources["AlarmTopic"]["Condition"] == resources["AlarmTopicKey"]["Condition"] == "CreateAlarmTopic"
    assert resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    statements = resources["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    assert any(
        s["Principal"].get("Service") == "cloudwatch.amazonaws.com" for s in statements
    )  # or alarms cannot publish
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "SubscribeAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": {"Ref": "AlarmTopic"},
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    assert {"Fn::Condition": "CreateAlarmTopic"} in conditions["SubscribeAlarmEmail"]["Fn::And"]


def test_the_authorizer_logs_where_its_metric_filters_read(translated: dict[str, Any]) -> None:
    resources = translated["Resources"]
    assert resources["AuthorizerFunction"]["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": "AuthorizerLogGroup"}}
    filters = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Logs::MetricFilter"]
    assert filters and all(f["LogGroupName"] == {"Ref": "AuthorizerLogGroup"} for f in filters)


def test_expiry_notices_run_daily_from_the_scheduler_and_no_failed_run_vanishes(translated: dict[str, Any]) -> None:
    """Issue 24 item 5: EventBridge Scheduler invokes ExpiryNoticesFunction once a day with the
    scheduled time (nothing keeps time in a function); what the Scheduler cannot deliver and what
    fails after Lambda's retries lands in one encrypted queue whose depth is alarmed."""
    resources = translated["Resources"]
    [schedule] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Scheduler::Schedule"]
    assert re.fullmatch(r"cron\(\d{1,2} \d{1,2} \* \* \? \*\)", schedule["ScheduleExpression"])  # once a day
    assert schedule["ScheduleExpressionTimezone"] == "UTC"  # the notices count UTC days
    assert schedule["GroupName"] == {"Ref": "ExpiryNoticesScheduleGroup"}  # a group per stack: no name clash
    target = schedule["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["ExpiryNoticesFunction", "Arn"]}
    assert json.loads(target["Input"]) == {"scheduled_time": "<aws.scheduler.scheduled-time>"}
    queue = {"Fn::GetAtt": ["ExpiryNoticesFailuresQueue", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": queue}
    assert 0 < target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400  # a day-old run is no longer the day's
    role = resources[target["RoleArn"]["Fn::GetAtt"][0]]["Properties"]
    granted = {
        (s["Action"], json.dumps(s["Resource"], sort_keys=True))
        for policy in role["Policies"]
        for s in policy["PolicyDocument"]["Statement"]
    }
    assert granted == {
        ("lambda:InvokeFunction", json.dumps(target["Arn"])),
        ("sqs:SendMessage", json.dumps(queue)),
    }

    [invoke_config] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventInvokeConfig"]
    assert invoke_config["FunctionName"] == {"Ref": "ExpiryNoticesFunction"}
    assert invoke_config["DestinationConfig"]["OnFailure"]["Destination"] == queue
    assert invoke_config["MaximumRetryAttempts"] >= 1  # a run cut short by its deadline continues on retry
    assert resources["ExpiryNoticesFailuresQueue"]["Properties"]["SqsManagedSseEnabled"] is True
    alarm = _alarms(translated)["ExpiryNoticesFailuresAlarm"]
    assert alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["ExpiryNoticesFailuresQueue", "QueueName"]}}
    ]

    function = resources["ExpiryNoticesFunction"]["Properties"]
    assert function["Environment"]["Variables"]["EXPIRY_NOTICE_DAYS"] == {"Ref": "ExpiryNoticeDays"}
    assert translated["Parameters"]["ExpiryNoticeDays"]["Default"] == "7"


def test_every_function_invoked_by_an_event_source_has_somewhere_for_its_failures(translated: dict[str, Any]) -> None:
    """A stream mapping's OnFailure destination, or for an asynchronous invoker (the Scheduler)
    an EventInvokeConfig's; each of those queues is alarmed on its depth."""
    resources = translated["Resources"]
    alarmed = {
        alarm["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for alarm in _alarms(translated).values()
        if alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    destinations: dict[str, str] = {}
    for r in resources.values():
        props = r.get("Properties", {})
        if r["Type"] in ("AWS::Lambda::EventSourceMapping", "AWS::Lambda::EventInvokeConfig"):
            queue = props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
            destinations[props["FunctionName"]["Ref"]] = queue
    invoked = {
        m["Properties"]["FunctionName"]["Ref"]
        for m in resources.values()
        if m["Type"] == "AWS::Lambda::EventSourceMapping"
    }
    invoked |= {
        s["Properties"]["Target"]["Arn"]["Fn::GetAtt"][0]
        for s in resources.values()
        if s["Type"] == "AWS::Scheduler::Schedule"
    }
    assert invoked == {"KeyExpiryFunction", "AuditEventsFunction", "ExpiryNoticesFunction"}
    assert set(destinations) == invoked
    assert set(destinations.values()) <= alarmed


@pytest.mark.parametrize("value", ["7", "7,1", "30,7,1", "365", "1,1", "0", "366", "7,", " 7", "7, 1", "07", "", "-1"])
def test_the_notice_days_parameter_allows_exactly_what_the_function_accepts(
    value: str, translated: dict[str, Any]
) -> None:
    """CloudFormation refuses what the function would refuse at its cold start, and nothing more."""
    from apikeys.config import ConfigError, parse_notice_days

    pattern = translated["Parameters"]["ExpiryNoticeDays"]["AllowedPattern"]
    try:
        parse_notice_days(value)
        accepted = True
    except ConfigError:
        accepted = False
    assert bool(re.fullmatch(pattern, value)) == accepted, value
