"""Submitting one completed instrument (submitter or coordinator key, or participant token:
a token submits only for its own participant).

A refused submission names every bad field in one answer: when the schema refuses some
fields, `content_problems` adds what the service finds wrong in the fields it accepted.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.exceptions import RequestValidationError

from domain.errors import Problem as DomainProblem
from handlers import schemas
from handlers.api_errors import UnicodeCheckedRoute, problems, request_validation_locs
from handlers.http.dependencies import ContainerDep, FrontEnd, TrialIdPath
from handlers.wiring import Container
from services.auth import Principal
from services.errors import NotFound
from services.submit import SubmissionInput, require_own_participant

router = APIRouter(tags=["submissions"], route_class=UnicodeCheckedRoute)

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)
]


@router.post(
    "/v1/trials/{trial_id}/submissions",
    status_code=201,
    response_model=schemas.SubmissionAccepted,
    responses={
        201: {
            "description": "stored; a replay of an Idempotency-Key answers the same body",
            "headers": {
                "Idempotent-Replayed": {
                    "description": "`true` when this answer replays the first one",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            },
        },
        **problems(
            401,
            403,
            404,
            409,
            413,
            422,
            429,
            described={
                403: "the key's role or trial does not allow this, or a participant token "
                "names another participant",
                404: "no such trial",
                409: "the slot already has a submission (send `supersedes` to correct it), "
                "or the Idempotency-Key was used with another body",
            },
        ),
    },
)
def create_submission(
    trial_id: TrialIdPath,
    body: schemas.SubmissionIn,
    principal: FrontEnd,
    response: Response,
    container: ContainerDep,
    idempotency_key: IdempotencyKey = None,
) -> schemas.SubmissionAccepted:
    """Submit one completed instrument; stored immutably before 201 is returned."""
    trial = container.trials.get_cached(trial_id)
    accepted = container.submit.submit(
        trial=trial,
        principal=principal,
        data=SubmissionInput(
            participant_id=body.participant_id,
            instrument=body.instrument,
            instrument_version=body.instrument_version,
            timepoint=body.timepoint,
            completed_at=body.completed_at,
            responses=body.responses,
            notes=body.notes,
            supersedes=body.supersedes,
        ),
        idempotency_key=idempotency_key,
    )
    if accepted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return schemas.SubmissionAccepted(
        submission_id=accepted.submission_id, received_at=accepted.received_at, status="accepted"
    )


def content_problems(
    request: Request, exc: RequestValidationError, container: Container
) -> list[DomainProblem]:
    """What the service finds wrong in the fields of a submission the schema accepted."""
    route = request.scope.get("route")
    body = exc.body
    locs = request_validation_locs(exc)
    if getattr(route, "endpoint", None) is not create_submission or not isinstance(body, dict):
        return []
    principal: Principal | None = getattr(request.state, "principal", None)
    participant_id = body.get("participant_id")
    if principal is not None and isinstance(participant_id, str):
        require_own_participant(principal, participant_id)  # 403 before any 422
    if any(loc[:1] == ["path"] or loc == ["body"] for loc in locs):
        return []
    refused = {str(loc[1]) for loc in locs if loc[:1] == ["body"] and len(loc) > 1}
    try:
        trial = container.trials.get_cached(request.path_params["trial_id"])
    except NotFound:
        return []
    data = _readable_submission(body, refused)
    return container.submit.problems(trial=trial, data=data, skip=refused)


def _readable_submission(body: dict[str, Any], refused: set[str]) -> SubmissionInput:
    """The part of a submission body the schema accepted; refused fields get placeholders.

    `SubmissionService.problems(skip=refused)` never looks at the placeholders.
    """

    def text(name: str) -> str:
        value = body.get(name)
        return value if name not in refused and isinstance(value, str) else ""

    version = body.get("instrument_version")
    responses = body.get("responses")
    notes = body.get("notes")
    return SubmissionInput(
        participant_id=text("participant_id"),
        instrument=text("instrument"),
        instrument_version=version if isinstance(version, str) else None,
        timepoint=text("timepoint"),
        completed_at=(
            datetime.min.replace(tzinfo=UTC)
            if "completed_at" in refused
            else schemas.parse_timestamp(body["completed_at"], earliest=schemas.EARLIEST_COMPLETION)
        ),
        responses=responses if isinstance(responses, dict) else {},
        notes=notes if isinstance(notes, dict) else None,
        supersedes=text("supersedes") or None,
    )
