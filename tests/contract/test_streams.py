"""The stream paths on DynamoDB Local's Streams API: TTL removals keep key_count exact, and
the audit outbox reaches EventBridge. DynamoDB Local does not run TTL deletions, so the test
deletes the expired item itself and marks the stream record with the identity DynamoDB's TTL
service uses: the only emulated part. EventBridge and SQS are moto (AWS itself)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto import mock_aws
from moto.events.models import EventPattern

from apikeys import clock, keys
from apikeys.config import get_settings
from tests.helpers.streams import TTL_IDENTITY
from tests.helpers.support import Api, LambdaContext, load_function, load_template

pytestmark = pytest.mark.engines("dynamodb_local")  # the API on DynamoDB Local only


def _filter(function: str) -> EventPattern:
    event = next(iter(load_template()["Resources"][function]["Properties"]["Events"].values()))
    raw = event["Properties"]["FilterCriteria"]["Filters"][0]["Pattern"]
    return EventPattern(raw, json.loads(raw))


class Stream:
    """Reads the table's stream through the DynamoDB Streams API, as Lambda's poller does."""

    def __init__(self, endpoint: str) -> None:
        table = get_settings().table_name
        self.arn = boto3.client("dynamodb").describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.client = boto3.client("dynamodbstreams", endpoint_url=endpoint)
        self.iterators: dict[str, str] = {}

    def read(self) -> list[dict[str, Any]]:
        """Every record since the last read, shaped as Lambda delivers them."""
        records: list[dict[str, Any]] = []
        for shard in self.client.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            iterator: str | None = (
                self.iterators.get(shard_id)
                or self.client.get_shard_iterator(
                    StreamArn=self.arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            )
            for _ in range(20):
                if not iterator:
                    break
                page = self.client.get_records(ShardIterator=iterator)
                iterator = page.get("NextShardIterator")
                for record in page["Records"]:
                    created = record["dynamodb"].get("ApproximateCreationDateTime")
                    if created is not None:
                        record["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
                    records.append({**record, "eventSourceARN": self.arn})
                if not page["Records"]:
                    break
            if iterator:
                self.iterators[shard_id] = iterator
        return records


@pytest.fixture
def stream(local_db: str) -> Stream:
    return Stream(local_db)


def _ttl_removes(account_id: str, key_id: str) -> None:
    """What DynamoDB's TTL does to an expired key: deletes its items, outside any transaction."""
    client = boto3.client("dynamodb")
    table = get_settings().table_name
    key_item = client.get_item(
        TableName=table, Key={"pk": {"S": f"ACCOUNT#{account_id}"}, "sk": {"S": f"KEY#{key_id}"}}
    )
    digest = key_item["Item"]["digest"]["S"]
    client.delete_item(TableName=table, Key={"pk": {"S": f"ACCOUNT#{account_id}"}, "sk": {"S": f"KEY#{key_id}"}})
    client.delete_item(TableName=table, Key={"pk": {"S": f"DIGEST#{digest}"}, "sk": {"S": "DIGEST"}})


def _expire(records: list[dict[str, Any]]) -> dict[str, Any]:
    return load_function("key_expiry").lambda_handler({"Records": records}, LambdaContext(function_name="key_expiry"))


def _outbox(stream_records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    pattern = _filter("AuditEventsFunction")
    return [r for r in stream_records if pattern.matches_event(r)]


def test_ttl_removal_gives_the_slot_back_exactly_once(api: Api, stream: Stream, monkeypatch: Any) -> None:
    api.set_plan("acct-a", "pro")
    expiring = api.create("acct-a", "temp", expires_in_days=1).body
    api.create("acct-a", "b")
    api.create("acct-a", "c")
    real_now = clock.now
    monkeypatch.setattr(clock, "now", lambda: real_now().replace(year=real_now().year + 1))
    assert api.bearer(expiring["key"]) is None
    assert api.create("acct-a", "full").status == 403  # an expired key holds its slot until removed
    stream.read()

    _ttl_removes("acct-a", expiring["id"])
    removals = [r for r in stream.read() if r["eventName"] == "REMOVE"]
    key_removal = next(r for r in removals if r["dynamodb"]["Keys"]["sk"]["S"].startswith("KEY#"))
    pattern = _filter("KeyExpiryFunction")
    assert not pattern.matches_event(key_removal)  # as a customer's delete would look: ignored
    ttl_removal = {**key_removal, "userIdentity": TTL_IDENTITY}
    assert pattern.matches_event(ttl_removal)
    assert not any(pattern.matches_event({**r, "userIdentity": TTL_IDENTITY}) for r in removals if r is not key_removal)

    # At-least-once delivery: the same record twice in a batch, then again in a retry.
    assert _expire([ttl_removal, ttl_removal]) == {"batchItemFailures": []}
    assert _expire([ttl_removal]) == {"batchItemFailures": []}
    listing = api.list("acct-a").body
    assert listing["key_count"] == 2 == len(listing["keys"])
    assert api.create("acct-a", "fits again").status == 201

    expired_events = [
        json.loads(r["dynamodb"]["NewImage"]["detail"]["S"])
        for r in _outbox(stream.read())
        if r["dynamodb"]["NewImage"]["detail_type"]["S"] == "ApiKeyExpired"
    ]
    assert len(expired_events) == 1
    assert expired_events[0]["actor"] == "system" and expired_events[0]["key_id"] == expiring["id"]


def test_removal_of_a_rolled_out_key_leaves_the_count_alone(api: Api, stream: Stream) -> None:
    api.set_plan("acct-a", "pro")
    old = api.create("acct-a").body
    api.roll("acct-a", old["id"], grace=1)
    stream.read()
    _ttl_removes("acct-a", old["id"])
    removal = next(
        r
        for r in stream.read()
        if r["eventName"] == "REMOVE" and r["dynamodb"]["Keys"]["sk"]["S"] == f"KEY#{old['id']}"
    )
    assert _expire([{**removal, "userIdentity": TTL_IDENTITY}]) == {"batchItemFailures": []}
    listing = api.list("acct-a").body
    assert listing["key_count"] == 1 == len(listing["keys"])


@pytest.fixture
def eventbridge(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A rule on the default bus that copies every `apikeys` event into an SQS queue."""
    with mock_aws():
        monkeypatch.setenv("AUDIT_EVENT_SOURCE", "apikeys")
        monkeypatch.setenv("AUDIT_EVENT_BUS", "default")
        load_function("audit_events").events_client.cache_clear()
        sqs = boto3.client("sqs")
        queue = sqs.create_queue(QueueName="audit")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events = boto3.client("events")
        events.put_rule(Name="audit", EventPattern=json.dumps({"source": ["apikeys"]}))
        events.put_targets(Rule="audit", Targets=[{"Id": "queue", "Arn": arn}])

        def received() -> list[dict[str, Any]]:
            messages: list[dict[str, Any]] = []
            while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages"):
                messages += [json.loads(m["Body"]) for m in batch]
                for m in batch:
                    sqs.delete_message(QueueUrl=queue, ReceiptHandle=m["ReceiptHandle"])
            return messages

        yield received
        load_function("audit_events").events_client.cache_clear()


def test_every_change_reaches_eventbridge_with_actor_and_no_secret(api: Api, stream: Stream, eventbridge: Any) -> None:
    api.set_plan("acct-a", "pro")
    created = api.create("acct-a", "Zapier").body
    api.rename("acct-a", created["id"], "Zapier prod")
    rolled = api.roll("acct-a", created["id"], grace=60).body
    assert api.delete("acct-a", rolled["id"]).status == 204

    outbox = _outbox(stream.read())
    result = load_function("audit_events").lambda_handler({"Records": outbox}, LambdaContext())
    assert result == {"batchItemFailures": []}
    events = eventbridge()
    assert sorted(e["detail-type"] for e in events) == sorted(
        ["AccountPlanChanged", "ApiKeyCreated", "ApiKeyRenamed", "ApiKeyRolled", "ApiKeyDeleted"]
    )
    by_type = {e["detail-type"]: e for e in events}
    assert all(e["source"] == "apikeys" for e in events)
    created_event = by_type["ApiKeyCreated"]["detail"]
    assert created_event["account_id"] == "acct-a" and created_event["key_id"] == created["id"]
    assert created_event["key_name"] == "Zapier" and created_event["actor"] == "acct-a"
    assert created_event["request_id"] and created_event["time"].endswith("Z")
    assert by_type["ApiKeyRolled"]["detail"]["previous_key_id"] == created["id"]
    assert by_type["ApiKeyDeleted"]["detail"]["key_id"] == rolled["id"]
    assert by_type["AccountPlanChanged"]["detail"]["actor"] == "billing"
    dump = json.dumps(events)
    for secret in api.secrets:
        assert secret not in dump and keys.digest(secret) not in dump


def test_a_failing_put_events_is_retried_by_the_stream_not_lost(
    api: Api, stream: Stream, eventbridge: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    api.set_plan("acct-a", "pro")
    outbox = _outbox(stream.read())
    monkeypatch.setenv("AUDIT_EVENT_BUS", "no-such-bus")
    # Every record failed: the invocation fails, so Lambda redelivers the batch.
    with pytest.raises(BatchProcessingError, match="All records failed"):
        load_function("audit_events").lambda_handler({"Records": outbox}, LambdaContext())
    assert eventbridge() == []
    monkeypatch.setenv("AUDIT_EVENT_BUS", "default")
    assert load_function("audit_events").lambda_handler({"Records": outbox}, LambdaContext()) == {
        "batchItemFailures": []
    }
    assert [e["detail-type"] for e in eventbridge()] == ["AccountPlanChanged"]
