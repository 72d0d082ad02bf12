"""FHIR R4 QuestionnaireResponses, stored as ordinary submissions.

``POST /v1/trials/{trial_id}/fhir/QuestionnaireResponse`` (participant token, submitter,
coordinator) reads the response with `domain.fhir.parse_questionnaire_response` and stores
it through the same `SubmissionService` as the native route: the same checks, the same
``Idempotency-Key`` replay, the same 201 body, the same stream and scoring. Every refusal is
an OperationOutcome (`handlers.http.fhir_responses`).

What the response leaves to the server:

- the instrument and version come from its ``questionnaire`` canonical (``url|version`` as
  served); the timepoint too, when the Questionnaire was issued for one
  (``.../timepoints/{timepoint}/Questionnaire/...``). Otherwise a participant token's
  response is for the instrument's timepoint due now (none due: 422), and a key's response
  is refused (422): a server-side front end knows which timepoint it is sending;
- the participant is the token's (a ``subject.identifier.value`` naming another is 403), or
  for a key ``subject.identifier.value`` (required).

A FHIR response cannot correct an earlier submission (``supersedes`` is native only): a
second one for the same slot is 409, as natively without ``supersedes``.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from domain.errors import Problem
from domain.fhir import operation_outcome_for_status
from handlers import schemas
from handlers.api_errors import UnicodeCheckedRoute
from handlers.http.dependencies import ContainerDep, FrontEnd, TrialIdPath
from handlers.http.fhir_responses import FHIR_MEDIA_TYPE, FhirJSONResponse, fhir_refusals
from services.access import TokenHolder
from services.errors import Forbidden, ValidationFailed
from services.submit import SubmissionInput

router = APIRouter(tags=["FHIR"], route_class=UnicodeCheckedRoute)

IdempotencyKey = Annotated[
    str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)
]
_MEDIA_TYPES = frozenset({FHIR_MEDIA_TYPE, "application/json"})
_BODY_SCHEMA = {"schema": {"$ref": "#/components/schemas/QuestionnaireResponse"}}


async def raw_body(request: Request) -> bytes:
    """The body as sent: the route reads it as FHIR itself, after the caller is known."""
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


@router.post(
    "/v1/trials/{trial_id}/fhir/QuestionnaireResponse",
    status_code=201,
    response_model=schemas.SubmissionAccepted,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {FHIR_MEDIA_TYPE: _BODY_SCHEMA, "application/json": _BODY_SCHEMA},
        }
    },
    responses={
        201: {
            "description": "stored as a submission; a replay of an Idempotency-Key answers the "
            "same body",
            "headers": {
                "Idempotent-Replayed": {
                    "description": "`true` when this answer replays the first one",
                    "schema": {"type": "string", "enum": ["true"]},
                }
            },
        },
        **fhir_refusals(
            401,
            403,
            404,
            405,
            409,
            413,
            415,
            422,
            429,
            500,
            described={
                403: "the caller's role or trial does not allow this, or the response names "
                "another participant than the token's",
                404: "no such trial",
                409: "the slot already has a submission, or the Idempotency-Key was used "
                "with another body",
                422: "every invalid element: each issue names it (an item by its linkId)",
            },
        ),
    },
)
def post_questionnaire_response(
    trial_id: TrialIdPath,
    request: Request,
    principal: FrontEnd,
    body: RawBody,
    response: Response,
    container: ContainerDep,
    idempotency_key: IdempotencyKey = None,
) -> Response | schemas.SubmissionAccepted:
    """Submit a FHIR R4 QuestionnaireResponse; stored and scored as an ordinary submission."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media and media not in _MEDIA_TYPES:
        return FhirJSONResponse(
            operation_outcome_for_status(
                415, f"send application/fhir+json or application/json, not {media}"
            ),
            status_code=415,
        )
    trial = container.trials.get_cached(trial_id)
    try:
        resource = json.loads(body)
    except (ValueError, RecursionError):
        raise ValidationFailed(
            [Problem((), "the body is not a JSON document (UTF-8)", "json_invalid")]
        ) from None
    holder: TokenHolder | None = getattr(request.state, "token_holder", None)
    token = holder if principal.role == "participant" else None
    answered = container.questionnaires.read_response(
        trial, resource, require_subject=token is None
    )
    participant_id = answered.participant_id
    if token is not None:
        if participant_id is not None and participant_id != principal.participant_id:
            raise Forbidden("a participant token submits only for its own participant")
        participant_id = principal.participant_id
    assert participant_id is not None  # required of a key's response
    timepoint = answered.timepoint
    if timepoint is None:
        timepoint = _timepoint_due(container, token, trial_id, answered.instrument_id)
    accepted = container.submit.submit(
        trial=trial,
        principal=principal,
        data=SubmissionInput(
            participant_id=participant_id,
            instrument=answered.instrument_id,
            instrument_version=answered.instrument_version,
            timepoint=timepoint,
            completed_at=answered.completed_at,
            responses=answered.responses,
            notes=answered.notes,
            supersedes=None,
        ),
        idempotency_key=idempotency_key,
    )
    if accepted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return schemas.SubmissionAccepted(
        submission_id=accepted.submission_id, received_at=accepted.received_at, status="accepted"
    )


def _timepoint_due(
    container: ContainerDep, token: TokenHolder | None, trial_id: str, instrument_id: str
) -> str:
    """The timepoint of a response whose Questionnaire was issued for none."""
    if token is None:
        raise ValidationFailed(
            [
                Problem(
                    ("questionnaire",),
                    "a key's response must answer a Questionnaire issued for a timepoint "
                    f"(.../trials/{trial_id}/timepoints/<timepoint>/Questionnaire/"
                    f"{instrument_id}: GET its questionnaire with ?timepoint=)",
                    "missing_timepoint",
                )
            ]
        )
    trial = container.trials.get_cached(trial_id)
    # read afresh: the token's own record may be up to 5 s old (a slot just scored)
    participant = container.participants.get(trial, token.participant.participant_id)
    due = container.participants.due_timepoint(trial, participant, instrument_id)
    if due is None:
        raise ValidationFailed(
            [
                Problem(
                    ("questionnaire",),
                    f"no {instrument_id} timepoint is due now for this participant: answer a "
                    "Questionnaire issued for a timepoint (?timepoint=)",
                    "nothing_due",
                )
            ]
        )
    return due
