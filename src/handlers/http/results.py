"""A trial's results for its coordinators: scores, live summary, reports, exports, alerts."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Response

from handlers import schemas
from handlers.api_errors import UnicodeCheckedRoute, problems
from handlers.http.dependencies import (
    ContainerDep,
    Coordinator,
    ParticipantIdPath,
    TrialIdPath,
    actor,
)

router = APIRouter(
    tags=["results"],
    route_class=UnicodeCheckedRoute,
    responses=problems(401, 403, 404, 422, 429, described={404: "no such trial"}),
)
Layout = Literal["long", "wide"]


@router.get(
    "/v1/trials/{trial_id}/participants/{participant_id}/scores",
    response_model=schemas.ParticipantScores,
    responses=problems(404, described={404: "no such trial, or the participant is not in it"}),
)
def get_participant_scores(
    trial_id: TrialIdPath,
    participant_id: ParticipantIdPath,
    principal: Coordinator,
    container: ContainerDep,
) -> dict[str, Any]:
    """Every scored submission of that participant, by timepoint (corrections visible)."""
    trial = container.trials.get(trial_id)
    return container.reads.participant_scores(trial, participant_id)


@router.get("/v1/trials/{trial_id}/summary", response_model=schemas.Summary)
def get_summary(
    trial_id: TrialIdPath, principal: Coordinator, container: ContainerDep
) -> dict[str, Any]:
    """Live aggregates: enrolment; n/mean/sd by instrument, timepoint, subscale; adherence."""
    trial = container.trials.get(trial_id)
    return container.reads.summary(trial)


# `basis_note` is present only on a sample basis: unset fields stay out of the answer
@router.post(
    "/v1/trials/{trial_id}/reports/pre-post",
    response_model=schemas.PrePostReport,
    response_model_exclude_unset=True,
)
def publish_prepost_report(
    trial_id: TrialIdPath, principal: Coordinator, container: ContainerDep
) -> dict[str, Any]:
    """Compute the pre/post report now, publish it to S3 and return it."""
    trial = container.trials.get(trial_id)
    return container.reporting.publish(trial, actor(principal))


@router.get(
    "/v1/trials/{trial_id}/reports/pre-post",
    response_model=schemas.PrePostReport,
    response_model_exclude_unset=True,
    responses=problems(404, described={404: "no such trial, or no report published yet"}),
)
def get_prepost_report(
    trial_id: TrialIdPath, principal: Coordinator, container: ContainerDep
) -> dict[str, Any]:
    """The latest published pre/post report (404 if none yet)."""
    container.trials.get(trial_id)
    report = container.reporting.latest(trial_id)
    container.audit.record(
        actor(principal), trial_id=trial_id, action="report.read", targets={"report": "pre-post"}
    )
    return report


@router.get(
    "/v1/trials/{trial_id}/export.csv",
    response_class=Response,
    responses={
        200: {
            "description": "CSV (UTF-8, RFC 4180), as an attachment",
            "content": {"text/csv": {"schema": {"$ref": "#/components/schemas/CsvExport"}}},
        }
    },
)
def export_csv(
    trial_id: TrialIdPath,
    principal: Coordinator,
    container: ContainerDep,
    layout: Layout = "long",
) -> Response:
    """CSV ready for R or SPSS: long (per submission × subscale) or wide (per participant)."""
    trial = container.trials.get(trial_id)
    text = container.reads.export_csv(trial, layout)
    container.audit.record(
        actor(principal), trial_id=trial_id, action="export.read", targets={"layout": layout}
    )
    return Response(
        content=text.encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{trial_id}-{layout}.csv"'},
    )


@router.get("/v1/trials/{trial_id}/codebook", response_model=schemas.Codebook)
def get_codebook(
    trial_id: TrialIdPath,
    principal: Coordinator,
    container: ContainerDep,
    layout: Layout = "long",
) -> dict[str, Any]:
    """Every export column: name, label, type, range, instrument, missing-value meaning."""
    trial = container.trials.get(trial_id)
    return {
        "trial_id": trial_id,
        "layout": layout,
        "columns": container.reads.codebook(trial, layout),
    }


@router.get("/v1/trials/{trial_id}/alerts", response_model=schemas.AlertLog)
def list_alerts(
    trial_id: TrialIdPath, principal: Coordinator, container: ContainerDep
) -> dict[str, Any]:
    """The safety-alert log."""
    container.trials.get(trial_id)
    return container.reads.alerts(trial_id)
