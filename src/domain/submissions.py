"""Submissions and their scores as stored: one shared description, two records.

`SubmissionRecord` is what a participant sent (item responses, free text: never logged);
`ScoreRecord` is what scoring made of it. Both are a `SubmissionInfo`: the trial, participant,
instrument, version, timepoint, correction number and times they share.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

from domain.scoring import SubscaleScore
from domain.trial import Slot

__all__ = [
    "IdempotencyClaim",
    "ScoreRecord",
    "SubmissionInfo",
    "SubmissionRecord",
    "by_participant",
    "newest_counting",
]


@dataclass(frozen=True, kw_only=True)
class SubmissionInfo:
    """What identifies a stored submission and places it in the trial.

    `seq` is 0 for the first submission of a participant's slot and one more for each
    correction; `supersedes` names the submission a correction corrects.
    """

    trial_id: str
    participant_id: str
    submission_id: str
    instrument: str
    instrument_version: str
    timepoint: str
    seq: int
    completed_at: str
    received_at: str
    supersedes: str | None = None

    @property
    def slot(self) -> Slot:
        return Slot(instrument=self.instrument, timepoint=self.timepoint)


@dataclass(frozen=True, kw_only=True)
class SubmissionRecord(SubmissionInfo):
    """A stored submission: the item responses and free text as sent (never logged)."""

    responses: Mapping[int, int | None]
    notes: Mapping[str, str] | None = None
    # provenance: who sent it (key id and role), the hash of the body as accepted, and the
    # scope hash of its Idempotency-Key (None without one)
    key_id: str = "unknown"
    role: str = "unknown"
    body_hash: str = ""
    idempotency: str | None = None


@dataclass(frozen=True, kw_only=True)
class ScoreRecord(SubmissionInfo):
    """A scored submission: its subscale scores, one per subscale of its instrument."""

    scored_at: str
    subscales: Mapping[str, SubscaleScore]
    superseded_by: str | None = None

    def values(self) -> dict[str, float]:
        """The subscale scores that exist (a subscale with too many items missing has none)."""
        return {name: v.score for name, v in self.subscales.items() if v.score is not None}


def newest_counting(
    scores: Iterable[ScoreRecord],
) -> dict[tuple[str, str, str], ScoreRecord]:
    """The score that counts per (participant, instrument, timepoint): the highest seq.

    A correction replaces what it supersedes; the superseded scores stay (an audit trail).
    """
    best: dict[tuple[str, str, str], ScoreRecord] = {}
    for record in scores:
        key = (record.participant_id, record.instrument, record.timepoint)
        current = best.get(key)
        if current is None or record.seq > current.seq:
            best[key] = record
    return best


def by_participant(
    score_groups: Iterable[Sequence[ScoreRecord]],
) -> Iterator[tuple[str, Sequence[ScoreRecord]]]:
    """Each non-empty group of scores with its participant's id, refusing a participant met
    in a second group (a reader that takes a trial one participant at a time relies on
    seeing each participant's scores together).

    Raises
    ------
    ValueError
        When a participant's scores come in more than one group.
    """
    seen: set[str] = set()
    for group in score_groups:
        if not group:
            continue
        pid = group[0].participant_id
        if pid in seen:
            raise ValueError(f"the scores of {pid} came in more than one group")
        seen.add(pid)
        yield pid, group


@dataclass(frozen=True, kw_only=True)
class IdempotencyClaim:
    """A client's Idempotency-Key, claimed for one submission of one slot.

    `scope` hashes the key id and the Idempotency-Key; `body_hash` the accepted body, so a
    replay with another body is told apart. Kept 24 hours (`expires_at`, epoch seconds).
    """

    scope: str
    body_hash: str
    trial_id: str
    participant_id: str
    slot: Slot
    submission_id: str
    received_at: str
    expires_at: int
