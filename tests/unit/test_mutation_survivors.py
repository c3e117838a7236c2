"""Unit tests that kill mutants `make mutation` found surviving (docs/testing.md lists them)."""

from __future__ import annotations

from apikeys import plans
from tests.helpers.support import PLAN_LIMITS as LIMITS


def test_the_largest_plan_has_no_plan_up() -> None:
    """Survivor apikeys.plans.x_next_plan_up__mutmut_9 (`if bigger or True`): min() of nothing."""
    assert plans.next_plan_up("agency", LIMITS) is None
    assert plans.next_plan_up(None, LIMITS) == "pro"
    assert plans.next_plan_up("pro", LIMITS) == "advanced"
