"""Scores in the main table: ``T#{trial}`` / ``SC#{participant}#{instrument}#{timepoint}#{seq}``."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from adapters import keys
from adapters.dynamodb import ConditionFailed, DynamoTable
from domain.scoring import SubscaleScore
from domain.submissions import ScoreRecord
from domain.trial import Slot


def _score_key(record: ScoreRecord) -> dict[str, str]:
    return keys.score(
        trial_id=record.trial_id,
        participant_id=record.participant_id,
        slot=record.slot,
        seq=record.seq,
    )


def _subscale_to_item(value: SubscaleScore) -> dict[str, Any]:
    return {
        "score": value.score,
        "prorated": value.prorated,
        "answered": value.answered,
        "missing": value.missing,
        "reason": value.reason,
        "band": value.band,
    }


def score_from_item(item: Mapping[str, Any]) -> ScoreRecord:
    return ScoreRecord(
        trial_id=item["trial_id"],
        participant_id=item["participant_id"],
        submission_id=item["submission_id"],
        instrument=item["instrument"],
        instrument_version=str(item["instrument_version"]),
        timepoint=item["timepoint"],
        seq=int(item["seq"]),
        completed_at=item["completed_at"],
        received_at=item["received_at"],
        scored_at=item["scored_at"],
        subscales={
            name: SubscaleScore(
                subscale=name,
                score=None if v.get("score") is None else float(v["score"]),
                prorated=bool(v.get("prorated")),
                answered=int(v.get("answered", 0)),
                missing=int(v.get("missing", 0)),
                reason=v.get("reason"),
                band=v.get("band"),
            )
            for name, v in item["subscales"].items()
        },
        supersedes=item.get("supersedes"),
        superseded_by=item.get("superseded_by"),
    )


class ScoreTable:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def put_score(self, record: ScoreRecord) -> bool:
        """Store a score once; False when it was already stored (redelivery)."""
        item: dict[str, Any] = {
            **_score_key(record),
            "entity": "score",
            "trial_id": record.trial_id,
            "participant_id": record.participant_id,
            "submission_id": record.submission_id,
            "instrument": record.instrument,
            "instrument_version": record.instrument_version,
            "timepoint": record.timepoint,
            "seq": record.seq,
            "completed_at": record.completed_at,
            "received_at": record.received_at,
            "scored_at": record.scored_at,
            "subscales": {k: _subscale_to_item(v) for k, v in record.subscales.items()},
        }
        if record.supersedes:
            item["supersedes"] = record.supersedes
        try:
            self.table.put(item, condition="attribute_not_exists(pk)")
        except ConditionFailed:
            return False
        return True

    def get_score(
        self, *, trial_id: str, participant_id: str, slot: Slot, seq: int
    ) -> ScoreRecord | None:
        item = self.table.get(
            keys.score(trial_id=trial_id, participant_id=participant_id, slot=slot, seq=seq)
        )
        return score_from_item(item) if item else None

    def mark_superseded(self, record: ScoreRecord, *, by: str) -> None:
        """Note the correction on the superseded score, unless erasure removed it meanwhile."""
        with contextlib.suppress(ConditionFailed):
            self.table.update(
                _score_key(record),
                update="SET superseded_by = :by",
                condition="attribute_exists(pk)",
                values={":by": by},
            )

    def list_scores(
        self, trial_id: str, participant_id: str | None = None, *, consistent: bool = False
    ) -> list[ScoreRecord]:
        items = self.table.query_all(
            pk=keys.trial_pk(trial_id), prefix=keys.scores_of(participant_id), consistent=consistent
        )
        return [score_from_item(i) for i in items]

    def delete_score(self, record: ScoreRecord) -> None:
        self.table.delete(_score_key(record))
