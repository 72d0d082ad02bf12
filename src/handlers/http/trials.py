"""Trials and their API keys (admin; a trial's coordinators may read it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response
from fastapi.exceptions import RequestValidationError

from domain.errors import BadCursor
from domain.errors import Problem as DomainProblem
from domain.schedule import effective_timing
from domain.trial import ApiKey, Trial
from handlers import schemas
from handlers.api_errors import UnicodeCheckedRoute, problems, request_validation_locs
from handlers.http.dependencies import (
    Admin,
    ContainerDep,
    Cursor,
    Limit,
    TrialIdPath,
    TrialReader,
    actor,
    bad_cursor,
)
from handlers.wiring import Container
from services.trials import TRIAL_FIELDS, TrialInput

router = APIRouter(
    tags=["trials"],
    route_class=UnicodeCheckedRoute,
    responses=problems(401, 403, 422, 429),
)
_NO_TRIAL = problems(404, described={404: "no such trial"})
_WITH_BODY = problems(413)

KeyIdPath = Annotated[str, Path(pattern=r"^k_[0-9a-f]{16}$")]


def trial_out(trial: Trial) -> schemas.TrialOut:
    return schemas.TrialOut(
        trial_id=trial.trial_id,
        title=trial.title,
        coordinator_emails=list(trial.coordinator_emails),
        protocol=schemas.ProtocolOut(
            timepoints=list(trial.protocol.timepoints),
            schedule={k: list(v) for k, v in trial.protocol.schedule.items()},
            comparison=schemas.ComparisonOut(
                pre=trial.protocol.comparison.pre, post=trial.protocol.comparison.post
            ),
            timing={
                timepoint: schemas.TimingOut(
                    offset_days=timing.offset_days, window_days=timing.window_days
                )
                for timepoint, timing in effective_timing(
                    timepoints=trial.protocol.timepoints, overrides=trial.protocol.timing
                ).items()
            },
        ),
        alert_rules=[
            schemas.AlertRuleOut(instrument=r.instrument, item=r.item, at_least=r.at_least)
            for r in trial.alert_rules
        ],
        created_at=trial.created_at,
        updated_at=trial.updated_at,
    )


def key_info(key: ApiKey) -> schemas.ApiKeyInfo:
    return schemas.ApiKeyInfo(
        key_id=key.key_id,
        role=key.role,
        label=key.label,
        created_at=key.created_at,
        last_used=key.last_used,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
    )


def trial_input(body: schemas.TrialIn | schemas.TrialPatch) -> TrialInput:
    return TrialInput(
        title=body.title,
        coordinator_emails=body.coordinator_emails,
        protocol=body.protocol.model_dump() if body.protocol else None,
        alert_rules=(
            [r.model_dump() for r in body.alert_rules] if body.alert_rules is not None else None
        ),
    )


@router.put(
    "/v1/trials/{trial_id}",
    response_model=schemas.TrialOut,
    responses={
        200: {"description": "replaced"},
        201: {"model": schemas.TrialOut, "description": "created"},
        **_WITH_BODY,
    },
)
def put_trial(
    trial_id: TrialIdPath,
    body: schemas.TrialIn,
    principal: Admin,
    response: Response,
    container: ContainerDep,
) -> schemas.TrialOut:
    """Create a trial (201), or replace it whole (200; every field required)."""
    trial, created = container.trials.put(trial_id, trial_input(body))
    container.audit.record(
        actor(principal),
        trial_id=trial_id,
        action="trial.create" if created else "trial.update",
        targets={"trial_id": trial_id},
    )
    response.status_code = 201 if created else 200
    return trial_out(trial)


@router.patch(
    "/v1/trials/{trial_id}",
    response_model=schemas.TrialOut,
    responses={**_NO_TRIAL, **_WITH_BODY},
)
def patch_trial(
    trial_id: TrialIdPath, body: schemas.TrialPatch, principal: Admin, container: ContainerDep
) -> schemas.TrialOut:
    """Change only the fields sent; the trial must still be valid as a whole."""
    trial = container.trials.patch(trial_id, trial_input(body))
    container.audit.record(
        actor(principal),
        trial_id=trial_id,
        action="trial.update",
        targets={"trial_id": trial_id, "fields": ",".join(sorted(body.model_fields_set))},
    )
    return trial_out(trial)


@router.get("/v1/trials/{trial_id}", response_model=schemas.TrialOut, responses=_NO_TRIAL)
def get_trial(
    trial_id: TrialIdPath, principal: TrialReader, container: ContainerDep
) -> schemas.TrialOut:
    """The trial and its protocol."""
    return trial_out(container.trials.get(trial_id))


@router.post(
    "/v1/trials/{trial_id}/api-keys",
    status_code=201,
    response_model=schemas.ApiKeyOut,
    responses={**_NO_TRIAL, **_WITH_BODY},
)
def create_api_key(
    trial_id: TrialIdPath, body: schemas.ApiKeyIn, principal: Admin, container: ContainerDep
) -> schemas.ApiKeyOut:
    """Create a coordinator or submitter key for this trial (shown once)."""
    container.trials.get(trial_id)
    created = container.keys.create(
        role=body.role, trial_id=trial_id, label=body.label, expires_at=body.expires_at
    )
    container.audit.record(
        actor(principal),
        trial_id=trial_id,
        action="api_key.create",
        targets={"key_id": created.key_id, "role": body.role},
    )
    return schemas.ApiKeyOut(
        api_key=created.api_key,
        key_id=created.key_id,
        role=created.role,
        trial_id=trial_id,
        expires_at=created.expires_at,
    )


@router.get(
    "/v1/trials/{trial_id}/api-keys", response_model=schemas.ApiKeyPage, responses=_NO_TRIAL
)
def list_api_keys(
    trial_id: TrialIdPath,
    principal: Admin,
    container: ContainerDep,
    limit: Limit = 100,
    cursor: Cursor = None,
) -> schemas.ApiKeyPage:
    """This trial's keys (never the keys themselves), paged with `cursor`."""
    container.trials.get(trial_id)
    try:
        found, next_cursor = container.keys.list(trial_id, limit=limit, cursor=cursor)
    except BadCursor:
        raise bad_cursor() from None
    return schemas.ApiKeyPage(
        trial_id=trial_id, api_keys=[key_info(k) for k in found], next_cursor=next_cursor
    )


@router.delete(
    "/v1/trials/{trial_id}/api-keys/{key_id}",
    response_model=schemas.ApiKeyInfo,
    responses=problems(404, described={404: "no such trial, or no such key in it"}),
)
def revoke_api_key(
    trial_id: TrialIdPath, key_id: KeyIdPath, principal: Admin, container: ContainerDep
) -> schemas.ApiKeyInfo:
    """Revoke a key: refused on every warm function within 5 seconds."""
    container.trials.get(trial_id)
    revoked = container.keys.revoke(trial_id, key_id)
    container.audit.record(
        actor(principal), trial_id=trial_id, action="api_key.revoke", targets={"key_id": key_id}
    )
    return key_info(revoked)


def content_problems(
    request: Request, exc: RequestValidationError, container: Container
) -> list[DomainProblem]:
    """What the service finds wrong in the fields of a trial body the schema accepted.

    A PUT or PATCH whose schema refused some fields is still checked by the service on the
    others (its timing, its alert rules, the fields a replacement must send), so one answer
    names every bad field.
    """
    route = request.scope.get("route")
    endpoint = getattr(route, "endpoint", None)
    body = exc.body
    locs = request_validation_locs(exc)
    if endpoint not in (put_trial, patch_trial) or not isinstance(body, dict):
        return []
    if any(loc[:1] == ["path"] or loc == ["body"] for loc in locs):
        return []
    refused = {str(loc[1]) for loc in locs if loc[:1] == ["body"] and len(loc) > 1}
    readable = {name: body.get(name) for name in TRIAL_FIELDS if name not in refused}
    return container.trials.problems(
        request.path_params["trial_id"],
        TrialInput(**readable),
        skip=refused,
        replacing=endpoint is put_trial,
    )
