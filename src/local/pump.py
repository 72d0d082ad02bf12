"""A local stand-in for Lambda's DynamoDB event-source mapping.

Reads the submissions table's stream through the real DynamoDB Streams API (on the embedded
moto server), hands Lambda-shaped batches to the same stream handler that runs on AWS, and
mirrors the template's settings: batches of up to 100, partial batch responses, retries from
the first failed record, bisect on a whole-batch error, and after the last retry the record's
coordinates go to the on-failure queue (as Lambda's destination does: never the data).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

BATCH_SIZE = 100
MAX_RETRY_ATTEMPTS = 5


@dataclass
class PumpStats:
    batches: int = 0
    records: int = 0
    failures: int = 0
    dead_lettered: int = 0
    attempts: dict[str, int] = field(default_factory=dict)


def to_lambda_record(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A GetRecords record as Lambda delivers it (JSON-ready)."""
    dynamodb = dict(record["dynamodb"])
    created = dynamodb.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        dynamodb["ApproximateCreationDateTime"] = created.timestamp()
    return {
        "eventID": record.get("eventID"),
        "eventName": record.get("eventName"),
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": dynamodb,
        "eventSourceARN": stream_arn,
    }


class StreamPump:
    def __init__(
        self,
        *,
        streams_client: Any,
        dynamodb_client: Any,
        table_name: str,
        handler: Handler,
        sqs_client: Any | None = None,
        dead_letter_queue_url: str | None = None,
        region: str = "eu-west-2",
        max_retry_attempts: int = MAX_RETRY_ATTEMPTS,
    ) -> None:
        self.streams = streams_client
        self.dynamodb = dynamodb_client
        self.table_name = table_name
        self.handler = handler
        self.sqs = sqs_client
        self.dlq_url = dead_letter_queue_url
        self.region = region
        self.max_retry_attempts = max_retry_attempts
        self.stats = PumpStats()
        self._iterators: dict[str, str | None] = {}
        self._pending: dict[str, list[dict[str, Any]]] = {}
        self._stream_arn: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stream_arn(self) -> str:
        if self._stream_arn is None:
            table = self.dynamodb.describe_table(TableName=self.table_name)["Table"]
            self._stream_arn = table["LatestStreamArn"]
        return self._stream_arn

    def _refresh_shards(self) -> None:
        description = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        for shard in description.get("Shards", []):
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                self._iterators[shard_id] = self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
                self._pending[shard_id] = []

    def _fetch(self, shard_id: str) -> None:
        iterator = self._iterators.get(shard_id)
        if not iterator or len(self._pending[shard_id]) >= BATCH_SIZE:
            return
        response = self.streams.get_records(ShardIterator=iterator, Limit=1000)
        self._iterators[shard_id] = response.get("NextShardIterator")
        self._pending[shard_id].extend(
            to_lambda_record(r, self.stream_arn, self.region) for r in response.get("Records", [])
        )

    def poll_once(self) -> int:
        """Fetch and deliver one batch per shard; returns the records handed to the handler."""
        with self._lock:
            self._refresh_shards()
            delivered = 0
            for shard_id in list(self._iterators):
                self._fetch(shard_id)
                batch = self._pending[shard_id][:BATCH_SIZE]
                if batch:
                    delivered += len(batch)
                    self._deliver(shard_id, batch)
            return delivered

    def drain(self, max_rounds: int = 10_000) -> None:
        """Deliver until nothing is pending (tests, the demo, on-demand runs)."""
        for _ in range(max_rounds):
            with self._lock:
                self._refresh_shards()
                for shard_id in list(self._iterators):
                    self._fetch(shard_id)
                pending = any(self._pending.values())
            if not pending:
                return
            self.poll_once()
        raise RuntimeError("stream did not drain")

    def _deliver(self, shard_id: str, batch: list[dict[str, Any]]) -> None:
        self.stats.batches += 1
        self.stats.records += len(batch)
        try:
            response = self.handler({"Records": batch}, None) or {}
            failed_ids = [f["itemIdentifier"] for f in response.get("batchItemFailures", [])]
        except Exception:  # noqa: BLE001 - a whole-batch failure: bisect, like BisectBatchOnFunctionError
            if len(batch) > 1:
                half = len(batch) // 2
                self._deliver_parts(shard_id, batch[:half], batch[half:])
                return
            failed_ids = [batch[0]["dynamodb"]["SequenceNumber"]]
        self._checkpoint(shard_id, batch, failed_ids)

    def _deliver_parts(
        self, shard_id: str, first: list[dict[str, Any]], second: list[dict[str, Any]]
    ) -> None:
        # deliver the first half; only if it fully succeeds does the second follow now
        before = len(self._pending[shard_id])
        self._deliver(shard_id, first)
        if len(self._pending[shard_id]) == before - len(first):
            self._deliver(shard_id, second)

    def _checkpoint(
        self, shard_id: str, batch: list[dict[str, Any]], failed_ids: list[str]
    ) -> None:
        pending = self._pending[shard_id]
        if not failed_ids:
            del pending[: len(batch)]
            return
        self.stats.failures += len(failed_ids)
        # Lambda resumes from the lowest failed sequence number: earlier records are done
        sequences = [r["dynamodb"]["SequenceNumber"] for r in batch]
        first_failed = min(sequences.index(s) for s in failed_ids if s in sequences)
        del pending[:first_failed]
        head = pending[0]
        sequence = head["dynamodb"]["SequenceNumber"]
        attempts = self.stats.attempts.get(sequence, 0) + 1
        self.stats.attempts[sequence] = attempts
        if attempts > self.max_retry_attempts:
            self._dead_letter(head, attempts)
            del pending[0]

    def _dead_letter(self, record: dict[str, Any], attempts: int) -> None:
        self.stats.dead_lettered += 1
        if self.sqs is None or not self.dlq_url:
            return
        keys = record["dynamodb"].get("Keys", {})
        self.sqs.send_message(
            QueueUrl=self.dlq_url,
            MessageBody=json.dumps(
                {
                    "requestContext": {
                        "condition": "RetryAttemptsExhausted",
                        "approximateInvokeCount": attempts,
                    },
                    "DDBStreamBatchInfo": {
                        "shardId": "local",
                        "startSequenceNumber": record["dynamodb"]["SequenceNumber"],
                        "endSequenceNumber": record["dynamodb"]["SequenceNumber"],
                        "streamArn": record["eventSourceARN"],
                        "batchSize": 1,
                    },
                    "keys": keys,
                }
            ),
        )

    # -- background thread ---------------------------------------------------------------
    def start(self, interval: float = 0.5) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    delivered = self.poll_once()
                except Exception as exc:  # noqa: BLE001 - keep pumping; the error is visible on stderr
                    print(f"stream pump: {type(exc).__name__}: {exc}", flush=True)
                    delivered = 0
                if not delivered:
                    self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, name="stream-pump", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()
