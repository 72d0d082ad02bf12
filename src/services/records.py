"""Plain records the services pass between the adapters and the renderers.

They carry what the stores hold, already converted from DynamoDB types (no Decimal here).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

ParticipantStatus = Literal["active", "withdrawn", "completed"]


@dataclass(frozen=True)
class Participant:
    trial_id: str
    participant_id: str
    status: ParticipantStatus
    enrolled_at: str
    status_changed_at: str
    reason: str | None = None
    # "instrument#timepoint" slots that have a scored submission
    done: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class SubscaleValue:
    """One stored subscale score (the domain's SubscaleScore as persisted)."""

    subscale: str
    score: float | None
    prorated: bool
    answered: int
    missing: int
    reason: str | None
    band: str | None


@dataclass(frozen=True)
class ScoreRecord:
    """A scored submission as stored in the main table (one per submission)."""

    trial_id: str
    participant_id: str
    submission_id: str
    instrument: str
    instrument_version: str
    timepoint: str
    seq: int
    completed_at: str
    received_at: str
    scored_at: str
    subscales: Mapping[str, SubscaleValue]
    supersedes: str | None = None
    superseded_by: str | None = None


@dataclass(frozen=True)
class SubmissionRecord:
    """A stored submission (item responses and free text); never logged."""

    trial_id: str
    participant_id: str
    submission_id: str
    instrument: str
    instrument_version: str
    timepoint: str
    seq: int
    completed_at: str
    received_at: str
    responses: Mapping[int, int | None]
    notes: Mapping[str, str] | None = None
    supersedes: str | None = None


@dataclass(frozen=True)
class Comparison:
    pre: str
    post: str


@dataclass(frozen=True)
class Protocol:
    """Which timepoints exist, which instrument is due when, and the pre/post pair."""

    timepoints: tuple[str, ...]
    schedule: Mapping[str, tuple[str, ...]]  # instrument -> timepoints
    comparison: Comparison


def default_protocol() -> Protocol:
    """The 12-week group programme of the pilot study (API.md, Default protocol)."""
    weeks = tuple(f"week-{n}" for n in range(1, 13))
    questionnaire_points = ("week-1", "week-12", "follow-up")
    schedule: dict[str, tuple[str, ...]] = dict.fromkeys(
        ("hads", "fscs", "fscrs", "oas", "scs", "sbs"), questionnaire_points
    )
    schedule["diary"] = weeks
    return Protocol(
        timepoints=(*weeks, "follow-up"),
        schedule=schedule,
        comparison=Comparison(pre="week-1", post="week-12"),
    )


def newest_counting(scores: list[ScoreRecord]) -> dict[tuple[str, str, str], ScoreRecord]:
    """The score that counts per (participant, instrument, timepoint): the highest seq."""
    best: dict[tuple[str, str, str], ScoreRecord] = {}
    for record in scores:
        key = (record.participant_id, record.instrument, record.timepoint)
        current = best.get(key)
        if current is None or record.seq > current.seq:
            best[key] = record
    return best


Role = Literal["admin", "coordinator", "submitter"]


@dataclass(frozen=True)
class AlertRule:
    instrument: str
    item: int
    at_least: int


DEFAULT_ALERT_RULES = (AlertRule(instrument="fscrs", item=9, at_least=3),)


@dataclass(frozen=True)
class Trial:
    trial_id: str
    title: str
    coordinator_emails: tuple[str, ...]
    protocol: Protocol
    alert_rules: tuple[AlertRule, ...]
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class ApiKey:
    """A stored API key (never the key itself: only its hash is the lookup key)."""

    key_id: str
    role: Role
    trial_id: str  # "*" for admin keys
    label: str
    created_at: str
    expires_at: str | None = None  # refused from this moment on
    revoked_at: str | None = None  # refused from this moment on (within the key cache)
    last_used: str | None = None  # the last day (YYYY-MM-DD, UTC) it was accepted


@dataclass(frozen=True)
class AuditEvent:
    trial_id: str
    at: str
    event_id: str
    key_id: str
    role: str
    action: str
    targets: Mapping[str, str]


@dataclass(frozen=True)
class AlertRecord:
    trial_id: str
    participant_id: str
    submission_id: str
    rule_no: int
    rule: AlertRule
    instrument: str
    timepoint: str
    created_at: str
    sent_at: str | None
    recipients: tuple[str, ...]
    # why no e-mail went out although the rule was met (a cap), or None
    suppressed: str | None = None


def natural_key(text: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key that orders digit runs by value: P2 before P10, week-2 before week-10."""
    parts = re.split(r"(\d+)", text)
    return tuple((0, int(part)) if part.isdigit() else (1, part) for part in parts if part)
