"""The suite's shape and the Makefile's help: what a newcomer relies on to find their way."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TESTS, TIERS
from tests.helpers.support import ROOT


def test_every_test_carries_the_tier_of_its_folder(request: pytest.FixtureRequest) -> None:
    """Markers come from the folder, so a new file gets its tier; a moto run is also unit."""
    assert request.session.items
    for item in request.session.items:
        folder = Path(str(item.path)).resolve().relative_to(TESTS).parts[0]
        callspec = getattr(item, "callspec", None)
        on_moto = callspec is not None and callspec.params.get("db") == "moto"
        tiers = {marker.name for marker in item.iter_markers() if marker.name in TIERS}
        assert tiers == {folder} | ({"unit"} if on_moto else set()), item.nodeid


def test_helpers_are_not_tests_and_tests_live_in_tiers() -> None:
    assert not list((TESTS / "helpers").glob("test_*.py"))
    assert not list(TESTS.glob("test_*.py")), "a test file outside a tier folder"
    assert {p.name for p in TESTS.iterdir() if p.is_dir() and (p / "__init__.py").exists()} == {*TIERS, "helpers"}


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_bare_make_prints_help_listing_every_target() -> None:
    makefile = (ROOT / "Makefile").read_text()
    [phony] = re.findall(r"^\.PHONY:(.*)$", makefile, re.M)
    bare = subprocess.run(["make", "-s"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    helped = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60)
    assert bare.stdout == helped.stdout
    lines = bare.stdout.splitlines()
    listed = [line.split()[1] for line in lines]
    assert sorted(listed) == sorted(phony.split())  # every target, once
    assert all(len(line.split(maxsplit=2)) == 3 for line in lines), "each target needs a `## ` line"
