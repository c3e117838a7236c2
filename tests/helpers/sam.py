"""SAM's own translator, offline: what CloudFormation deploys from a SAM template. Used where
the mistakes that matter pass cfn-lint (identity sources SAM drops, roles SAM adds)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from samtranslator.translator.arn_generator import ArnGenerator
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform


class _NoManagedPolicies(ManagedPolicyLoader):
    """Our templates name managed policies by name only, so no IAM lookup is ever needed."""

    def __init__(self) -> None:
        pass

    def load(self) -> dict[str, str]:
        return {}


def translate(template: dict[str, Any]) -> dict[str, Any]:
    """`template` (long form, as `apikeys_local.template.read_template` gives it) after
    `sam package` (local code folders become S3 objects) and SAM's transform; no AWS call."""
    template = copy.deepcopy(template)
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        for uri in ("CodeUri", "ContentUri"):
            if isinstance(props.get(uri), str):
                props[uri] = f"s3://artifacts/{Path(props[uri]).name}.zip"
    ArnGenerator.BOTO_SESSION_REGION_NAME = "us-east-1"  # the partition, without asking boto3
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        translated: dict[str, Any] = transform(template, {}, _NoManagedPolicies())
        return translated
