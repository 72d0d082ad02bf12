"""Participants in the main table: ``T#{trial_id}`` / ``P#{participant_id}``.

The participant item also holds the participant's own access (`adapters.access_store`):
``tokens`` (token hash -> token), ``code_hash`` and ``code_expires_at`` of the unused
enrolment code. Erasing the participant deletes it with them, and the code's item too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters import keys
from adapters.cursors import decode_cursor, encode_cursor
from adapters.dynamodb import ConditionFailed, DynamoTable
from domain.errors import AlreadyExists
from domain.trial import Participant, ParticipantStatus, Slot


def participant_from_item(item: Mapping[str, Any]) -> Participant:
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
                    "tokens": {},
                },
                condition="attribute_not_exists(pk)",
            )
        except ConditionFailed:
            raise AlreadyExists(f"participant {participant.participant_id}") from None

    def get_participant(self, trial_id: str, participant_id: str) -> Participant | None:
        """A consistent read: what erasure and scoring decide on."""
        item = self.table.get(keys.participant(trial_id=trial_id, participant_id=participant_id))
        return participant_from_item(item) if item else None

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
        return participant_from_item(item) if item else None

    def list_participants(self, trial_id: str) -> list[Participant]:
        items = self.table.query_all(pk=keys.trial_pk(trial_id), prefix=keys.PARTICIPANT_PREFIX)
        return [participant_from_item(i) for i in items]

    def participants_page(
        self, trial_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[Participant], str | None]:
        """One page of the trial's participants in code order; `BadCursor` for a bad cursor."""
        pk = keys.trial_pk(trial_id)
        after = decode_cursor(cursor, pk=pk, sk_prefix=keys.PARTICIPANT_PREFIX) if cursor else None
        items, last = self.table.query_page(
            pk=pk, prefix=keys.PARTICIPANT_PREFIX, limit=limit, start_key=after
        )
        next_cursor = encode_cursor({"pk": pk, "sk": str(last["sk"])}) if last else None
        return [participant_from_item(i) for i in items], next_cursor

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
        """Delete the participant, their tokens with them, and the item of an unused code."""
        old = self.table.delete(
            keys.participant(trial_id=trial_id, participant_id=participant_id), return_old=True
        )
        if old and old.get("code_hash"):
            self.table.delete(keys.access_code(str(old["code_hash"])))
