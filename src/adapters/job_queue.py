"""The queue that hands jobs to the job function (SQS; the local stack runs the same queue).

A message names the job, never its data: ``{"trial_id", "kind", "job_id"}``. The queue is
given by URL on AWS (the template's ``!Ref``) or by name locally, resolved once.
"""

from __future__ import annotations

import json
import threading
from typing import Any

from domain.jobs import Job


def job_message(job: Job) -> str:
    return json.dumps({"trial_id": job.trial_id, "kind": job.kind, "job_id": job.job_id})


class SqsJobQueue:
    def __init__(self, client: Any, queue: str | None) -> None:
        self.client = client
        self.queue = queue
        self._url: str | None = (
            queue if queue and queue.startswith(("https://", "http://")) else None
        )
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        if self._url is None:
            if not self.queue:
                raise RuntimeError("no job queue configured (CMT_JOBS_QUEUE)")
            with self._lock:
                if self._url is None:
                    self._url = str(self.client.get_queue_url(QueueName=self.queue)["QueueUrl"])
        return self._url

    def enqueue(self, job: Job) -> None:
        self.client.send_message(QueueUrl=self.url, MessageBody=job_message(job))
