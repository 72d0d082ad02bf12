"""A participant's own routes (participant token only): their schedule, their questionnaires,
ending their token.

What a participant sees of the trial is its id and title, their own status and schedule, and
the Questionnaires of the instruments it schedules: nothing else of the trial, no scores.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import Response

from domain.trial import Participant, Trial
from handlers import schemas
from handlers.api_errors import UnicodeCheckedRoute, problems
from handlers.http.dependencies import ContainerDep, Me
from handlers.http.fhir_responses import FhirJSONResponse
from handlers.http.participants import schedule_out
from services.access import TokenHolder
from services.audit import Actor
from services.errors import NotAuthenticated, NotFound

router = APIRouter(
    tags=["participant"],
    route_class=UnicodeCheckedRoute,
    responses=problems(401, 403, 429, described={403: "a key, not a participant token"}),
)

InstrumentIdPath = Annotated[str, Path(max_length=32)]
TimepointQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=32,
        description="the timepoint the Questionnaire is issued for (its canonical names it, so "
        "the response needs nothing else); default: the one due now",
    ),
]


def _now_read(holder: TokenHolder, container: ContainerDep) -> tuple[Trial, Participant]:
    """The token's trial and its participant read afresh (one GetItem): the token's own
    record may be up to 5 s old, and a schedule must show a slot done once it is scored."""
    trial = container.trials.get_cached(holder.participant.trial_id)
    try:
        return trial, container.participants.get(trial, holder.participant.participant_id)
    except NotFound:  # erased since the token was read: the token ended with them
        raise NotAuthenticated("unknown or ended participant token") from None


@router.get("/v1/me", response_model=schemas.MeOut)
def get_me(holder: Me, container: ContainerDep) -> schemas.MeOut:
    """The participant's trial title, status and schedule (windows and states); no scores."""
    trial, participant = _now_read(holder, container)
    return schemas.MeOut(
        trial_id=trial.trial_id,
        trial_title=trial.title,
        participant_id=participant.participant_id,
        status=participant.status,
        schedule=schedule_out(container.participants.schedule(trial, participant)),
    )


@router.get(
    "/v1/me/questionnaires/{instrument_id}",
    response_class=FhirJSONResponse,
    response_model=schemas.Questionnaire,
    responses={
        200: {"description": "a FHIR R4 Questionnaire (application/fhir+json)"},
        **problems(
            404,
            422,
            described={
                404: "the trial schedules no such instrument",
                422: "the timepoint is not scheduled for this instrument",
            },
        ),
    },
)
def get_my_questionnaire(
    instrument_id: InstrumentIdPath,
    holder: Me,
    container: ContainerDep,
    timepoint: TimepointQuery = None,
) -> Response:
    """The trial's FHIR Questionnaire of an instrument, issued for the timepoint due now."""
    trial = container.trials.get_cached(holder.participant.trial_id)
    if timepoint is None:
        container.questionnaires.scheduled_instrument(trial, instrument_id)
        _, participant = _now_read(holder, container)
        timepoint = container.participants.due_timepoint(trial, participant, instrument_id)
    resource = container.questionnaires.questionnaire(trial, instrument_id, timepoint=timepoint)
    return FhirJSONResponse(resource)


@router.delete("/v1/me/token", response_model=schemas.TokenEnded)
def end_my_token(holder: Me, container: ContainerDep) -> schemas.TokenEnded:
    """End the participant token of this request (log out); other tokens stay."""
    container.access.end(holder)
    principal = holder.principal
    container.audit.record(
        Actor(key_id=principal.key_id, role=principal.role),
        trial_id=principal.trial_id,
        action="participant.token_end",
        targets={"participant_id": str(principal.participant_id), "token_id": principal.key_id},
    )
    return schemas.TokenEnded(token_id=principal.key_id, ended=True)
