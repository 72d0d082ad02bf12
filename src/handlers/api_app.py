"""The FastAPI application of the HTTP contract (../shared/spec/API.md).

Routes parse, call one service, map the result. Authentication and authorisation run as
dependencies, before the body is validated, so a request without a valid key learns nothing
about the body's shape. `create_app` takes the composition root's container, so tests and the
local stack build the same app against moto.
"""

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger
from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from domain.errors import BadCursor, UnknownInstrument, UnknownInstrumentVersion
from domain.errors import Problem as DomainProblem
from domain.instruments import CATALOGUE, instrument_to_dict
from domain.trial import ApiKey, Participant, Role, Trial
from handlers import schemas
from handlers.api_errors import (
    BodyLimitMiddleware,
    PrivateResponseMiddleware,
    UnicodeCheckedRoute,
    http_error_response,
    install_error_handlers,
    problem_response,
    request_validation_locs,
    request_validation_response,
    service_error_response,
)
from handlers.settings import SOFTWARE_VERSION
from handlers.wiring import Container
from services.audit import Actor
from services.auth import Principal, require
from services.clock import iso
from services.errors import NotFound, ServiceError, ValidationFailed
from services.submit import SubmissionInput
from services.trials import TrialInput

logger = Logger(service="cmt-collect")  # the parent: JSON to stdout

_bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")
TRIAL_ID = r"^[a-z0-9][a-z0-9-]{2,62}$"
PARTICIPANT_ID = r"^[A-Za-z0-9_-]{1,64}$"
PARSE_ERROR = "There was an error parsing the body"  # FastAPI's 400 for unparsable bodies

TrialIdPath = Annotated[str, Path(pattern=TRIAL_ID)]
ParticipantIdPath = Annotated[str, Path(pattern=PARTICIPANT_ID)]

PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": schemas.Problem, "content": {"application/problem+json": {}}}
    for status in (401, 403, 404, 409, 413, 422, 429)
}


class RequestLogMiddleware:
    """One structured log line per request (never bodies, keys or responses); 500 on crash."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status_holder = {"status": 500, "sent": False}

        async def send_wrapper(message: Any) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["sent"] = True
            await send(message)

        # API Gateway's request id (what a client can quote), else Lambda's, else a header
        gateway = (scope.get("aws.event") or {}).get("requestContext") or {}
        request_id = (
            gateway.get("requestId")
            or getattr(scope.get("aws.context"), "aws_request_id", None)
            or _header(scope, b"x-request-id")
        )
        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            logger.exception("unhandled error", extra={"request_id": request_id})
            if not status_holder["sent"]:
                response = problem_response(
                    500,
                    code="internal-error",
                    title="Internal error",
                    detail=f"the request failed; quote request id {request_id or 'n/a'}",
                )
                await response(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            logger.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "route": getattr(route, "path", None) or "unmatched",
                    "status": status_holder["status"],
                    "latency_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or []:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _trial_out(trial: Trial) -> schemas.TrialOut:
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
        ),
        alert_rules=[
            schemas.AlertRuleOut(instrument=r.instrument, item=r.item, at_least=r.at_least)
            for r in trial.alert_rules
        ],
        created_at=trial.created_at,
        updated_at=trial.updated_at,
    )


def bad_cursor() -> ValidationFailed:
    return ValidationFailed(
        [DomainProblem(("query", "cursor"), "not a cursor of this listing", "bad_cursor")]
    )


def _key_info(key: ApiKey) -> schemas.ApiKeyInfo:
    return schemas.ApiKeyInfo(
        key_id=key.key_id,
        role=key.role,
        label=key.label,
        created_at=key.created_at,
        last_used=key.last_used,
        expires_at=key.expires_at,
        revoked_at=key.revoked_at,
    )


def _participant_out(p: Participant) -> schemas.ParticipantOut:
    return schemas.ParticipantOut(
        trial_id=p.trial_id,
        participant_id=p.participant_id,
        status=p.status,
        reason=p.reason,
        enrolled_at=p.enrolled_at,
        status_changed_at=p.status_changed_at,
    )


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


def create_app(container: Container) -> FastAPI:
    app = FastAPI(
        title="cmt-collect",
        version=SOFTWARE_VERSION,
        description=(
            "Collection and analysis API for Compassionate Mind Training trials. "
            "Every error is application/problem+json (RFC 9457)."
        ),
        responses=PROBLEM_RESPONSES,
    )
    app.router.route_class = UnicodeCheckedRoute
    install_error_handlers(app)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestLogMiddleware)
    app.add_middleware(PrivateResponseMiddleware)  # outermost: the 500s carry it too
    guards: set[Callable[..., Principal]] = set()

    def allow(*roles: Role) -> Callable[..., Principal]:
        def dependency(
            request: Request,
            credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        ) -> Principal:
            principal = container.keys.authenticate(
                credentials.credentials if credentials else None
            )
            container.key_limits.take(principal.key_id)
            trial_id = request.path_params.get("trial_id", "")
            require(principal, trial_id=trial_id, roles=roles)
            request.state.principal = principal
            return principal

        guards.add(dependency)
        return dependency

    async def authorize_unparsed(request: Request) -> None:
        """A body that is not JSON fails before the dependencies run: authorise it anyway."""
        if getattr(request.state, "principal", None) is not None:
            return
        dependant = getattr(request.scope.get("route"), "dependant", None)
        for dependency in getattr(dependant, "dependencies", ()):
            if dependency.call in guards:
                credentials = await _bearer(request)
                await run_in_threadpool(dependency.call, request, credentials)

    def content_problems(request: Request, exc: RequestValidationError) -> list[DomainProblem]:
        """What the service finds wrong in the fields of a submission the schema accepted."""
        route = request.scope.get("route")
        body = exc.body
        locs = request_validation_locs(exc)
        if getattr(route, "endpoint", None) is not submit or not isinstance(body, dict):
            return []
        if any(loc[:1] == ["path"] or loc == ["body"] for loc in locs):
            return []
        refused = {str(loc[1]) for loc in locs if loc[:1] == ["body"] and len(loc) > 1}
        try:
            trial = container.trials.get_cached(request.path_params["trial_id"])
        except NotFound:
            return []
        data = _readable_submission(body, refused)
        return container.submit.problems(trial=trial, data=data, skip=refused)

    async def refuse_invalid_request(request: Request, exc: Exception) -> Response:
        """Every bad field in one answer: the schema's, then the service's on the rest."""
        assert isinstance(exc, RequestValidationError)
        try:
            await authorize_unparsed(request)
            extra = await run_in_threadpool(content_problems, request, exc)
        except ServiceError as refused:
            return await service_error_response(request, refused)
        return request_validation_response(request, exc, extra)

    app.add_exception_handler(RequestValidationError, refuse_invalid_request)

    async def refuse_unparsable_body(request: Request, exc: Exception) -> Response:
        """A body that is not UTF-8 JSON at all (or nested too deeply to parse): key first."""
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code != 400 or not str(exc.detail).startswith(PARSE_ERROR):
            return await http_error_response(request, exc)
        try:
            await authorize_unparsed(request)
        except ServiceError as refused:
            return await service_error_response(request, refused)
        return problem_response(
            422,
            code="validation-failed",
            title="Validation failed",
            detail="the body is not UTF-8 JSON, or is nested too deeply to parse",
            instance=request.url.path,
            errors=[{"loc": ["body"], "msg": "not parsable as JSON", "type": "json_invalid"}],
        )

    app.add_exception_handler(StarletteHTTPException, refuse_unparsable_body)

    Admin = Annotated[Principal, Depends(allow("admin"))]
    Coordinator = Annotated[Principal, Depends(allow("coordinator"))]
    TrialReader = Annotated[Principal, Depends(allow("coordinator", "admin"))]
    Submitter = Annotated[Principal, Depends(allow("submitter", "coordinator"))]

    def actor(principal: Principal) -> Actor:
        return Actor(key_id=principal.key_id, role=principal.role)

    @app.get("/v1/health", response_model=schemas.Health, tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness: no authentication."""
        return {"status": "ok"}

    @app.get("/v1/instruments", tags=["instruments"])
    def list_instruments() -> dict[str, Any]:
        """The instrument catalogue (current versions)."""
        return {"instruments": [instrument_to_dict(i) for i in CATALOGUE.instruments()]}

    @app.get("/v1/instruments/{instrument_id}", tags=["instruments"])
    def get_instrument(
        instrument_id: Annotated[str, Path(max_length=32)],
        version: Annotated[str | None, Query(max_length=16)] = None,
    ) -> dict[str, Any]:
        """One instrument definition (current version unless `version` is given)."""
        try:
            return instrument_to_dict(CATALOGUE.get(instrument_id, version))
        except (UnknownInstrument, UnknownInstrumentVersion):
            raise NotFound(
                f"no instrument {instrument_id}" + (f" version {version}" if version else "")
            ) from None

    def trial_input(body: schemas.TrialIn | schemas.TrialPatch) -> TrialInput:
        return TrialInput(
            title=body.title,
            coordinator_emails=body.coordinator_emails,
            protocol=body.protocol.model_dump() if body.protocol else None,
            alert_rules=(
                [r.model_dump() for r in body.alert_rules] if body.alert_rules is not None else None
            ),
        )

    @app.put(
        "/v1/trials/{trial_id}",
        response_model=schemas.TrialOut,
        tags=["trials"],
        responses={201: {"model": schemas.TrialOut, "description": "created"}},
    )
    def put_trial(
        trial_id: TrialIdPath, body: schemas.TrialIn, principal: Admin, response: Response
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
        return _trial_out(trial)

    @app.patch("/v1/trials/{trial_id}", response_model=schemas.TrialOut, tags=["trials"])
    def patch_trial(
        trial_id: TrialIdPath, body: schemas.TrialPatch, principal: Admin
    ) -> schemas.TrialOut:
        """Change only the fields sent; the trial must still be valid as a whole."""
        trial = container.trials.patch(trial_id, trial_input(body))
        container.audit.record(
            actor(principal),
            trial_id=trial_id,
            action="trial.update",
            targets={"trial_id": trial_id, "fields": ",".join(sorted(body.model_fields_set))},
        )
        return _trial_out(trial)

    @app.get("/v1/trials/{trial_id}", response_model=schemas.TrialOut, tags=["trials"])
    def get_trial(trial_id: TrialIdPath, principal: TrialReader) -> schemas.TrialOut:
        """The trial and its protocol."""
        return _trial_out(container.trials.get(trial_id))

    @app.post(
        "/v1/trials/{trial_id}/api-keys",
        status_code=201,
        response_model=schemas.ApiKeyOut,
        tags=["trials"],
    )
    def create_api_key(
        trial_id: TrialIdPath, body: schemas.ApiKeyIn, principal: Admin
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

    @app.get("/v1/trials/{trial_id}/api-keys", response_model=schemas.ApiKeyPage, tags=["trials"])
    def list_api_keys(
        trial_id: TrialIdPath,
        principal: Admin,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        cursor: Annotated[str | None, Query(max_length=2000)] = None,
    ) -> schemas.ApiKeyPage:
        """This trial's keys (never the keys themselves), paged with `cursor`."""
        container.trials.get(trial_id)
        try:
            found, next_cursor = container.keys.list(trial_id, limit=limit, cursor=cursor)
        except BadCursor:
            raise bad_cursor() from None
        return schemas.ApiKeyPage(
            trial_id=trial_id,
            api_keys=[_key_info(k) for k in found],
            next_cursor=next_cursor,
        )

    @app.delete(
        "/v1/trials/{trial_id}/api-keys/{key_id}",
        response_model=schemas.ApiKeyInfo,
        tags=["trials"],
    )
    def revoke_api_key(
        trial_id: TrialIdPath,
        key_id: Annotated[str, Path(pattern=r"^k_[0-9a-f]{16}$")],
        principal: Admin,
    ) -> schemas.ApiKeyInfo:
        """Revoke a key: refused on every warm function within 5 seconds."""
        container.trials.get(trial_id)
        revoked = container.keys.revoke(trial_id, key_id)
        container.audit.record(
            actor(principal), trial_id=trial_id, action="api_key.revoke", targets={"key_id": key_id}
        )
        return _key_info(revoked)

    @app.post(
        "/v1/trials/{trial_id}/participants",
        status_code=201,
        response_model=schemas.ParticipantOut,
        tags=["participants"],
    )
    def enrol(
        trial_id: TrialIdPath, body: schemas.EnrolIn, principal: Coordinator
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
        return _participant_out(participant)

    @app.patch(
        "/v1/trials/{trial_id}/participants/{participant_id}",
        response_model=schemas.ParticipantOut,
        tags=["participants"],
    )
    def update_participant(
        trial_id: TrialIdPath,
        participant_id: ParticipantIdPath,
        body: schemas.StatusIn,
        principal: Coordinator,
    ) -> schemas.ParticipantOut:
        """Change a participant's status (active, withdrawn, completed)."""
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
        return _participant_out(participant)

    @app.get(
        "/v1/trials/{trial_id}/participants",
        tags=["participants"],
    )
    def list_participants(trial_id: TrialIdPath, principal: Coordinator) -> dict[str, Any]:
        """Participants with status and which scheduled submissions are done / missing."""
        trial = container.trials.get(trial_id)
        rows = []
        for item in container.participants.list(trial):
            out = _participant_out(item.participant).model_dump()
            out.update(done=list(item.done), missing=list(item.missing))
            rows.append(out)
        return {"trial_id": trial_id, "participants": rows}

    @app.delete(
        "/v1/trials/{trial_id}/participants/{participant_id}",
        response_model=schemas.Erased,
        tags=["participants"],
    )
    def erase_participant(
        trial_id: TrialIdPath, participant_id: ParticipantIdPath, principal: Coordinator
    ) -> schemas.Erased:
        """Erase a participant on request; aggregates are corrected, an audit record stays."""
        trial = container.trials.get(trial_id)
        result = container.erasure.erase(trial, participant_id, actor(principal))
        return schemas.Erased(trial_id=trial_id, participant_id=participant_id, **result)

    @app.post(
        "/v1/trials/{trial_id}/submissions",
        status_code=201,
        response_model=schemas.SubmissionAccepted,
        tags=["submissions"],
        responses={200: {"model": schemas.SubmissionAccepted, "description": "idempotent replay"}},
    )
    def submit(
        trial_id: TrialIdPath,
        body: schemas.SubmissionIn,
        principal: Submitter,
        response: Response,
        idempotency_key: Annotated[
            str | None, Header(alias="Idempotency-Key", min_length=1, max_length=128)
        ] = None,
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
            submission_id=accepted.submission_id,
            received_at=accepted.received_at,
            status="accepted",
        )

    @app.get("/v1/trials/{trial_id}/participants/{participant_id}/scores", tags=["results"])
    def participant_scores(
        trial_id: TrialIdPath, participant_id: ParticipantIdPath, principal: Coordinator
    ) -> dict[str, Any]:
        """Every scored submission of that participant, by timepoint (corrections visible)."""
        trial = container.trials.get(trial_id)
        return container.reads.participant_scores(trial, participant_id)

    @app.get("/v1/trials/{trial_id}/summary", tags=["results"])
    def summary(trial_id: TrialIdPath, principal: Coordinator) -> dict[str, Any]:
        """Live aggregates: enrolment; n/mean/sd by instrument, timepoint, subscale; adherence."""
        trial = container.trials.get(trial_id)
        return container.reads.summary(trial)

    @app.post("/v1/trials/{trial_id}/reports/pre-post", tags=["results"])
    def run_report(trial_id: TrialIdPath, principal: Coordinator) -> dict[str, Any]:
        """Compute the pre/post report now, publish it to S3 and return it."""
        trial = container.trials.get(trial_id)
        return container.reporting.publish(trial, actor(principal))

    @app.get("/v1/trials/{trial_id}/reports/pre-post", tags=["results"])
    def latest_report(trial_id: TrialIdPath, principal: Coordinator) -> dict[str, Any]:
        """The latest published pre/post report (404 if none yet)."""
        container.trials.get(trial_id)
        report = container.reporting.latest(trial_id)
        container.audit.record(
            actor(principal),
            trial_id=trial_id,
            action="report.read",
            targets={"report": "pre-post"},
        )
        return report

    @app.get(
        "/v1/trials/{trial_id}/export.csv",
        tags=["results"],
        response_class=Response,
        responses={200: {"content": {"text/csv": {}}, "description": "CSV (UTF-8, RFC 4180)"}},
    )
    def export_csv(
        trial_id: TrialIdPath,
        principal: Coordinator,
        layout: Literal["long", "wide"] = "long",
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

    @app.get("/v1/trials/{trial_id}/codebook", tags=["results"])
    def codebook(
        trial_id: TrialIdPath, principal: Coordinator, layout: Literal["long", "wide"] = "long"
    ) -> dict[str, Any]:
        """Every export column: name, label, type, range, instrument, missing-value meaning."""
        trial = container.trials.get(trial_id)
        return {
            "trial_id": trial_id,
            "layout": layout,
            "columns": container.reads.codebook(trial, layout),
        }

    @app.get("/v1/trials/{trial_id}/alerts", tags=["results"])
    def alerts(trial_id: TrialIdPath, principal: Coordinator) -> dict[str, Any]:
        """The safety-alert log."""
        container.trials.get(trial_id)
        return container.reads.alerts(trial_id)

    @app.get("/v1/trials/{trial_id}/audit", response_model=schemas.AuditPage, tags=["audit"])
    def audit(
        trial_id: TrialIdPath,
        principal: Coordinator,
        from_: Annotated[schemas.QueryTimestamp | None, Query(alias="from")] = None,
        to: Annotated[schemas.QueryTimestamp | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        cursor: Annotated[str | None, Query(max_length=2000)] = None,
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

    return app
