"""GET /v1/whoami: an example protected API that echoes what the authorizer established."""

from __future__ import annotations

from apikeys import coldstart  # first: pauses the cyclic GC while the imports below load

# isort: split
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from apikeys.api import documented, json_response, make_resolver
from apikeys.errors import Unauthorized
from apikeys.models import WhoAmIOut
from apikeys.observability import make_logger

logger = make_logger()
app = make_resolver(logger)
FIELDS = ("account_id", "key_id", "plan")
coldstart.ready()


@app.get("/v1/whoami", summary="The account, key and plan of the calling API key", **documented(200, "OK", WhoAmIOut))
def whoami() -> Any:
    context = app.current_event.get("requestContext")
    authorizer = context.get("authorizer") if isinstance(context, dict) else None
    if isinstance(authorizer, dict) and isinstance(authorizer.get("lambda"), dict):
        authorizer = authorizer["lambda"]  # HTTP API (payload 2.0) nests the context
    if not isinstance(authorizer, dict) or not all(isinstance(authorizer.get(f), str) for f in FIELDS):
        raise Unauthorized("A valid API key is required.")
    return json_response(200, {field: authorizer[field] for field in FIELDS})


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
