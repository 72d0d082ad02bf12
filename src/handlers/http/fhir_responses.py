"""FHIR answers: ``application/fhir+json``, and every refusal of a FHIR route an OperationOutcome.

The FHIR routes (paths under ``/v1/trials/{trial_id}/fhir/``) refuse exactly as the native
routes do, through the same services and the same problem+json handlers;
`FhirOutcomeMiddleware` then rewrites each such refusal into a FHIR R4 OperationOutcome with
the same status and headers (``Retry-After``, ``WWW-Authenticate``, ``Allow``), so that the two
always mean the same thing: a problem's ``errors`` become one issue each, whose
``expression`` names the QuestionnaireResponse element (`domain.fhir.operation_outcome`:
an item by its ``linkId``), and a refusal without field errors (401, 403, 404, 409, 413,
429, 500) one issue whose code follows the status, carrying the problem's type in
``details.coding`` (e.g. ``duplicate-submission``) and its ``detail`` as ``details.text``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import Problem
from domain.fhir import PROBLEM_TYPE_SYSTEM, operation_outcome, operation_outcome_for_status
from handlers.api_errors import PROBLEM_DESCRIPTIONS, PROBLEM_MEDIA_TYPE

__all__ = [
    "FHIR_MEDIA_TYPE",
    "FHIR_PATH",
    "FhirJSONResponse",
    "FhirOutcomeMiddleware",
    "fhir_refusals",
    "outcome_from_problem",
]

FHIR_MEDIA_TYPE = "application/fhir+json"
#: The paths whose refusals are OperationOutcomes.
FHIR_PATH = re.compile(r"/v1/trials/[^/]*/fhir(?:/.*)?")
_OUTCOME_SCHEMA = "OperationOutcome"  # components/schemas: handlers.schemas.OperationOutcome
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`", "schema": {"type": "string"}}},
    405: {"Allow": {"description": "the methods the path takes", "schema": {"type": "string"}}},
    429: {
        "Retry-After": {
            "description": "seconds to wait before the next request",
            "schema": {"type": "integer", "minimum": 1},
        }
    },
}
_DESCRIPTIONS = {415: "the body is neither application/fhir+json nor application/json"}


class FhirJSONResponse(JSONResponse):
    """A FHIR resource: ``application/fhir+json``, ASCII-escaped (always encodable)."""

    media_type = FHIR_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def fhir_refusals(
    *statuses: int, described: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for a FHIR route's refusals: OperationOutcome under fhir+json."""
    said = {**_DESCRIPTIONS, **(described or {})}
    return {
        status: {
            "description": said.get(status) or PROBLEM_DESCRIPTIONS[status],
            "content": {
                FHIR_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{_OUTCOME_SCHEMA}"}}
            },
            **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
        }
        for status in statuses
    }


def _problems(errors: Sequence[Any]) -> list[Problem]:
    found = []
    for error in errors:
        if not isinstance(error, Mapping):
            continue
        loc = error.get("loc")
        found.append(
            Problem(
                tuple(part for part in loc if isinstance(part, str | int))
                if isinstance(loc, list)
                else (),
                str(error.get("msg") or "invalid"),
                str(error.get("type") or "invalid"),
            )
        )
    return found


def outcome_from_problem(status: int, problem: Mapping[str, Any]) -> dict[str, Any]:
    """The OperationOutcome that says what a problem+json refusal says."""
    errors = problem.get("errors")
    problems = _problems(errors) if isinstance(errors, list) else []
    if problems:
        return operation_outcome(problems)
    outcome = operation_outcome_for_status(
        status, str(problem.get("detail") or problem.get("title") or "refused")
    )
    problem_type = str(problem.get("type") or "").rpartition(":")[2]
    if problem_type:
        (issue,) = outcome["issue"]
        issue["details"] = {
            "coding": [{"system": PROBLEM_TYPE_SYSTEM, "code": problem_type}],
            **issue["details"],
        }
    return outcome


class FhirOutcomeMiddleware:
    """Rewrites the problem+json refusals of the FHIR routes as OperationOutcomes."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or FHIR_PATH.fullmatch(scope.get("path", "")) is None:
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        chunks: list[bytes] = []

        async def send_outcome(message: Message) -> None:
            nonlocal held
            if message["type"] == "http.response.start":
                headers = dict(message.get("headers") or [])
                media = headers.get(b"content-type", b"").split(b";")[0].strip().decode("latin-1")
                if media == PROBLEM_MEDIA_TYPE:
                    held = message
                    return
                await send(message)
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            await self._send_outcome(held, b"".join(chunks), send)

        await self.app(scope, receive, send_outcome)

    @staticmethod
    async def _send_outcome(start: Message, body: bytes, send: Send) -> None:
        status = int(start["status"])
        try:
            problem = json.loads(body)
        except ValueError:
            problem = {}
        outcome = outcome_from_problem(status, problem if isinstance(problem, dict) else {})
        encoded = json.dumps(outcome, ensure_ascii=True, separators=(",", ":")).encode("ascii")
        headers = [
            (name, value)
            for name, value in start.get("headers") or []
            if name.lower() not in (b"content-type", b"content-length")
        ]
        headers += [
            (b"content-type", FHIR_MEDIA_TYPE.encode()),
            (b"content-length", str(len(encoded)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": encoded, "more_body": False})
