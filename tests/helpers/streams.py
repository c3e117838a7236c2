"""DynamoDB stream records as Lambda receives them, for the stream handlers called in process."""

from __future__ import annotations

from typing import Any

import boto3

from apikeys.config import get_settings

# The identity DynamoDB's TTL service deletes with, as the AWS documentation gives it.
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def remove_record(item: dict[str, Any], identity: dict[str, str] | None) -> dict[str, Any]:
    """A REMOVE record of `item` (OLD_IMAGE view); `identity` None is a customer's own delete."""
    record: dict[str, Any] = {
        "eventID": "1",
        "eventName": "REMOVE",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026",
        "dynamodb": {"Keys": {"pk": item["pk"], "sk": item["sk"]}, "OldImage": item, "StreamViewType": "OLD_IMAGE"},
    }
    if identity is not None:
        record["userIdentity"] = identity
    return record


def key_item(account: str, key_id: str) -> dict[str, Any]:
    """The key's item in the table's own attribute-value form."""
    key = {"pk": {"S": f"ACCOUNT#{account}"}, "sk": {"S": f"KEY#{key_id}"}}
    item = boto3.client("dynamodb").get_item(TableName=get_settings().table_name, Key=key, ConsistentRead=True)
    return dict(item["Item"])


def ttl_removes(account: str, key_id: str) -> dict[str, Any]:
    """Delete the key's item as DynamoDB's TTL would, and return the stream record it makes."""
    item = key_item(account, key_id)
    client = boto3.client("dynamodb")
    client.delete_item(TableName=get_settings().table_name, Key={"pk": item["pk"], "sk": item["sk"]})
    return remove_record(item, TTL_IDENTITY)
