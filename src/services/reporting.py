"""The pre/post report: compute from the stored scores, publish JSON, CSV and figures to S3.

`compute` builds the typed report (`domain.report.build_report`) and its figures; `publish`
renders the report once per form (`services.prepost.to_json`, `report_table_csv`,
`services.figures.prepost_figures`) and stores them with the published JSON naming where
each went (``artifacts``).

Reading back: the published JSON is the artefact. `latest` returns the stored document as it
is, never recomputed or re-rendered, so ``GET .../reports/pre-post`` answers with exactly
what was published (and what the dated copy and the CSV beside it describe), even after
this software changes; `latest_headline` reads the same document for the weekly e-mail.
"""

from __future__ import annotations

import re
from typing import Any

from domain.report import PrePostReport, build_report_from_groups
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

    def compute(self, trial: Trial) -> tuple[PrePostReport, dict[str, str]]:
        """The report and one SVG figure per compared instrument (two paged Queries per
        trial; the scores are read one participant at a time and only their pairs are kept,
        `build_report_from_groups`)."""
        report = build_report_from_groups(
            trial_id=trial.trial_id,
            protocol=trial.protocol,
            participants=self.participants.list_participants(trial.trial_id),
            score_groups=self.scores.scores_by_participant(trial.trial_id),
            generated_at=iso(self.clock()),
            software_version=self.software_version,
        )
        return report, figures.prepost_figures(report)

    def publish(self, trial: Trial, actor: Actor | None = None) -> dict[str, Any]:
        """Compute the report, store its JSON, CSV and figures; return the published JSON."""
        report, svgs = self.compute(trial)
        prefix = self.bucket.prefix(trial.trial_id)
        day = report.generated_at[:10]
        table = prepost.report_table_csv(report).encode()
        artifacts: dict[str, Any] = {
            "json": f"s3://{self.bucket.bucket}/{prefix}/latest.json",
            "dated_json": f"s3://{self.bucket.bucket}/{prefix}/{day}.json",
            "csv": self.bucket.put(f"{prefix}/latest.csv", table, "text/csv"),
            "figures": {
                instrument: self.bucket.put(
                    f"{prefix}/figures/{instrument}.svg", svg.encode(), "image/svg+xml"
                )
                for instrument, svg in svgs.items()
            },
        }
        self.bucket.put(f"{prefix}/{day}.csv", table, "text/csv")
        document = {**prepost.to_json(report), "artifacts": artifacts}
        self.bucket.put_json(f"{prefix}/{day}.json", document)
        self.bucket.put_json(f"{prefix}/latest.json", document)
        self.audit.record(
            actor or SCHEDULE_ACTOR,
            trial_id=trial.trial_id,
            action="report.publish",
            targets={"report": "pre-post", "date": day},
        )
        return document

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
        """The latest published document as stored, or None before the first publish."""
        return self.bucket.get_json(f"{self.bucket.prefix(trial_id)}/latest.json")

    def latest_headline(self, trial_id: str) -> prepost.Headline | None:
        """The headline of the latest published report (`prepost.read_headline`), if any."""
        document = self.latest_or_none(trial_id)
        return None if document is None else prepost.read_headline(document)

    def latest(self, trial_id: str) -> dict[str, Any]:
        """The latest published document as stored (the artefact, not a recomputation)."""
        report = self.latest_or_none(trial_id)
        if report is None:
            raise NotFound(
                f"no pre/post report published for {trial_id} yet;"
                " POST to this route to compute one"
            )
        return report

    def publish_all(self) -> list[str]:
        return [self.publish(trial)["trial_id"] for trial in self.trials.list_trials()]
