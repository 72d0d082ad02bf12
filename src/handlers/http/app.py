"""The FastAPI application of the HTTP contract (../shared/spec/API.md): one router per resource.

`create_app` takes the composition root's container, so tests, the local stack and the Lambda
entry point (`handlers.api`) build the same app; routes reach the container through the
`ContainerDep` dependency (`app.state.container`). Routes parse, call one service, map the
result; every refusal is problem+json (`handlers.api_errors`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from domain.errors import Problem
from handlers import schemas
from handlers.api_errors import (
    PROBLEM_SCHEMA,
    BodyLimitMiddleware,
    PrivateResponseMiddleware,
    UnicodeCheckedRoute,
    http_error_response,
    install_error_handlers,
    problem_response,
    problems,
    request_validation_response,
    service_error_response,
)
from handlers.http import (
    access,
    audit,
    exports,
    fhir,
    forms,
    instruments,
    me,
    meta,
    participants,
    results,
    submissions,
    trials,
)
from handlers.http.dependencies import authorize_unparsed, get_container
from handlers.http.docs import install_offline_docs
from handlers.http.fhir_responses import FhirOutcomeMiddleware
from handlers.http.request_log import RequestLogMiddleware
from handlers.settings import SOFTWARE_VERSION
from handlers.wiring import Container
from services.errors import ServiceError

__all__ = ["create_app"]

ROUTERS = (
    meta,
    instruments,
    trials,
    participants,
    access,
    me,
    forms,
    submissions,
    fhir,
    results,
    exports,
    audit,
)
#: the service's checks of the fields a route's schema accepted, by the route's endpoint
CONTENT_CHECKS: dict[Any, Callable[[Request, RequestValidationError, Container], list[Problem]]] = {
    submissions.create_submission: submissions.content_problems,
    trials.put_trial: trials.content_problems,
    trials.patch_trial: trials.content_problems,
}
PARSE_ERROR = "There was an error parsing the body"  # FastAPI's 400 for unparsable bodies
DESCRIPTION = (
    "Collection and analysis API for Compassionate Mind Training trials. Every error is "
    "application/problem+json (RFC 9457, schema `Problem`), except on the FHIR route, whose "
    "refusals are FHIR OperationOutcomes (application/fhir+json); a request body over 256 KiB "
    "is refused with 413 on any route. Callers authenticate with an API key or, for a "
    "participant's own front end, a participant token (POST /v1/access/exchange). Browsers "
    "on an allowed origin (deployment configuration) may call every route: preflights allow "
    "GET, POST, PUT, PATCH, DELETE and the headers Authorization, Content-Type, "
    "Idempotency-Key and Prefer, cached 600 s; pages may read Location, Retry-After, "
    "WWW-Authenticate and Idempotent-Replayed; other origins get no CORS headers."
)
# schemas the routes refer to by name but FastAPI does not collect (no route has them as a model)
_CSV_EXPORT_SCHEMA = {
    "title": "CsvExport",
    "type": "string",
    "contentMediaType": "text/csv",
    "description": "UTF-8 CSV (RFC 4180) with a header row; columns as the codebook lists",
}


def operation_id(route: APIRoute) -> str:
    """The operation id is the route's name: its function's (`get_participant_scores`)."""
    return route.name


class ProblemDocumentedAPI(FastAPI):
    """FastAPI whose OpenAPI document holds the schemas the problem responses refer to."""

    def openapi(self) -> dict[str, Any]:
        if self.openapi_schema is None:
            document = super().openapi()
            _, defined = models_json_schema(
                [
                    (schemas.Problem, "serialization"),
                    (schemas.QuestionnaireResponse, "validation"),
                    (schemas.OperationOutcome, "serialization"),
                ],
                ref_template="#/components/schemas/{model}",
            )
            components = document.setdefault("components", {}).setdefault("schemas", {})
            components.update(defined["$defs"])
            components["CsvExport"] = _CSV_EXPORT_SCHEMA
            assert PROBLEM_SCHEMA in components
        return self.openapi_schema or {}


def create_app(container: Container) -> FastAPI:
    app = ProblemDocumentedAPI(
        title="cmt-collect",
        version=SOFTWARE_VERSION,
        description=DESCRIPTION,
        generate_unique_id_function=operation_id,
        responses=problems(405, 500),
        docs_url=None,  # /docs and /redoc without a CDN: install_offline_docs
        redoc_url=None,
    )
    app.state.container = container
    app.router.route_class = UnicodeCheckedRoute
    install_error_handlers(app)
    app.add_exception_handler(RequestValidationError, refuse_invalid_request)
    app.add_exception_handler(StarletteHTTPException, refuse_unparsable_body)
    app.add_middleware(BodyLimitMiddleware)
    app.add_middleware(RequestLogMiddleware)
    app.add_middleware(FhirOutcomeMiddleware)  # around the 413s and 500s of the FHIR route
    app.add_middleware(PrivateResponseMiddleware)  # outermost: the 500s carry it too
    for module in ROUTERS:
        app.include_router(module.router)
    install_offline_docs(app)
    return app


async def refuse_invalid_request(request: Request, exc: Exception) -> Response:
    """Every bad field in one answer: the schema's, then the service's on the rest."""
    assert isinstance(exc, RequestValidationError)
    check = CONTENT_CHECKS.get(getattr(request.scope.get("route"), "endpoint", None))
    try:
        await authorize_unparsed(request)
        extra = (
            await run_in_threadpool(check, request, exc, get_container(request)) if check else []
        )
    except ServiceError as refused:
        return await service_error_response(request, refused)
    return request_validation_response(request, exc, extra)


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
