"""Every refusal as RFC 9457 problem+json, mapped once by exception class.

Covers our service errors, FastAPI's own validation errors and 404/405, oversized bodies,
and unexpected failures (500 with a request id, never internals). `problems` declares them in
the OpenAPI document: the `Problem` schema under application/problem+json, the media type they
are sent with (`ProblemJSONResponse`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import Problem
from services.errors import (
    Conflict,
    Forbidden,
    NotAuthenticated,
    NotFound,
    ServiceError,
    ValidationFailed,
)
from services.jobs import TooLargeForSync
from services.rate_limit import RateLimited

PROBLEM_MEDIA_TYPE = "application/problem+json"
MAX_BODY_BYTES = 256 * 1024
PROBLEM_SCHEMA = "Problem"  # components/schemas/Problem: handlers.schemas.Problem

#: What each refusal means, as the OpenAPI document says it (a route may say more).
PROBLEM_DESCRIPTIONS: dict[int, str] = {
    401: "no key, or an unknown, revoked or expired one",
    403: "the key's role or trial does not allow this",
    404: "not found",
    405: "the path does not take this method (`Allow` lists those it takes)",
    409: "conflict",
    413: f"the body is over {MAX_BODY_BYTES // 1024} KiB",
    422: "every invalid field, named in `errors`",
    429: "too many requests from this key: retry after `Retry-After` seconds",
    500: "an unexpected failure: `detail` quotes the request id",
}
_PROBLEM_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    405: {"Allow": {"description": "the methods the path takes", "schema": {"type": "string"}}},
    429: {
        "Retry-After": {
            "description": "seconds to wait before the next request",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}

_STATUS: dict[type[ServiceError], int] = {
    NotAuthenticated: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLargeForSync: 413,
    ValidationFailed: 422,
    RateLimited: 429,
}


def problems(
    *statuses: int, described: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for refusals: the Problem schema under application/problem+json.

    `described` replaces the generic description of some statuses (what *this* route means
    by a 404 or a 409). The `Problem` schema itself is added to the document's components by
    `handlers.http.app` (FastAPI only collects schemas of `model`s, and a `model` would be
    declared under application/json).
    """
    said = dict(described or {})
    unknown = set(said) - set(statuses)
    if unknown:
        raise ValueError(f"described statuses {sorted(unknown)} are not among {statuses}")
    return {
        status: {
            "description": said.get(status, PROBLEM_DESCRIPTIONS[status]),
            "content": {
                PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{PROBLEM_SCHEMA}"}}
            },
            **({"headers": _PROBLEM_HEADERS[status]} if status in _PROBLEM_HEADERS else {}),
        }
        for status in statuses
    }


class ProblemJSONResponse(JSONResponse):
    """problem+json, ASCII-escaped: a refusal can always be encoded, whatever it quotes."""

    media_type = PROBLEM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def problem_response(
    status: int,
    *,
    code: str,
    title: str,
    detail: str,
    instance: str | None = None,
    errors: Sequence[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:cmt-collect:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors is not None:
        body["errors"] = list(errors)
    return ProblemJSONResponse(body, status_code=status, headers=headers)


def problems_to_errors(problems: Sequence[Problem]) -> list[dict[str, Any]]:
    return [{"loc": list(p.loc), "msg": p.msg, "type": p.type} for p in problems]


def _code(title: str) -> str:
    return title.lower().replace(" ", "-")


async def service_error_response(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    status = next(s for cls, s in _STATUS.items() if isinstance(exc, cls))
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if isinstance(exc, ValidationFailed):
        return problem_response(
            422,
            code="validation-failed",
            title=exc.title,
            detail=exc.detail,
            instance=request.url.path,
            errors=problems_to_errors(exc.problems),
        )
    code = exc.code if isinstance(exc, Conflict) else _code(exc.title)
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
    if isinstance(exc, TooLargeForSync):
        headers = {"Link": f'<{exc.job_route}>; rel="alternate"'}
    return problem_response(
        status,
        code=code,
        title=exc.title,
        detail=exc.detail,
        instance=request.url.path,
        headers=headers,
    )


def _clean_loc(loc: Sequence[Any]) -> list[Any]:
    # pydantic adds the validator kind to some locations ("function-after", "constrained-str")
    return [part for part in loc if not (isinstance(part, str) and "[" in part)]


def request_validation_locs(exc: RequestValidationError) -> list[list[Any]]:
    return [_clean_loc(e.get("loc", ())) for e in exc.errors()]


def request_validation_response(
    request: Request, exc: RequestValidationError, extra: Sequence[Problem] = ()
) -> JSONResponse:
    """The schema's refusals, plus `extra` problems found in the fields it did accept."""
    errors = [
        {
            "loc": _clean_loc(e.get("loc", ())),
            "msg": e.get("msg", "invalid"),
            "type": e.get("type", "invalid"),
        }
        for e in exc.errors()
    ] + problems_to_errors(extra)
    return problem_response(
        422,
        code="validation-failed",
        title="Validation failed",
        detail=f"{len(errors)} invalid field(s)",
        instance=request.url.path,
        errors=errors,
    )


async def http_error_response(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    titles = {404: "Not found", 405: "Method not allowed", 413: "Payload too large"}
    title = titles.get(exc.status_code, "Error")
    detail = (
        f"no route {request.method} {request.url.path}"
        if exc.status_code == 404 and exc.detail == "Not Found"
        else f"{request.method} is not allowed on {request.url.path}"
        if exc.status_code == 405
        else str(exc.detail)
    )
    return problem_response(
        exc.status_code,
        code=_code(title),
        title=title,
        detail=detail,
        instance=request.url.path,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _request_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return request_validation_response(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, service_error_response)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, http_error_response)


class BodyLimitMiddleware:
    """Refuse bodies over 256 KiB with 413 before anything parses them."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._refuse(scope, receive, send)
            return
        # no (or a lying) Content-Length: buffer up to the limit, then replay the body
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            code="payload-too-large",
            title="Payload too large",
            detail=f"request bodies are limited to {self.limit // 1024} KiB",
            instance=scope.get("path"),
        )
        await response(scope, receive, send)


Handler = Callable[[Request], Awaitable[Any]]


# -- text that is not Unicode ---------------------------------------------------------------
#
# JSON can spell a lone UTF-16 surrogate ("\\ud800"): a JavaScript front end does when it cuts
# a string inside an emoji. Such text cannot be stored as UTF-8, e-mailed or exported, so the
# rule is: refuse it, 422 naming every field (keys included), and never replace it silently
# (a participant's words are kept as given or not at all). The check runs before the body is
# validated, only when the raw bytes contain a surrogate escape at all.

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
LONE_SURROGATE = "text_not_unicode"
LONE_SURROGATE_MSG = (
    "contains an unpaired UTF-16 surrogate (text cut inside an emoji?): send well-formed "
    "Unicode (in JavaScript, String.prototype.toWellFormed())"
)


def _has_surrogate(text: str) -> bool:
    return any(0xD800 <= ord(ch) <= 0xDFFF for ch in text)


def lone_surrogate_locs(value: Any, loc: tuple[Any, ...] = ("body",)) -> Iterator[list[Any]]:
    """Where in a decoded JSON value a string (or an object key) holds a lone surrogate."""
    if isinstance(value, str):
        if _has_surrogate(value):
            yield list(loc)
    elif isinstance(value, dict):
        for key, item in value.items():
            where = (*loc, key.encode("utf-8", "backslashreplace").decode("ascii", "replace"))
            if _has_surrogate(key):
                yield list(where)
            else:
                yield from lone_surrogate_locs(item, (*loc, key))
    elif isinstance(value, list):
        for n, item in enumerate(value):
            yield from lone_surrogate_locs(item, (*loc, n))


class UnicodeCheckedRoute(APIRoute):
    """An API route that refuses JSON bodies holding lone surrogates (see above)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def checked(request: Request) -> Response:
            body = await request.body()
            if body and _SURROGATE_ESCAPE.search(body):
                try:
                    decoded = json.loads(body)
                except (ValueError, RecursionError):
                    decoded = None  # FastAPI's own parser refuses it next
                locs = list(lone_surrogate_locs(decoded))
                if locs:
                    raise RequestValidationError(
                        [
                            {"loc": loc, "msg": LONE_SURROGATE_MSG, "type": LONE_SURROGATE}
                            for loc in locs
                        ],
                        body=None,
                    )
            return await handler(request)

        return checked


class PrivateResponseMiddleware:
    """Every answer is private data: never cached by a browser or proxy, never sniffed.

    ``Cache-Control: no-store`` keeps scores, exports and refusals out of shared and browser
    caches; ``X-Content-Type-Options: nosniff`` stops a browser from reading a CSV or JSON
    answer as HTML or script.
    """

    HEADERS = ((b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff"))

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_private(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.HEADERS if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_private)
