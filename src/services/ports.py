"""The ports: what the services need from storage, mail and metrics, in the domain's words.

The services depend on these Protocols only; the adapters (``src/adapters``) implement them
over DynamoDB, S3 and SES, and the composition root (``handlers/wiring.py``) plugs them in.
Every port speaks records, never table items: a conditional write that finds the item is a
domain error (`AlreadyExists`, `DuplicateSubmission`) or a result (`Applied`), a client's
bad cursor is `BadCursor`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from domain.aggregates import Counted, Moments
from domain.jobs import Job, JobFile, JobKind
from domain.submissions import IdempotencyClaim, ScoreRecord, SubmissionInfo, SubmissionRecord
from domain.trial import (
    AccessCode,
    AlertRecord,
    ApiKey,
    AuditEvent,
    Participant,
    ParticipantStatus,
    ParticipantToken,
    Slot,
    Trial,
)

__all__ = [
    "AccessStore",
    "AggregateStore",
    "AlertStore",
    "AuditStore",
    "IdempotencyStore",
    "InstrumentTextStore",
    "JobQueue",
    "JobStore",
    "KeyStore",
    "Mailer",
    "Metrics",
    "ParticipantStore",
    "ReportStore",
    "ResultFiles",
    "ScoreStore",
    "ScoringLedger",
    "SubmissionStore",
    "TrialCounts",
    "TrialStore",
    "TrialStores",
]


class TrialStore(Protocol):
    def get_trial(self, trial_id: str) -> Trial | None: ...

    def put_trial(self, trial: Trial) -> None: ...

    def list_trials(self) -> list[Trial]: ...


class KeyStore(Protocol):
    def put_api_key(self, key_hash: str, key: ApiKey) -> None: ...

    def get_api_key(self, key_hash: str) -> ApiKey | None: ...

    def touch_api_key(self, key_hash: str, *, day: str) -> None: ...

    def list_api_keys(
        self, trial_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[ApiKey], str | None]: ...

    def revoke_api_key(self, trial_id: str, key_id: str, *, at: str) -> ApiKey | None: ...


class ParticipantStore(Protocol):
    def enrol(self, participant: Participant) -> None: ...

    def get_participant(self, trial_id: str, participant_id: str) -> Participant | None: ...

    def set_participant_status(
        self,
        trial_id: str,
        participant_id: str,
        *,
        status: ParticipantStatus,
        reason: str | None,
        at: str,
    ) -> Participant | None: ...

    def list_participants(self, trial_id: str) -> list[Participant]: ...

    def participants_page(
        self, trial_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[Participant], str | None]: ...

    def mark_done(self, trial_id: str, participant_id: str, slot: Slot) -> bool: ...

    def delete_participant(self, trial_id: str, participant_id: str) -> None: ...


class AccessStore(Protocol):
    """Enrolment codes and participant tokens, each stored only as a hash."""

    def issue_code(self, code_hash: str, code: AccessCode) -> bool: ...

    def code(self, code_hash: str) -> AccessCode | None: ...

    def exchange_code(
        self,
        code_hash: str,
        code: AccessCode,
        *,
        token_hash: str,
        token: ParticipantToken,
        now: str,
    ) -> tuple[Participant, dict[str, ParticipantToken]] | None: ...

    def drop_tokens(
        self, trial_id: str, participant_id: str, token_hashes: Iterable[str]
    ) -> None: ...

    def token_holder(
        self, *, trial_id: str, participant_id: str, token_hash: str
    ) -> tuple[Participant, ParticipantToken] | None: ...

    def revoke_token(self, *, trial_id: str, participant_id: str, token_hash: str) -> bool: ...

    def revoke_access(
        self, trial_id: str, participant_id: str, *, with_code: bool
    ) -> int | None: ...


class InstrumentTextStore(Protocol):
    """A trial's licensed wording per instrument version (as upload bodies)."""

    def put_texts(
        self,
        *,
        trial_id: str,
        instrument_id: str,
        version: str,
        texts: Mapping[str, Any],
        updated_at: str,
        key_id: str,
    ) -> bool: ...

    def get_texts(
        self, *, trial_id: str, instrument_id: str, version: str
    ) -> dict[str, Any] | None: ...


class SubmissionStore(Protocol):
    def put_new(self, record: SubmissionRecord) -> None: ...

    def slot_head(
        self, *, trial_id: str, participant_id: str, slot: Slot
    ) -> SubmissionRecord | None: ...

    def in_slot(
        self, *, trial_id: str, participant_id: str, slot: Slot
    ) -> list[SubmissionRecord]: ...

    def list_for_participant(
        self, trial_id: str, participant_id: str
    ) -> list[SubmissionRecord]: ...

    def list_for_trial(self, trial_id: str) -> list[SubmissionRecord]: ...

    def iter_for_trial(self, trial_id: str) -> Iterator[SubmissionRecord]: ...

    def delete(self, record: SubmissionRecord) -> None: ...


class IdempotencyStore(Protocol):
    def claim_idempotency(self, claim: IdempotencyClaim) -> IdempotencyClaim | None: ...

    def release_idempotency(self, scope: str) -> None: ...


class ScoreStore(Protocol):
    def put_score(self, record: ScoreRecord) -> bool: ...

    def get_score(
        self, *, trial_id: str, participant_id: str, slot: Slot, seq: int
    ) -> ScoreRecord | None: ...

    def superseded_scores(
        self, corrections: Sequence[SubmissionInfo]
    ) -> dict[str, ScoreRecord]: ...

    def list_scores(
        self, trial_id: str, participant_id: str | None = None, *, consistent: bool = False
    ) -> list[ScoreRecord]: ...

    def scores_by_participant(self, trial_id: str) -> Iterator[list[ScoreRecord]]: ...

    def delete_score(self, record: ScoreRecord) -> None: ...


class AggregateStore(Protocol):
    def list_aggregates(self, trial_id: str) -> dict[Slot, dict[str, Moments]]: ...


class ScoringLedger(Protocol):
    """Scores and the aggregates they count, changed together (exactly once)."""

    def count(
        self, records: Sequence[tuple[ScoreRecord, ScoreRecord | None]]
    ) -> dict[str, Counted]: ...

    def uncount(self, record: ScoreRecord) -> None: ...


class AlertStore(Protocol):
    def claim_alert(self, record: AlertRecord) -> AlertRecord | None: ...

    def mark_alert_sent(
        self, record: AlertRecord, *, sent_at: str, recipients: Iterable[str]
    ) -> None: ...

    def mark_alert_suppressed(self, record: AlertRecord, *, reason: str) -> None: ...

    def claim_alert_email(
        self,
        record: AlertRecord,
        *,
        now: str,
        not_since: str,
        hour: str,
        hourly_cap: int,
        expires_at: int,
    ) -> str | None: ...

    def delete_alert_caps(self, trial_id: str, participant_id: str) -> int: ...

    def list_alerts(
        self, trial_id: str, participant_id: str | None = None, *, consistent: bool = False
    ) -> list[AlertRecord]: ...

    def alert_page(
        self, trial_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[AlertRecord], str | None]: ...

    def delete_alert(self, record: AlertRecord) -> None: ...


class AuditStore(Protocol):
    def append_audit(self, event: AuditEvent) -> None: ...

    def append_many(self, events: Sequence[AuditEvent]) -> None: ...

    def audit_page(
        self, trial_id: str, *, start: str, end: str, limit: int, cursor: str | None
    ) -> tuple[list[AuditEvent], str | None]: ...


class ReportStore(Protocol):
    """Where reports are published (S3 under ``reports/<trial>/pre-post``)."""

    bucket: str

    def prefix(self, trial_id: str) -> str: ...

    def put(self, key: str, body: bytes, content_type: str) -> str: ...

    def put_json(self, key: str, document: dict[str, Any]) -> str: ...

    def get_json(self, key: str) -> dict[str, Any] | None: ...

    def delete_versions(self, prefix: str, *, naming: Callable[[bytes], bool]) -> int: ...


class ResultFiles(Protocol):
    """Where jobs write their files (the reports bucket, under ``exports/<trial>/``) and how
    a client fetches one (a presigned GET)."""

    def export_prefix(self, trial_id: str) -> str: ...

    def put_chunks(self, key: str, chunks: Iterable[bytes], content_type: str) -> int: ...

    def download_url(self, key: str, *, filename: str, expires_in: int) -> str: ...

    def delete_versions(self, prefix: str, *, naming: Callable[[bytes], bool]) -> int: ...


class JobStore(Protocol):
    """Job records (main table, ``JOBS#{trial}``); finishing is conditional on ``running``."""

    def create_job(self, job: Job) -> None: ...

    def get_job(self, trial_id: str, kind: JobKind, job_id: str) -> Job | None: ...

    def job_page(
        self, trial_id: str, kind: JobKind, *, limit: int, cursor: str | None
    ) -> tuple[list[Job], str | None]: ...

    def finish_job(self, job: Job, *, files: Sequence[JobFile], at: str) -> Job | None: ...

    def fail_job(
        self, job: Job, *, error: str, at: str, only_running: bool = True
    ) -> Job | None: ...


class JobQueue(Protocol):
    """Hands a job to the job function (an SQS queue on AWS and locally)."""

    def enqueue(self, job: Job) -> None: ...


class TrialCounts(Protocol):
    """How big a trial is, counted only up to a bound (never more than that is read)."""

    def count_scores(self, trial_id: str, *, at_most: int) -> int: ...

    def count_participants(self, trial_id: str, *, at_most: int) -> int: ...


class Mailer(Protocol):
    def send(self, *, to: Sequence[str], subject: str, text: str, html: str) -> str: ...


class Metrics(Protocol):
    def count(self, name: str, value: int = 1) -> None: ...


@dataclass(frozen=True, kw_only=True)
class TrialStores:
    """The stores of a trial's data, for the use cases that touch most of it (scoring,
    erasure, reads)."""

    trials: TrialStore
    participants: ParticipantStore
    submissions: SubmissionStore
    scores: ScoreStore
    aggregates: AggregateStore
    ledger: ScoringLedger
    alerts: AlertStore
    idempotency: IdempotencyStore
