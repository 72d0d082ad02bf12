"""Trials in the main table: ``TRIALS`` / ``T#{trial_id}``, one item each (the protocol,
its timing and the alert rules as maps)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters import keys
from adapters.dynamodb import DynamoTable
from domain.trial import AlertRule, Comparison, StudyProtocol, TimepointTiming, Trial


def protocol_to_item(protocol: StudyProtocol) -> dict[str, Any]:
    """The protocol as stored; `timing` holds only the trial's own timing (no defaults)."""
    return {
        "timepoints": list(protocol.timepoints),
        "schedule": {k: list(v) for k, v in protocol.schedule.items()},
        "comparison": {"pre": protocol.comparison.pre, "post": protocol.comparison.post},
        "timing": {
            tp: {"offset_days": t.offset_days, "window_days": t.window_days}
            for tp, t in protocol.timing.items()
        },
    }


def protocol_from_item(item: Mapping[str, Any]) -> StudyProtocol:
    """A stored protocol; one stored before protocols had timing takes the defaults."""
    return StudyProtocol(
        timepoints=tuple(item["timepoints"]),
        schedule={k: tuple(v) for k, v in item["schedule"].items()},
        comparison=Comparison(pre=item["comparison"]["pre"], post=item["comparison"]["post"]),
        timing={
            tp: TimepointTiming(
                offset_days=int(t["offset_days"]), window_days=int(t["window_days"])
            )
            for tp, t in item.get("timing", {}).items()
        },
    )


def _trial_from_item(item: Mapping[str, Any]) -> Trial:
    return Trial(
        trial_id=item["trial_id"],
        title=item["title"],
        coordinator_emails=tuple(item.get("coordinator_emails", [])),
        protocol=protocol_from_item(item["protocol"]),
        alert_rules=tuple(
            AlertRule(instrument=r["instrument"], item=int(r["item"]), at_least=int(r["at_least"]))
            for r in item.get("alert_rules", [])
        ),
        created_at=item["created_at"],
        updated_at=item["updated_at"],
    )


class TrialTable:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def get_trial(self, trial_id: str) -> Trial | None:
        item = self.table.get(keys.trial(trial_id))
        return _trial_from_item(item) if item else None

    def put_trial(self, trial: Trial) -> None:
        self.table.put(
            {
                **keys.trial(trial.trial_id),
                "entity": "trial",
                "trial_id": trial.trial_id,
                "title": trial.title,
                "coordinator_emails": list(trial.coordinator_emails),
                "protocol": protocol_to_item(trial.protocol),
                "alert_rules": [
                    {"instrument": r.instrument, "item": r.item, "at_least": r.at_least}
                    for r in trial.alert_rules
                ],
                "created_at": trial.created_at,
                "updated_at": trial.updated_at,
            }
        )

    def list_trials(self) -> list[Trial]:
        return [_trial_from_item(i) for i in self.table.query_all(pk=keys.TRIALS_PK)]
