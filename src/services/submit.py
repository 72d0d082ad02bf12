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
from typing import Any
from typing import Protocol as TypingProtocol

from adapters import keys
from domain.errors import InvalidSubmission, Problem, UnknownInstrument, UnknownInstrumentVersion
from domain.instruments import CATALOGUE, Instrument
from domain.validation import validate_notes, validate_responses
from services.auth import Principal
from services.clock import Clock, iso, new_ulid
from services.errors import ConditionFailed, Conflict, ValidationFailed
from services.records import Participant, Trial

# a device clock a few minutes ahead of ours is not "the future"
CLOCK_SKEW = timedelta(minutes=5)
IDEMPOTENCY_TTL = timedelta(hours=24)


class SubmissionWriter(TypingProtocol):
    def put_new(self, item: Mapping[str, Any]) -> None: ...

    def get(self, key: Mapping[str, str]) -> dict[str, Any] | None: ...

    def slot_head(
        self, trial_id: str, participant_id: str, instrument: str, timepoint: str
    ) -> dict[str, Any] | None: ...

    def list_for_participant(self, trial_id: str, participant_id: str) -> list[dict[str, Any]]: ...

    def list_in_slot(self, *, pk: str, slot_prefix: str) -> list[dict[str, Any]]: ...


class SubmitSupport(TypingProtocol):
    def get_participant(self, trial_id: str, participant_id: str) -> Participant | None: ...

    def claim_idempotency(
        self,
        scope_hash: str,
        *,
        body_hash: str,
        submission_key: Mapping[str, str],
        submission_id: str,
        received_at: str,
        expires_at: int,
    ) -> dict[str, Any] | None: ...

    def release_idempotency(self, scope_hash: str) -> None: ...


@dataclass(frozen=True)
class SubmissionInput:
    participant_id: str
    instrument: str
    instrument_version: str | None
    timepoint: str
    completed_at: datetime
    responses: Mapping[str, object]
    notes: Mapping[str, object] | None
    supersedes: str | None


@dataclass(frozen=True)
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


def _body(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    return ("body", *loc)


class SubmissionService:
    def __init__(self, submissions: SubmissionWriter, support: SubmitSupport, clock: Clock) -> None:
        self.submissions = submissions
        self.support = support
        self.clock = clock

    def submit(
        self,
        *,
        trial: Trial,
        principal: Principal,
        data: SubmissionInput,
        idempotency_key: str | None,
    ) -> Accepted:
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
            provisional_key = keys.submission(
                trial.trial_id, data.participant_id, instrument.id, data.timepoint, 0
            )
            earlier = self.support.claim_idempotency(
                scope,
                body_hash=body_hash,
                submission_key=provisional_key,
                submission_id=submission_id,
                received_at=received_at,
                expires_at=int((now + IDEMPOTENCY_TTL).timestamp()),
            )
            if earlier is not None:
                replay = self._replay(earlier, body_hash)
                if replay is not None:
                    return replay
                # the first attempt claimed the key but never stored: finish it now
                submission_id = str(earlier["submission_id"])
                received_at = str(earlier["received_at"])
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
                self.support.release_idempotency(scope)
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
        participant = self.support.get_participant(trial.trial_id, participant_id)
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
        prefix = keys.slot_prefix(instrument.id, data.timepoint)
        return any(
            str(item["sk"]).startswith(prefix) and item.get("submission_id") == data.supersedes
            for item in self.submissions.list_for_participant(trial.trial_id, data.participant_id)
        )

    @staticmethod
    def _nothing_to_supersede(data: SubmissionInput, instrument: Instrument) -> Problem:
        return Problem(
            ("body", "supersedes"),
            f"no {instrument.id} {data.timepoint} submission {data.supersedes} of "
            f"{data.participant_id} to correct",
            "nothing_to_supersede",
        )

    def _replay(self, earlier: Mapping[str, Any], body_hash: str) -> Accepted | None:
        if earlier.get("body_hash") != body_hash:
            raise Conflict(
                "this Idempotency-Key was already used with a different request body",
                code="idempotency-key-reused",
            )
        stored = self.submissions.get(
            {"pk": str(earlier["submission_pk"]), "sk": str(earlier["submission_sk"])}
        )
        if not stored or stored.get("submission_id") != earlier["submission_id"]:
            # the claim names the slot's first key; a correction is stored further along it
            # (and newer corrections may follow it), so look for the claimed id in the slot
            pk, sk = str(earlier["submission_pk"]), str(earlier["submission_sk"])
            stored = next(
                (
                    item
                    for item in self.submissions.list_in_slot(
                        pk=pk, slot_prefix=sk.rsplit("#", 1)[0] + "#"
                    )
                    if item.get("submission_id") == earlier["submission_id"]
                ),
                None,
            )
        if stored:
            return Accepted(
                submission_id=str(stored["submission_id"]),
                received_at=str(stored["received_at"]),
                replayed=True,
            )
        return None

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
        seq = 0
        if data.supersedes:
            head = self.submissions.slot_head(
                trial.trial_id, data.participant_id, instrument.id, data.timepoint
            )
            if head is None:
                raise ValidationFailed([self._nothing_to_supersede(data, instrument)])
            if head["submission_id"] != data.supersedes:
                if head.get("idempotency") == scope and head.get("body_hash") == body_hash:
                    return Accepted(str(head["submission_id"]), str(head["received_at"]), True)
                # naming no submission of this slot at all is a bad field, not a conflict
                if not self._in_slot(trial, data, instrument):
                    raise ValidationFailed([self._nothing_to_supersede(data, instrument)])
                raise Conflict(
                    f"supersedes must name the newest {instrument.id} {data.timepoint} "
                    f"submission of {data.participant_id}: {head['submission_id']}",
                    code="not-newest",
                )
            seq = int(head["seq"]) + 1
        key = keys.submission(
            trial.trial_id, data.participant_id, instrument.id, data.timepoint, seq
        )
        item: dict[str, Any] = {
            **key,
            "entity": "submission",
            "submission_id": submission_id,
            "trial_id": trial.trial_id,
            "participant_id": data.participant_id,
            "instrument": instrument.id,
            "instrument_version": instrument.version,
            "timepoint": data.timepoint,
            "completed_at": iso(data.completed_at),
            "received_at": received_at,
            "responses": {str(k): v for k, v in responses.items()},
            "seq": seq,
            "body_hash": body_hash,
            "key_id": principal.key_id,
            "role": principal.role,
            "trial_received": f"{received_at}#{submission_id}",
        }
        if notes:
            item["notes"] = notes
        if data.supersedes:
            item["supersedes"] = data.supersedes
        if scope:
            item["idempotency"] = scope
        try:
            self.submissions.put_new(item)
        except ConditionFailed as exc:
            existing = exc.existing or {}
            if (
                scope is not None
                and existing.get("idempotency") == scope
                and existing.get("body_hash") == body_hash
            ):
                return Accepted(str(existing["submission_id"]), str(existing["received_at"]), True)
            if data.supersedes:
                raise Conflict(
                    f"submission {data.supersedes} was corrected concurrently; "
                    "fetch the participant's scores and supersede the newest",
                    code="not-newest",
                ) from None
            raise Conflict(
                f"participant {data.participant_id} already has a {instrument.id} "
                f"{data.timepoint} submission ({existing.get('submission_id', 'unknown id')}); "
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
