"""The job function's batch logic: Powertools partial batch responses around `JobService.run`.

The job function (``handlers.export_job``) is triggered by the job queue (SQS, batches of
one). A message names a job (``{"trial_id", "kind", "job_id"}``); `JobService.run` does it and
records the outcome on the job, failures included, so a message is only reported failed (and
retried, then parked in the job dead-letter queue) when it is not a job message or the job's
record could not be written at all. A redelivered message finds its job finished and changes
nothing; one naming a job that is gone (erased with its trial, expired) is dropped. A job runs
with the cyclic garbage collector paused (`adapters.bulk_read.gc_paused`).
`make_handler` wraps any container's job service (a test's, with its own clock) as the
deployed function wraps its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from adapters.bulk_read import gc_paused
from domain.jobs import JOB_KINDS, JobKind
from services.jobs import JobService

logger = Logger(service="cmt-collect")
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def parse_message(body: str) -> tuple[str, JobKind, str]:
    """(trial id, kind, job id) of a job message; ValueError for anything else."""
    message = json.loads(body)
    if not isinstance(message, dict):
        raise ValueError("a job message is a JSON object")
    trial_id, kind, job_id = message.get("trial_id"), message.get("kind"), message.get("job_id")
    if not (isinstance(trial_id, str) and isinstance(job_id, str) and kind in JOB_KINDS):
        raise ValueError("a job message names trial_id, kind and job_id")
    return trial_id, cast(JobKind, kind), job_id


def make_handler(jobs: JobService) -> Handler:
    processor = BatchProcessor(event_type=EventType.SQS)

    def record_handler(record: SQSRecord) -> str:
        trial_id, kind, job_id = parse_message(record.body)
        # a job holds a whole trial's items alive while it builds its files: the cyclic
        # collector would scan them again and again for no garbage (adapters.bulk_read)
        with gc_paused():
            job = jobs.run(trial_id, kind, job_id)
        outcome = job.status if job else "gone"
        # ids, status and the error code only: never a participant's data
        logger.info(
            "job ended",
            extra={
                "trial_id": trial_id,
                "kind": kind,
                "job_id": job_id,
                "status": outcome,
                "error": job.error if job else None,
            },
        )
        return outcome

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        response: dict[str, Any] = process_partial_response(  # type: ignore[assignment]
            event=event, record_handler=record_handler, processor=processor, context=context
        )
        return response

    return handler
