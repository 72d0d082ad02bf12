"""Enrolment and status of participants, and where each stands in the schedule.

A participant's schedule (every scheduled instrument x timepoint with its window and its
state: upcoming, due, done, missed) comes from `domain.schedule` with the protocol's timing;
the participant's own view (``GET /v1/me``), the coordinator's participant list and the
weekly e-mail read the same states. A timepoint without any timing (only possible in a
protocol stored before protocols had timing: a new one is refused without it) cannot be
placed in time, so its slots are left out of the schedule; they still count in
``done`` / ``missing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from domain.errors import AlreadyExists, Problem
from domain.schedule import ScheduledSlot, participant_schedule, untimed_timepoints
from domain.trial import Participant, ParticipantStatus, StudyProtocol, Trial
from services.access import AccessService
from services.clock import Clock, iso
from services.errors import Conflict, NotFound, ValidationFailed
from services.ports import ParticipantStore

__all__ = ["ParticipantService", "Progress", "progress", "schedule_of", "timed_schedule"]


@dataclass(frozen=True, kw_only=True)
class Progress:
    participant: Participant
    done: tuple[str, ...]
    missing: tuple[str, ...]
    schedule: tuple[ScheduledSlot, ...]


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def timed_schedule(protocol: StudyProtocol) -> dict[str, tuple[str, ...]]:
    """The protocol's schedule without the timepoints that have no timing at all."""
    untimed = set(
        untimed_timepoints(timepoints=protocol.scheduled_timepoints(), overrides=protocol.timing)
    )
    return {
        instrument: tuple(t for t in points if t not in untimed)
        for instrument, points in protocol.schedule.items()
    }


def schedule_of(trial: Trial, participant: Participant, now: datetime) -> tuple[ScheduledSlot, ...]:
    """Every timed slot of the participant with its window and its state at `now`."""
    return participant_schedule(
        timepoints=trial.protocol.timepoints,
        schedule=timed_schedule(trial.protocol),
        enrolled_at=_moment(participant.enrolled_at),
        status=participant.status,
        status_changed_at=_moment(participant.status_changed_at),
        done=participant.done,
        now=now,
        timing=trial.protocol.timing,
    )


def progress(trial: Trial, participant: Participant, now: datetime) -> Progress:
    slots = [str(slot) for slot in trial.protocol.slots()]
    return Progress(
        participant=participant,
        done=tuple(s for s in slots if s in participant.done),
        missing=tuple(s for s in slots if s not in participant.done),
        schedule=schedule_of(trial, participant, now),
    )


class ParticipantService:
    def __init__(self, store: ParticipantStore, clock: Clock, access: AccessService) -> None:
        self.store = store
        self.clock = clock
        self.access = access

    def enrol(self, trial: Trial, participant_id: str) -> Participant:
        now = iso(self.clock())
        participant = Participant(
            trial_id=trial.trial_id,
            participant_id=participant_id,
            status="active",
            enrolled_at=now,
            status_changed_at=now,
        )
        try:
            self.store.enrol(participant)
        except AlreadyExists:
            raise Conflict(
                f"participant {participant_id} is already enrolled in {trial.trial_id}",
                code="already-enrolled",
            ) from None
        return participant

    def get(self, trial: Trial, participant_id: str) -> Participant:
        participant = self.store.get_participant(trial.trial_id, participant_id)
        if participant is None:
            raise NotFound(f"participant {participant_id} is not enrolled in {trial.trial_id}")
        return participant

    def set_status(
        self, trial: Trial, participant_id: str, *, status: ParticipantStatus, reason: str | None
    ) -> Participant:
        """Set the status; a withdrawal also ends the participant's tokens and unused code."""
        changed = self.store.set_participant_status(
            trial.trial_id, participant_id, status=status, reason=reason, at=iso(self.clock())
        )
        if changed is None:
            raise NotFound(f"participant {participant_id} is not enrolled in {trial.trial_id}")
        if status == "withdrawn":
            # tokens of a withdrawn participant are refused whatever is stored (the status is
            # read with them); this removes them and the code as well
            self.access.revoke(trial.trial_id, participant_id, with_code=True)
        return changed

    def page(
        self, trial: Trial, *, limit: int, cursor: str | None
    ) -> tuple[list[Progress], str | None]:
        """One page of the participants in code order, with progress and schedule now."""
        participants, next_cursor = self.store.participants_page(
            trial.trial_id, limit=limit, cursor=cursor
        )
        now = self.clock()
        return [progress(trial, p, now) for p in participants], next_cursor

    def schedule(self, trial: Trial, participant: Participant) -> tuple[ScheduledSlot, ...]:
        """The participant's schedule now (``GET /v1/me``)."""
        return schedule_of(trial, participant, self.clock())

    def due_timepoint(self, trial: Trial, participant: Participant, instrument: str) -> str | None:
        """The timepoint of `instrument` that is due now (the earliest closing), or None."""
        due = [
            s
            for s in self.schedule(trial, participant)
            if s.instrument == instrument and s.state == "due"
        ]
        return min(due, key=lambda s: s.closes_at).timepoint if due else None

    def code_for(self, trial: Trial, participant_id: str) -> Participant:
        """The participant a coordinator asks a code for: enrolled, and not withdrawn."""
        participant = self.get(trial, participant_id)
        if participant.status == "withdrawn":
            raise ValidationFailed(
                [
                    Problem(
                        ("path", "participant_id"),
                        f"participant {participant_id} is withdrawn from {trial.trial_id}: "
                        "set them active again before giving them a code",
                        "withdrawn",
                    )
                ]
            )
        return participant
