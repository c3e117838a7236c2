"""Direct invoke by the billing system: {"account_id", "plan"} -> {"account_id", "plan", "key_limit"}.

An optional "actor" names who changed the plan in the audit event (default "billing").

Errors are raised, so the invoker sees a failed invocation naming the problem.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from apikeys import logic
from apikeys.audit import Caller
from apikeys.observability import make_logger

logger = make_logger()


@logger.inject_lambda_context
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    actor = event.get("actor") if isinstance(event.get("actor"), str) else "billing"
    change = logic.set_plan(event.get("account_id"), event.get("plan"), Caller(actor, context.aws_request_id))
    logger.info("plan set", extra={"account_id": change.account_id, "plan": change.plan})
    return {"account_id": change.account_id, "plan": change.plan, "key_limit": change.key_limit}
