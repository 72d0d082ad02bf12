"""Erasing a participant on request: data goes, aggregates are corrected, an audit record stays."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from domain.trial import Trial
from services.audit import Actor, AuditLog
from services.errors import NotFound
from services.jobs import JobService
from services.ports import TrialStores


@dataclass(frozen=True, kw_only=True)
class Erasure:
    """What an erasure removed. The report and export counts are None when a report job
    (`report_job_id`) does that part, for a trial too large to report within the request."""

    submissions_deleted: int
    scores_deleted: int
    alerts_deleted: int
    report_versions_deleted: int | None
    export_files_deleted: int | None
    report_job_id: str | None


class ErasureService:
    def __init__(self, stores: TrialStores, *, audit: AuditLog, exports: JobService) -> None:
        self.stores = stores
        self.audit = audit
        self.exports = exports

    def erase(self, trial: Trial, participant_id: str, actor: Actor) -> Erasure:
        s = self.stores
        if s.participants.get_participant(trial.trial_id, participant_id) is None:
            raise NotFound(f"participant {participant_id} is not enrolled in {trial.trial_id}")
        # whether the report can be republished within this request (the trial as it was)
        report_fits = self.exports.report_fits(trial)
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
        counts = {
            "submissions_deleted": len(submissions),
            "scores_deleted": len(scores),
            "alerts_deleted": len(alerts),
        }
        if report_fits:
            # small enough to republish the report within the request: done here
            result = Erasure(
                **counts,
                **self.exports.finish_erasure(trial, participant_id, actor),
                report_job_id=None,
            )
        else:
            # a trial this large reports in a job: the republish and the deletion of stored
            # versions naming them run there (audited as participant.erase.reports)
            job = self.exports.request_erasure_follow_up(trial, participant_id, actor=actor)
            result = Erasure(
                **counts,
                report_versions_deleted=None,
                export_files_deleted=None,
                report_job_id=job.job_id,
            )
        self.audit.record(
            actor,
            trial_id=trial.trial_id,
            action="participant.erase",
            targets={
                "participant_id": participant_id,
                **{k: str(v) for k, v in asdict(result).items() if v is not None},
            },
        )
        return result
