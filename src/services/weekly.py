"""The weekly summary e-mail to each trial's coordinators (pseudonymous codes and counts only).

`WeeklySummaryService.build` gathers what the mail says, in the order it says it:

1. What needs action: the week's safety alerts (from the alert log), and the questionnaires
   and diaries due now or missed during the week, from `domain.schedule` with the protocol's
   timing (the states of ``GET /v1/me`` and the participant list). Withdrawn participants
   are never listed: nobody chases them.
2. Progress: enrolment by status, who enrolled, withdrew or completed during the week, the
   week's submissions per instrument (from the audit trail), and completion to date.
3. Results: the headline of the latest published pre/post report, if there is one.

The week is the seven days before the moment of sending, ``[now - 7 days, now)``: with one
run a week each submission, alert and missed window is counted in exactly one summary,
the ones of the sending day included.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from domain.schedule import ScheduledSlot, participant_schedule, untimed_timepoints
from domain.trial import AuditEvent, Participant, TimepointTiming, Trial, natural_key
from services.audit import AuditLog
from services.clock import Clock, iso
from services.mail_render import (
    AlertLine,
    ScheduleLine,
    WeeklySummary,
    render_weekly_summary,
    results_from_headline,
)
from services.ports import AlertStore, Mailer, ParticipantStore, TrialStore
from services.reporting import ReportService

logger = Logger(service="cmt-collect", child=True)

WEEK = timedelta(days=7)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class SummaryOutcome:
    trial_id: str
    sent_to: tuple[str, ...]
    skipped_reason: str | None
    summary: WeeklySummary | None


def _lines(
    participant_id: str, slots: Iterable[ScheduledSlot], order: Sequence[str]
) -> list[ScheduleLine]:
    """One line per timepoint: a participant's slots of one timepoint share their window."""
    by_timepoint: dict[str, list[ScheduledSlot]] = {}
    for slot in slots:
        by_timepoint.setdefault(slot.timepoint, []).append(slot)
    return [
        ScheduleLine(
            participant_id=participant_id,
            timepoint=timepoint,
            instruments=tuple(s.instrument for s in group),
            closes_at=group[0].closes_at,
        )
        for timepoint, group in sorted(by_timepoint.items(), key=lambda kv: order.index(kv[0]))
    ]


class WeeklySummaryService:
    def __init__(
        self,
        *,
        trials: TrialStore,
        participants: ParticipantStore,
        alerts: AlertStore,
        audit: AuditLog,
        reports: ReportService,
        mailer: Mailer,
        clock: Clock,
    ) -> None:
        self.trials = trials
        self.participants = participants
        self.alerts = alerts
        self.audit = audit
        self.reports = reports
        self.mailer = mailer
        self.clock = clock

    def run_all(self) -> list[SummaryOutcome]:
        return [self.run(trial) for trial in self.trials.list_trials()]

    def _audit(self, trial_id: str, start: datetime, end: datetime) -> list[AuditEvent]:
        events = self.audit.events(trial_id, start=iso(start), end=iso(end))
        # the store's range includes its end; the week does not
        return [e for e in events if e.at < iso(end)]

    def build(self, trial: Trial, now: datetime) -> WeeklySummary:
        start = now - WEEK
        protocol = trial.protocol
        participants = sorted(
            self.participants.list_participants(trial.trial_id),
            key=lambda p: natural_key(p.participant_id),
        )
        untimed = untimed_timepoints(
            timepoints=protocol.scheduled_timepoints(), overrides=protocol.timing
        )
        timed_schedule = {
            instrument: tuple(t for t in points if t not in untimed)
            for instrument, points in protocol.schedule.items()
        }
        due: list[ScheduleLine] = []
        missed: list[ScheduleLine] = []
        done = missed_total = 0
        for p in participants:
            slots = self._schedule(p, protocol.timepoints, timed_schedule, protocol.timing, now)
            done += sum(1 for s in slots if s.state == "done")
            missed_total += sum(1 for s in slots if s.state == "missed")
            if p.status == "withdrawn":
                continue
            due += _lines(
                p.participant_id, (s for s in slots if s.state == "due"), protocol.timepoints
            )
            missed += _lines(
                p.participant_id,
                (s for s in slots if s.state == "missed" and start <= s.closes_at < now),
                protocol.timepoints,
            )

        def changed_to(status: str) -> list[str]:
            return [
                p.participant_id
                for p in participants
                if p.status == status and start <= _moment(p.status_changed_at) < now
            ]

        alerts = sorted(
            (
                a
                for a in self.alerts.list_alerts(trial.trial_id)
                if start <= _moment(a.created_at) < now
            ),
            key=lambda a: (a.created_at, natural_key(a.participant_id)),
        )
        submissions = Counter(
            e.targets.get("instrument", "?")
            for e in self._audit(trial.trial_id, start, now)
            if e.action in {"submission.create", "submission.correct"}
        )
        order = {instrument: n for n, instrument in enumerate(protocol.schedule)}
        headline = self.reports.latest_headline(trial.trial_id)
        enrolment = Counter(p.status for p in participants)
        return WeeklySummary(
            trial_id=trial.trial_id,
            trial_title=trial.title,
            period_start=start,
            period_end=now,
            enrolment={s: enrolment.get(s, 0) for s in ("active", "withdrawn", "completed")},
            alerts=[
                AlertLine(
                    participant_id=a.participant_id,
                    instrument=a.instrument,
                    timepoint=a.timepoint,
                    raised_at=_moment(a.created_at),
                    emailed=a.sent_at is not None,
                )
                for a in alerts
            ],
            due=due,
            missed=missed,
            untimed=untimed,
            enrolled=[
                p.participant_id for p in participants if start <= _moment(p.enrolled_at) < now
            ],
            withdrew=changed_to("withdrawn"),
            completed=changed_to("completed"),
            submissions_by_instrument=dict(
                sorted(submissions.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
            ),
            slots_done=done,
            slots_missed=missed_total,
            results=results_from_headline(headline) if headline is not None else None,
        )

    @staticmethod
    def _schedule(
        participant: Participant,
        timepoints: Sequence[str],
        schedule: dict[str, tuple[str, ...]],
        timing: Mapping[str, TimepointTiming],
        now: datetime,
    ) -> tuple[ScheduledSlot, ...]:
        return participant_schedule(
            timepoints=timepoints,
            schedule=schedule,
            enrolled_at=_moment(participant.enrolled_at),
            status=participant.status,
            status_changed_at=_moment(participant.status_changed_at),
            done=participant.done,
            now=now,
            timing=timing,
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
