"""docs/attach.md "WebSocket and AppSync snippets" (the README's "Attach the authorizer" links
there): the WebSocket and AppSync snippets are plain CloudFormation
(no SAM resource exists for them), so they are checked with cfn-lint as a template of their
own, with the example's parameters, plus the settings a reader would get wrong."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from apikeys_local.template import parse_template
from tests.helpers.support import ROOT
from tests.unit.test_consumer_example import example_template

IMPORTED_ARN = {"Fn::ImportValue": {"Fn::Sub": "${ApiKeysStackName}-AuthorizerFunctionArn"}}


def _snippets_section() -> str:
    text = (ROOT / "docs" / "attach.md").read_text()
    start = text.index("\n## WebSocket and AppSync snippets\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def plain_snippets() -> dict[str, Any]:
    """Every resource of the section's YAML blocks that is not a SAM resource."""
    section = _snippets_section()
    resources: dict[str, Any] = {}
    for block in re.findall(r"```yaml\n(.*?)```", section, re.DOTALL):
        snippet = parse_template(block)
        if not any("Serverless::" in str(r.get("Type")) for r in snippet.values()):
            resources.update(snippet)
    return resources


def test_websocket_and_appsync_snippets_pass_cfn_lint(tmp_path: Path) -> None:
    resources = plain_snippets()
    kinds = sorted(r["Type"] for r in resources.values())
    assert kinds == [
        "AWS::ApiGatewayV2::Api",
        "AWS::ApiGatewayV2::Authorizer",
        "AWS::ApiGatewayV2::Route",
        "AWS::AppSync::GraphQLApi",
    ]
    blocks = re.findall(r"```yaml\n(.*?)```", _snippets_section(), re.DOTALL)
    text = "\n".join(b for b in blocks if "AWS::ApiGatewayV2::" in b or "AWS::AppSync::" in b)
    parameters = yaml.safe_dump(
        {"Parameters": {"ApiKeysStackName": example_template()["Parameters"]["ApiKeysStackName"]}}
    )
    template = tmp_path / "snippets.yaml"
    template.write_text(f'AWSTemplateFormatVersion: "2010-09-09"\n{parameters}Resources:\n{text}')
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(template)], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_websocket_snippet_authorizes_connect_on_the_authorization_header() -> None:
    resources = plain_snippets()
    [authorizer] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Authorizer"]
    assert authorizer["AuthorizerType"] == "REQUEST"
    assert authorizer["IdentitySource"] == ["route.request.header.Authorization"]
    assert authorizer["AuthorizerUri"]["Fn::Sub"][1]["Arn"] == IMPORTED_ARN
    [route] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route"]
    assert (route["RouteKey"], route["AuthorizationType"]) == ("$connect", "CUSTOM")
    [api] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Api"]
    assert api["ProtocolType"] == "WEBSOCKET"


def test_appsync_snippet_uses_our_function_without_a_cache() -> None:
    [api] = [r["Properties"] for r in plain_snippets().values() if r["Type"] == "AWS::AppSync::GraphQLApi"]
    assert api["AuthenticationType"] == "AWS_LAMBDA"
    config = api["LambdaAuthorizerConfig"]
    assert config["AuthorizerUri"] == IMPORTED_ARN
    assert config["AuthorizerResultTtlInSeconds"] == 0


def test_our_stack_lets_appsync_apis_of_the_account_invoke_the_authorizer() -> None:
    """Without it an AppSync API's consumer stack would need lambda:AddPermission on our function."""
    from tests.helpers.support import load_template

    permission = load_template()["Resources"]["AuthorizerAppSyncInvokePermission"]["Properties"]
    assert permission["FunctionName"] == {"Fn::GetAtt": ["AuthorizerFunction", "Arn"]}
    assert permission["Principal"] == "appsync.amazonaws.com"
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert permission["SourceArn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:appsync:${AWS::Region}:${AWS::AccountId}:apis/*"
    }
