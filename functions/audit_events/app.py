"""DynamoDB stream consumer that publishes the audit outbox (items written in the same
transaction as each change) to EventBridge. At least once: a failed PutEvents fails only
that record, which the stream retries; the customer's request was answered long before."""

from __future__ import annotations

from apikeys import coldstart  # first: pauses the cyclic GC while the imports below load

# isort: split
import functools
from typing import Any

import boto3
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from apikeys.config import get_audit_settings
from apikeys.observability import make_logger
from apikeys.store import client_config, event_from_stream_image

logger = make_logger()
processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
coldstart.ready()


@functools.cache
def events_client() -> Any:
    return boto3.client("events", config=client_config())


class PublishFailed(Exception):
    """EventBridge refused the entry; the record is reported failed and redelivered."""


def handle(record: DynamoDBRecord) -> None:
    if record.raw_event.get("eventName") != "INSERT":
        return
    new_image = (record.raw_event.get("dynamodb") or {}).get("NewImage") or {}
    parsed = event_from_stream_image(new_image)
    if parsed is None:
        return
    detail_type, detail = parsed
    settings = get_audit_settings()
    result = events_client().put_events(
        Entries=[
            {
                "Source": settings.event_source,
                "DetailType": detail_type,
                "Detail": detail,
                "EventBusName": settings.event_bus,
            }
        ]
    )
    if result.get("FailedEntryCount"):
        raise PublishFailed(str(result["Entries"][0].get("ErrorCode")))
    logger.info("audit event published", extra={"detail_type": detail_type})


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=handle, processor=processor, context=context)
