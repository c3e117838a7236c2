"""One source for metric names (issue 24 item 3). Every metric an alarm or the dashboard reads,
taken from the template as SAM translates it, must be one the stack really produces:

- `ApiKeys` metrics either emitted by the code (a literal name passed to `wrote()` or `count()`,
  under the namespace `make_metrics()` gives and the `service` dimension Powertools adds), or made
  by one of the stack's metric filters from a log line the code really writes;
- `AWS/*` metrics a service publishes for a resource of this stack (a Lambda function, the table
  with an operation the store calls, the queue, the REST API and its stage).

A renamed metric (in the code or in the template) then fails here instead of never alarming."""

from __future__ import annotations

import ast
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.helpers.sam import translate
from tests.helpers.support import ROOT, Api, load_template, token_event

CODE = [ROOT / "functions", ROOT / "layers" / "shared" / "apikeys"]
EMITTERS = {"wrote", "count"}  # handler.wrote(name, ...), observability.count(name, ...)

# What each AWS namespace publishes that the stack may read, and the resource type each
# dimension names ("operation": a DynamoDB operation the store calls).
AWS_METRICS: dict[str, tuple[set[str], dict[str, str]]] = {
    "AWS/Lambda": (
        {"Invocations", "Errors", "Throttles", "Duration", "IteratorAge"},
        {"FunctionName": "AWS::Lambda::Function"},
    ),
    "AWS/DynamoDB": (
        {"ConsumedReadCapacityUnits", "ConsumedWriteCapacityUnits", "ReadThrottleEvents", "WriteThrottleEvents"}
        | {"ThrottledRequests", "SystemErrors"},
        {"TableName": "AWS::DynamoDB::Table", "Operation": "operation"},
    ),
    "AWS/SQS": (
        {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage"},
        {"QueueName": "AWS::SQS::Queue"},
    ),
    "AWS/ApiGateway": ({"5XXError", "4XXError", "Count", "Latency"}, {"ApiName": "api", "Stage": "stage"}),
}
PER_OPERATION = {"ThrottledRequests", "SystemErrors"}  # DynamoDB publishes these per operation only


@dataclass(frozen=True)
class Reference:
    where: str  # the alarm's logical id, or "dashboard"
    namespace: str
    name: str
    dimensions: tuple[tuple[str, str], ...]  # (name, value); a SEARCH's dimension names carry value "*"


def _value(value: Any) -> str:
    """A dimension value as text: a Ref as its logical id, a GetAtt as `X.Attr`, `${X}` as X."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return ".".join(value["Fn::GetAtt"])
    text = str(value)
    match = re.fullmatch(r"\$\{([^}]+)\}", text)
    return match.group(1) if match else text


def _alarm_references(template: dict[str, Any]) -> Iterator[Reference]:
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != "AWS::CloudWatch::Alarm":
            continue
        props = resource["Properties"]
        metrics = [q["MetricStat"]["Metric"] for q in props.get("Metrics", []) if "MetricStat" in q]
        if "MetricName" in props:
            metrics.append(props)
        assert metrics, f"{logical_id} reads no metric"
        for metric in metrics:
            dims = tuple((d["Name"], _value(d["Value"])) for d in metric.get("Dimensions", []))
            yield Reference(logical_id, metric["Namespace"], metric["MetricName"], dims)


def _dashboard_body(template: dict[str, Any]) -> dict[str, Any]:
    [dashboard] = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"]
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    body = body if isinstance(body, str) else body[0]
    # A parameter used as a number (the p99 threshold line) is unquoted: any number parses.
    return json.loads(re.sub(r"(?<=: )\$\{[A-Za-z0-9]+\}", "0", body))  # type: ignore[no-any-return]


def _dashboard_references(template: dict[str, Any]) -> Iterator[Reference]:
    for widget in _dashboard_body(template)["widgets"]:
        for entry in widget["properties"].get("metrics", []):
            if isinstance(entry[0], dict):  # an expression; a SEARCH names a metric
                expression = entry[0]["expression"]
                for ns_dims, name in re.findall(r"\{([^}]*)\}\s*MetricName=\"([^\"]+)\"", expression):
                    namespace, *dim_names = ns_dims.split(",")
                    yield Reference("dashboard", namespace, name, tuple((d, "*") for d in dim_names))
                continue
            fields = [f for f in entry if not isinstance(f, dict)]
            namespace, name, rest = fields[0], fields[1], fields[2:]
            dims = tuple((rest[i], _value(rest[i + 1])) for i in range(0, len(rest), 2))
            yield Reference("dashboard", namespace, name, dims)


def code_metrics() -> set[str]:
    """Every metric name the code emits: literal strings in the first argument of `wrote()` and
    `count()` calls (a conditional expression of literals counts each)."""
    names: set[str] = set()
    for folder in CODE:
        for path in folder.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.Call) or not node.args:
                    continue
                func = node.func
                called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                if called in EMITTERS:
                    names |= {
                        n.value
                        for n in ast.walk(node.args[0])
                        if isinstance(n, ast.Constant) and isinstance(n.value, str)
                    }
    return names


def code_namespace() -> str:
    """The namespace `make_metrics()` passes to Powertools' Metrics."""
    tree = ast.parse((ROOT / "layers/shared/apikeys/observability.py").read_text(encoding="utf-8"))
    [namespace] = [
        kw.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Metrics"
        for kw in node.keywords
        if kw.arg == "namespace" and isinstance(kw.value, ast.Constant)
    ]
    return str(namespace)


def store_operations() -> set[str]:
    """DynamoDB operations the store calls (`self.client.get_item(` -> GetItem)."""
    source = (ROOT / "layers/shared/apikeys/store.py").read_text(encoding="utf-8")
    calls = set(re.findall(r"self\.client\.([a-z_]+)\(", source))
    return {"".join(part.title() for part in call.split("_")) for call in calls}


@pytest.fixture(scope="module")
def translated() -> dict[str, Any]:
    return translate(load_template())


def _filters(template: dict[str, Any]) -> dict[tuple[str, str], tuple[set[str], str]]:
    """(namespace, metric) -> (dimension names, filter pattern) of each metric filter."""
    made: dict[tuple[str, str], tuple[set[str], str]] = {}
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Logs::MetricFilter":
            for transformation in resource["Properties"]["MetricTransformations"]:
                dims = {d["Key"] for d in transformation.get("Dimensions", [])}
                key = (transformation["MetricNamespace"], transformation["MetricName"])
                made.setdefault(key, (dims, resource["Properties"]["FilterPattern"]))
    return made


def _problem(ref: Reference, template: dict[str, Any], emitted: set[str]) -> str | None:
    """Why `ref` names a metric nothing in the stack produces, or None."""
    resources = template["Resources"]
    env = template["Globals"]["Function"]["Environment"]["Variables"] if "Globals" in template else {}
    dims = dict(ref.dimensions)
    if ref.namespace == code_namespace():
        made = _filters(template).get((ref.namespace, ref.name))
        if made is not None:
            return None if set(dims) <= made[0] else f"dimensions {sorted(dims)} not among the filter's {made[0]}"
        if ref.name not in emitted:
            return "not emitted by the code (no wrote()/count() with this name)"
        service = env.get("POWERTOOLS_SERVICE_NAME", "apikeys")
        if dims != {"service": service}:
            return f"the code's metrics have exactly the dimension service={service}, not {dims}"
        return None
    if ref.namespace not in AWS_METRICS:
        return "unknown namespace"
    names, kinds = AWS_METRICS[ref.namespace]
    if ref.name not in names:
        return f"{ref.namespace} publishes no {ref.name} this stack reads"
    if ref.name in PER_OPERATION and "Operation" not in dims:
        return "published per Operation only"
    if not dims:
        return "no dimension: a metric of the whole account, not of this stack"
    for dim, value in dims.items():
        kind = kinds.get(dim)
        base = value.split(".")[0]
        if kind == "operation":
            ok = value in store_operations()
        elif kind == "api":
            ok = value == "AWS::StackName" and resources["KeysApi"]["Properties"]["Body"]["info"]["title"] == {
                "Ref": "AWS::StackName"
            }
        elif kind == "stage":
            stages = [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::Stage"]
            ok = any(_value(s["Properties"]["StageName"]) == value for s in stages)
        elif kind == "AWS::SQS::Queue":
            ok = value.endswith(".QueueName") and resources.get(base, {}).get("Type") == kind
        else:
            ok = kind is not None and "." not in value and resources.get(value, {}).get("Type") == kind
        if not ok:
            return f"dimension {dim}={value} is not a {kind} of this stack"
    return None


def references(template: dict[str, Any]) -> list[Reference]:
    return [*_alarm_references(template), *_dashboard_references(template)]


def test_every_metric_an_alarm_or_the_dashboard_reads_is_produced_by_the_stack(translated: dict[str, Any]) -> None:
    refs = references(translated)
    assert {r.where for r in refs} > {"dashboard"}  # alarms and the dashboard were both read
    emitted = code_metrics()
    problems = [
        f"{r.where}: {r.namespace}/{r.name} {dict(r.dimensions)}: {why}"
        for r in refs
        if (why := _problem(r, translated, emitted))
    ]
    assert problems == []


def test_the_code_and_the_template_agree_on_the_namespace() -> None:
    env = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    assert code_namespace() == env["POWERTOOLS_METRICS_NAMESPACE"] == "ApiKeys"
    assert env["POWERTOOLS_SERVICE_NAME"] == "apikeys"


def test_a_renamed_metric_is_caught(translated: dict[str, Any]) -> None:
    """The check itself can fail: the same references against code that emits `KeyCreated` under
    another name, and against a template whose alarm reads a name no one emits."""
    emitted = code_metrics()
    assert {"KeyCreated", "LeakedKeyRevoked", "AuditPublishFailed"} <= emitted
    renamed = (emitted - {"KeyCreated"}) | {"KeyMade"}
    refs = references(translated)
    assert [r.where for r in refs if r.name == "KeyCreated" and _problem(r, translated, renamed)] == ["dashboard"]
    alarm = translated["Resources"]["AuditPublishFailuresAlarm"]
    alarm["Properties"]["MetricName"] = "AuditPublishFailure"
    try:
        assert any(
            r.where == "AuditPublishFailuresAlarm" and _problem(r, translated, emitted) for r in references(translated)
        )
    finally:
        alarm["Properties"]["MetricName"] = "AuditPublishFailed"


# The metric filters' metrics exist only if the authorizer writes the lines they match.


def _matches(pattern: str, line: str) -> bool:
    """CloudWatch Logs filter patterns as the template uses them: `{ $.field = "value" }` on a
    JSON line, or a quoted term anywhere in the line."""
    json_pattern = re.fullmatch(r"\{\s*\$\.(\w+)\s*=\s*\"([^\"]*)\"\s*\}", pattern)
    if json_pattern:
        try:
            event = json.loads(line)
        except ValueError:
            return False
        return isinstance(event, dict) and event.get(json_pattern.group(1)) == json_pattern.group(2)
    term = re.fullmatch(r"\"([^\"]+)\"", pattern)
    assert term, f"a filter pattern this test cannot read: {pattern}"
    return term.group(1) in line


class Output:
    """New output lines since the last read. What was read is written back (the `api` fixture's
    hygiene check reads it at teardown), so the next read starts with it and skips it."""

    def __init__(self, capfd: pytest.CaptureFixture[str]) -> None:
        self.capfd, self.echoed = capfd, ""

    def lines(self) -> list[str]:
        out, err = self.capfd.readouterr()
        new = out.removeprefix(self.echoed)
        self.echoed = out
        sys.stdout.write(out)
        sys.stderr.write(err)
        return new.splitlines()


@pytest.mark.engines("moto")
def test_the_authorizer_writes_the_lines_its_metric_filters_count(
    api: Api, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from apikeys.store import Store

    patterns = {}
    for resource in load_template()["Resources"].values():
        if resource["Type"] == "AWS::Logs::MetricFilter":
            assert resource["Properties"]["LogGroupName"] == {"Ref": "AuthorizerLogGroup"}
            for t in resource["Properties"]["MetricTransformations"]:
                patterns.setdefault(t["MetricName"], []).append((resource["Properties"]["FilterPattern"], t))
    [(denied_pattern, denied)] = patterns["AuthorizationDenied"]
    failed_patterns = [p for p, _ in patterns["AuthorizerFailed"]]

    output = Output(capfd)
    api.set_plan("acct-filters", "pro")
    key = api.create("acct-filters").body["key"]
    output.lines()
    assert api.bearer("ot_" + "A" * 40) is None  # not a key: 401
    lines = output.lines()
    [line] = [x for x in lines if _matches(denied_pattern, x)]
    assert [d["Value"] for d in denied["Dimensions"]] == ["$.reason"] and json.loads(line)["reason"]
    assert not any(_matches(p, x) for p in failed_patterns for x in lines)  # a refusal is no failure

    def unavailable(self: Store, digest: str) -> None:
        raise ConnectionError("DynamoDB unreachable")

    monkeypatch.setattr(Store, "get_principal", unavailable)
    with pytest.raises(ConnectionError):
        api.authorize(token_event(f"Bearer {key}"))
    lines = output.lines()
    assert sum(_matches(p, x) for p in failed_patterns for x in lines) == 1
    assert not any(_matches(denied_pattern, x) for x in lines)
