"""The submissions table: immutable submission items, streamed to the scoring function."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters import keys
from adapters.dynamodb import ConditionFailed, DynamoTable
from services.records import SubmissionRecord

BY_TRIAL_INDEX = "by_trial"

__all__ = ["BY_TRIAL_INDEX", "ConditionFailed", "SubmissionStore", "submission_from_item"]


def submission_from_item(item: Mapping[str, Any]) -> SubmissionRecord:
    responses = {
        int(k): (None if v is None else int(v)) for k, v in (item.get("responses") or {}).items()
    }
    notes = item.get("notes") or None
    return SubmissionRecord(
        trial_id=item["trial_id"],
        participant_id=item["participant_id"],
        submission_id=item["submission_id"],
        instrument=item["instrument"],
        instrument_version=str(item["instrument_version"]),
        timepoint=item["timepoint"],
        seq=int(item["seq"]),
        completed_at=item["completed_at"],
        received_at=item["received_at"],
        responses=responses,
        notes={k: v for k, v in notes.items() if v is not None} if notes else None,
        supersedes=item.get("supersedes"),
    )


class SubmissionStore:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def put_new(self, item: Mapping[str, Any]) -> None:
        """Store a submission once: raises ConditionFailed carrying the existing item."""
        self.table.put(item, condition="attribute_not_exists(pk)", return_existing=True)

    def get(self, key: Mapping[str, str]) -> dict[str, Any] | None:
        return self.table.get(key)

    def slot_head(
        self, trial_id: str, participant_id: str, instrument: str, timepoint: str
    ) -> dict[str, Any] | None:
        """The newest submission of a participant/instrument/timepoint slot."""
        items, _ = self.table.query_page(
            pk=keys.submission_pk(trial_id, participant_id),
            prefix=keys.slot_prefix(instrument, timepoint),
            forward=False,
            limit=1,
            consistent=True,
        )
        return items[0] if items else None

    def list_for_participant(self, trial_id: str, participant_id: str) -> list[dict[str, Any]]:
        return self.table.query_all(
            pk=keys.submission_pk(trial_id, participant_id), prefix="S#", consistent=True
        )

    def list_in_slot(self, *, pk: str, slot_prefix: str) -> list[dict[str, Any]]:
        """Every submission of one participant/instrument/timepoint slot, oldest first."""
        return self.table.query_all(pk=pk, prefix=slot_prefix, consistent=True)

    def list_for_trial(self, trial_id: str) -> list[SubmissionRecord]:
        items = self.table.query_all(
            pk=trial_id,
            index=BY_TRIAL_INDEX,
            pk_name="trial_id",
            sk_name="trial_received",
        )
        return [submission_from_item(i) for i in items]

    def delete(self, key: Mapping[str, str]) -> None:
        self.table.delete(key)
