"""examples/consumer-api: the product API another team deploys behind our authorizer.

What SAM makes of the example is checked with SAM's own translator (offline: a fixed region,
a fake managed-policy map, no AWS call), because the mistakes that matter here pass
`cfn-lint` and `sam validate --lint`: a REQUEST authorizer whose `Identity.Header` SAM drops,
an authorizer result cache, an invoke permission on a function the consumer does not own.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from apikeys_local.template import load_module, parse_template, read_template
from tests.helpers.sam import translate
from tests.helpers.support import ROOT, load_template

EXAMPLE = ROOT / "examples" / "consumer-api"
IMPORTED_ARN = {"Fn::ImportValue": {"Fn::Sub": "${ApiKeysStackName}-AuthorizerFunctionArn"}}
REST_AUTH_HEADER = ["method.request.header.Authorization"]


def example_template() -> dict[str, Any]:
    return read_template(EXAMPLE / "template.yaml")


def authorizers(translated: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(API logical id, authorizer name, its x-amazon-apigateway-authorizer with the identity
    source API Gateway will use: a TOKEN authorizer's comes from the security scheme's header)."""
    for api_id, resource in translated["Resources"].items():
        if resource["Type"] == "AWS::ApiGateway::RestApi":
            schemes = resource["Properties"]["Body"].get("securityDefinitions", {})
        elif resource["Type"] == "AWS::ApiGatewayV2::Api":
            schemes = resource["Properties"]["Body"].get("components", {}).get("securitySchemes", {})
        else:
            continue
        for name, scheme in schemes.items():
            authorizer = dict(scheme["x-amazon-apigateway-authorizer"])
            if authorizer["type"] == "token":
                authorizer["identitySource"] = [f"method.request.header.{scheme['name']}"]
            elif isinstance(authorizer.get("identitySource"), str):
                authorizer["identitySource"] = authorizer["identitySource"].split(", ")
            yield api_id, name, authorizer


def test_cfn_lint_reports_nothing_on_the_example() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), "template.yaml"], cwd=EXAMPLE, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_every_authorizer_gets_its_identity_source_no_cache_and_our_function() -> None:
    found = {(api, authorizer["type"]): authorizer for api, _, authorizer in authorizers(translate(example_template()))}
    assert set(found) == {("TokenApi", "token"), ("RequestApi", "request"), ("HttpApi", "request")}
    assert found["TokenApi", "token"].get("identitySource") == REST_AUTH_HEADER
    assert found["RequestApi", "request"].get("identitySource") == REST_AUTH_HEADER
    assert found["HttpApi", "request"].get("identitySource") == ["$request.header.Authorization"]
    assert found["HttpApi", "request"]["authorizerPayloadFormatVersion"] == "2.0"
    assert found["HttpApi", "request"]["enableSimpleResponses"] is True
    for authorizer in found.values():
        assert authorizer["authorizerResultTtlInSeconds"] == 0  # a deleted key fails on the next request
        function_arn = authorizer["authorizerUri"]["Fn::Sub"][1]["__FunctionArn__"]
        assert function_arn["Fn::ImportValue"]["Fn::Sub"] in (
            "${ApiKeysStackName}-AuthorizerFunctionArn",
            "apikeys-AuthorizerFunctionArn",  # SAM substitutes the parameter's default in REST bodies
        )


def test_consumer_stack_adds_no_permission_on_our_authorizer() -> None:
    template = example_template()
    translated = translate(template)
    own_functions = {name for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}
    permissions = [r["Properties"] for r in translated["Resources"].values() if r["Type"] == "AWS::Lambda::Permission"]
    assert permissions, "the product functions' own permissions are expected"
    for permission in permissions:
        assert permission["FunctionName"] in [{"Ref": name} for name in own_functions], permission


def test_sam_drops_identity_header_on_a_request_authorizer() -> None:
    """Pins the trap the README once led into (`FunctionPayloadType: TOKEN  # or REQUEST` with
    `Identity.Header`): SAM keeps no identity source, silently. The example uses `Headers`."""
    template = example_template()
    identity = template["Resources"]["RequestApi"]["Properties"]["Auth"]["Authorizers"]["ApiKeyAuthorizer"]["Identity"]
    identity["Header"] = identity.pop("Headers")[0]
    [(_, _, authorizer)] = [a for a in authorizers(translate(template)) if a[0] == "RequestApi"]
    assert "identitySource" not in authorizer


def _readme_section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def readme_snippets() -> list[dict[str, Any]]:
    """The YAML blocks of README's "Attach the authorizer" section that declare SAM resources."""
    section = _readme_section("Attach the authorizer to another API")
    blocks = re.findall(r"```yaml\n(.*?)```", section, re.DOTALL)
    snippets = [parse_template(block) for block in blocks]
    return [s for s in snippets if any("Serverless::" in str(r.get("Type")) for r in s.values())]


def test_readme_attach_snippets_give_every_authorizer_its_identity_source() -> None:
    """What would have caught the old `# or REQUEST` comment: every README authorizer, put
    through SAM's translator, has the Authorization header as identity source and no cache."""
    parameters = example_template()["Parameters"]
    seen: list[str] = []
    for snippet in readme_snippets():
        template = {"Transform": "AWS::Serverless-2016-10-31", "Parameters": parameters, "Resources": snippet}
        for api, name, authorizer in authorizers(translate(template)):
            seen.append(authorizer["type"])
            identity = authorizer.get("identitySource")
            assert identity in (REST_AUTH_HEADER, ["$request.header.Authorization"]), (api, name, identity)
            assert authorizer["authorizerResultTtlInSeconds"] == 0, (api, name)
    assert sorted(seen) == ["request", "request", "token"], "expected REST TOKEN, REST REQUEST and HTTP API"


def test_readme_attach_snippets_are_excerpts_of_the_example() -> None:
    """The README shows the example's own Auth blocks, not a second version that can drift."""
    example = example_template()["Resources"]
    for snippet in readme_snippets():
        for name, resource in snippet.items():
            assert resource["Properties"]["Auth"] == example[name]["Properties"]["Auth"], name


EXPECTED_RESPONSES = {
    "UNAUTHORIZED": ("401", "unauthorized"),
    "ACCESS_DENIED": ("403", "forbidden"),
    "THROTTLED": ("429", "rate_limited"),
    "AUTHORIZER_FAILURE": ("503", "service_unavailable"),
    "AUTHORIZER_CONFIGURATION_ERROR": ("503", "service_unavailable"),
    "DEFAULT_4XX": (None, "request_refused"),
    "DEFAULT_5XX": (None, "internal_error"),
}


def test_both_rest_apis_get_our_gateway_responses() -> None:
    translated = translate(example_template())
    for api_id in ("TokenApi", "RequestApi"):
        responses = translated["Resources"][api_id]["Properties"]["Body"]["x-amazon-apigateway-gateway-responses"]
        assert set(responses) == set(EXPECTED_RESPONSES), api_id
        for name, (status, code) in EXPECTED_RESPONSES.items():
            response = responses[name]
            assert response.get("statusCode") == status, (api_id, name)
            headers = response["responseParameters"]
            assert headers["gatewayresponse.header.Cache-Control"] == "'no-store'", (api_id, name)
            if status in ("401", "403"):
                assert headers["gatewayresponse.header.WWW-Authenticate"] == "'Bearer'"
            if name.startswith("AUTHORIZER_"):
                assert headers["gatewayresponse.header.Retry-After"] == "'1'"
            # $context.error.messageString is API Gateway's message, already JSON-quoted.
            template = response["responseTemplates"]["application/json"]
            body = json.loads(template.replace("$context.error.messageString", '"Missing Authentication Token"'))
            assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
            assert body["error"]["code"] == code


def test_our_stack_exports_the_set_plan_function_for_billing() -> None:
    outputs = load_template()["Outputs"]
    assert outputs["SetPlanFunctionArn"]["Value"] == {"Fn::GetAtt": ["SetPlanFunction", "Arn"]}
    assert outputs["SetPlanFunctionArn"]["Export"]["Name"] == {"Fn::Sub": "${AWS::StackName}-SetPlanFunctionArn"}
    assert outputs["SetPlanFunctionName"]["Value"] == {"Ref": "SetPlanFunction"}
    assert outputs["SetPlanFunctionName"]["Export"]["Name"] == {"Fn::Sub": "${AWS::StackName}-SetPlanFunctionName"}


def test_our_invoke_permission_covers_rest_and_http_api_authorizers() -> None:
    """The consumer stack adds no permission, so ours must match the SourceArn API Gateway
    presents for both kinds: arn:…:execute-api:<region>:<account>:<api-id>/authorizers/<id>."""
    permission = load_template()["Resources"]["AuthorizerInvokePermission"]["Properties"]
    assert permission["Principal"] == "apigateway.amazonaws.com"
    assert permission["SourceAccount"] == {"Ref": "AWS::AccountId"}
    pattern = permission["SourceArn"]["Fn::Sub"].replace("${AWS::Partition}", "aws")
    pattern = pattern.replace("${AWS::Region}", "eu-west-1").replace("${AWS::AccountId}", "123456789012")
    regex = re.compile("^" + ".*".join(map(re.escape, pattern.split("*"))) + "$")
    for api_id in ("a1b2c3d4e5", "h77pxyz123"):  # a REST API id, an HTTP API id: same ARN form
        assert regex.match(f"arn:aws:execute-api:eu-west-1:123456789012:{api_id}/authorizers/ab12cd")
    assert not regex.match("arn:aws:execute-api:eu-west-1:999999999999:a1b2c3d4e5/authorizers/ab12cd")


def _load(name: str) -> ModuleType:
    return load_module(EXAMPLE / "functions" / name / "app.py", f"consumer_{name}")


def _event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EXAMPLE / "events" / f"{name}.json").read_text())
    return event


CALLER = {"account_id": "acct-1", "key_id": "key_08DuNL9nxHDMXpx263fo", "plan": "pro"}


@pytest.mark.parametrize("name", ["rest_whoami", "http_whoami"])
def test_product_function_answers_with_the_caller(name: str) -> None:
    response = _load(name).lambda_handler(_event(name), None)
    assert response["statusCode"] == 200
    assert response["headers"]["Cache-Control"] == "no-store"
    assert json.loads(response["body"]) == CALLER


def test_product_functions_pass_scopes_through_when_present() -> None:
    rest = _event("rest_whoami")
    rest["requestContext"]["authorizer"]["scopes"] = "keys:read"
    assert json.loads(_load("rest_whoami").lambda_handler(rest, None)["body"]) == {**CALLER, "scopes": "keys:read"}
    http = _event("http_whoami")
    http["requestContext"]["authorizer"]["lambda"]["scopes"] = ["keys:read"]
    assert json.loads(_load("http_whoami").lambda_handler(http, None)["body"]) == {**CALLER, "scopes": ["keys:read"]}


@pytest.mark.parametrize("name", ["rest_whoami", "http_whoami"])
def test_product_function_without_an_authorizer_context_refuses(name: str) -> None:
    """A route deployed without the authorizer answers 401 in our error shape, not an empty 200."""
    event = _event(name)
    event["requestContext"].pop("authorizer")
    response = _load(name).lambda_handler(event, None)
    assert response["statusCode"] == 401
    assert json.loads(response["body"])["error"]["code"] == "unauthorized"
    # The REST shape read from an HTTP API event (or the reverse) is no caller either.
    other = _event("http_whoami" if name == "rest_whoami" else "rest_whoami")
    assert _load(name).lambda_handler(other, None)["statusCode"] == 401


def test_the_example_copies_our_gateway_responses_exactly() -> None:
    """A consumer's refusals must read like ours: same status, headers and body per type."""
    ours = copy.deepcopy(load_template()["Resources"]["KeysApi"]["Properties"]["GatewayResponses"])
    # Except where our 401 names our MCP server's OAuth metadata (issue 21): theirs says Bearer.
    headers = ours["UNAUTHORIZED"]["ResponseParameters"]["Headers"]
    headers["WWW-Authenticate"] = headers["WWW-Authenticate"]["Fn::If"][2]
    theirs = example_template()["Globals"]["Api"]["GatewayResponses"]
    assert theirs == ours
