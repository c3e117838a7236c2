"""GET /keys/{key_id}: one of the caller's keys (never the secret)."""

from __future__ import annotations

from apikeys import coldstart  # first: pauses the cyclic GC while the imports below load

# isort: split
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from apikeys import logic
from apikeys.api import caller_account_id, documented, json_response, key_body, make_resolver
from apikeys.errors import NotFound
from apikeys.keys import KEY_ID_PATTERN
from apikeys.models import KeyOut
from apikeys.observability import make_logger

logger = make_logger()
app = make_resolver(logger)
coldstart.ready()


@app.get("/keys/<key_id>", summary="One key, masked", **documented(200, "OK", KeyOut, (NotFound,)))
def get_key(
    key_id: Annotated[str, Path(description="The key's id, as listed.", pattern=KEY_ID_PATTERN)],
) -> Any:
    return json_response(200, key_body(logic.get_key(caller_account_id(app), key_id)))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
