"""The table's DynamoDB stream, delivered to the template's `Type: DynamoDB` functions as
Lambda's event source mapping does: poll the shards, keep only the records a function's
FilterCriteria lets through, invoke it with `{"Records": [...]}`, and redeliver what it
reports failed. Patterns are matched by moto's EventBridge pattern engine, the same syntax.

Locally this runs the audit outbox (AuditEventsFunction, publishing to the embedded
EventBridge). TTL removals never happen on moto or DynamoDB Local, so KeyExpiryFunction is
wired but only `apikeys-local invoke` with events/key_expiry.json exercises it here.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any, TypedDict

import boto3
from moto.events.models import EventPattern

from apikeys_local.runtime import Runtime
from apikeys_local.template import StreamSubscription


class _ClientArgs(TypedDict):
    """The region and credentials both boto3 clients are made with."""

    region_name: str
    aws_access_key_id: str | None
    aws_secret_access_key: str | None
    aws_session_token: str | None


class StreamPump:
    def __init__(
        self,
        subscriptions: list[StreamSubscription],
        runtime: Runtime,
        table_name: str,
        endpoint: str,
        credentials: dict[str, str],
        log: Callable[[str], None],
        interval: float = 0.5,
    ) -> None:
        self.subscriptions = subscriptions
        self.runtime = runtime
        self.log = log
        self.interval = interval
        region = credentials.get("AWS_REGION", "us-east-1")
        keys: _ClientArgs = {
            "region_name": region,
            "aws_access_key_id": credentials.get("AWS_ACCESS_KEY_ID"),
            "aws_secret_access_key": credentials.get("AWS_SECRET_ACCESS_KEY"),
            "aws_session_token": credentials.get("AWS_SESSION_TOKEN"),
        }
        table = boto3.client("dynamodb", endpoint_url=endpoint, **keys).describe_table(TableName=table_name)["Table"]
        self.arn: str | None = table.get("LatestStreamArn")
        self.streams = boto3.client("dynamodbstreams", endpoint_url=endpoint, **keys)
        self.patterns = {s.function: [EventPattern(raw, json.loads(raw)) for raw in s.filters] for s in subscriptions}
        self.last_sequence: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stream-pump", daemon=True)

    def start(self) -> StreamPump:
        if self.arn and self.subscriptions:
            # Start at the stream's current end, as a new event source mapping at LATEST would:
            # records of an earlier run of a persistent table are not replayed.
            self._read()
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - keep polling; say what went wrong
                self.log(f"stream: poll failed: {type(exc).__name__}: {exc}")

    def _iterator(self, shard_id: str) -> str:
        """A fresh iterator just after the last record delivered from the shard. Emulators'
        iterators are not reliable across empty reads, so none is kept between polls."""
        assert self.arn is not None
        last = self.last_sequence.get(shard_id)
        kwargs: dict[str, Any] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": last}
            if last
            else {"ShardIteratorType": "TRIM_HORIZON"}
        )
        return str(self.streams.get_shard_iterator(StreamArn=self.arn, ShardId=shard_id, **kwargs)["ShardIterator"])

    def _read(self) -> list[dict[str, Any]]:
        assert self.arn is not None
        records: list[dict[str, Any]] = []
        for shard in self.streams.describe_stream(StreamArn=self.arn)["StreamDescription"]["Shards"]:
            shard_id = shard["ShardId"]
            iterator: str | None = self._iterator(shard_id)
            for _ in range(100):  # bounded: at most 100 pages per shard per poll
                if not iterator:
                    break
                page = self.streams.get_records(ShardIterator=iterator)
                if not page["Records"]:
                    break
                iterator = page.get("NextShardIterator")
                for record in page["Records"]:
                    created = record["dynamodb"].get("ApproximateCreationDateTime")
                    if created is not None and not isinstance(created, int | float):
                        record["dynamodb"]["ApproximateCreationDateTime"] = created.timestamp()
                    records.append({**record, "eventSourceARN": self.arn})
                self.last_sequence[shard_id] = page["Records"][-1]["dynamodb"]["SequenceNumber"]
        return records

    def poll(self) -> None:
        records = self._read()
        if not records:
            return
        for sub in self.subscriptions:
            patterns = self.patterns[sub.function]
            # moto's matcher takes any event dict; its hint names EventBridge's envelope, not a stream record.
            matching = [r for r in records if not patterns or any(p.matches_event(r) for p in patterns)]  # type: ignore[arg-type]
            for start in range(0, len(matching), sub.batch_size):
                self.deliver(sub.function, matching[start : start + sub.batch_size])

    def deliver(self, function: str, batch: list[dict[str, Any]], attempts: int = 3) -> None:
        """Invoke with the batch; retry what failed (partial batch response), as Lambda does."""
        for attempt in range(1, attempts + 1):
            result = self.runtime.invoke(function, {"Records": batch})
            failed_ids = set()
            if result.ok and isinstance(result.payload, dict):
                failed_ids = {f.get("itemIdentifier") for f in result.payload.get("batchItemFailures") or []}
            elif not result.ok:
                failed_ids = {r["dynamodb"]["SequenceNumber"] for r in batch}
            self.log(f"stream {function}: {len(batch)} record(s), {len(failed_ids)} failed (attempt {attempt})")
            batch = [r for r in batch if r["dynamodb"]["SequenceNumber"] in failed_ids]
            if not batch:
                return
