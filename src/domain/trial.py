"""The trial's own nouns: trial, study protocol, participant, slot, alert rule, API key, audit,
and a participant's own access (enrolment code, participant token).

Plain frozen dataclasses, named as the trial names them; every layer speaks them (the
adapters map them to items, the services decide with them, the handlers render them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Literal

__all__ = [
    "ALL_TRIALS",
    "DEFAULT_ALERT_RULES",
    "AccessCode",
    "AlertRecord",
    "AlertRule",
    "ApiKey",
    "AuditEvent",
    "Comparison",
    "Participant",
    "ParticipantStatus",
    "ParticipantToken",
    "Role",
    "Slot",
    "StudyProtocol",
    "TimepointTiming",
    "Trial",
    "default_protocol",
    "natural_key",
]

ParticipantStatus = Literal["active", "withdrawn", "completed"]
Role = Literal["admin", "coordinator", "submitter"]
#: The trial id of an admin key, which acts on every trial.
ALL_TRIALS = "*"


@dataclass(frozen=True, order=True, kw_only=True)
class Slot:
    """One scheduled instrument at one timepoint: what a participant submits once.

    Its one string form, ``"instrument#timepoint"`` (`str` and `parse`), is how a slot is
    stored and shown (e.g. a participant's ``done`` slots).
    """

    instrument: str
    timepoint: str

    def __str__(self) -> str:
        return f"{self.instrument}#{self.timepoint}"

    @classmethod
    def parse(cls, text: str) -> Slot:
        instrument, sep, timepoint = text.partition("#")
        if not sep or not instrument or not timepoint:
            raise ValueError(f"not a slot: {text!r}")
        return cls(instrument=instrument, timepoint=timepoint)


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """The pre/post pair of timepoints the report compares."""

    pre: str
    post: str


_DAY = timedelta(days=1)


@dataclass(frozen=True, kw_only=True)
class TimepointTiming:
    """When a timepoint falls: ``offset_days`` after enrolment, +/- ``window_days``.

    Attributes
    ----------
    offset_days : int
        Whole days from enrolment to the timepoint (day 0 is the day of enrolment).
    window_days : int
        Whole days either side of the timepoint that still count as on time (0: that day
        only).
    """

    offset_days: int
    window_days: int

    def __post_init__(self) -> None:
        for name in ("offset_days", "window_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {value!r}")
            if value < 0:
                raise ValueError(f"{name} must be 0 or more, got {value}")

    def window(self, enrolled_at: datetime) -> tuple[datetime, datetime]:
        """``(opens_at, closes_at)``, half-open, for a participant enrolled at `enrolled_at`."""
        opens_at = enrolled_at + (self.offset_days - self.window_days) * _DAY
        closes_at = enrolled_at + (self.offset_days + self.window_days + 1) * _DAY
        return max(opens_at, enrolled_at), closes_at


def _no_timing() -> Mapping[str, TimepointTiming]:
    return MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class StudyProtocol:
    """Which timepoints exist, which instrument is due when, and the pre/post pair.

    `timing` holds the trial's own timing of some timepoints (API.md v1.1, "Participant
    access"); every other timepoint takes its default (`domain.schedule.default_timing`:
    ``week-N`` at day 7 (N - 1) +/- 3, ``follow-up`` at day 182 +/- 14).
    """

    timepoints: tuple[str, ...]
    schedule: Mapping[str, tuple[str, ...]]  # instrument -> timepoints
    comparison: Comparison
    timing: Mapping[str, TimepointTiming] = field(default_factory=_no_timing)

    def slots(self) -> list[Slot]:
        """Every scheduled slot, in timepoint order (then instrument)."""
        order = {tp: n for n, tp in enumerate(self.timepoints)}
        slots = [
            Slot(instrument=instrument, timepoint=tp)
            for instrument, timepoints in self.schedule.items()
            for tp in timepoints
        ]
        return sorted(slots, key=lambda s: (order.get(s.timepoint, len(order)), str(s)))

    def schedules(self, slot: Slot) -> bool:
        return slot.timepoint in self.schedule.get(slot.instrument, ())

    def scheduled_timepoints(self) -> tuple[str, ...]:
        """The timepoints some instrument is scheduled at, in protocol order."""
        return tuple(
            t for t in self.timepoints if any(t in points for points in self.schedule.values())
        )


def default_protocol() -> StudyProtocol:
    """The 12-week group programme of the pilot study (API.md, Default protocol)."""
    weeks = tuple(f"week-{n}" for n in range(1, 13))
    questionnaire_points = ("week-1", "week-12", "follow-up")
    schedule: dict[str, tuple[str, ...]] = dict.fromkeys(
        ("hads", "fscs", "fscrs", "oas", "scs", "sbs"), questionnaire_points
    )
    schedule["diary"] = weeks
    return StudyProtocol(
        timepoints=(*weeks, "follow-up"),
        schedule=schedule,
        comparison=Comparison(pre="week-1", post="week-12"),
    )


@dataclass(frozen=True, kw_only=True)
class AlertRule:
    """Alert the coordinators when `instrument` item `item` is answered `at_least` or more."""

    instrument: str
    item: int
    at_least: int

    def met_by(self, *, instrument: str, responses: Mapping[int, int | None]) -> bool:
        value = responses.get(self.item) if instrument == self.instrument else None
        return value is not None and value >= self.at_least


DEFAULT_ALERT_RULES = (AlertRule(instrument="fscrs", item=9, at_least=3),)


@dataclass(frozen=True, kw_only=True)
class Trial:
    trial_id: str
    title: str
    coordinator_emails: tuple[str, ...]
    protocol: StudyProtocol
    alert_rules: tuple[AlertRule, ...]
    created_at: str
    updated_at: str


@dataclass(frozen=True, kw_only=True)
class Participant:
    trial_id: str
    participant_id: str
    status: ParticipantStatus
    enrolled_at: str
    status_changed_at: str
    reason: str | None = None
    # the slots with a stored submission (adherence), as Slot strings
    done: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True, kw_only=True)
class ApiKey:
    """A stored API key (never the key itself: only its hash is the lookup key)."""

    key_id: str
    role: Role
    trial_id: str  # ALL_TRIALS for admin keys
    label: str
    created_at: str
    expires_at: str | None = None  # refused from this moment on
    revoked_at: str | None = None  # refused from this moment on (within the key cache)
    last_used: str | None = None  # the last day (YYYY-MM-DD, UTC) it was accepted


@dataclass(frozen=True, kw_only=True)
class AccessCode:
    """A one-time enrolment code as stored: never the code, only what it opens.

    Found by the hash of the code; `enrolled_at` is the participant's, so that the token it
    is exchanged for can be given an expiry from the participant's schedule.
    """

    trial_id: str
    participant_id: str
    enrolled_at: str
    created_at: str
    expires_at: str  # refused from this moment on


@dataclass(frozen=True, kw_only=True)
class ParticipantToken:
    """A participant token as stored (by its hash, on the participant): never the token."""

    token_id: str  # public: what the audit trail and submissions name
    issued_at: str
    expires_at: str  # refused from this moment on


@dataclass(frozen=True, kw_only=True)
class AuditEvent:
    trial_id: str
    at: str
    event_id: str
    key_id: str
    role: str
    action: str
    targets: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class AlertRecord:
    """A met safety-alert rule of one submission, and what became of its e-mail."""

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
