"""DELETE /keys/{key_id}: revoke a key; the authorizer refuses it on the very next request."""

from __future__ import annotations

from apikeys import coldstart  # first: pauses the cyclic GC while the imports below load

# isort: split
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from apikeys import logic
from apikeys.api import caller, caller_account_id, documented, make_resolver
from apikeys.errors import NotFound
from apikeys.keys import KEY_ID_PATTERN
from apikeys.observability import make_logger, make_metrics

logger = make_logger()
metrics = make_metrics()
app = make_resolver(logger)
coldstart.ready()


@app.delete("/keys/<key_id>", summary="Delete (revoke) a key at once", **documented(204, "Deleted", errors=(NotFound,)))
def delete_key(
    key_id: Annotated[str, Path(description="The key's id, as listed.", pattern=KEY_ID_PATTERN)],
) -> Any:
    logic.delete_key(caller_account_id(app), key_id, caller(app))
    logger.info("key deleted", extra={"key_id": key_id})
    metrics.add_metric(name="KeyDeleted", unit=MetricUnit.Count, value=1)
    return Response(status_code=204, body="", headers={"Cache-Control": "no-store"})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
