"""Jobs: large results (exports, reports) made by a function of their own, outside the API.

A coordinator asks for a job; the API stores it ``running`` and queues it; the job function
writes its files to the reports bucket and marks it ``ready`` (or ``failed``). A job that has
not finished by its ``deadline_at`` is failed whoever looks at it next (`Job.overdue`), so no
job stays ``running`` for ever, whatever became of the function that ran it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = [
    "EXPORT_FORMATS",
    "JOB_KINDS",
    "SYNTAX_FORMATS",
    "ExportFormat",
    "Job",
    "JobFile",
    "JobKind",
    "JobStatus",
    "default_layout",
]

JobKind = Literal["export", "report"]
JobStatus = Literal["running", "ready", "failed"]
ExportFormat = Literal["csv-long", "csv-wide", "spss", "stata", "r"]
JOB_KINDS: tuple[JobKind, ...] = ("export", "report")
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv-long", "csv-wide", "spss", "stata", "r")
#: formats that are a CSV plus a syntax file labelling it
SYNTAX_FORMATS: tuple[ExportFormat, ...] = ("spss", "stata", "r")


def default_layout(export_format: ExportFormat) -> str:
    """csv-wide is wide; every other format is long unless asked otherwise."""
    return "wide" if export_format == "csv-wide" else "long"


#: `Job.error` of a job past its deadline
TIMED_OUT = "timeout"
#: `Job.error` of an export whose files named a participant erased since
ERASED = "participant_erased"


@dataclass(frozen=True, kw_only=True)
class JobFile:
    """One file a job wrote: its name for the client and where it is in the reports bucket
    (`size` in bytes; None for a report's files, which the report function writes)."""

    name: str
    key: str
    content_type: str
    size: int | None


@dataclass(frozen=True, kw_only=True)
class Job:
    """An export or report job and what became of it.

    `error` is a short code (an error class or `TIMED_OUT`), never a message that could
    quote data. `requested_by` / `requested_role` name the key that asked (the audit trail's
    actor for what the job does).
    """

    trial_id: str
    job_id: str
    kind: JobKind
    status: JobStatus
    created_at: str
    updated_at: str
    deadline_at: str
    requested_by: str
    requested_role: str
    format: ExportFormat | None = None
    layout: Literal["long", "wide"] | None = None
    deidentified: bool = False
    finished_at: str | None = None
    error: str | None = None
    files: tuple[JobFile, ...] = ()
    # a report job that finishes an erasure: the erased participant's code, whose stored
    # report versions and export files it deletes after republishing without them
    forget_participant: str | None = None
    # when the record and its files go (epoch seconds: the table's TTL, the bucket's rule)
    expires_at: int = 0

    def overdue(self, now: str) -> bool:
        """Still running at or after its deadline (ISO times compare as text)."""
        return self.status == "running" and now >= self.deadline_at
