"""The stream function's batch logic: a whole batch scored together, failures per record.

INSERTs of submission items are scored and counted; MODIFY/REMOVE and other items are
ignored. The batch goes to `ScoringService.process_batch` at once (one transaction per slot,
batched reads and audit writes); each record that failed is reported in the partial batch
response (ReportBatchItemFailures), after a log line and a metric: Lambda (and the local pump)
resumes from the first failed record, so the records after it come again, which the
idempotent scoring makes harmless. A failure of the whole batch raises, and Lambda bisects.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecordEventName,
    DynamoDBStreamEvent,
)

from adapters.emf_metrics import EmfMetrics
from adapters.submission_store import submission_from_stream_image
from domain.submissions import SubmissionRecord
from services.metrics import SCORING_FAILURES
from services.ports import Metrics
from services.score_submission import ScoringService

logger = Logger(service="cmt-collect")

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def submissions_of(event: dict[str, Any]) -> list[tuple[str, SubmissionRecord]]:
    """The batch's submissions, with their records' sequence numbers, in stream order."""
    found = []
    for record in DynamoDBStreamEvent(event).records:
        if record.event_name is not DynamoDBRecordEventName.INSERT or record.dynamodb is None:
            continue
        submission = submission_from_stream_image(record.dynamodb.new_image)
        if submission is not None:
            found.append((str(record.dynamodb.sequence_number), submission))
    return found


def make_handler(scoring: ScoringService, metrics: Metrics | None = None) -> Handler:
    """The Lambda handler around one scoring service (the module's own, or a test's)."""
    count = (metrics or EmfMetrics()).count

    def handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        records = submissions_of(event)
        unique = list({s.submission_id: s for _, s in records}.values())
        outcomes = scoring.process_batch(unique) if unique else {}
        failures = []
        for sequence, submission in records:
            outcome = outcomes[submission.submission_id]
            if isinstance(outcome, Exception):
                # seen before the record is retried or leaves for the on-failure queue:
                # which submission and what kind of error, never its responses or notes
                count(SCORING_FAILURES)
                logger.error(
                    "scoring a submission failed",
                    extra={
                        "submission_id": submission.submission_id,
                        "error": type(outcome).__name__,
                        "sequence_number": sequence,
                    },
                )
                failures.append({"itemIdentifier": sequence})
            else:
                logger.info(
                    "submission scored" if outcome.scored else "redelivered record changed nothing",
                    extra={
                        "submission_id": outcome.submission_id,
                        "alerts_sent": outcome.alerts_sent,
                    },
                )
        return {"batchItemFailures": failures}

    return handler
