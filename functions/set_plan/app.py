"""Direct invoke by the billing system: {"account_id", "plan"} -> {"account_id", "plan", "key_limit"}.

`"plan": null` removes the account's plan (a cancelled subscription): the account falls back
to DEFAULT_PLAN, or to no plan, which allows 0 keys and no API access. The field is required,
so a caller that forgot it never cancels a plan by accident.

An optional "actor" names who changed the plan in the audit event (default "billing").

Errors are raised, so the invoker sees a failed invocation naming the problem.
"""

from __future__ import annotations

from apikeys.handler import invoked_function, wrote  # first: its import pauses the cyclic GC

# isort: split
from typing import Any

from apikeys import logic
from apikeys.audit import Caller
from apikeys.errors import InvalidRequest


def set_plan(event: Any, context: Any) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    actor = event.get("actor") if isinstance(event.get("actor"), str) else "billing"
    if "plan" not in event:
        raise InvalidRequest("plan is required: a plan name, or null to remove the account's plan.")
    change = logic.set_plan(event.get("account_id"), event.get("plan"), Caller(actor, context.aws_request_id))
    wrote("PlanChanged", "plan set", account_id=change.account_id, plan=change.plan)
    return {"account_id": change.account_id, "plan": change.plan, "key_limit": change.key_limit}


lambda_handler = invoked_function(set_plan)
