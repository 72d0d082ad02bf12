"""Scoring accepted submissions (run by the stream function), exactly once in effect.

Delivery is at least once and batches fail partially, so every effect is idempotent on its
own. A batch is scored together: the scores of one slot, their participants' adherence marks
and the slot's aggregate change are one transaction per slot (adapters.scoring_ledger: a
score item exists exactly when it is counted, so a redelivered record changes nothing and an
erased participant gets nothing written); the audit events, whose content their keys fix, go
in batched puts; each safety alert is claimed once before its e-mail goes out, and alerts are
evaluated from the submission itself, whatever became of its counting.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta

from aws_lambda_powertools import Logger

from domain.aggregates import Counted
from domain.instruments import CATALOGUE
from domain.scoring import score_responses
from domain.submissions import ScoreRecord, SubmissionRecord
from domain.trial import AlertRecord, AuditEvent, Trial
from services.audit import Actor, AuditLog
from services.clock import Clock, iso
from services.mail_render import render_safety_alert
from services.metrics import SAFETY_ALERTS_CAPPED, SAFETY_ALERTS_UNDELIVERED
from services.ports import Mailer, Metrics, TrialStores

logger = Logger(service="cmt-collect", child=True)


class ParticipantErased(Exception):
    """The participant was erased while their submission was being scored."""


class UndeliverableAlert(Exception):
    """A safety alert met its rule but nobody can be e-mailed: fail loudly, retry later."""


class NotReady(Exception):
    """A correction arrived before the submission it corrects was counted: retry later."""


@dataclass(frozen=True, kw_only=True)
class AlertCaps:
    """At most one e-mail per participant and rule per window, and so many per trial-hour."""

    per_participant_rule: timedelta = timedelta(hours=24)
    per_trial_hour: int = 20


@dataclass(frozen=True, kw_only=True)
class Outcome:
    submission_id: str
    scored: bool  # False when the record was a redelivery and changed nothing
    alerts_sent: int


@dataclass(frozen=True, kw_only=True)
class Rescored:
    """What `ScoringService.rescore` did for a trial (failures by submission id)."""

    submissions: int
    newly_scored: int
    failed: dict[str, str]


def to_score_record(submission: SubmissionRecord, scored_at: str) -> ScoreRecord:
    instrument = CATALOGUE.get(submission.instrument, submission.instrument_version)
    score_set = score_responses(instrument, submission.responses)
    return ScoreRecord(
        trial_id=submission.trial_id,
        participant_id=submission.participant_id,
        submission_id=submission.submission_id,
        instrument=submission.instrument,
        instrument_version=submission.instrument_version,
        timepoint=submission.timepoint,
        seq=submission.seq,
        completed_at=submission.completed_at,
        received_at=submission.received_at,
        scored_at=scored_at,
        subscales={s.subscale: s for s in score_set.subscales},
        supersedes=submission.supersedes,
    )


class ScoringService:
    def __init__(
        self,
        stores: TrialStores,
        *,
        mailer: Mailer,
        audit: AuditLog,
        clock: Clock,
        metrics: Metrics,
        trial_cache_seconds: float = 30.0,
        caps: AlertCaps | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stores = stores
        self.mailer = mailer
        self.audit = audit
        self.clock = clock
        self.metrics = metrics
        self.caps = caps or AlertCaps()
        self.trial_cache_seconds = trial_cache_seconds
        self.monotonic = monotonic
        self._trials: dict[str, tuple[float, Trial | None]] = {}

    def _trial(self, trial_id: str) -> Trial | None:
        now = self.monotonic()
        hit = self._trials.get(trial_id)
        if hit and now - hit[0] < self.trial_cache_seconds:
            return hit[1]
        trial = self.stores.trials.get_trial(trial_id)
        self._trials[trial_id] = (now, trial)
        return trial

    def process(self, submission: SubmissionRecord) -> Outcome:
        """Score one submission (a batch of one); raises what failed it."""
        outcome = self.process_batch([submission])[submission.submission_id]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def process_batch(
        self, submissions: Sequence[SubmissionRecord]
    ) -> dict[str, Outcome | Exception]:
        """Score a batch; for each submission id its outcome, or the error that failed it.

        A failed submission changed nothing that a retry would repeat wrongly, so the caller
        reports it for redelivery (the stream's partial batch response).
        """
        results: dict[str, Outcome | Exception] = {}
        scored_at = iso(self.clock())
        scorable: list[tuple[SubmissionRecord, ScoreRecord]] = []
        for submission in submissions:
            try:
                scorable.append((submission, to_score_record(submission, scored_at)))
            except Exception as exc:  # noqa: BLE001 - this record fails alone
                # a stored submission counts as submitted even when it cannot be scored
                self.stores.participants.mark_done(
                    submission.trial_id, submission.participant_id, submission.slot
                )
                results[submission.submission_id] = exc
        counted = self._count(scorable)
        audit_events: list[AuditEvent] = []
        for submission, _ in scorable:
            outcome = counted[submission.submission_id]
            if outcome is Counted.ERASED:
                results[submission.submission_id] = self._take_back(submission)
                continue
            try:
                sent = self._alerts(submission)
            except ParticipantErased:
                results[submission.submission_id] = self._take_back(submission)
                continue
            except Exception as exc:  # noqa: BLE001 - the record is retried; its alert too
                results[submission.submission_id] = exc
                continue
            if outcome is Counted.NOT_READY:
                results[submission.submission_id] = NotReady(
                    f"{submission.supersedes} is not counted yet"
                )
                continue
            audit_events.append(self._audit_event(submission))
            results[submission.submission_id] = Outcome(
                submission_id=submission.submission_id,
                scored=outcome is Counted.COUNTED,
                alerts_sent=sent,
            )
        self.audit.record_many(audit_events)
        return results

    def _count(
        self, scorable: Sequence[tuple[SubmissionRecord, ScoreRecord]]
    ) -> dict[str, Counted]:
        """Count the batch's scores, corrections after what they correct (in rounds)."""
        outcomes: dict[str, Counted] = {}
        pending = list(scorable)
        while pending:
            waiting_for = {s.submission_id for s, _ in pending}
            ready = [(s, r) for s, r in pending if s.supersedes not in waiting_for]
            if not ready:  # a correction chain longer than its own batch cannot happen
                ready = pending
            corrections = [s for s, _ in ready if s.supersedes]
            superseded = self.stores.scores.superseded_scores(corrections) if corrections else {}
            to_count: list[tuple[ScoreRecord, ScoreRecord | None]] = []
            for submission, record in ready:
                if not submission.supersedes:
                    to_count.append((record, None))
                    continue
                earlier = superseded.get(submission.supersedes)
                if earlier is None:
                    # not counted yet (or its participant was erased, which the check tells)
                    outcomes[submission.submission_id] = (
                        Counted.NOT_READY if self._enrolled(submission) else Counted.ERASED
                    )
                    continue
                to_count.append((record, earlier))
            outcomes.update(self.stores.ledger.count(to_count))
            # what is left corrects something counted (or refused) in this round: next round
            pending = [(s, r) for s, r in pending if s.submission_id not in outcomes]
        return outcomes

    def _audit_event(self, submission: SubmissionRecord) -> AuditEvent:
        return self.audit.event(
            Actor(key_id=submission.key_id, role=submission.role),
            trial_id=submission.trial_id,
            action="submission.correct" if submission.supersedes else "submission.create",
            targets={
                "participant_id": submission.participant_id,
                "submission_id": submission.submission_id,
                "instrument": submission.instrument,
                "timepoint": submission.timepoint,
                **({"supersedes": submission.supersedes} if submission.supersedes else {}),
            },
            at=submission.received_at,
            event_id=submission.submission_id,
        )

    def rescore(self, trial_id: str) -> Rescored:
        """Score every stored submission of a trial not yet scored (on-failure recovery).

        Idempotent: submissions already scored change nothing. Corrections follow what they
        correct (slot order), so a whole trial is recovered in one run.
        """
        records = sorted(
            self.stores.submissions.list_for_trial(trial_id),
            key=lambda r: (r.participant_id, str(r.slot), r.seq),
        )
        newly, failed = 0, {}
        for start in range(0, len(records), 100):
            for submission_id, outcome in self.process_batch(records[start : start + 100]).items():
                if isinstance(outcome, Exception):
                    failed[submission_id] = f"{type(outcome).__name__}: {outcome}"
                else:
                    newly += outcome.scored
        return Rescored(submissions=len(records), newly_scored=newly, failed=failed)

    def _enrolled(self, submission: SubmissionRecord) -> bool:
        found = self.stores.participants.get_participant(
            submission.trial_id, submission.participant_id
        )
        return found is not None

    def _take_back(self, submission: SubmissionRecord) -> Outcome:
        """The participant was erased: nothing of this submission may stay.

        The ledger wrote no score (its transaction needs the participant); what remains to
        remove is an alert claimed meanwhile and the submission itself, if it was accepted
        while the erasure ran (with its replay record).
        """
        s = self.stores
        for alert in s.alerts.list_alerts(
            submission.trial_id, submission.participant_id, consistent=True
        ):
            s.alerts.delete_alert(alert)
        s.alerts.delete_alert_caps(submission.trial_id, submission.participant_id)
        s.submissions.delete(submission)
        if submission.idempotency:
            s.idempotency.release_idempotency(submission.idempotency)
        logger.info(
            "submission of an erased participant: nothing kept",
            extra={"submission_id": submission.submission_id},
        )
        return Outcome(submission_id=submission.submission_id, scored=False, alerts_sent=0)

    def _alerts(self, submission: SubmissionRecord) -> int:
        trial = self._trial(submission.trial_id)
        if trial is None:
            return 0
        sent = 0
        for rule_no, rule in enumerate(trial.alert_rules):
            if not rule.met_by(instrument=submission.instrument, responses=submission.responses):
                continue
            record = AlertRecord(
                trial_id=trial.trial_id,
                participant_id=submission.participant_id,
                submission_id=submission.submission_id,
                rule_no=rule_no,
                rule=rule,
                instrument=submission.instrument,
                timepoint=submission.timepoint,
                created_at=iso(self.clock()),
                sent_at=None,
                recipients=tuple(trial.coordinator_emails),
            )
            existing = self.stores.alerts.claim_alert(record)
            if existing is not None and (existing.sent_at or existing.suppressed):
                continue  # already decided: a redelivered record sends nothing
            if not trial.coordinator_emails:
                # refused by the trial rules since v1.1; a trial stored before can still get here
                self._undelivered(record, "NoRecipient")
                raise UndeliverableAlert(f"trial {trial.trial_id} has no coordinator address")
            now = self.clock()
            held_back = self.stores.alerts.claim_alert_email(
                record,
                now=iso(now),
                not_since=iso(now - self.caps.per_participant_rule),
                hour=now.astimezone(UTC).strftime("%Y-%m-%dT%H"),
                hourly_cap=self.caps.per_trial_hour,
                expires_at=int((now + timedelta(days=2)).timestamp()),
            )
            if not self._enrolled(submission):
                raise ParticipantErased  # after the adherence check: process takes it back
            if held_back is not None:
                self.stores.alerts.mark_alert_suppressed(record, reason=held_back)
                if held_back == "trial_hourly_cap":
                    self.metrics.count(SAFETY_ALERTS_CAPPED)
                logger.info(
                    "safety alert logged without an e-mail (cap)",
                    extra={"submission_id": submission.submission_id, "cap": held_back},
                )
                continue
            mail = render_safety_alert(
                trial_id=trial.trial_id,
                trial_title=trial.title,
                participant_id=submission.participant_id,
                instrument=submission.instrument,
                timepoint=submission.timepoint,
                item=rule.item,
                at_least=rule.at_least,
                submission_id=submission.submission_id,
                received_at=submission.received_at,
            )
            try:
                self.mailer.send(
                    to=trial.coordinator_emails,
                    subject=mail.subject,
                    text=mail.text,
                    html=mail.html,
                )
            except Exception as exc:
                # the record fails and is retried (then dead-lettered): the alert is not lost
                self._undelivered(record, type(exc).__name__)
                raise
            self.stores.alerts.mark_alert_sent(
                record, sent_at=iso(self.clock()), recipients=trial.coordinator_emails
            )
            sent += 1
        return sent

    def _undelivered(self, record: AlertRecord, error: str) -> None:
        self.metrics.count(SAFETY_ALERTS_UNDELIVERED)
        logger.error(
            "safety alert could not be e-mailed",
            extra={
                "trial_id": record.trial_id,
                "submission_id": record.submission_id,
                "error": error,
            },
        )
