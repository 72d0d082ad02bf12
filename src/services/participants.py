"""Enrolment and status of participants, with their scheduled submissions done / missing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol as TypingProtocol

from services.clock import Clock, iso
from services.errors import ConditionFailed, Conflict, NotFound
from services.records import Participant, ParticipantStatus, Trial


class ParticipantStore(TypingProtocol):
    def enrol(self, participant: Participant) -> None: ...

    def get_participant(self, trial_id: str, participant_id: str) -> Participant | None: ...

    def set_participant_status(
        self, trial_id: str, participant_id: str, *, status: str, reason: str | None, at: str
    ) -> Participant: ...

    def list_participants(self, trial_id: str) -> list[Participant]: ...


@dataclass(frozen=True)
class Progress:
    participant: Participant
    done: tuple[str, ...]
    missing: tuple[str, ...]


def scheduled_slots(trial: Trial) -> list[str]:
    order = {tp: n for n, tp in enumerate(trial.protocol.timepoints)}
    slots = [
        f"{instrument}#{tp}" for instrument, tps in trial.protocol.schedule.items() for tp in tps
    ]
    return sorted(slots, key=lambda s: (order.get(s.split("#")[1], 999), s))


def progress(trial: Trial, participant: Participant) -> Progress:
    slots = scheduled_slots(trial)
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
        except ConditionFailed:
            raise Conflict(
                f"participant {participant_id} is already enrolled in {trial.trial_id}",
                code="already-enrolled",
            ) from None
        return participant

    def set_status(
        self, trial: Trial, participant_id: str, *, status: ParticipantStatus, reason: str | None
    ) -> Participant:
        try:
            return self.store.set_participant_status(
                trial.trial_id, participant_id, status=status, reason=reason, at=iso(self.clock())
            )
        except ConditionFailed:
            raise NotFound(
                f"participant {participant_id} is not enrolled in {trial.trial_id}"
            ) from None

    def list(self, trial: Trial) -> list[Progress]:
        participants = sorted(
            self.store.list_participants(trial.trial_id), key=lambda p: p.participant_id
        )
        return [progress(trial, p) for p in participants]
