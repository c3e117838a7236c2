"""Deploying the console: Cognito's hosted sign-in in template.yaml (code flow with PKCE, back
to the console's URL only) and hosting/console.yaml (S3 + CloudFront, page and API on one
origin). AWS cannot run here: these check the templates, cfn-lint checks them against the specs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from apikeys_local.template import read_template
from tests.helpers.support import ROOT, load_template

HOSTING = ROOT / "hosting" / "console.yaml"
NO_VALUE = {"Ref": "AWS::NoValue"}


def hosting() -> dict[str, Any]:
    return read_template(HOSTING)


def test_hosted_sign_in_is_the_code_flow_back_to_the_console_only() -> None:
    template = load_template()
    client = template["Resources"]["ManagementUserPoolClient"]["Properties"]
    assert client["GenerateSecret"] is False  # a page cannot keep a secret: PKCE instead
    assert client["AllowedOAuthFlows"] == {"Fn::If": ["HostedSignIn", ["code"], NO_VALUE]}  # no implicit flow
    assert client["CallbackURLs"] == {"Fn::If": ["HostedSignIn", [{"Ref": "ConsoleUrl"}], NO_VALUE]}
    assert client["LogoutURLs"] == client["CallbackURLs"]
    assert template["Parameters"]["ConsoleUrl"]["Default"] == ""  # off unless asked for
    domain = template["Resources"]["ManagementUserPoolDomain"]
    assert domain["Condition"] == "CreateAuthDomain"
    assert template["Outputs"]["AuthDomain"]["Condition"] == "CreateAuthDomain"


def test_nothing_of_the_local_dev_login_is_deployed() -> None:
    text = (ROOT / "template.yaml").read_text()
    assert "_local" not in text
    assert "apikeys_local" not in text


def test_hosting_serves_the_page_privately_and_routes_keys_to_the_api() -> None:
    resources = hosting()["Resources"]
    bucket = resources["ConsoleBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    config = resources["ConsoleDistribution"]["Properties"]["DistributionConfig"]
    origins = {o["Id"]: o for o in config["Origins"]}
    assert origins["api"]["OriginPath"] == {"Fn::Sub": "/${ApiStageName}"}
    assert origins["page"]["OriginAccessControlId"] == {"Fn::GetAtt": ["ConsoleOriginAccess", "Id"]}
    (api,) = config["CacheBehaviors"]
    assert api["PathPattern"] == "/keys*"
    assert {"POST", "PATCH", "DELETE"} <= set(api["AllowedMethods"])
    cache = resources["ApiCachePolicy"]["Properties"]["CachePolicyConfig"]
    assert cache["DefaultTTL"] == 0
    assert cache["ParametersInCacheKeyAndForwardedToOrigin"]["HeadersConfig"]["Headers"] == ["Authorization"]
    csp = resources["SecurityHeaders"]["Properties"]["ResponseHeadersPolicyConfig"]["SecurityHeadersConfig"]
    policy = csp["ContentSecurityPolicy"]["ContentSecurityPolicy"]["Fn::Sub"]
    assert "unsafe-inline" not in policy
    assert "connect-src 'self' ${AuthDomain}" in policy


def test_cfn_lint_accepts_the_hosting_template() -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(cfn_lint), str(HOSTING)], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
