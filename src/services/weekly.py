"""The weekly summary e-mail to each trial's coordinators (pseudonymous ids and counts only)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from adapters.main_store import MainStore
from services.clock import Clock, iso
from services.mail_render import WeeklySummary, render_weekly_summary
from services.prepost import headline_changes
from services.reads import diary_weeks_due
from services.records import Trial
from services.reporting import ReportService
from services.score_submission import Mailer

logger = Logger(service="cmt-collect", child=True)


@dataclass(frozen=True)
class SummaryOutcome:
    trial_id: str
    sent_to: tuple[str, ...]
    skipped_reason: str | None
    summary: WeeklySummary | None


class WeeklySummaryService:
    def __init__(
        self,
        main: MainStore,
        reports: ReportService,
        mailer: Mailer,
        clock: Clock,
        api_base_url: str | None,
    ) -> None:
        self.main = main
        self.reports = reports
        self.mailer = mailer
        self.clock = clock
        self.api_base_url = api_base_url.rstrip("/") if api_base_url else None

    def run_all(self) -> list[SummaryOutcome]:
        return [self.run(trial) for trial in self.main.list_trials()]

    def build(self, trial: Trial, now: datetime) -> WeeklySummary:
        week_start = now - timedelta(days=7)
        participants = self.main.list_participants(trial.trial_id)
        enrolment = Counter(p.status for p in participants)
        events: list[Any] = []
        cursor = None
        while True:
            page, cursor = self.main.audit_page(
                trial.trial_id, start=iso(week_start), end=iso(now), limit=500, after=cursor
            )
            events.extend(page)
            if not cursor:
                break
        status_changes = [
            (
                e.targets.get("participant_id", "?"),
                e.action.removeprefix("participant.").removeprefix("status."),
                e.at,
            )
            for e in events
            if e.action.startswith("participant.") and e.action != "participant.erase"
        ]
        submissions = Counter(
            e.targets.get("instrument", "?")
            for e in events
            if e.action in {"submission.create", "submission.correct"}
        )
        diary_weeks = trial.protocol.schedule.get("diary", ())
        # each active participant's current programme week (from their enrolment)
        current: dict[str, str] = {}
        missing: list[str] = []
        for p in sorted(participants, key=lambda p: p.participant_id):
            due = diary_weeks_due(trial, p, now) if diary_weeks else 0
            if p.status == "active" and due:
                current[p.participant_id] = diary_weeks[due - 1]
                if f"diary#{current[p.participant_id]}" not in p.done:
                    missing.append(p.participant_id)
        weeks = set(current.values())
        if len(weeks) <= 1:
            diary_week = next(iter(weeks), None)
            overdue = missing
        else:  # participants enrolled in different weeks: name each one's week
            diary_week = "each participant's current week"
            overdue = [f"{pid} ({current[pid]})" for pid in missing]
        report = self.reports.latest_or_none(trial.trial_id)
        return WeeklySummary(
            trial_id=trial.trial_id,
            trial_title=trial.title,
            week_start=iso(week_start),
            week_end=iso(now),
            enrolment={s: enrolment.get(s, 0) for s in ("active", "withdrawn", "completed")},
            status_changes=status_changes,
            submissions_by_instrument=dict(sorted(submissions.items())),
            overdue_diary=overdue,
            diary_week=diary_week,
            headline=headline_changes(report) if report else [],
            report_url=(
                f"{self.api_base_url}/v1/trials/{trial.trial_id}/reports/pre-post"
                if self.api_base_url
                else None
            ),
        )

    def run(self, trial: Trial) -> SummaryOutcome:
        if not trial.coordinator_emails:
            logger.info(
                "weekly summary skipped: no coordinator addresses",
                extra={"trial_id": trial.trial_id},
            )
            return SummaryOutcome(trial.trial_id, (), "no coordinator_emails", None)
        summary = self.build(trial, self.clock())
        mail = render_weekly_summary(summary)
        self.mailer.send(
            to=trial.coordinator_emails, subject=mail.subject, text=mail.text, html=mail.html
        )
        logger.info(
            "weekly summary sent",
            extra={"trial_id": trial.trial_id, "recipients": len(trial.coordinator_emails)},
        )
        return SummaryOutcome(trial.trial_id, tuple(trial.coordinator_emails), None, summary)
