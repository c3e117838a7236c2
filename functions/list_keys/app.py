"""GET /keys: the caller's keys, masked, newest first, with plan and usage."""

from __future__ import annotations

from apikeys import coldstart  # first: pauses the cyclic GC while the imports below load

# isort: split
from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from apikeys import logic
from apikeys.api import caller_account_id, documented, json_response, key_body, make_resolver
from apikeys.models import KeyListOut
from apikeys.observability import make_logger

logger = make_logger()
app = make_resolver(logger)
coldstart.ready()


@app.get("/keys", summary="List the account's keys, masked, newest first", **documented(200, "OK", KeyListOut))
def list_keys() -> Any:
    listing = logic.list_keys(caller_account_id(app))
    body = {
        "keys": [key_body(record) for record in listing.keys],
        "plan": listing.plan,
        "key_limit": listing.key_limit,
        "key_count": listing.key_count,
    }
    return json_response(200, body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
