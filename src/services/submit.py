"""Accepting a submission: validate everything at once, store it exactly once.

The floor is one conditional PutItem per accepted submission. The submission's key is
deterministic (participant, instrument, timepoint, correction number), so two concurrent
identical requests cannot both be stored, and the item found on a failed condition tells an
idempotent replay (same key and body) from a real duplicate in the same call.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from domain.errors import (
    DuplicateSubmission,
    InvalidSubmission,
    Problem,
    UnknownInstrument,
    UnknownInstrumentVersion,
)
from domain.instruments import CATALOGUE, Instrument
from domain.submissions import IdempotencyClaim, SubmissionRecord
from domain.trial import Slot, Trial
from domain.validation import validate_notes, validate_responses
from services.auth import Principal
from services.clock import Clock, iso, new_ulid
from services.errors import Conflict, Forbidden, ValidationFailed
from services.ports import IdempotencyStore, ParticipantStore, SubmissionStore

# a device clock a few minutes ahead of ours is not "the future"
CLOCK_SKEW = timedelta(minutes=5)
IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True, kw_only=True)
class SubmissionInput:
    participant_id: str
    instrument: str
    instrument_version: str | None
    timepoint: str
    completed_at: datetime
    responses: Mapping[str, object]
    notes: Mapping[str, object] | None
    supersedes: str | None


@dataclass(frozen=True, kw_only=True)
class Accepted:
    submission_id: str
    received_at: str
    replayed: bool


def _resolve_instrument(data: SubmissionInput, problems: list[Problem]) -> Instrument | None:
    try:
        return CATALOGUE.get(data.instrument, data.instrument_version)
    except UnknownInstrumentVersion:
        problems.append(
            Problem(
                ("body", "instrument_version"),
                f"{data.instrument} has no version {data.instrument_version!r}; current is "
                f"{CATALOGUE.current_version(data.instrument)}",
                "unknown_version",
            )
        )
    except UnknownInstrument:
        problems.append(
            Problem(
                ("body", "instrument"),
                f"unknown instrument {data.instrument!r}; one of {', '.join(CATALOGUE.ids())}",
                "unknown_instrument",
            )
        )
    return None


def require_own_participant(principal: Principal, participant_id: str) -> None:
    """A participant token submits for its own participant only (any other is 403)."""
    if principal.role == "participant" and participant_id != principal.participant_id:
        raise Forbidden("a participant token submits only for its own participant")


def _body(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    return ("body", *loc)


class SubmissionService:
    def __init__(
        self,
        submissions: SubmissionStore,
        participants: ParticipantStore,
        idempotency: IdempotencyStore,
        clock: Clock,
    ) -> None:
        self.submissions = submissions
        self.participants = participants
        self.idempotency = idempotency
        self.clock = clock

    def submit(
        self,
        *,
        trial: Trial,
        principal: Principal,
        data: SubmissionInput,
        idempotency_key: str | None,
    ) -> Accepted:
        require_own_participant(principal, data.participant_id)
        now = self.clock()
        instrument, responses, notes, problems = self._content(trial, data, now)
        if problems:
            # every offending field is named, so a refused request also reads the enrolment
            # (and the slot a correction names); an accepted one reads them once, in _store
            raise ValidationFailed(problems + self._state_problems(trial, data, instrument))
        assert instrument is not None

        body_hash = _body_hash(data, instrument)
        received_at = iso(now)
        submission_id = new_ulid()
        scope = (
            hashlib.sha256(f"{principal.key_id}\0{idempotency_key}".encode()).hexdigest()
            if idempotency_key
            else None
        )
        claimed = False
        if scope is not None:
            earlier = self.idempotency.claim_idempotency(
                IdempotencyClaim(
                    scope=scope,
                    body_hash=body_hash,
                    trial_id=trial.trial_id,
                    participant_id=data.participant_id,
                    slot=Slot(instrument=instrument.id, timepoint=data.timepoint),
                    submission_id=submission_id,
                    received_at=received_at,
                    expires_at=int((now + IDEMPOTENCY_TTL).timestamp()),
                )
            )
            if earlier is not None:
                replay = self._replay(earlier, body_hash)
                if replay is not None:
                    return replay
                # the first attempt claimed the key but never stored: finish it now
                submission_id = earlier.submission_id
                received_at = earlier.received_at
            claimed = True
        try:
            return self._store(
                trial=trial,
                principal=principal,
                data=data,
                instrument=instrument,
                responses=responses,
                notes=notes,
                submission_id=submission_id,
                received_at=received_at,
                body_hash=body_hash,
                scope=scope,
            )
        except (ValidationFailed, Conflict):
            if claimed and scope is not None:
                self.idempotency.release_idempotency(scope)
            raise

    def problems(
        self, *, trial: Trial, data: SubmissionInput, skip: Collection[str] = ()
    ) -> list[Problem]:
        """Every problem of a submission, without storing anything or raising.

        `skip` names body fields the caller has already refused (the request schema): they
        are neither checked again nor used to check others.
        """
        instrument, _, _, problems = self._content(trial, data, self.clock(), frozenset(skip))
        return problems + self._state_problems(trial, data, instrument, frozenset(skip))

    def _content(
        self,
        trial: Trial,
        data: SubmissionInput,
        now: datetime,
        skip: frozenset[str] = frozenset(),
    ) -> tuple[Instrument | None, dict[int, int | None], dict[str, str] | None, list[Problem]]:
        """The stateless checks: instrument, responses, notes, schedule, completion time."""
        problems: list[Problem] = []
        instrument = None
        if not skip & {"instrument", "instrument_version"}:
            instrument = _resolve_instrument(data, problems)
        responses: dict[int, int | None] = {}
        notes: dict[str, str] | None = None
        if instrument is not None:
            if "responses" not in skip:
                try:
                    responses = validate_responses(instrument, data.responses)
                except InvalidSubmission as exc:
                    problems += [Problem(_body(p.loc), p.msg, p.type) for p in exc.problems]
            if "notes" not in skip:
                try:
                    notes = validate_notes(instrument, data.notes)
                except InvalidSubmission as exc:
                    problems += [Problem(_body(p.loc), p.msg, p.type) for p in exc.problems]
            scheduled = trial.protocol.schedule.get(instrument.id, ())
            if "timepoint" not in skip and data.timepoint not in scheduled:
                problems.append(
                    Problem(
                        ("body", "timepoint"),
                        f"the protocol of {trial.trial_id} does not schedule {instrument.id} at "
                        f"{data.timepoint!r}; scheduled: {', '.join(scheduled) or 'never'}",
                        "not_scheduled",
                    )
                )
        if "completed_at" not in skip and data.completed_at > now + CLOCK_SKEW:
            problems.append(
                Problem(("body", "completed_at"), "completed_at is in the future", "in_future")
            )
        return instrument, responses, notes, problems

    def _state_problems(
        self,
        trial: Trial,
        data: SubmissionInput,
        instrument: Instrument | None,
        skip: frozenset[str] = frozenset(),
    ) -> list[Problem]:
        """Problems only the tables can tell: enrolment, and the submission a correction names."""
        if "participant_id" in skip:
            return []
        enrolment = self._enrolment_problem(trial, data.participant_id)
        if enrolment is not None:
            return [enrolment]
        if (
            data.supersedes
            and instrument is not None
            and not skip & {"supersedes", "timepoint"}
            and not self._in_slot(trial, data, instrument)
        ):
            return [self._nothing_to_supersede(data, instrument)]
        return []

    def _enrolment_problem(self, trial: Trial, participant_id: str) -> Problem | None:
        participant = self.participants.get_participant(trial.trial_id, participant_id)
        # completed participants may still send follow-up questionnaires; withdrawn may not
        if participant is not None and participant.status != "withdrawn":
            return None
        state = "not enrolled" if participant is None else participant.status
        return Problem(
            ("body", "participant_id"),
            f"participant {participant_id} is {state} in {trial.trial_id}",
            "not_enrolled" if participant is None else "withdrawn",
        )

    def _in_slot(self, trial: Trial, data: SubmissionInput, instrument: Instrument) -> bool:
        """Whether `supersedes` names a submission of this participant/instrument/timepoint."""
        slot = Slot(instrument=instrument.id, timepoint=data.timepoint)
        return any(
            record.submission_id == data.supersedes
            for record in self.submissions.in_slot(
                trial_id=trial.trial_id, participant_id=data.participant_id, slot=slot
            )
        )

    @staticmethod
    def _nothing_to_supersede(data: SubmissionInput, instrument: Instrument) -> Problem:
        return Problem(
            ("body", "supersedes"),
            f"no {instrument.id} {data.timepoint} submission {data.supersedes} of "
            f"{data.participant_id} to correct",
            "nothing_to_supersede",
        )

    def _replay(self, earlier: IdempotencyClaim, body_hash: str) -> Accepted | None:
        """The first answer to this Idempotency-Key, or None if its submission was never
        stored (the first attempt failed between claim and store)."""
        if earlier.body_hash != body_hash:
            raise Conflict(
                "this Idempotency-Key was already used with a different request body",
                code="idempotency-key-reused",
            )
        # a correction is stored further along its slot, and newer corrections may follow it
        stored = next(
            (
                record
                for record in self.submissions.in_slot(
                    trial_id=earlier.trial_id,
                    participant_id=earlier.participant_id,
                    slot=earlier.slot,
                )
                if record.submission_id == earlier.submission_id
            ),
            None,
        )
        if stored is None:
            return None
        return Accepted(
            submission_id=stored.submission_id, received_at=stored.received_at, replayed=True
        )

    def _store(
        self,
        *,
        trial: Trial,
        principal: Principal,
        data: SubmissionInput,
        instrument: Instrument,
        responses: dict[int, int | None],
        notes: dict[str, str] | None,
        submission_id: str,
        received_at: str,
        body_hash: str,
        scope: str | None,
    ) -> Accepted:
        enrolment = self._enrolment_problem(trial, data.participant_id)
        if enrolment is not None:
            raise ValidationFailed([enrolment])
        slot = Slot(instrument=instrument.id, timepoint=data.timepoint)
        seq = 0
        if data.supersedes:
            head = self.submissions.slot_head(
                trial_id=trial.trial_id, participant_id=data.participant_id, slot=slot
            )
            if head is None:
                raise ValidationFailed([self._nothing_to_supersede(data, instrument)])
            if head.submission_id != data.supersedes:
                if head.idempotency == scope and head.body_hash == body_hash:
                    return Accepted(
                        submission_id=head.submission_id,
                        received_at=head.received_at,
                        replayed=True,
                    )
                # naming no submission of this slot at all is a bad field, not a conflict
                if not self._in_slot(trial, data, instrument):
                    raise ValidationFailed([self._nothing_to_supersede(data, instrument)])
                raise Conflict(
                    f"supersedes must name the newest {instrument.id} {data.timepoint} "
                    f"submission of {data.participant_id}: {head.submission_id}",
                    code="not-newest",
                )
            seq = head.seq + 1
        record = SubmissionRecord(
            trial_id=trial.trial_id,
            participant_id=data.participant_id,
            submission_id=submission_id,
            instrument=instrument.id,
            instrument_version=instrument.version,
            timepoint=data.timepoint,
            seq=seq,
            completed_at=iso(data.completed_at),
            received_at=received_at,
            responses=responses,
            notes=notes or None,
            supersedes=data.supersedes,
            key_id=principal.key_id,
            role=principal.role,
            body_hash=body_hash,
            idempotency=scope,
        )
        try:
            self.submissions.put_new(record)
        except DuplicateSubmission as exc:
            existing = exc.existing
            if (
                scope is not None
                and existing.idempotency == scope
                and (existing.body_hash == body_hash)
            ):
                return Accepted(
                    submission_id=existing.submission_id,
                    received_at=existing.received_at,
                    replayed=True,
                )
            if data.supersedes:
                raise Conflict(
                    f"submission {data.supersedes} was corrected concurrently; "
                    "fetch the participant's scores and supersede the newest",
                    code="not-newest",
                ) from None
            raise Conflict(
                f"participant {data.participant_id} already has a {instrument.id} "
                f"{data.timepoint} submission ({existing.submission_id}); "
                'send "supersedes" with its id to correct it',
                code="duplicate-submission",
            ) from None
        return Accepted(submission_id=submission_id, received_at=received_at, replayed=False)


def _body_hash(data: SubmissionInput, instrument: Instrument) -> str:
    canonical = {
        "participant_id": data.participant_id,
        "instrument": instrument.id,
        "instrument_version": instrument.version,
        "timepoint": data.timepoint,
        "completed_at": iso(data.completed_at),
        "responses": {str(k): v for k, v in sorted(data.responses.items())},
        "notes": data.notes,
        "supersedes": data.supersedes,
    }
    return hashlib.sha256(
        json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str).encode()
    ).hexdigest()
