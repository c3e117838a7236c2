"""DynamoDB stream consumer for TTL removals of key items (the template's filter lets only
those through): gives the slot back and records an ApiKeyExpired audit event, exactly once
per key however often the stream delivers the record."""

from __future__ import annotations

from apikeys.handler import stream_function  # first: its import pauses the cyclic GC

# isort: split
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from apikeys import logic
from apikeys.observability import make_logger
from apikeys.store import key_from_stream_image

logger = make_logger()


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


lambda_handler = stream_function(handle)
