"""How large a trial is, counted up to a bound: ``T#{trial}`` items by sort-key prefix."""

from __future__ import annotations

from adapters import keys
from adapters.dynamodb import DynamoTable


class TrialCountTable:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def count_scores(self, trial_id: str, *, at_most: int) -> int:
        """Score items of the trial (one per scored submission), at most `at_most`."""
        return self.table.count(
            pk=keys.trial_pk(trial_id), prefix=keys.scores_of(None), at_most=at_most
        )

    def count_participants(self, trial_id: str, *, at_most: int) -> int:
        """Participants enrolled (any status), at most `at_most`."""
        return self.table.count(
            pk=keys.trial_pk(trial_id), prefix=keys.PARTICIPANT_PREFIX, at_most=at_most
        )
