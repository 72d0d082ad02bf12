"""Erasing a participant on request: data goes, aggregates are corrected, an audit record stays."""

from __future__ import annotations

from adapters.main_store import MainStore
from adapters.submission_store import SubmissionStore
from services.audit import Actor, AuditLog
from services.errors import NotFound
from services.records import Trial
from services.reporting import ReportService
from services.score_submission import scored_values


class ErasureService:
    def __init__(
        self,
        main: MainStore,
        submissions: SubmissionStore,
        audit: AuditLog,
        reports: ReportService,
    ) -> None:
        self.main = main
        self.submissions = submissions
        self.audit = audit
        self.reports = reports

    def erase(self, trial: Trial, participant_id: str, actor: Actor) -> dict[str, int]:
        if self.main.get_participant(trial.trial_id, participant_id) is None:
            raise NotFound(f"participant {participant_id} is not enrolled in {trial.trial_id}")
        # The participant item goes first: it is what the scoring function checks after its
        # own writes, so a record scored concurrently either wrote before this delete (and
        # the consistent reads below find it) or sees the participant gone and takes its
        # writes back itself (services.score_submission).
        self.main.delete_participant(trial.trial_id, participant_id)
        scores = self.main.list_scores(trial.trial_id, participant_id, consistent=True)
        for record in scores:
            # only the currently counted submission is subtracted (exactly once)
            self.main.retract_from_aggregate(
                trial_id=trial.trial_id,
                instrument=record.instrument,
                timepoint=record.timepoint,
                submission_id=record.submission_id,
                remove=scored_values(record),
            )
            self.main.delete_score(record)
        alerts = self.main.list_alerts(trial.trial_id, participant_id, consistent=True)
        for alert in alerts:
            self.main.delete_alert(alert)
        self.main.delete_alert_caps(trial.trial_id, participant_id)
        items = self.submissions.list_for_participant(trial.trial_id, participant_id)
        for item in items:
            self.submissions.delete({"pk": item["pk"], "sk": item["sk"]})
            if item.get("idempotency"):
                # the replay record names the submission's key and hashes its body
                self.main.release_idempotency(str(item["idempotency"]))
        result = {
            "submissions_deleted": len(items),
            "scores_deleted": len(scores),
            "alerts_deleted": len(alerts),
            # the published report is recomputed without them; old versions naming them go
            "report_versions_deleted": self.reports.forget(trial, participant_id, actor),
        }
        self.audit.record(
            actor,
            trial_id=trial.trial_id,
            action="participant.erase",
            targets={"participant_id": participant_id, **{k: str(v) for k, v in result.items()}},
        )
        return result
