"""A trial's append-only audit trail (coordinator)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from domain.errors import BadCursor
from handlers import schemas
from handlers.api_errors import UnicodeCheckedRoute, problems
from handlers.http.dependencies import (
    ContainerDep,
    Coordinator,
    Cursor,
    Limit,
    TrialIdPath,
    bad_cursor,
)
from services.clock import iso

router = APIRouter(
    tags=["audit"],
    route_class=UnicodeCheckedRoute,
    responses=problems(401, 403, 404, 422, 429, described={404: "no such trial"}),
)


@router.get("/v1/trials/{trial_id}/audit", response_model=schemas.AuditPage)
def list_audit_events(
    trial_id: TrialIdPath,
    principal: Coordinator,
    container: ContainerDep,
    from_: Annotated[schemas.QueryTimestamp | None, Query(alias="from")] = None,
    to: Annotated[schemas.QueryTimestamp | None, Query()] = None,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> schemas.AuditPage:
    """The append-only audit trail of this trial, oldest first, paged with `cursor`."""
    container.trials.get(trial_id)
    start = iso(from_) if from_ else "0000"
    end = iso(to) if to else "9999"
    try:
        events, next_cursor = container.audit.page(
            trial_id, start=start, end=end, limit=limit, cursor=cursor
        )
    except BadCursor:
        raise bad_cursor() from None
    return schemas.AuditPage(
        trial_id=trial_id,
        events=[
            schemas.AuditEventOut(
                at=e.at,
                event_id=e.event_id,
                key_id=e.key_id,
                role=e.role,
                action=e.action,
                targets=dict(e.targets),
            )
            for e in events
        ],
        next_cursor=next_cursor,
    )
