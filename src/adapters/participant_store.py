"""Participants in the main table: ``T#{trial_id}`` / ``P#{participant_id}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters import keys
from adapters.dynamodb import ConditionFailed, DynamoTable
from domain.errors import AlreadyExists
from domain.trial import Participant, ParticipantStatus, Slot


def _participant_from_item(item: Mapping[str, Any]) -> Participant:
    return Participant(
        trial_id=item["trial_id"],
        participant_id=item["participant_id"],
        status=item["status"],
        enrolled_at=item["enrolled_at"],
        status_changed_at=item["status_changed_at"],
        reason=item.get("reason"),
        done=frozenset(item.get("done", ())),
    )


class ParticipantTable:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def enrol(self, participant: Participant) -> None:
        """Store a new participant; `AlreadyExists` when the code is enrolled already."""
        try:
            self.table.put(
                {
                    **keys.participant(
                        trial_id=participant.trial_id, participant_id=participant.participant_id
                    ),
                    "entity": "participant",
                    "trial_id": participant.trial_id,
                    "participant_id": participant.participant_id,
                    "status": participant.status,
                    "enrolled_at": participant.enrolled_at,
                    "status_changed_at": participant.status_changed_at,
                },
                condition="attribute_not_exists(pk)",
            )
        except ConditionFailed:
            raise AlreadyExists(f"participant {participant.participant_id}") from None

    def get_participant(self, trial_id: str, participant_id: str) -> Participant | None:
        """A consistent read: what erasure and scoring decide on."""
        item = self.table.get(keys.participant(trial_id=trial_id, participant_id=participant_id))
        return _participant_from_item(item) if item else None

    def set_participant_status(
        self,
        trial_id: str,
        participant_id: str,
        *,
        status: ParticipantStatus,
        reason: str | None,
        at: str,
    ) -> Participant | None:
        """The participant with the new status, or None when not enrolled."""
        try:
            item = self.table.update(
                keys.participant(trial_id=trial_id, participant_id=participant_id),
                update="SET #status = :status, #reason = :reason, status_changed_at = :at",
                condition="attribute_exists(pk)",
                names={"#status": "status", "#reason": "reason"},
                values={":status": status, ":reason": reason, ":at": at},
                return_new=True,
            )
        except ConditionFailed:
            return None
        return _participant_from_item(item) if item else None

    def list_participants(self, trial_id: str) -> list[Participant]:
        items = self.table.query_all(pk=keys.trial_pk(trial_id), prefix=keys.PARTICIPANT_PREFIX)
        return [_participant_from_item(i) for i in items]

    def mark_done(self, trial_id: str, participant_id: str, slot: Slot) -> bool:
        """Record a submitted slot (adherence); ADD to a set is naturally idempotent.

        False when the participant no longer exists (erased): nothing is marked.
        """
        try:
            self.table.update(
                keys.participant(trial_id=trial_id, participant_id=participant_id),
                update="ADD done :slot",
                condition="attribute_exists(pk)",
                values={":slot": {str(slot)}},
            )
        except ConditionFailed:
            return False
        return True

    def delete_participant(self, trial_id: str, participant_id: str) -> None:
        self.table.delete(keys.participant(trial_id=trial_id, participant_id=participant_id))
