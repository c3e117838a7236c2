"""Swagger UI at /docs, rendered by a real headless Chromium from the served /openapi.json."""

from __future__ import annotations

import re
import shutil
import subprocess

from apikeys_local.template import load_stack
from tests.helpers.local_server import ROOT, ServerProcess


def test_swagger_ui_renders_every_operation(local_api: ServerProcess) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    assert browser, "Chromium is missing: `make test` installs it (scripts/ensure-chromium.sh)"
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=15000", "--dump-dom",
         f"{local_api.url}/docs"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    dom = done.stdout
    assert done.returncode == 0 and "swagger-ui" in dom, done.stderr[-2000:]
    rendered = set(re.findall(r'class="opblock opblock-(\w+)[^"]*".*?data-path="([^"]+)"', dom, re.DOTALL))
    expected = {(r.method.lower(), r.path) for r in load_stack(ROOT, "unused").routes}
    assert rendered == expected
    assert "API keys" in dom and "CreatedKeyOut" in dom
