"""Direct invoke by the billing system: {"account_id", "plan"} -> {"account_id", "plan", "key_limit"}.

Errors are raised, so the invoker sees a failed invocation naming the problem.
"""

from __future__ import annotations

from apikeys import coldstart  # first: pauses the cyclic GC while the imports below load

# isort: split
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from apikeys import logic
from apikeys.observability import make_logger

logger = make_logger()
coldstart.ready()


@logger.inject_lambda_context
def lambda_handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    event = event if isinstance(event, dict) else {}
    change = logic.set_plan(event.get("account_id"), event.get("plan"))
    logger.info("plan set", extra={"account_id": change.account_id, "plan": change.plan})
    return {"account_id": change.account_id, "plan": change.plan, "key_limit": change.key_limit}
