"""Scores in the main table: ``T#{trial}`` / ``SC#{participant}#{instrument}#{timepoint}#{seq}``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from adapters import keys
from adapters.dynamodb import ConditionFailed, DynamoTable
from domain.scoring import SubscaleScore
from domain.submissions import ScoreRecord, SubmissionInfo
from domain.trial import Slot


def score_key(record: ScoreRecord) -> dict[str, str]:
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


def score_item(record: ScoreRecord) -> dict[str, Any]:
    """The stored item of a score."""
    item: dict[str, Any] = {
        **score_key(record),
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
    return item


class ScoreTable:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def put_score(self, record: ScoreRecord) -> bool:
        """Store a score once; False when it was already stored (redelivery)."""
        try:
            self.table.put(score_item(record), condition="attribute_not_exists(pk)")
        except ConditionFailed:
            return False
        return True

    def superseded_scores(self, corrections: Sequence[SubmissionInfo]) -> dict[str, ScoreRecord]:
        """The stored scores of the submissions these corrections supersede (one batched,
        consistent read), by their submission id; a score not stored yet is absent."""
        wanted = [
            keys.score(
                trial_id=r.trial_id, participant_id=r.participant_id, slot=r.slot, seq=r.seq - 1
            )
            for r in corrections
        ]
        return {
            found.submission_id: found
            for found in (score_from_item(i) for i in self.table.batch_get(wanted))
        }

    def get_score(
        self, *, trial_id: str, participant_id: str, slot: Slot, seq: int
    ) -> ScoreRecord | None:
        item = self.table.get(
            keys.score(trial_id=trial_id, participant_id=participant_id, slot=slot, seq=seq)
        )
        return score_from_item(item) if item else None

    def list_scores(
        self, trial_id: str, participant_id: str | None = None, *, consistent: bool = False
    ) -> list[ScoreRecord]:
        items = self.table.query_all(
            pk=keys.trial_pk(trial_id), prefix=keys.scores_of(participant_id), consistent=consistent
        )
        return [score_from_item(i) for i in items]

    def scores_by_participant(
        self, trial_id: str, *, page_items: int | None = None
    ) -> Iterator[list[ScoreRecord]]:
        """Every score of the trial, one participant's at a time, read page by page (of
        `page_items` items, or DynamoDB's 1 MB).

        The sort key starts with the participant id and ends it with ``#``, so a
        participant's scores are contiguous in the Query's order, even across pages; only
        one page and one participant's scores are held at a time.
        """
        group: list[ScoreRecord] = []
        for page in self.table.query_pages(
            pk=keys.trial_pk(trial_id), prefix=keys.scores_of(None), limit=page_items
        ):
            for item in page:
                record = score_from_item(item)
                if group and record.participant_id != group[0].participant_id:
                    yield group
                    group = []
                group.append(record)
        if group:
            yield group

    def delete_score(self, record: ScoreRecord) -> None:
        self.table.delete(score_key(record))
