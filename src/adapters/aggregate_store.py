"""Live aggregates in the main table: ``T#{trial_id}`` / ``AG#{instrument}#{timepoint}``.

Per subscale ``n_{s}``, ``sum_{s}``, ``sumsq_{s}`` (exact decimals). They are changed only by
the scoring ledger (adapters.scoring_ledger), in the same transaction as the scores they
count; this module reads them.
"""

from __future__ import annotations

from decimal import Decimal

from adapters import keys
from adapters.dynamodb import DynamoTable
from domain.aggregates import Moments
from domain.trial import Slot


class AggregateTable:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

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
