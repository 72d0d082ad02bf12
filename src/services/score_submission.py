"""Scoring an accepted submission (run by the stream function), exactly once in effect.

Delivery is at least once and batches fail partially, so every step is idempotent on its
own: the score is a conditional put keyed by the submission's slot, the aggregate change is a
single conditional update keyed on the submission id, the adherence mark is a set ADD, the
audit event's key is the submission id, and each safety alert is claimed once before its
e-mail goes out.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, timedelta

from aws_lambda_powertools import Logger

from domain.aggregates import AggregateChange, Applied
from domain.instruments import CATALOGUE
from domain.scoring import score_responses
from domain.submissions import ScoreRecord, SubmissionRecord
from domain.trial import AlertRecord, Trial
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


@dataclass(frozen=True, kw_only=True)
class AlertCaps:
    """At most one e-mail per participant and rule per window, and so many per trial-hour."""

    per_participant_rule: timedelta = timedelta(hours=24)
    per_trial_hour: int = 20


class NotReady(Exception):
    """A correction arrived before the submission it corrects was counted: retry later."""


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
        """Score one accepted submission; every step is idempotent (see the module docstring).

        Erasure may run at any moment. Its first step removes the participant item, and the
        effects written here are checked against that item *after* they are written (a
        consistent read after the score and aggregate writes, and again once the alerts are
        claimed): if the participant is gone, this record takes back what it wrote. Whatever the
        interleaving, either the erasure's clean-up sees these effects or this check sees the
        erasure, because both are strongly consistent operations on the same items.
        """
        s = self.stores
        # marks the slot submitted (adherence: a stored submission counts even if scoring
        # fails later) and, in the same call, finds out whether the participant still exists
        if not s.participants.mark_done(
            submission.trial_id, submission.participant_id, submission.slot
        ):
            return self._take_back(submission, None)
        record = to_score_record(submission, iso(self.clock()))
        retract: dict[str, float] = {}
        superseded: ScoreRecord | None = None
        if submission.supersedes:
            # checked before the correction's score is stored: a stored score of the newest
            # seq counts in reports and exports, so it must not exist while the aggregates
            # cannot take the superseded one back yet
            superseded = s.scores.get_score(
                trial_id=submission.trial_id,
                participant_id=submission.participant_id,
                slot=submission.slot,
                seq=submission.seq - 1,
            )
            if superseded is None or superseded.submission_id != submission.supersedes:
                if not self._enrolled(submission):
                    return self._take_back(submission, record)
                raise NotReady(f"{submission.supersedes} is not scored yet")
            retract = superseded.values()
        newly_stored = s.scores.put_score(record)
        applied = s.aggregates.apply(
            trial_id=submission.trial_id,
            slot=submission.slot,
            submission_id=submission.submission_id,
            change=AggregateChange(add=record.values(), remove=retract),
            retract_id=submission.supersedes,
        )
        if applied is Applied.NOT_READY:
            if not self._enrolled(submission):
                return self._take_back(submission, record)
            raise NotReady(f"{submission.supersedes} is not counted yet")
        if superseded is not None:
            s.scores.mark_superseded(superseded, by=submission.submission_id)
        # after every write above (a consistent read), so an erasure is never missed
        if not self._enrolled(submission):
            return self._take_back(submission, record)
        self.audit.record(
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
        try:
            sent = self._alerts(submission)
        except ParticipantErased:
            return self._take_back(submission, record)
        return Outcome(
            submission_id=submission.submission_id,
            scored=newly_stored or applied is Applied.APPLIED,
            alerts_sent=sent,
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
        for record in records:
            try:
                newly += self.process(record).scored
            except Exception as exc:  # noqa: BLE001 - every failure is reported, the rest go on
                failed[record.submission_id] = f"{type(exc).__name__}: {exc}"
        return Rescored(submissions=len(records), newly_scored=newly, failed=failed)

    def _enrolled(self, submission: SubmissionRecord) -> bool:
        found = self.stores.participants.get_participant(
            submission.trial_id, submission.participant_id
        )
        return found is not None

    def _take_back(self, submission: SubmissionRecord, record: ScoreRecord | None) -> Outcome:
        """The participant was erased before or while this record was scored: keep nothing.

        `record` is the score this delivery computed (None when it stopped before scoring).
        """
        s = self.stores
        if record is not None:
            s.aggregates.retract(
                trial_id=submission.trial_id,
                slot=submission.slot,
                submission_id=submission.submission_id,
                scores=record.values(),
            )
            s.scores.delete_score(record)
        for alert in s.alerts.list_alerts(
            submission.trial_id, submission.participant_id, consistent=True
        ):
            s.alerts.delete_alert(alert)
        s.alerts.delete_alert_caps(submission.trial_id, submission.participant_id)
        # a submission accepted while the erasure ran is removed too (with its replay record)
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
