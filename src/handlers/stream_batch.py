"""The stream function's batch logic: Powertools partial batch responses around scoring.

INSERTs of submission items are scored and counted; MODIFY/REMOVE and other items are
ignored. Failures are reported per record (ReportBatchItemFailures): Lambda (and the local
pump) resumes from the first failed record, so records after it are delivered again, which the
idempotent scoring makes harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
    DynamoDBRecordEventName,
)

from adapters.emf_metrics import EmfMetrics
from adapters.submission_store import submission_from_stream_image
from services.metrics import SCORING_FAILURES
from services.ports import Metrics
from services.score_submission import ScoringService

logger = Logger(service="cmt-collect")


def process_stream_record(scoring: ScoringService, record: DynamoDBRecord) -> str:
    """Score one stream record; returns what happened (for logs and tests)."""
    if record.event_name is not DynamoDBRecordEventName.INSERT or record.dynamodb is None:
        return "ignored"
    submission = submission_from_stream_image(record.dynamodb.new_image)
    if submission is None:
        return "ignored"
    outcome = scoring.process(submission)
    logger.info(
        "submission scored" if outcome.scored else "redelivered record changed nothing",
        extra={"submission_id": outcome.submission_id, "alerts_sent": outcome.alerts_sent},
    )
    return "scored" if outcome.scored else "repeat"


def make_handler(
    scoring: ScoringService, metrics: Metrics | None = None
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler around one scoring service (the module's own, or a test's)."""
    metrics = metrics or EmfMetrics()
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

    def record_handler(record: DynamoDBRecord) -> str:
        try:
            return process_stream_record(scoring, record)
        except Exception as exc:
            # seen before the record is retried or leaves for the on-failure queue: which
            # submission and what kind of error, never its responses or notes
            image = (record.raw_event.get("dynamodb") or {}).get("NewImage") or {}
            metrics.count(SCORING_FAILURES)
            logger.error(
                "scoring a submission failed",
                extra={
                    "submission_id": (image.get("submission_id") or {}).get("S", "unknown"),
                    "error": type(exc).__name__,
                    "sequence_number": record.dynamodb.sequence_number if record.dynamodb else None,
                },
            )
            raise

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
            event=event, record_handler=record_handler, processor=processor, context=context
        )
        return response

    return handler
