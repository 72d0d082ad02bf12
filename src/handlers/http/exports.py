"""Exports as jobs (coordinator): ask for one, follow it, list a trial's exports."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from domain.errors import BadCursor
from domain.jobs import Job
from handlers import schemas
from handlers.api_errors import UnicodeCheckedRoute, problems
from handlers.http.dependencies import (
    ContainerDep,
    Coordinator,
    Cursor,
    Limit,
    TrialIdPath,
    actor,
    bad_cursor,
)
from services.jobs import Download

router = APIRouter(
    tags=["exports"],
    route_class=UnicodeCheckedRoute,
    responses=problems(401, 403, 404, 422, 429, described={404: "no such trial"}),
)
JobIdPath = Annotated[str, Path(pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$", description="a ULID")]


def job_files(downloads: list[Download]) -> dict[str, object]:
    """The download fields of a job answer (empty unless the job is ready)."""
    files = [
        schemas.JobFileOut(
            name=d.file.name,
            content_type=d.file.content_type,
            size=d.file.size,
            url=d.url,
            url_expires_at=d.expires_at,
        )
        for d in downloads
    ]
    return {
        "download_url": files[0].url if files else None,
        "download_url_expires_at": files[0].url_expires_at if files else None,
        "files": files,
    }


def export_out(job: Job, downloads: list[Download]) -> schemas.ExportJob:
    assert job.format is not None
    assert job.layout is not None
    return schemas.ExportJob(
        export_id=job.job_id,
        trial_id=job.trial_id,
        status=job.status,
        format=job.format,
        layout=job.layout,
        deidentified=job.deidentified,
        created_at=job.created_at,
        updated_at=job.updated_at,
        deadline_at=job.deadline_at,
        finished_at=job.finished_at,
        error=job.error,
        **job_files(downloads),  # type: ignore[arg-type]
    )


def export_location(job: Job) -> str:
    return f"/v1/trials/{job.trial_id}/exports/{job.job_id}"


@router.post(
    "/v1/trials/{trial_id}/exports",
    status_code=202,
    response_model=schemas.ExportJob,
    responses={
        202: {
            "description": "the export job, running; `Location` is where to follow it",
            "headers": {"Location": {"description": "the job's URL", "schema": {"type": "string"}}},
        },
        **problems(413),
    },
)
def request_export(
    trial_id: TrialIdPath,
    body: schemas.ExportIn,
    principal: Coordinator,
    response: Response,
    container: ContainerDep,
) -> schemas.ExportJob:
    """Ask for an export as a job: 202 with `Location`; GET it until it is ready."""
    trial = container.trials.get(trial_id)
    job = container.jobs.request_export(
        trial,
        export_format=body.format,
        layout=body.layout,
        deidentified=body.deidentified,
        actor=actor(principal),
    )
    response.headers["Location"] = export_location(job)
    return export_out(job, [])


@router.get("/v1/trials/{trial_id}/exports", response_model=schemas.ExportJobPage)
def list_exports(
    trial_id: TrialIdPath,
    principal: Coordinator,
    container: ContainerDep,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> schemas.ExportJobPage:
    """This trial's export jobs, newest first, paged with `cursor`."""
    container.trials.get(trial_id)
    try:
        jobs, next_cursor = container.jobs.page(trial_id, "export", limit=limit, cursor=cursor)
    except BadCursor:
        raise bad_cursor() from None
    return schemas.ExportJobPage(
        trial_id=trial_id, exports=[export_out(j, []) for j in jobs], next_cursor=next_cursor
    )


@router.get(
    "/v1/trials/{trial_id}/exports/{export_id}",
    response_model=schemas.ExportJob,
    responses=problems(404, described={404: "no such trial, or no such export in it"}),
)
def get_export(
    trial_id: TrialIdPath, export_id: JobIdPath, principal: Coordinator, container: ContainerDep
) -> schemas.ExportJob:
    """One export job; when ready, a presigned download URL (15 minutes) for each file."""
    container.trials.get(trial_id)
    job = container.jobs.get(trial_id, "export", export_id)
    return export_out(job, container.jobs.downloads(job, actor(principal)))
