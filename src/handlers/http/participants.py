"""A trial's participants: enrolment, status, progress and schedule, erasure (coordinator)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from fastapi import APIRouter

from domain.errors import BadCursor
from domain.schedule import ScheduledSlot
from domain.trial import Participant
from handlers import schemas
from handlers.api_errors import UnicodeCheckedRoute, problems
from handlers.http.dependencies import (
    ContainerDep,
    Coordinator,
    Cursor,
    Limit,
    ParticipantIdPath,
    TrialIdPath,
    actor,
    bad_cursor,
)
from services.clock import iso

router = APIRouter(
    tags=["participants"],
    route_class=UnicodeCheckedRoute,
    responses=problems(401, 403, 404, 422, 429),
)
_NO_PARTICIPANT = problems(404, described={404: "no such trial, or the participant is not in it"})


def participant_out(p: Participant) -> schemas.ParticipantOut:
    return schemas.ParticipantOut(
        trial_id=p.trial_id,
        participant_id=p.participant_id,
        status=p.status,
        reason=p.reason,
        enrolled_at=p.enrolled_at,
        status_changed_at=p.status_changed_at,
    )


def schedule_out(slots: Iterable[ScheduledSlot]) -> list[schemas.ScheduledSlotOut]:
    return [
        schemas.ScheduledSlotOut(
            instrument=s.instrument,
            timepoint=s.timepoint,
            opens_at=iso(s.opens_at),
            closes_at=iso(s.closes_at),
            state=s.state,
        )
        for s in slots
    ]


@router.post(
    "/v1/trials/{trial_id}/participants",
    status_code=201,
    response_model=schemas.ParticipantOut,
    responses=problems(409, 413, described={409: "already enrolled"}),
)
def enrol_participant(
    trial_id: TrialIdPath, body: schemas.EnrolIn, principal: Coordinator, container: ContainerDep
) -> schemas.ParticipantOut:
    """Enrol a participant by pseudonymous code (409 if already enrolled)."""
    trial = container.trials.get(trial_id)
    participant = container.participants.enrol(trial, body.participant_id)
    container.audit.record(
        actor(principal),
        trial_id=trial_id,
        action="participant.enrol",
        targets={"participant_id": body.participant_id},
    )
    return participant_out(participant)


@router.patch(
    "/v1/trials/{trial_id}/participants/{participant_id}",
    response_model=schemas.ParticipantOut,
    responses={**_NO_PARTICIPANT, **problems(413)},
)
def update_participant(
    trial_id: TrialIdPath,
    participant_id: ParticipantIdPath,
    body: schemas.StatusIn,
    principal: Coordinator,
    container: ContainerDep,
) -> schemas.ParticipantOut:
    """Change a participant's status; a withdrawal also ends their tokens and unused code."""
    trial = container.trials.get(trial_id)
    participant = container.participants.set_status(
        trial, participant_id, status=body.status, reason=body.reason
    )
    container.audit.record(
        actor(principal),
        trial_id=trial_id,
        action=f"participant.status.{body.status}",
        targets={"participant_id": participant_id},
    )
    return participant_out(participant)


@router.get(
    "/v1/trials/{trial_id}/participants",
    response_model=schemas.ParticipantList,
    responses=problems(404, described={404: "no such trial"}),
)
def list_participants(
    trial_id: TrialIdPath,
    principal: Coordinator,
    container: ContainerDep,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> schemas.ParticipantList:
    """Participants with status, done / missing slots and schedule states, paged."""
    trial = container.trials.get(trial_id)
    try:
        page, next_cursor = container.participants.page(trial, limit=limit, cursor=cursor)
    except BadCursor:
        raise bad_cursor() from None
    return schemas.ParticipantList(
        trial_id=trial_id,
        participants=[
            schemas.ParticipantProgress(
                **participant_out(item.participant).model_dump(),
                done=list(item.done),
                missing=list(item.missing),
                schedule=schedule_out(item.schedule),
            )
            for item in page
        ],
        next_cursor=next_cursor,
    )


@router.delete(
    "/v1/trials/{trial_id}/participants/{participant_id}",
    response_model=schemas.Erased,
    responses=_NO_PARTICIPANT,
)
def erase_participant(
    trial_id: TrialIdPath,
    participant_id: ParticipantIdPath,
    principal: Coordinator,
    container: ContainerDep,
) -> schemas.Erased:
    """Erase a participant on request; aggregates are corrected, an audit record stays."""
    trial = container.trials.get(trial_id)
    result = container.erasure.erase(trial, participant_id, actor(principal))
    container.access.forget(trial_id, participant_id)  # their tokens went with them
    return schemas.Erased(
        trial_id=trial_id, participant_id=participant_id, **dataclasses.asdict(result)
    )
