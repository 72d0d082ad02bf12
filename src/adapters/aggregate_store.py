"""Live aggregates in the main table: ``T#{trial_id}`` / ``AG#{instrument}#{timepoint}``.

Per subscale ``n_{s}``, ``sum_{s}``, ``sumsq_{s}`` (exact decimals) and the string sets
``applied`` / ``retracted`` of the submission ids counted and taken back. Every change is one
conditional UpdateItem built by `_moments_update`, so a redelivered record changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from adapters import keys
from adapters.dynamodb import ConditionFailed, DynamoTable
from domain.aggregates import AggregateChange, Applied, Moments
from domain.trial import Slot


def _moments_update(
    change: AggregateChange, names: dict[str, str], values: dict[str, Any]
) -> list[str]:
    """The ADD clauses of one change (filling in its names and values)."""
    parts = []
    for n, (subscale, delta) in enumerate(change.deltas().items()):
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
    return parts


class AggregateTable:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def apply(
        self,
        *,
        trial_id: str,
        slot: Slot,
        submission_id: str,
        change: AggregateChange,
        retract_id: str | None,
    ) -> Applied:
        """Count a submission exactly once (and take back the one it supersedes).

        The condition `NOT contains(applied, :sid)` makes a redelivered record a no-op; a
        correction's change subtracts the superseded scores in the same write, only once the
        superseded submission was counted (else NOT_READY: retry later).
        """
        names: dict[str, str] = {"#applied": "applied"}
        values: dict[str, Any] = {":sid": {submission_id}, ":sid_s": submission_id}
        parts = [*_moments_update(change, names, values), "#applied :sid"]
        condition = "NOT contains(#applied, :sid_s)"
        if retract_id:
            names["#retracted"] = "retracted"
            values[":rid"], values[":rid_s"] = {retract_id}, retract_id
            parts.append("#retracted :rid")
            condition = (
                "attribute_exists(pk) AND NOT contains(#applied, :sid_s) "
                "AND contains(#applied, :rid_s) AND NOT contains(#retracted, :rid_s)"
            )
        key = keys.aggregate(trial_id=trial_id, slot=slot)
        try:
            self.table.update(
                key,
                update="ADD " + ", ".join(parts),
                condition=condition,
                names=names,
                values=values,
            )
        except ConditionFailed:
            state = self.table.get(key) or {}
            return (
                Applied.ALREADY
                if submission_id in set(state.get("applied", ()))
                else (Applied.NOT_READY)
            )
        return Applied.APPLIED

    def retract(
        self, *, trial_id: str, slot: Slot, submission_id: str, scores: Mapping[str, float]
    ) -> bool:
        """Take a counted submission back out (erasure); exactly once. False if not counted."""
        names: dict[str, str] = {"#applied": "applied", "#retracted": "retracted"}
        values: dict[str, Any] = {":rid": {submission_id}, ":rid_s": submission_id}
        parts = [*_moments_update(AggregateChange.retraction(scores), names, values)]
        parts.append("#retracted :rid")
        try:
            self.table.update(
                keys.aggregate(trial_id=trial_id, slot=slot),
                update="ADD " + ", ".join(parts),
                condition="contains(#applied, :rid_s) AND NOT contains(#retracted, :rid_s)",
                names=names,
                values=values,
            )
        except ConditionFailed:
            return False
        return True

    def list_aggregates(self, trial_id: str) -> dict[Slot, dict[str, Moments]]:
        """Every aggregate of a trial: slot -> subscale -> moments."""
        result: dict[Slot, dict[str, Moments]] = {}
        for item in self.table.query_all(pk=keys.trial_pk(trial_id), prefix=keys.AGGREGATE_PREFIX):
            moments: dict[str, Moments] = {}
            for name, value in item.items():
                if name.startswith("n_"):
                    subscale = name[2:]
                    moments[subscale] = Moments(
                        n=int(value),
                        total=Decimal(repr(item.get(f"sum_{subscale}", 0))),
                        sumsq=Decimal(repr(item.get(f"sumsq_{subscale}", 0))),
                    )
            result[keys.slot_of_aggregate(item["sk"])] = moments
        return result
