"""A trial's forms: its licensed item wording (admin) and its FHIR Questionnaires (front ends).

The wording is served only within its trial (`services.questionnaires`); the catalogue
(``GET /v1/instruments``) never carries it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from domain.instruments import form_to_dict
from handlers import schemas
from handlers.api_errors import UnicodeCheckedRoute, problems
from handlers.http.dependencies import Admin, ContainerDep, QuestionnaireReader, TrialIdPath, actor
from handlers.http.fhir_responses import FhirJSONResponse

router = APIRouter(
    tags=["forms"], route_class=UnicodeCheckedRoute, responses=problems(401, 403, 422, 429)
)

InstrumentIdPath = Annotated[str, Path(max_length=32)]
TimepointQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=32,
        description="issue it for this timepoint: its canonical names the timepoint, so a "
        "response to it needs nothing else",
    ),
]


@router.put(
    "/v1/trials/{trial_id}/instrument-texts/{instrument_id}",
    response_model=schemas.InstrumentTextsOut,
    responses={
        200: {"description": "replaced"},
        201: {"model": schemas.InstrumentTextsOut, "description": "stored"},
        **problems(404, 413, described={404: "no such trial, or no such instrument"}),
    },
)
def put_instrument_texts(
    trial_id: TrialIdPath,
    instrument_id: InstrumentIdPath,
    body: schemas.InstrumentTextsIn,
    principal: Admin,
    response: Response,
    container: ContainerDep,
) -> schemas.InstrumentTextsOut:
    """Store the item wording this trial is licensed to use (every item; served only here)."""
    trial = container.trials.get(trial_id)
    raw: dict[str, Any] = body.model_dump()
    stored = container.questionnaires.put_texts(trial, instrument_id, raw, key_id=principal.key_id)
    container.audit.record(
        actor(principal),
        trial_id=trial_id,
        action="instrument_texts.put",
        targets={
            "instrument": stored.texts.instrument_id,
            "instrument_version": stored.texts.instrument_version,
        },
    )
    response.status_code = 201 if stored.created else 200
    return schemas.InstrumentTextsOut(
        trial_id=trial_id,
        instrument=stored.texts.instrument_id,
        instrument_version=stored.texts.instrument_version,
        updated_at=stored.updated_at,
        form=schemas.FormOut.model_validate(form_to_dict(stored.form)),
    )


@router.get(
    "/v1/trials/{trial_id}/questionnaires/{instrument_id}",
    response_class=FhirJSONResponse,
    response_model=schemas.Questionnaire,
    responses={
        200: {"description": "a FHIR R4 Questionnaire (application/fhir+json)"},
        **problems(
            404,
            described={404: "no such trial, or the trial schedules no such instrument"},
        ),
    },
)
def get_trial_questionnaire(
    trial_id: TrialIdPath,
    instrument_id: InstrumentIdPath,
    principal: QuestionnaireReader,
    container: ContainerDep,
    timepoint: TimepointQuery = None,
) -> Response:
    """The trial's FHIR R4 Questionnaire of a scheduled instrument (with its wording)."""
    trial = container.trials.get_cached(trial_id)
    resource = container.questionnaires.questionnaire(trial, instrument_id, timepoint=timepoint)
    return FhirJSONResponse(resource)
