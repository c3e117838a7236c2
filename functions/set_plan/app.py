"""Direct invoke by the billing system: {"account_id", "plan"} -> {"account_id", "plan", "key_limit"}.

`"plan": null` removes the account's plan (a cancelled subscription): the account falls back
to DEFAULT_PLAN, or to no plan, which allows 0 keys and no API access. The field is required,
so a caller that forgot it never cancels a plan by accident.

An optional "actor" names who changed the plan in the audit event (default "billing").

Errors are raised, so the invoker sees a failed invocation naming the problem.
"""

from __future__ import annotations

from apikeys import coldstart  # first: pauses the cyclic GC while the imports below load

# isort: split
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from apikeys import logic
from apikeys.audit import Caller
from apikeys.errors import InvalidRequest
from apikeys.observability import make_logger

logger = make_logger()
coldstart.ready()


@logger.inject_lambda_context
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    actor = event.get("actor") if isinstance(event.get("actor"), str) else "billing"
    if "plan" not in event:
        raise InvalidRequest("plan is required: a plan name, or null to remove the account's plan.")
    change = logic.set_plan(event.get("account_id"), event.get("plan"), Caller(actor, context.aws_request_id))
    logger.info("plan set", extra={"account_id": change.account_id, "plan": change.plan})
    return {"account_id": change.account_id, "plan": change.plan, "key_limit": change.key_limit}
