"""Idempotency-Key claims in the main table: ``IDEM#{scope hash}`` / ``IDEM`` (TTL 24 h)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters import keys
from adapters.dynamodb import ConditionFailed, DynamoTable
from domain.submissions import IdempotencyClaim
from domain.trial import Slot


def _claim_from_item(scope: str, item: Mapping[str, Any]) -> IdempotencyClaim:
    return IdempotencyClaim(
        scope=scope,
        body_hash=str(item["body_hash"]),
        trial_id=str(item["trial_id"]),
        participant_id=str(item["participant_id"]),
        slot=Slot(instrument=str(item["instrument"]), timepoint=str(item["timepoint"])),
        submission_id=str(item["submission_id"]),
        received_at=str(item["received_at"]),
        expires_at=int(item["expires_at"]),
    )


class IdempotencyTable:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def claim_idempotency(self, claim: IdempotencyClaim) -> IdempotencyClaim | None:
        """Claim an Idempotency-Key; returns None when claimed, else the earlier claim."""
        try:
            self.table.put(
                {
                    **keys.idempotency(claim.scope),
                    "entity": "idempotency",
                    "body_hash": claim.body_hash,
                    "trial_id": claim.trial_id,
                    "participant_id": claim.participant_id,
                    "instrument": claim.slot.instrument,
                    "timepoint": claim.slot.timepoint,
                    "submission_id": claim.submission_id,
                    "received_at": claim.received_at,
                    "expires_at": claim.expires_at,
                },
                condition="attribute_not_exists(pk)",
                return_existing=True,
            )
        except ConditionFailed as exc:
            if not exc.existing:
                raise
            return _claim_from_item(claim.scope, exc.existing)
        return None

    def release_idempotency(self, scope: str) -> None:
        self.table.delete(keys.idempotency(scope))
