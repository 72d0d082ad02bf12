"""A local stand-in for Lambda's SQS event-source mapping of the job function.

Receives from the job queue through the real SQS API (on the embedded moto server, or moto in
process in the tests) and hands each message, in a Lambda-shaped batch of one, to the same job
handler that runs on AWS. A message the handler reports failed (or that made it raise) is made
visible again at once (on AWS it waits for the queue's visibility timeout) and moto's redrive
policy, built from the template, moves it to the job dead-letter queue after its last receive,
as SQS does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


@dataclass
class RunnerStats:
    messages: int = 0
    failures: int = 0


def to_lambda_record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """A ReceiveMessage message as Lambda delivers it to an SQS-triggered function."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class JobRunner:
    def __init__(
        self,
        *,
        sqs_client: Any,
        queue_url: str,
        handler: Handler,
        region: str = "eu-west-2",
    ) -> None:
        self.sqs = sqs_client
        self.queue_url = queue_url
        self.handler = handler
        self.region = region
        self.stats = RunnerStats()
        self._queue_arn: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def queue_arn(self) -> str:
        if self._queue_arn is None:
            self._queue_arn = str(
                self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
                    "Attributes"
                ]["QueueArn"]
            )
        return self._queue_arn

    def poll_once(self) -> int:
        """Receive and run at most one message; returns how many were handed over."""
        with self._lock:
            received = self.sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=1,
                AttributeNames=["All"],
                WaitTimeSeconds=0,
            ).get("Messages", [])
            for message in received:
                self._deliver(message)
            return len(received)

    def drain(self, max_rounds: int = 1_000) -> None:
        """Run jobs until the queue has nothing visible (tests, the demo)."""
        for _ in range(max_rounds):
            if not self.poll_once():
                return
        raise RuntimeError("the job queue did not drain")

    def _deliver(self, message: dict[str, Any]) -> None:
        self.stats.messages += 1
        record = to_lambda_record(message, self.queue_arn, self.region)
        try:
            response = self.handler({"Records": [record]}, None) or {}
            failed = bool(response.get("batchItemFailures"))
        except Exception:  # noqa: BLE001 - a failed invocation: the message is retried
            failed = True
        if failed:
            self.stats.failures += 1
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )
        else:
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    # -- background thread ---------------------------------------------------------------
    def start(self, interval: float = 0.5) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                try:
                    ran = self.poll_once()
                except Exception as exc:  # noqa: BLE001 - keep running; the error is visible on stderr
                    print(f"job runner: {type(exc).__name__}: {exc}", flush=True)
                    ran = 0
                if not ran:
                    self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, name="job-runner", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
