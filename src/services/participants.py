"""Enrolment and status of participants, with their scheduled submissions done / missing."""

from __future__ import annotations

from dataclasses import dataclass

from domain.errors import AlreadyExists
from domain.trial import Participant, ParticipantStatus, Trial
from services.clock import Clock, iso
from services.errors import Conflict, NotFound
from services.ports import ParticipantStore


@dataclass(frozen=True, kw_only=True)
class Progress:
    participant: Participant
    done: tuple[str, ...]
    missing: tuple[str, ...]


def progress(trial: Trial, participant: Participant) -> Progress:
    slots = [str(slot) for slot in trial.protocol.slots()]
    return Progress(
        participant=participant,
        done=tuple(s for s in slots if s in participant.done),
        missing=tuple(s for s in slots if s not in participant.done),
    )


class ParticipantService:
    def __init__(self, store: ParticipantStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

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
        changed = self.store.set_participant_status(
            trial.trial_id, participant_id, status=status, reason=reason, at=iso(self.clock())
        )
        if changed is None:
            raise NotFound(f"participant {participant_id} is not enrolled in {trial.trial_id}")
        return changed

    def list(self, trial: Trial) -> list[Progress]:
        participants = sorted(
            self.store.list_participants(trial.trial_id), key=lambda p: p.participant_id
        )
        return [progress(trial, p) for p in participants]
