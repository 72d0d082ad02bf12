"""Application errors: what a use case can refuse, independent of HTTP.

    ServiceError
    ├── NotAuthenticated        missing or unknown API key            (401)
    ├── Forbidden               key outside its role or trial         (403)
    ├── NotFound                trial, participant, report ...        (404)
    ├── Conflict                duplicate, idempotency mismatch ...   (409)
    └── ValidationFailed        every bad field, as domain Problems   (422)

The API maps each class to its status once (handlers/api_errors.py); the domain's
InvalidSubmission is turned into ValidationFailed by the services.
"""

from __future__ import annotations

from collections.abc import Sequence

from domain.errors import Problem


class ServiceError(Exception):
    title = "Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotAuthenticated(ServiceError):
    title = "Not authenticated"


class Forbidden(ServiceError):
    title = "Forbidden"


class NotFound(ServiceError):
    title = "Not found"


class Conflict(ServiceError):
    title = "Conflict"

    def __init__(self, detail: str, *, code: str = "conflict") -> None:
        super().__init__(detail)
        self.code = code


class ValidationFailed(ServiceError):
    title = "Validation failed"

    def __init__(self, problems: Sequence[Problem], detail: str | None = None) -> None:
        self.problems = tuple(problems)
        super().__init__(detail or f"{len(self.problems)} invalid field(s)")
