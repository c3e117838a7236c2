"""DynamoDB stream consumer that publishes the audit outbox (items written in the same
transaction as each change) to EventBridge. At least once: a failed PutEvents fails only
that record, which the stream retries; the customer's request was answered long before."""

from __future__ import annotations

from apikeys.handler import stream_function  # first: its import pauses the cyclic GC

# isort: split
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord

from apikeys import container
from apikeys.config import get_audit_settings
from apikeys.observability import count, make_logger
from apikeys.store import client_config, event_from_stream_image

logger = make_logger()


@container.cached
def events_client() -> Any:
    """One EventBridge client per container, retrying on the service's budget."""
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
    # Counted whether the call failed or EventBridge refused the entry: the stream retries the
    # record, so only this metric (alarmed) shows that audit events are late or lost.
    try:
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
    except Exception:
        count("AuditPublishFailed")
        raise
    if result.get("FailedEntryCount"):
        count("AuditPublishFailed")
        raise PublishFailed(str(result["Entries"][0].get("ErrorCode")))
    logger.info("audit event published", extra={"detail_type": detail_type})


lambda_handler = stream_function(handle)
