"""Erasing a participant on request: data goes, aggregates are corrected, an audit record stays."""

from __future__ import annotations

from domain.trial import Trial
from services.audit import Actor, AuditLog
from services.errors import NotFound
from services.jobs import JobService
from services.ports import TrialStores
from services.reporting import ReportService


class ErasureService:
    def __init__(
        self,
        stores: TrialStores,
        *,
        audit: AuditLog,
        reports: ReportService,
        exports: JobService,
    ) -> None:
        self.stores = stores
        self.audit = audit
        self.reports = reports
        self.exports = exports

    def erase(self, trial: Trial, participant_id: str, actor: Actor) -> dict[str, int]:
        s = self.stores
        if s.participants.get_participant(trial.trial_id, participant_id) is None:
            raise NotFound(f"participant {participant_id} is not enrolled in {trial.trial_id}")
        # The participant item goes first: it is what the scoring function checks after its
        # own writes, so a record scored concurrently either wrote before this delete (and
        # the consistent reads below find it) or sees the participant gone and takes its
        # writes back itself (services.score_submission).
        s.participants.delete_participant(trial.trial_id, participant_id)
        scores = s.scores.list_scores(trial.trial_id, participant_id, consistent=True)
        for record in scores:
            # the score goes with its share of the aggregate, when it still counts
            s.ledger.uncount(record)
        alerts = s.alerts.list_alerts(trial.trial_id, participant_id, consistent=True)
        for alert in alerts:
            s.alerts.delete_alert(alert)
        s.alerts.delete_alert_caps(trial.trial_id, participant_id)
        submissions = s.submissions.list_for_participant(trial.trial_id, participant_id)
        for submission in submissions:
            s.submissions.delete(submission)
            if submission.idempotency:
                # the replay record names the submission's slot and hashes its body
                s.idempotency.release_idempotency(submission.idempotency)
        result = {
            "submissions_deleted": len(submissions),
            "scores_deleted": len(scores),
            "alerts_deleted": len(alerts),
            # the published report is recomputed without them; old versions naming them go
            "report_versions_deleted": self.reports.forget(trial, participant_id, actor),
            # export files that name them go too, and those exports are failed
            "export_files_deleted": self.exports.forget(trial.trial_id, participant_id),
        }
        self.audit.record(
            actor,
            trial_id=trial.trial_id,
            action="participant.erase",
            targets={"participant_id": participant_id, **{k: str(v) for k, v in result.items()}},
        )
        return result
