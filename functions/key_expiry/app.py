"""DynamoDB stream consumer for TTL removals of key items (the template's filter lets only
those through): gives the slot back and records an ApiKeyExpired audit event, exactly once
per key however often the stream delivers the record."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from apikeys import logic
from apikeys.observability import make_logger
from apikeys.store import key_from_stream_image

logger = make_logger()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def is_ttl_removal(record: DynamoDBRecord) -> bool:
    """Only DynamoDB's TTL service deletes as this identity; a customer's delete does not."""
    identity = record.raw_event.get("userIdentity") or {}
    return (
        record.raw_event.get("eventName") == "REMOVE"
        and identity.get("type") == "Service"
        and identity.get("principalId") == "dynamodb.amazonaws.com"
    )


def handle(record: DynamoDBRecord) -> None:
    if not is_ttl_removal(record):
        return  # defence in depth: the event source filter should not have let it through
    old_image = (record.raw_event.get("dynamodb") or {}).get("OldImage") or {}
    parsed = key_from_stream_image(old_image)
    if parsed is None:
        return
    account_id, key = parsed
    first_time = logic.record_ttl_removal(account_id, key)
    logger.info("expired key removed", extra={"key_id": key.key_id, "first_delivery": first_time})


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
