"""PATCH /keys/{key_id}: rename a key (same name rules as create)."""

from __future__ import annotations

from apikeys import coldstart  # first: pauses the cyclic GC while the imports below load

# isort: split
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from apikeys import logic
from apikeys.api import caller, caller_account_id, documented, json_response, key_body, make_resolver, parse_body
from apikeys.errors import InvalidRequest, NotFound
from apikeys.keys import KEY_ID_PATTERN
from apikeys.models import KeyOut, RenameKeyRequest
from apikeys.observability import make_logger

logger = make_logger()
app = make_resolver(logger)
coldstart.ready()


@app.patch(
    "/keys/<key_id>",
    summary="Rename a key",
    **documented(200, "OK", KeyOut, (InvalidRequest, NotFound), body=RenameKeyRequest),
)
def rename_key(
    key_id: Annotated[str, Path(description="The key's id, as listed.", pattern=KEY_ID_PATTERN)],
) -> Any:
    account_id = caller_account_id(app)
    request = parse_body(app, RenameKeyRequest)
    record = logic.rename_key(account_id, key_id, request.name, caller(app))
    logger.info("key renamed", extra={"key_id": key_id})
    return json_response(200, key_body(record))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
