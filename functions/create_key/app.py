"""POST /keys: create a key and show it in full, this one time."""

from __future__ import annotations

from apikeys import coldstart  # first: pauses the cyclic GC while the imports below load

# isort: split
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from apikeys import logic
from apikeys.api import caller, caller_account_id, documented, json_response, key_body, make_resolver, parse_body
from apikeys.errors import InvalidRequest, KeyLimitReached
from apikeys.models import CreatedKeyOut, CreateKeyRequest
from apikeys.observability import make_logger, make_metrics

logger = make_logger()
metrics = make_metrics()
app = make_resolver(logger)
coldstart.ready()


@app.post(
    "/keys",
    summary="Create an API key; the full key is in this response only",
    **documented(201, "Created", CreatedKeyOut, (InvalidRequest, KeyLimitReached), body=CreateKeyRequest),
)
def create_key() -> Any:
    account_id = caller_account_id(app)
    request = parse_body(app, CreateKeyRequest)
    created = logic.create_key(account_id, request.name, request.expires_in_days, caller(app))
    logger.info("key created", extra={"key_id": created.record.key_id})
    metrics.add_metric(name="KeyCreated", unit=MetricUnit.Count, value=1)
    return json_response(201, key_body(created.record, created.secret))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
