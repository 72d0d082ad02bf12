"""The submissions table: immutable submission items, streamed to the scoring function.

``T#{trial}#P#{participant}`` / ``S#{instrument}#{timepoint}#{seq:03d}``; the index
``by_trial`` (trial_id, trial_received) lists a trial's submissions in arrival order.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

from adapters import keys
from adapters.bulk_read import gc_paused
from adapters.dynamodb import ConditionFailed, DynamoTable
from domain.errors import DuplicateSubmission
from domain.submissions import SubmissionRecord
from domain.trial import Slot

__all__ = ["SubmissionTable", "submission_from_item", "submission_from_stream_image"]

ENTITY = "submission"


def _plain(value: Any) -> Any:
    """Powertools' stream images carry Decimals; stored submissions hold ints and strings."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


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
        key_id=str(item.get("key_id", "unknown")),
        role=str(item.get("role", "unknown")),
        body_hash=str(item.get("body_hash", "")),
        idempotency=item.get("idempotency"),
    )


def submission_from_stream_image(image: Mapping[str, Any] | None) -> SubmissionRecord | None:
    """The submission of a stream record's NEW_IMAGE (as Powertools deserialises it), or
    None for an image that is not a submission."""
    if not image or image.get("entity") != ENTITY:
        return None
    return submission_from_item(_plain(dict(image)))


def _item(record: SubmissionRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        **_key(record),
        "entity": ENTITY,
        "submission_id": record.submission_id,
        "trial_id": record.trial_id,
        "participant_id": record.participant_id,
        "instrument": record.instrument,
        "instrument_version": record.instrument_version,
        "timepoint": record.timepoint,
        "completed_at": record.completed_at,
        "received_at": record.received_at,
        "responses": {str(k): v for k, v in record.responses.items()},
        "seq": record.seq,
        "body_hash": record.body_hash,
        "key_id": record.key_id,
        "role": record.role,
        "trial_received": keys.trial_received(
            received_at=record.received_at, submission_id=record.submission_id
        ),
    }
    if record.notes:
        item["notes"] = dict(record.notes)
    if record.supersedes:
        item["supersedes"] = record.supersedes
    if record.idempotency:
        item["idempotency"] = record.idempotency
    return item


def _key(record: SubmissionRecord) -> dict[str, str]:
    return keys.submission(
        trial_id=record.trial_id,
        participant_id=record.participant_id,
        slot=record.slot,
        seq=record.seq,
    )


class SubmissionTable:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def put_new(self, record: SubmissionRecord) -> None:
        """Store a submission once; `DuplicateSubmission` carrying the one found otherwise."""
        try:
            self.table.put(
                _item(record), condition="attribute_not_exists(pk)", return_existing=True
            )
        except ConditionFailed as exc:
            if not exc.existing:
                raise
            raise DuplicateSubmission(submission_from_item(exc.existing)) from None

    def slot_head(
        self, *, trial_id: str, participant_id: str, slot: Slot
    ) -> SubmissionRecord | None:
        """The newest submission of a participant's slot (consistent)."""
        items, _ = self.table.query_page(
            pk=keys.submission_pk(trial_id=trial_id, participant_id=participant_id),
            prefix=keys.slot_prefix(slot),
            forward=False,
            limit=1,
            consistent=True,
        )
        return submission_from_item(items[0]) if items else None

    def in_slot(self, *, trial_id: str, participant_id: str, slot: Slot) -> list[SubmissionRecord]:
        """Every submission of a participant's slot, oldest first (consistent)."""
        items = self.table.query_all(
            pk=keys.submission_pk(trial_id=trial_id, participant_id=participant_id),
            prefix=keys.slot_prefix(slot),
            consistent=True,
        )
        return [submission_from_item(i) for i in items]

    def list_for_participant(self, trial_id: str, participant_id: str) -> list[SubmissionRecord]:
        items = self.table.query_all(
            pk=keys.submission_pk(trial_id=trial_id, participant_id=participant_id),
            prefix=keys.SUBMISSION_PREFIX,
            consistent=True,
        )
        return [submission_from_item(i) for i in items]

    def list_for_trial(self, trial_id: str) -> list[SubmissionRecord]:
        """A trial's submissions in arrival order (the by_trial index)."""
        with gc_paused():
            return list(self.iter_for_trial(trial_id))

    def iter_for_trial(self, trial_id: str) -> Iterator[SubmissionRecord]:
        """`list_for_trial`, read and handed out page by page."""
        for page in self.table.query_pages(
            pk=trial_id,
            index=keys.BY_TRIAL_INDEX,
            pk_name="trial_id",
            sk_name="trial_received",
        ):
            for item in page:
                yield submission_from_item(item)

    def delete(self, record: SubmissionRecord) -> None:
        self.table.delete(_key(record))
