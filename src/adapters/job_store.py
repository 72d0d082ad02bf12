"""Export and report jobs in the main table: ``JOBS#{trial_id}`` / ``{kind}#{job_id}``.

A job id is a ULID, so a trial's jobs of one kind sort by the time they were asked for (the
listing is newest first). Finishing and failing are conditional writes: a job is marked
``ready`` only while it is still ``running``, so a job that erasure or its deadline failed
meanwhile stays failed. ``expires_at`` is the table's TTL: the record goes when its files do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from adapters import keys
from adapters.cursors import decode_cursor, encode_cursor
from adapters.dynamodb import ConditionFailed, DynamoTable
from domain.jobs import ExportFormat, Job, JobFile, JobKind, JobStatus


def _job_key(job: Job) -> dict[str, str]:
    return keys.job(trial_id=job.trial_id, kind=job.kind, job_id=job.job_id)


def _file_to_item(file: JobFile) -> dict[str, Any]:
    return {
        "name": file.name,
        "key": file.key,
        "content_type": file.content_type,
        "size": file.size,
    }


def job_from_item(item: Mapping[str, Any]) -> Job:
    return Job(
        trial_id=item["trial_id"],
        job_id=item["job_id"],
        kind=cast(JobKind, item["kind"]),
        status=cast(JobStatus, item["status"]),
        created_at=item["created_at"],
        updated_at=item["updated_at"],
        deadline_at=item["deadline_at"],
        requested_by=item["requested_by"],
        requested_role=item["requested_role"],
        format=cast("ExportFormat | None", item.get("format")),
        layout=item.get("layout"),
        deidentified=bool(item.get("deidentified", False)),
        finished_at=item.get("finished_at"),
        error=item.get("error"),
        files=tuple(
            JobFile(
                name=f["name"],
                key=f["key"],
                content_type=f["content_type"],
                size=None if f.get("size") is None else int(f["size"]),
            )
            for f in item.get("files", [])
        ),
        expires_at=int(item.get("expires_at", 0)),
        forget_participant=item.get("forget_participant"),
    )


class JobTable:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def create_job(self, job: Job) -> None:
        item: dict[str, Any] = {
            **_job_key(job),
            "entity": "job",
            "trial_id": job.trial_id,
            "job_id": job.job_id,
            "kind": job.kind,
            "status": job.status,
            "created_at": job.created_at,
            "updated_at": job.updated_at,
            "deadline_at": job.deadline_at,
            "requested_by": job.requested_by,
            "requested_role": job.requested_role,
            "deidentified": job.deidentified,
            "files": [],
            "expires_at": job.expires_at,
        }
        if job.format:
            item["format"] = job.format
        if job.layout:
            item["layout"] = job.layout
        if job.forget_participant:
            item["forget_participant"] = job.forget_participant
        self.table.put(item, condition="attribute_not_exists(pk)")

    def get_job(self, trial_id: str, kind: JobKind, job_id: str) -> Job | None:
        item = self.table.get(keys.job(trial_id=trial_id, kind=kind, job_id=job_id))
        return job_from_item(item) if item else None

    def job_page(
        self, trial_id: str, kind: JobKind, *, limit: int, cursor: str | None
    ) -> tuple[list[Job], str | None]:
        """One page of the trial's jobs of `kind`, newest first.

        Raises the domain's BadCursor for a cursor this listing did not issue.
        """
        pk, prefix = keys.jobs_pk(trial_id), keys.jobs_of(kind)
        after = decode_cursor(cursor, pk=pk, sk_prefix=prefix) if cursor else None
        items, last = self.table.query_page(
            pk=pk, prefix=prefix, forward=False, limit=limit, start_key=after, consistent=True
        )
        return [job_from_item(i) for i in items], encode_cursor(last) if last else None

    def finish_job(self, job: Job, *, files: Sequence[JobFile], at: str) -> Job | None:
        """Mark a running job ready with its files; None when it is no longer running."""
        try:
            item = self.table.update(
                _job_key(job),
                update="SET #status = :ready, files = :files, finished_at = :at, updated_at = :at",
                condition="#status = :running",
                names={"#status": "status"},
                values={
                    ":ready": "ready",
                    ":running": "running",
                    ":files": [_file_to_item(f) for f in files],
                    ":at": at,
                },
                return_new=True,
            )
        except ConditionFailed:
            return None
        return job_from_item(item) if item else None

    def fail_job(self, job: Job, *, error: str, at: str, only_running: bool = True) -> Job | None:
        """Mark a job failed with `error` (a code); None when it was not running (with
        `only_running`) or is gone."""
        condition = "attribute_exists(pk)" + (" AND #status = :running" if only_running else "")
        values: dict[str, Any] = {":failed": "failed", ":error": error, ":at": at}
        if only_running:
            values[":running"] = "running"
        try:
            item = self.table.update(
                _job_key(job),
                update="SET #status = :failed, #error = :error, finished_at = :at, "
                "updated_at = :at",
                condition=condition,
                names={"#status": "status", "#error": "error"},
                values=values,
                return_new=True,
            )
        except ConditionFailed:
            return None
        return job_from_item(item) if item else None
