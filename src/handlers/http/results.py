"""A trial's results for its coordinators: scores, live summary, reports, exports, alerts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Response
from fastapi.responses import JSONResponse

from domain.errors import BadCursor
from domain.jobs import Job
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
from handlers.http.exports import JobIdPath, job_files
from services.jobs import Download

router = APIRouter(
    tags=["results"],
    route_class=UnicodeCheckedRoute,
    responses=problems(401, 403, 404, 422, 429, described={404: "no such trial"}),
)
Layout = Literal["long", "wide"]
Prefer = Annotated[
    str | None,
    Header(description="`respond-async` (RFC 7240): answer 202 with a report job at once"),
]


def prefers_async(prefer: str | None) -> bool:
    """Whether a Prefer header (RFC 7240) holds the respond-async preference."""
    tokens = (
        part.split(";")[0].split("=")[0].strip().lower() for part in (prefer or "").split(",")
    )
    return "respond-async" in tokens


def report_job_out(job: Job, downloads: list[Download]) -> schemas.ReportJob:
    return schemas.ReportJob(
        job_id=job.job_id,
        trial_id=job.trial_id,
        status=job.status,
        created_at=job.created_at,
        updated_at=job.updated_at,
        deadline_at=job.deadline_at,
        finished_at=job.finished_at,
        error=job.error,
        report=f"/v1/trials/{job.trial_id}/reports/pre-post",
        **job_files(downloads),  # type: ignore[arg-type]
    )


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


@router.get(
    "/v1/trials/{trial_id}/summary",
    response_model=schemas.Summary,
    responses=problems(
        413,
        described={
            413: "a trial so large that its per-participant adherence would be over 6 MB: "
            "`detail` and the `Link` header point to the paged participant list"
        },
    ),
)
def get_summary(
    trial_id: TrialIdPath, principal: Coordinator, container: ContainerDep
) -> dict[str, Any]:
    """Live aggregates: enrolment; n/mean/sd by instrument, timepoint, subscale; adherence."""
    trial = container.trials.get(trial_id)
    summary = container.reads.summary(trial)
    container.jobs.check_summary_fits(trial_id, summary)
    return summary


# `basis_note` is present only on a sample basis: unset fields stay out of the answer
@router.post(
    "/v1/trials/{trial_id}/reports/pre-post",
    response_model=schemas.PrePostReport,
    response_model_exclude_unset=True,
    responses={
        202: {
            "model": schemas.ReportJob,
            "description": "a report job (asked with `Prefer: respond-async`, or the trial is "
            "too large to report within the synchronous limits); `Location` follows it",
            "headers": {
                "Location": {"description": "the job's URL", "schema": {"type": "string"}},
                "Preference-Applied": {
                    "description": "`respond-async` when the Prefer header asked for it",
                    "schema": {"type": "string"},
                },
            },
        }
    },
)
def publish_prepost_report(
    trial_id: TrialIdPath, principal: Coordinator, container: ContainerDep, prefer: Prefer = None
) -> Any:
    """Compute and publish the pre/post report now (200), or as a job (202 with Location)."""
    trial = container.trials.get(trial_id)
    asked = prefers_async(prefer)
    if asked or not container.jobs.report_fits(trial):
        job = container.jobs.request_report(trial, actor=actor(principal))
        headers = {"Location": f"/v1/trials/{trial_id}/reports/pre-post/jobs/{job.job_id}"}
        if asked:
            headers["Preference-Applied"] = "respond-async"
        return JSONResponse(
            report_job_out(job, []).model_dump(mode="json"), status_code=202, headers=headers
        )
    return container.reporting.publish(trial, actor(principal))


@router.get(
    "/v1/trials/{trial_id}/reports/pre-post/jobs/{job_id}",
    response_model=schemas.ReportJob,
    responses=problems(404, described={404: "no such trial, or no such report job in it"}),
)
def get_report_job(
    trial_id: TrialIdPath, job_id: JobIdPath, principal: Coordinator, container: ContainerDep
) -> schemas.ReportJob:
    """A pre/post report job; when ready, presigned URLs (15 minutes) for its files."""
    container.trials.get(trial_id)
    job = container.jobs.get(trial_id, "report", job_id)
    return report_job_out(job, container.jobs.downloads(job, actor(principal)))


@router.get(
    "/v1/trials/{trial_id}/reports/pre-post",
    response_model=schemas.PrePostReport,
    response_model_exclude_unset=True,
    responses=problems(
        404,
        413,
        described={
            404: "no such trial, or no report published yet",
            413: "the report is over the synchronous response limit: `detail` and the `Link` "
            "header point to `POST .../reports/pre-post` with `Prefer: respond-async`",
        },
    ),
)
def get_prepost_report(
    trial_id: TrialIdPath, principal: Coordinator, container: ContainerDep
) -> dict[str, Any]:
    """The latest published pre/post report (404 if none yet; 413 if it would not fit)."""
    container.trials.get(trial_id)
    report = container.reporting.latest(trial_id)
    container.jobs.check_report_fits(trial_id, report)
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
        },
        **problems(
            413,
            described={
                413: "the trial's export is too large to answer synchronously: `detail` and "
                "the `Link` header point to POST .../exports (the export as a job)"
            },
        ),
    },
)
def export_csv(
    trial_id: TrialIdPath,
    principal: Coordinator,
    container: ContainerDep,
    layout: Layout = "long",
) -> Response:
    """CSV ready for R or SPSS, for trials it fits; larger ones: POST .../exports (a job)."""
    trial = container.trials.get(trial_id)
    container.jobs.check_export_fits(trial, layout)
    text = container.reads.export_csv(trial, layout)
    container.jobs.check_response_fits(trial_id, text)
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
    trial_id: TrialIdPath,
    principal: Coordinator,
    container: ContainerDep,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    """The safety-alert log, by participant and then arrival, paged with `cursor`."""
    container.trials.get(trial_id)
    try:
        return container.reads.alerts(trial_id, limit=limit, cursor=cursor)
    except BadCursor:
        raise bad_cursor() from None
