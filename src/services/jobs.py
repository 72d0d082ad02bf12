"""Large results as jobs: what the API answers at once, and what a job function makes.

Nothing synchronous may exceed what API Gateway and Lambda allow (a 6 MB response, 30 s). So:

- `GET .../export.csv` answers only a trial whose export fits (`SyncLimits`, counted before
  the CSV is built, and the built CSV measured once more); beyond that it is a 413 pointing
  to ``POST .../exports``;
- ``POST .../reports/pre-post`` answers 202 with a report job when the client sends
  ``Prefer: respond-async`` or the trial is over `SyncLimits`' report bounds;
- a job is a record in the main table (``JOBS#{trial}``), handed to the job function through
  a queue (`JobQueue`); the job function (`JobService.run`) writes the files to the reports
  bucket under ``exports/<trial>/<job id>/`` and marks the job ``ready``, or ``failed`` with
  an error code. Finishing is conditional on the job still running: a job that erasure or its
  deadline failed meanwhile is never marked ready, and the function deletes what it wrote.
- a job not finished by its deadline (`JobSettings.deadline_seconds` after it was asked for)
  is failed by whoever reads it next (error ``timeout``), so none stays ``running`` for ever,
  even when the function that ran it was killed (time-out, memory) before it could say so.

Thresholds (defaults; `SyncLimits`, configurable)
-------------------------------------------------
Measured on the embedded stack at the API function's 512 MB (about 0.29 vCPU; issue 11): the
long CSV is about 1 KB per score item and breaks 6 MB near 6,000 score items (200 participants
of the default protocol) and 30 s near 15,000; the wide CSV breaks 30 s near 39,000 score items
(1,300 participants) and 6 MB near 22,000 participants; the pre/post report breaks 30 s near
30,000 score items (1,000 participants) and 6 MB near 7,000 participants. The defaults keep
about half of each limit in reserve:

==========================  ===============================================================
long CSV (export.csv)       at most 3,000 score items
wide CSV (export.csv)       at most 15,000 score items and 10,000 participants
pre/post report (POST)      at most 12,000 score items and 3,000 participants
every synchronous CSV       at most 6,000,000 bytes as Lambda counts them (JSON-escaped text)
==========================  ===============================================================

Counting costs one Query (``Select=COUNT``) per bound, reading at most bound + 1 items.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from domain.jobs import ERASED, TIMED_OUT, ExportFormat, Job, JobFile, JobKind, default_layout
from domain.trial import Trial
from services.audit import Actor, AuditLog
from services.clock import Clock, iso, new_ulid
from services.errors import NotFound, ServiceError
from services.metrics import JOBS_FAILED
from services.ports import (
    JobQueue,
    JobStore,
    Metrics,
    ParticipantStore,
    ResultFiles,
    ScoreStore,
    SubmissionStore,
    TrialCounts,
    TrialStore,
)

if TYPE_CHECKING:  # the report service's modules (figures, statistics) load with it
    from services.reporting import ReportService

__all__ = [
    "Download",
    "JobService",
    "JobSettings",
    "SyncLimits",
    "TooLargeForSync",
]

#: the longest a presigned download URL may live (API.md: at most 15 minutes)
MAX_URL_SECONDS = 900


@dataclass(frozen=True, kw_only=True)
class SyncLimits:
    """How large a trial may be for the synchronous routes (see the module docstring)."""

    long_export_max_scores: int = 3_000
    wide_export_max_scores: int = 15_000
    wide_export_max_participants: int = 10_000
    report_max_scores: int = 12_000
    report_max_participants: int = 3_000
    max_response_bytes: int = 6_000_000


@dataclass(frozen=True, kw_only=True)
class JobSettings:
    """A job's deadline, how long its download URLs and its record live."""

    deadline_seconds: int = 1_800
    url_seconds: int = MAX_URL_SECONDS
    retention_days: int = 7

    def __post_init__(self) -> None:
        if not 0 < self.url_seconds <= MAX_URL_SECONDS:
            raise ValueError(f"download URLs live 1 to {MAX_URL_SECONDS} seconds")


#: more than any one entry of the summary takes as JSON (codes are at most 64 characters)
_SUMMARY_ENTRY_BYTES = 256


class TooLargeForSync(ServiceError):
    """The answer would not fit a synchronous response: ask for a job instead (413)."""

    title = "Too large for a synchronous answer"

    def __init__(self, detail: str, *, job_route: str) -> None:
        super().__init__(detail)
        self.job_route = job_route


@dataclass(frozen=True, kw_only=True)
class Download:
    """A ready job's file with a presigned URL that expires at `expires_at`."""

    file: JobFile
    url: str
    expires_at: str


def response_bytes(text: str) -> int:
    """Bytes a text body takes in Lambda's response document (UTF-8, JSON-escaped)."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8"))


def _naming(participant_id: str) -> Callable[[bytes], bool]:
    pattern = re.compile(
        rb"(?<![A-Za-z0-9_-])" + re.escape(participant_id.encode()) + rb"(?![A-Za-z0-9_-])"
    )
    return lambda body: bool(pattern.search(body))


class JobService:
    def __init__(
        self,
        *,
        jobs: JobStore,
        queue: JobQueue,
        files: ResultFiles,
        counts: TrialCounts,
        trials: TrialStore,
        participants: ParticipantStore,
        scores: ScoreStore,
        submissions: SubmissionStore,
        reporting: ReportService,
        audit: AuditLog,
        clock: Clock,
        metrics: Metrics,
        limits: SyncLimits | None = None,
        settings: JobSettings | None = None,
        rng: Callable[[], random.Random] = random.SystemRandom,
    ) -> None:
        self.jobs = jobs
        self.queue = queue
        self.files = files
        self.counts = counts
        self.trials = trials
        self.participants = participants
        self.scores = scores
        self.submissions = submissions
        self.reporting = reporting
        self.audit = audit
        self.clock = clock
        self.metrics = metrics
        self.limits = limits or SyncLimits()
        self.settings = settings or JobSettings()
        self.rng = rng

    # -- what fits a synchronous answer ----------------------------------------------------

    def _over(self, trial_id: str, *, scores: int, participants: int | None = None) -> bool:
        if self.counts.count_scores(trial_id, at_most=scores + 1) > scores:
            return True
        return (
            participants is not None
            and self.counts.count_participants(trial_id, at_most=participants + 1) > participants
        )

    def check_export_fits(self, trial: Trial, layout: str) -> None:
        """Raise TooLargeForSync when the trial's CSV of `layout` is over `SyncLimits`."""
        limits = self.limits
        if layout == "wide":
            over = self._over(
                trial.trial_id,
                scores=limits.wide_export_max_scores,
                participants=limits.wide_export_max_participants,
            )
            bounds = (
                f"{limits.wide_export_max_scores:,} score items and "
                f"{limits.wide_export_max_participants:,} participants"
            )
        else:
            over = self._over(trial.trial_id, scores=limits.long_export_max_scores)
            bounds = f"{limits.long_export_max_scores:,} score items"
        if over:
            raise self._too_large(
                trial.trial_id, f"the {layout} export of {trial.trial_id} is over {bounds}"
            )

    def check_response_fits(self, trial_id: str, text: str) -> None:
        """Raise TooLargeForSync when `text` would be over the response budget."""
        if response_bytes(text) > self.limits.max_response_bytes:
            raise self._too_large(
                trial_id,
                f"the export of {trial_id} is over {self.limits.max_response_bytes:,} bytes",
            )

    def check_summary_fits(self, trial_id: str, summary: Mapping[str, Any]) -> None:
        """Raise TooLargeForSync when the live summary would be over the response budget as
        JSON (its per-participant adherence grows with the trial: about 53,000 participants
        at 6 MB). Below `_SUMMARY_ENTRY_BYTES` per entry it fits for sure and is not
        serialised twice."""
        entries = len(summary.get("diary_adherence", ())) + len(summary.get("aggregates", ()))
        if (entries + 1) * _SUMMARY_ENTRY_BYTES <= self.limits.max_response_bytes:
            return
        size = len(json.dumps(summary, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        if size > self.limits.max_response_bytes:
            route = f"/v1/trials/{trial_id}/participants"
            raise TooLargeForSync(
                f"the summary of {trial_id} is over {self.limits.max_response_bytes:,} bytes, "
                "too large to answer synchronously: its aggregates are in the pre/post report "
                f"(POST /v1/trials/{trial_id}/reports/pre-post with Prefer: respond-async) and "
                f"each participant's schedule and its states page by page at GET {route}",
                job_route=route,
            )

    def check_report_fits(self, trial_id: str, report: Mapping[str, Any]) -> None:
        """Raise TooLargeForSync when the published `report` would be over the response
        budget as JSON; its job (``Prefer: respond-async``) hands it over as a download."""
        size = len(json.dumps(report, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
        if size > self.limits.max_response_bytes:
            route = f"/v1/trials/{trial_id}/reports/pre-post"
            raise TooLargeForSync(
                f"the pre/post report of {trial_id} is over "
                f"{self.limits.max_response_bytes:,} bytes, too large to answer synchronously: "
                f"POST {route} with the header Prefer: respond-async makes a report job whose "
                "files download from S3",
                job_route=route,
            )

    def _too_large(self, trial_id: str, reason: str) -> TooLargeForSync:
        route = f"/v1/trials/{trial_id}/exports"
        return TooLargeForSync(
            f"{reason}, too large to answer synchronously: POST {route} "
            '{"format": "csv-long"} (or csv-wide, spss, stata, r) makes it as a job',
            job_route=route,
        )

    def report_fits(self, trial: Trial) -> bool:
        """Whether the pre/post report can be computed within the synchronous limits."""
        return not self._over(
            trial.trial_id,
            scores=self.limits.report_max_scores,
            participants=self.limits.report_max_participants,
        )

    # -- asking for a job, reading it --------------------------------------------------------

    def request_export(
        self,
        trial: Trial,
        *,
        export_format: ExportFormat,
        layout: str | None,
        deidentified: bool,
        actor: Actor,
    ) -> Job:
        job = self._new_job(
            trial,
            kind="export",
            actor=actor,
            format=export_format,
            layout=layout or default_layout(export_format),
            deidentified=deidentified,
        )
        self.audit.record(
            actor,
            trial_id=trial.trial_id,
            action="export.request",
            targets={
                "export_id": job.job_id,
                "format": export_format,
                "layout": job.layout or "",
                "deidentified": str(deidentified).lower(),
            },
        )
        return job

    def request_report(self, trial: Trial, *, actor: Actor) -> Job:
        job = self._new_job(trial, kind="report", actor=actor)
        self.audit.record(
            actor,
            trial_id=trial.trial_id,
            action="report.request",
            targets={"report": "pre-post", "job_id": job.job_id},
        )
        return job

    def request_erasure_follow_up(self, trial: Trial, participant_id: str, *, actor: Actor) -> Job:
        """After erasing a participant of a trial too large to report synchronously: a report
        job republishes the report without them, then deletes every stored report version and
        export file that names them (`finish_erasure`)."""
        job = self._new_job(trial, kind="report", actor=actor, forget_participant=participant_id)
        self.audit.record(
            actor,
            trial_id=trial.trial_id,
            action="report.request",
            targets={"report": "pre-post", "job_id": job.job_id, "after": "participant.erase"},
        )
        return job

    def finish_erasure(self, trial: Trial, participant_id: str, actor: Actor) -> dict[str, int]:
        """Republish the report without an erased participant (if one was published) and
        delete the stored report versions and export files that name them."""
        return {
            # the published report is recomputed without them; old versions naming them go
            "report_versions_deleted": self.reporting.forget(trial, participant_id, actor),
            # export files that name them go too, and those exports are failed
            "export_files_deleted": self.forget(trial.trial_id, participant_id),
        }

    def _new_job(self, trial: Trial, *, kind: JobKind, actor: Actor, **fields: Any) -> Job:
        now = self.clock()
        job = Job(
            trial_id=trial.trial_id,
            job_id=new_ulid(int(now.timestamp() * 1000)),
            kind=kind,
            status="running",
            created_at=iso(now),
            updated_at=iso(now),
            deadline_at=iso(now + timedelta(seconds=self.settings.deadline_seconds)),
            requested_by=actor.key_id,
            requested_role=actor.role,
            expires_at=int((now + timedelta(days=self.settings.retention_days)).timestamp()),
            **fields,
        )
        self.jobs.create_job(job)
        try:
            self.queue.enqueue(job)
        except Exception as exc:
            self.jobs.fail_job(job, error=type(exc).__name__, at=iso(self.clock()))
            raise
        return job

    def get(self, trial_id: str, kind: JobKind, job_id: str) -> Job:
        job = self.jobs.get_job(trial_id, kind, job_id)
        if job is None:
            raise NotFound(f"no {kind} job {job_id} in {trial_id}")
        return self._timed_out(job)

    def page(
        self, trial_id: str, kind: JobKind, *, limit: int, cursor: str | None
    ) -> tuple[list[Job], str | None]:
        """One page of the trial's jobs of `kind`, newest first; BadCursor for a bad cursor."""
        jobs, next_cursor = self.jobs.job_page(trial_id, kind, limit=limit, cursor=cursor)
        return [self._timed_out(job) for job in jobs], next_cursor

    def _timed_out(self, job: Job) -> Job:
        now = iso(self.clock())
        if not job.overdue(now):
            return job
        failed = self.jobs.fail_job(job, error=TIMED_OUT, at=now)
        if failed is None:  # finished meanwhile: read what it became
            return self.jobs.get_job(job.trial_id, job.kind, job.job_id) or job
        self.metrics.count(JOBS_FAILED)
        return failed

    def downloads(self, job: Job, actor: Actor) -> list[Download]:
        """A presigned URL for each file of a ready job (each call: fresh URLs, audited)."""
        if job.status != "ready":
            return []
        seconds = self.settings.url_seconds
        expires = iso(self.clock() + timedelta(seconds=seconds))
        found = [
            Download(
                file=f,
                url=self.files.download_url(f.key, filename=f.name, expires_in=seconds),
                expires_at=expires,
            )
            for f in job.files
        ]
        self.audit.record(
            actor,
            trial_id=job.trial_id,
            action=f"{job.kind}.download",
            targets={"job_id": job.job_id, "files": str(len(found))},
        )
        return found

    # -- the job function ----------------------------------------------------------------------

    def run(self, trial_id: str, kind: JobKind, job_id: str) -> Job | None:
        """Do one job (the job function, once per queued message; redelivery is harmless).

        Returns the job as it ended, or None when there is no such job (erased with its
        trial, or expired). A failure is caught, counted (``JobsFailed``) and recorded on
        the job as its error class; nothing it raised is re-raised.
        """
        job = self.jobs.get_job(trial_id, kind, job_id)
        if job is None or job.status != "running":
            return job
        job = self._timed_out(job)
        if job.status != "running":
            return job
        try:
            files = self._export(job) if kind == "export" else self._report(job)
        except Exception as exc:  # noqa: BLE001 - recorded on the job, counted, alarmed
            self.metrics.count(JOBS_FAILED)
            failed = self.jobs.fail_job(job, error=type(exc).__name__, at=iso(self.clock()))
            if kind == "export":
                # a part written before the failure must not stay (it may name participants)
                with contextlib.suppress(Exception):
                    self.files.delete_versions(self._job_prefix(job), naming=lambda _: True)
            return failed or job
        finished = self.jobs.finish_job(job, files=files, at=iso(self.clock()))
        if finished is None:
            # failed meanwhile (erasure, deadline): what was written must not stay
            if kind == "export":
                self.files.delete_versions(self._job_prefix(job), naming=lambda _: True)
            return self.jobs.get_job(trial_id, kind, job_id)
        return finished

    def _job_prefix(self, job: Job) -> str:
        return f"{self.files.export_prefix(job.trial_id)}/{job.job_id}"

    def _trial(self, job: Job) -> Trial:
        trial = self.trials.get_trial(job.trial_id)
        if trial is None:
            raise NotFound(f"trial {job.trial_id} is gone")
        return trial

    def _export(self, job: Job) -> list[JobFile]:
        trial = self._trial(job)
        assert job.format is not None
        assert job.layout is not None
        # the export's own modules (CSV, syntax files) load with the job, not with the API
        from services import export_files

        built = export_files.build_export(
            trial_id=trial.trial_id,
            protocol=trial.protocol,
            export_format=job.format,
            layout=job.layout,
            deidentified=job.deidentified,
            participants=self.participants.list_participants(trial.trial_id),
            score_groups=self.scores.scores_by_participant(trial.trial_id),
            # read lazily, only when the long layout's CSV is written
            submissions=self.submissions.iter_for_trial(trial.trial_id),
            rng=self.rng(),
        )
        written = []
        for item in built:
            key = f"{self._job_prefix(job)}/{item.name}"
            size = self.files.put_chunks(key, item.chunks, item.content_type)
            written.append(
                JobFile(name=item.name, key=key, content_type=item.content_type, size=size)
            )
        return written

    def _report(self, job: Job) -> list[JobFile]:
        trial = self._trial(job)
        actor = Actor(key_id=job.requested_by, role=job.requested_role)
        if job.forget_participant:
            deleted = self.finish_erasure(trial, job.forget_participant, actor)
            self.audit.record(
                actor,
                trial_id=trial.trial_id,
                action="participant.erase.reports",
                targets={
                    "participant_id": job.forget_participant,
                    "job_id": job.job_id,
                    **{k: str(v) for k, v in deleted.items()},
                },
            )
            # the republished report (if any) is the latest; nothing of its own to download
            return []
        report = self.reporting.publish(trial, actor)
        artifacts = report["artifacts"]
        uris = [
            ("application/json", artifacts["dated_json"]),
            ("text/csv; charset=utf-8", artifacts["csv"]),
            *(("image/svg+xml", uri) for uri in artifacts["figures"].values()),
        ]
        files = []
        for content_type, uri in uris:
            key = uri.split("/", 3)[3]  # s3://bucket/key
            files.append(
                JobFile(name=key.rsplit("/", 1)[1], key=key, content_type=content_type, size=None)
            )
        return files

    # -- erasure ---------------------------------------------------------------------------------

    def forget(self, trial_id: str, participant_id: str) -> int:
        """After an erasure: fail the trial's running exports (their function then deletes
        what it wrote) and delete every stored version of a finished export's files that
        names the participant, failing that export (``participant_erased``). Returns how many
        file versions went."""
        naming = _naming(participant_id)
        deleted = 0
        for job in self._all_jobs(trial_id, "export"):
            if job.status == "running":
                self.jobs.fail_job(job, error=ERASED, at=iso(self.clock()))
                continue
            gone = self.files.delete_versions(self._job_prefix(job), naming=naming)
            if gone:
                deleted += gone
                self.jobs.fail_job(job, error=ERASED, at=iso(self.clock()), only_running=False)
        return deleted

    def _all_jobs(self, trial_id: str, kind: JobKind) -> Sequence[Job]:
        found: list[Job] = []
        cursor: str | None = None
        while True:
            page, cursor = self.jobs.job_page(trial_id, kind, limit=500, cursor=cursor)
            found.extend(page)
            if cursor is None:
                return found
