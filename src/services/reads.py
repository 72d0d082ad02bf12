"""Coordinator reads: participant scores, live summary, exports, codebook, alert log."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from domain.aggregates import Moments
from domain.instruments import CATALOGUE
from domain.submissions import ScoreRecord, newest_counting
from domain.trial import Participant, Trial
from services import export_csv
from services.clock import Clock, iso
from services.errors import NotFound
from services.ports import TrialStores


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def score_to_dict(record: ScoreRecord, *, counts: bool) -> dict[str, Any]:
    return {
        "submission_id": record.submission_id,
        "instrument": record.instrument,
        "instrument_version": record.instrument_version,
        "timepoint": record.timepoint,
        "completed_at": record.completed_at,
        "received_at": record.received_at,
        "scored_at": record.scored_at,
        "supersedes": record.supersedes,
        "superseded_by": record.superseded_by,
        "counts": counts,
        "scores": {
            name: {
                "score": v.score,
                "prorated": v.prorated,
                "items_answered": v.answered,
                "items_missing": v.missing,
                "reason": v.reason,
                "band": v.band,
            }
            for name, v in record.subscales.items()
        },
    }


def diary_weeks_due(trial: Trial, participant: Participant, now: datetime) -> int:
    """Diary weeks whose week has begun since enrolment (up to withdrawal or completion)."""
    weeks = trial.protocol.schedule.get("diary", ())
    if not weeks:
        return 0
    if participant.status == "completed":
        return len(weeks)
    until = _parse(participant.status_changed_at) if participant.status == "withdrawn" else now
    elapsed = until - _parse(participant.enrolled_at)
    return max(0, min(len(weeks), elapsed // timedelta(days=7) + 1))


class Reads:
    def __init__(self, stores: TrialStores, clock: Clock) -> None:
        self.stores = stores
        self.clock = clock

    def participant_scores(self, trial: Trial, participant_id: str) -> dict[str, Any]:
        if self.stores.participants.get_participant(trial.trial_id, participant_id) is None:
            raise NotFound(f"participant {participant_id} is not enrolled in {trial.trial_id}")
        records = self.stores.scores.list_scores(trial.trial_id, participant_id)
        counting = {r.submission_id for r in newest_counting(records).values()}
        order = {tp: n for n, tp in enumerate(trial.protocol.timepoints)}
        by_timepoint: dict[str, list[dict[str, Any]]] = {}
        for record in sorted(
            records, key=lambda r: (order.get(r.timepoint, 999), r.instrument, r.seq)
        ):
            by_timepoint.setdefault(record.timepoint, []).append(
                score_to_dict(record, counts=record.submission_id in counting)
            )
        return {
            "trial_id": trial.trial_id,
            "participant_id": participant_id,
            "timepoints": [
                {"timepoint": tp, "submissions": subs} for tp, subs in by_timepoint.items()
            ],
        }

    def summary(self, trial: Trial) -> dict[str, Any]:
        now = self.clock()
        participants = sorted(
            self.stores.participants.list_participants(trial.trial_id),
            key=lambda p: p.participant_id,
        )
        enrolment = {"active": 0, "withdrawn": 0, "completed": 0}
        for p in participants:
            enrolment[p.status] = enrolment.get(p.status, 0) + 1
        aggregates = []
        order = {tp: n for n, tp in enumerate(trial.protocol.timepoints)}
        ids = CATALOGUE.ids()
        stored = self.stores.aggregates.list_aggregates(trial.trial_id)
        for slot in sorted(
            stored,
            key=lambda s: (
                ids.index(s.instrument) if s.instrument in ids else 99,
                order.get(s.timepoint, 999),
            ),
        ):
            for subscale in CATALOGUE.get(slot.instrument).subscales:
                moments = stored[slot].get(subscale.id, Moments())
                aggregates.append(
                    {
                        "instrument": slot.instrument,
                        "timepoint": slot.timepoint,
                        "subscale": subscale.id,
                        "n": moments.n,
                        "mean": moments.mean,
                        "sd": moments.sd,
                    }
                )
        diary_slots = {str(s) for s in trial.protocol.slots() if s.instrument == "diary"}
        adherence = []
        for p in participants:
            due = diary_weeks_due(trial, p, now)
            submitted = len(p.done & diary_slots)
            adherence.append(
                {
                    "participant_id": p.participant_id,
                    "status": p.status,
                    "weeks_submitted": submitted,
                    "weeks_due": due,
                    "adherence": (min(submitted, due) / due) if due else None,
                }
            )
        return {
            "trial_id": trial.trial_id,
            "generated_at": iso(now),
            "enrolment": {**enrolment, "total": len(participants)},
            "aggregates": aggregates,
            "diary_adherence": adherence,
        }

    def export_csv(self, trial: Trial, layout: str) -> str:
        participants = self.stores.participants.list_participants(trial.trial_id)
        scores = self.stores.scores.list_scores(trial.trial_id)
        if layout == "wide":
            return export_csv.export_wide(
                protocol=trial.protocol, participants=participants, scores=scores
            )
        submissions = self.stores.submissions.list_for_trial(trial.trial_id)
        return export_csv.export_long(
            participants=participants,
            scores=scores,
            submissions=submissions,
            protocol=trial.protocol,
        )

    def codebook(self, trial: Trial, layout: str) -> list[dict[str, Any]]:
        return export_csv.codebook(protocol=trial.protocol, layout=layout)

    def alerts(
        self, trial_id: str, *, limit: int = 100, cursor: str | None = None
    ) -> dict[str, Any]:
        """One page of the safety-alert log, by participant and then arrival; `next_cursor`
        continues it (None on the last page). BadCursor for a cursor it never issued."""
        page, next_cursor = self.stores.alerts.alert_page(trial_id, limit=limit, cursor=cursor)
        return {
            "trial_id": trial_id,
            "alerts": [
                {
                    "participant_id": a.participant_id,
                    "submission_id": a.submission_id,
                    "instrument": a.instrument,
                    "timepoint": a.timepoint,
                    "rule": {
                        "instrument": a.rule.instrument,
                        "item": a.rule.item,
                        "at_least": a.rule.at_least,
                    },
                    "created_at": a.created_at,
                    "sent_at": a.sent_at,
                    "sent_to": list(a.recipients) if a.sent_at else [],
                    # why no e-mail went out for a met rule (participant_rule_24h,
                    # trial_hourly_cap), else null
                    "suppressed": a.suppressed,
                }
                for a in page
            ],
            "next_cursor": next_cursor,
        }
