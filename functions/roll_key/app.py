"""POST /keys/{key_id}/roll: replace a key by a new one (shown once), optionally keeping the
old one working for a grace period so integrations rotate without downtime."""

from __future__ import annotations

from apikeys import coldstart  # first: pauses the cyclic GC while the imports below load

# isort: split
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from apikeys import logic
from apikeys.api import caller, caller_account_id, documented, json_response, key_body, make_resolver, parse_body
from apikeys.errors import Conflict, InvalidRequest, NotFound
from apikeys.keys import KEY_ID_PATTERN
from apikeys.models import CreatedKeyOut, RollKeyRequest
from apikeys.observability import make_logger, make_metrics

logger = make_logger()
metrics = make_metrics()
app = make_resolver(logger)
coldstart.ready()


@app.post(
    "/keys/<key_id>/roll",
    summary="Roll a key: a new key now, the old one works until its grace period ends",
    **documented(
        201, "Created", CreatedKeyOut, (InvalidRequest, NotFound, Conflict), body=RollKeyRequest, body_required=False
    ),
)
def roll_key(
    key_id: Annotated[str, Path(description="The key's id, as listed.", pattern=KEY_ID_PATTERN)],
) -> Any:
    account_id = caller_account_id(app)
    request = parse_body(app, RollKeyRequest, optional=True)
    created = logic.roll_key(account_id, key_id, request.grace_period_seconds, caller(app))
    logger.info("key rolled", extra={"key_id": created.record.key_id, "previous_key_id": key_id})
    metrics.add_metric(name="KeyRolled", unit=MetricUnit.Count, value=1)
    return json_response(201, key_body(created.record, created.secret))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
