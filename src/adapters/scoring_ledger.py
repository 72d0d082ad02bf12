"""Counting scores in the live aggregates exactly once, at a cost that does not grow.

A score item exists exactly when its submission is counted (and `superseded_by` says when a
correction took it back out). So every change of what counts is one DynamoDB transaction
with the aggregate change it implies:

- counting a batch of one slot: ``Put`` each score (``attribute_not_exists``: a redelivered
  record cancels), ``Update`` each participant (``ADD done``, ``attribute_exists``: an erased
  participant cancels, so nothing of theirs is written after erasure began), ``Update`` each
  superseded score (``SET superseded_by``, only if it exists and is not superseded yet: a
  correction of a score not counted yet cancels), and one ``Update`` of the slot's aggregate
  adding the batch's moments (minus the superseded ones);
- uncounting on erasure: ``Delete`` the score (``attribute_exists``) with the aggregate's
  ``Update`` subtracting it, when it still counts.

No set of applied ids is kept, so an aggregate item stays a few hundred bytes whatever the
trial's size, and a record costs the same write units in a trial of 1,000 or 100,000. A
cancelled transaction names the operation that failed; the records it blames are set aside
with their outcome and the rest is sent again.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from adapters import keys
from adapters.dynamodb import DynamoTable, TransactionCancelled
from adapters.score_store import score_item, score_key
from domain.aggregates import AggregateChange, Counted, Moments
from domain.submissions import ScoreRecord
from domain.trial import Slot

__all__ = ["MAX_RECORDS_PER_TRANSACTION", "ScoringLedger"]

#: DynamoDB allows 100 operations per transaction: one aggregate, and up to three per record.
MAX_RECORDS_PER_TRANSACTION = 33
_CONFLICT_RETRIES = 8
_PRIORITY = {Counted.ERASED: 0, Counted.ALREADY: 1, Counted.NOT_READY: 2}


@dataclass(frozen=True, kw_only=True)
class _Entry:
    record: ScoreRecord
    superseded: ScoreRecord | None


def _aggregate_op(
    table: DynamoTable, *, trial_id: str, slot: Slot, deltas: dict[str, Moments]
) -> dict[str, Any]:
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    parts = []
    for n, (subscale, delta) in enumerate(sorted(deltas.items())):
        names[f"#n{n}"], names[f"#s{n}"], names[f"#q{n}"] = (
            f"n_{subscale}",
            f"sum_{subscale}",
            f"sumsq_{subscale}",
        )
        values[f":n{n}"], values[f":s{n}"], values[f":q{n}"] = (
            Decimal(delta.n),
            delta.total,
            delta.sumsq,
        )
        parts.append(f"#n{n} :n{n}, #s{n} :s{n}, #q{n} :q{n}")
    return table.op(
        "Update",
        key=keys.aggregate(trial_id=trial_id, slot=slot),
        update="ADD " + ", ".join(parts),
        names=names,
        values=values,
    )


def _deltas(entries: Iterable[_Entry]) -> dict[str, Moments]:
    total: dict[str, Moments] = {}
    for entry in entries:
        change = AggregateChange(
            add=entry.record.values(),
            remove=entry.superseded.values() if entry.superseded is not None else {},
        )
        for subscale, delta in change.deltas().items():
            total[subscale] = total.get(subscale, Moments()) + delta
    return total


class ScoringLedger:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def count(
        self, records: Sequence[tuple[ScoreRecord, ScoreRecord | None]]
    ) -> dict[str, Counted]:
        """Count scores (each with the score it supersedes, or None); by submission id.

        COUNTED: stored and counted now; ALREADY: counted before (a redelivery); ERASED: the
        participant no longer exists (nothing written); NOT_READY: the superseded score is
        not stored yet, or taken back already (nothing written; retry later).
        """
        outcomes: dict[str, Counted] = {}
        by_slot: dict[tuple[str, Slot], list[_Entry]] = defaultdict(list)
        for record, superseded in records:
            by_slot[(record.trial_id, record.slot)].append(
                _Entry(record=record, superseded=superseded)
            )
        for (trial_id, slot), entries in by_slot.items():
            for chunk in _chunks(entries):
                outcomes.update(self._count_chunk(trial_id, slot, chunk))
        return outcomes

    def _count_chunk(self, trial_id: str, slot: Slot, chunk: list[_Entry]) -> dict[str, Counted]:
        outcomes: dict[str, Counted] = {}
        pending = list(chunk)
        conflicts = 0
        while pending:
            operations: list[dict[str, Any]] = []
            owners: list[tuple[_Entry | None, str]] = []
            deltas = _deltas(pending)
            if deltas:  # a submission with every subscale unscored changes no moments
                operations.append(
                    _aggregate_op(self.table, trial_id=trial_id, slot=slot, deltas=deltas)
                )
                owners.append((None, "aggregate"))
            for entry in pending:
                record = entry.record
                operations.append(
                    self.table.op(
                        "Put", item=score_item(record), condition="attribute_not_exists(pk)"
                    )
                )
                owners.append((entry, "score"))
                operations.append(
                    self.table.op(
                        "Update",
                        key=keys.participant(
                            trial_id=record.trial_id, participant_id=record.participant_id
                        ),
                        update="ADD done :slot",
                        condition="attribute_exists(pk)",
                        values={":slot": {str(record.slot)}},
                    )
                )
                owners.append((entry, "participant"))
                if entry.superseded is not None:
                    operations.append(
                        self.table.op(
                            "Update",
                            key=score_key(entry.superseded),
                            update="SET superseded_by = :by",
                            condition=(
                                "attribute_exists(pk) AND attribute_not_exists(superseded_by)"
                            ),
                            values={":by": record.submission_id},
                        )
                    )
                    owners.append((entry, "superseded"))
            try:
                self.table.transact(operations)
            except TransactionCancelled as cancelled:
                blamed: dict[int, Counted] = {}
                retry = False
                for (owner, role), reason in zip(owners, cancelled.reasons, strict=False):
                    if reason is None:
                        continue
                    if reason == "TransactionConflict":
                        retry = True
                        continue
                    if reason != "ConditionalCheckFailed" or owner is None:
                        raise RuntimeError(f"scores could not be counted: {reason}") from None
                    entry = owner
                    outcome = {
                        "participant": Counted.ERASED,
                        "score": Counted.ALREADY,
                        "superseded": Counted.NOT_READY,
                    }[role]
                    # an erased participant outweighs the rest (nothing of theirs is kept), and
                    # a score stored already outweighs its superseded one being taken: a repeat
                    current = blamed.get(id(entry))
                    if current is None or _PRIORITY[outcome] < _PRIORITY[current]:
                        blamed[id(entry)] = outcome
                if not blamed and retry:
                    conflicts += 1
                    if conflicts > _CONFLICT_RETRIES:
                        raise RuntimeError("scores could not be counted: conflicts") from None
                    time.sleep(min(0.5, 0.01 * 2**conflicts))
                    continue
                for entry in pending:
                    if id(entry) in blamed:
                        outcomes[entry.record.submission_id] = blamed[id(entry)]
                pending = [e for e in pending if id(e) not in blamed]
                continue
            for entry in pending:
                outcomes[entry.record.submission_id] = Counted.COUNTED
            pending = []
        return outcomes

    def uncount(self, record: ScoreRecord) -> None:
        """Remove a score (erasure) and, when it still counts, its share of the aggregate."""
        if record.superseded_by is not None:
            self.table.delete(score_key(record))
            return
        change = AggregateChange.retraction(record.values())
        operations = [
            self.table.op(
                "Delete",
                key=score_key(record),
                condition="attribute_exists(pk) AND attribute_not_exists(superseded_by)",
            )
        ]
        if change.remove:
            operations.append(
                _aggregate_op(
                    self.table, trial_id=record.trial_id, slot=record.slot, deltas=change.deltas()
                )
            )
        try:
            self.table.transact(operations)
        except TransactionCancelled:
            # gone already, or superseded meanwhile: its share was taken back by that change
            self.table.delete(score_key(record))


def _chunks(entries: list[_Entry]) -> Iterable[list[_Entry]]:
    """Transactions of distinct participants (one operation per item), at most the limit."""
    pending = list(entries)
    while pending:
        chunk: list[_Entry] = []
        seen: set[str] = set()
        rest: list[_Entry] = []
        for entry in pending:
            if entry.record.participant_id in seen or len(chunk) >= MAX_RECORDS_PER_TRANSACTION:
                rest.append(entry)
            else:
                seen.add(entry.record.participant_id)
                chunk.append(entry)
        yield chunk
        pending = rest
