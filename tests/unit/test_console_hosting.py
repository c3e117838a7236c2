"""Deploying the console: Cognito's hosted sign-in in template.yaml (code flow with PKCE, back
to the console's URL only) and hosting/console.yaml (S3 + CloudFront, page and API on one
origin). AWS cannot run here: these check the templates, cfn-lint checks them against the specs."""

from __future__ import annotations

import fnmatch
import re
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
    for api in config["CacheBehaviors"]:
        assert api["TargetOriginId"] == "api"
        assert {"POST", "PATCH", "DELETE"} <= set(api["AllowedMethods"])
        assert api["CachePolicyId"] == {"Ref": "ApiCachePolicy"}
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


def page_paths() -> set[str]:
    """Every API path web/app.js requests, a `${…}` (an id) as a sample segment."""
    source = (ROOT / "web" / "app.js").read_text()
    calls = re.findall(r"""request\(\s*"[A-Z]+",\s*(["`])(/[^"`]*)\1""", source)
    assert calls, "no request(…) call found in web/app.js"
    return {re.sub(r"\$\{[^}]*\}", "key_0123", path) for _, path in calls}


def test_hosting_forwards_every_path_the_page_calls_and_no_other() -> None:
    """Issue 22 item 1: the hosting forwarded only /keys*, so /scopes and /revocations reached
    the S3 origin. The forwarded paths are one list (the api origin's CacheBehaviors), compared
    here with every path the page fetches: each is forwarded, each forward is used, the local
    dev login never is. CloudFront matches PathPattern case-sensitively, `*` across `/`."""
    config = hosting()["Resources"]["ConsoleDistribution"]["Properties"]["DistributionConfig"]
    patterns = [b["PathPattern"] for b in config["CacheBehaviors"] if b["TargetOriginId"] == "api"]
    paths = page_paths()
    api_paths = {p for p in paths if not p.startswith("/_local/")}
    assert {"/keys", "/keys/key_0123", "/keys/key_0123/roll", "/scopes", "/revocations"} <= api_paths
    unforwarded = sorted(p for p in api_paths if not any(fnmatch.fnmatchcase(p, pat) for pat in patterns))
    assert unforwarded == [], f"the page calls these, the hosting serves them from S3: {unforwarded}"
    unused = [pat for pat in patterns if not any(fnmatch.fnmatchcase(p, pat) for p in api_paths)]
    assert unused == [], f"forwarded, never called by the page: {unused}"
    assert not any(fnmatch.fnmatchcase(p, pat) for p in paths - api_paths for pat in patterns)
