"""The pre/post report: compute from the stored scores, publish JSON, CSV and figures to S3."""

from __future__ import annotations

import re
from typing import Any

from domain.trial import Trial
from services import figures, prepost
from services.audit import Actor, AuditLog
from services.clock import Clock, iso
from services.errors import NotFound
from services.ports import ParticipantStore, ReportStore, ScoreStore, TrialStore

SCHEDULE_ACTOR = Actor(key_id="schedule", role="system")


class ReportService:
    def __init__(
        self,
        *,
        trials: TrialStore,
        participants: ParticipantStore,
        scores: ScoreStore,
        bucket: ReportStore,
        audit: AuditLog,
        clock: Clock,
        software_version: str,
    ) -> None:
        self.trials = trials
        self.participants = participants
        self.scores = scores
        self.bucket = bucket
        self.audit = audit
        self.clock = clock
        self.software_version = software_version

    def compute(self, trial: Trial) -> tuple[dict[str, Any], dict[str, str]]:
        """The report and one SVG figure per compared instrument (two Queries per trial)."""
        participants = self.participants.list_participants(trial.trial_id)
        scores = self.scores.list_scores(trial.trial_id)
        report = prepost.build_report(
            trial_id=trial.trial_id,
            protocol=trial.protocol,
            participants=participants,
            scores=scores,
            generated_at=iso(self.clock()),
            software_version=self.software_version,
        )
        svgs = {
            instrument.id: figures.prepost_figure_svg(
                instrument=instrument,
                report=report,
                pairs_by_subscale=prepost.pairs_by_subscale(
                    protocol=trial.protocol,
                    participants=participants,
                    scores=scores,
                    instrument=instrument,
                ),
            )
            for instrument in prepost.compared_instruments(trial.protocol)
        }
        return report, svgs

    def publish(self, trial: Trial, actor: Actor | None = None) -> dict[str, Any]:
        report, svgs = self.compute(trial)
        prefix = self.bucket.prefix(trial.trial_id)
        day = report["generated_at"][:10]
        artifacts: dict[str, Any] = {
            "json": f"s3://{self.bucket.bucket}/{prefix}/latest.json",
            "dated_json": f"s3://{self.bucket.bucket}/{prefix}/{day}.json",
            "csv": self.bucket.put(
                f"{prefix}/latest.csv", prepost.report_table_csv(report).encode(), "text/csv"
            ),
            "figures": {
                instrument: self.bucket.put(
                    f"{prefix}/figures/{instrument}.svg", svg.encode(), "image/svg+xml"
                )
                for instrument, svg in svgs.items()
            },
        }
        self.bucket.put(
            f"{prefix}/{day}.csv", prepost.report_table_csv(report).encode(), "text/csv"
        )
        report = {**report, "artifacts": artifacts}
        self.bucket.put_json(f"{prefix}/{day}.json", report)
        self.bucket.put_json(f"{prefix}/latest.json", report)
        self.audit.record(
            actor or SCHEDULE_ACTOR,
            trial_id=trial.trial_id,
            action="report.publish",
            targets={"report": "pre-post", "date": day},
        )
        return report

    def forget(self, trial: Trial, participant_id: str, actor: Actor) -> int:
        """After an erasure: republish the latest report without the participant (if one was
        published), then delete every stored report version that still names them."""
        if self.latest_or_none(trial.trial_id) is not None:
            self.publish(trial, actor)
        pattern = re.compile(
            rb"(?<![A-Za-z0-9_-])" + re.escape(participant_id.encode()) + rb"(?![A-Za-z0-9_-])"
        )
        return self.bucket.delete_versions(
            self.bucket.prefix(trial.trial_id), naming=lambda body: bool(pattern.search(body))
        )

    def latest_or_none(self, trial_id: str) -> dict[str, Any] | None:
        return self.bucket.get_json(f"{self.bucket.prefix(trial_id)}/latest.json")

    def latest(self, trial_id: str) -> dict[str, Any]:
        report = self.latest_or_none(trial_id)
        if report is None:
            raise NotFound(
                f"no pre/post report published for {trial_id} yet;"
                " POST to this route to compute one"
            )
        return report

    def publish_all(self) -> list[str]:
        return [self.publish(trial)["trial_id"] for trial in self.trials.list_trials()]
