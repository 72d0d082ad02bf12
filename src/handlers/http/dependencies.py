"""What a route can ask for: the container, the caller's key and role, identifiers, paging.

Authentication and authorisation are dependencies (`Admin`, `Coordinator`, `TrialReader`,
`Submitter`): they run before the body is validated, so a request without a valid key learns
nothing about the body's shape. When FastAPI refuses a body before any dependency has run (it
is not JSON, or the schema refuses it), `authorize_unparsed` runs the route's guard first, so
the key is still checked before the refusal says anything about the body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, cast

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from domain.errors import Problem as DomainProblem
from domain.trial import Role
from handlers.wiring import Container
from services.audit import Actor
from services.auth import Principal, require
from services.errors import ValidationFailed

__all__ = [
    "Admin",
    "ContainerDep",
    "Coordinator",
    "Cursor",
    "Limit",
    "ParticipantIdPath",
    "Submitter",
    "TrialIdPath",
    "TrialReader",
    "actor",
    "authorize_unparsed",
    "bad_cursor",
    "get_container",
]

TRIAL_ID = r"^[a-z0-9][a-z0-9-]{2,62}$"
PARTICIPANT_ID = r"^[A-Za-z0-9_-]{1,64}$"

TrialIdPath = Annotated[str, Path(pattern=TRIAL_ID)]
ParticipantIdPath = Annotated[str, Path(pattern=PARTICIPANT_ID)]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=2000)]

bearer = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer <key>`")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def get_container(request: Request) -> Container:
    """The composition root's container the app was created with (`create_app`)."""
    return cast(Container, request.app.state.container)


ContainerDep = Annotated[Container, Depends(get_container)]

Guard = Callable[[Request, HTTPAuthorizationCredentials | None, Container], Principal]
_GUARDS: set[Guard] = set()


def allow(*roles: Role) -> Guard:
    """A dependency that lets through a valid key of one of `roles` (its trial's, if scoped)."""

    def guard(request: Request, credentials: Credentials, container: ContainerDep) -> Principal:
        principal = container.keys.authenticate(credentials.credentials if credentials else None)
        container.key_limits.take(principal.key_id)
        require(principal, trial_id=request.path_params.get("trial_id", ""), roles=roles)
        request.state.principal = principal
        return principal

    guard.__name__ = guard.__qualname__ = "allow_" + "_or_".join(roles)
    _GUARDS.add(guard)
    return guard


Admin = Annotated[Principal, Depends(allow("admin"))]
Coordinator = Annotated[Principal, Depends(allow("coordinator"))]
TrialReader = Annotated[Principal, Depends(allow("coordinator", "admin"))]
Submitter = Annotated[Principal, Depends(allow("submitter", "coordinator"))]


async def authorize_unparsed(request: Request) -> None:
    """Run the route's guard when FastAPI refused the request before its dependencies ran."""
    if getattr(request.state, "principal", None) is not None:
        return
    dependant = getattr(request.scope.get("route"), "dependant", None)
    for dependency in getattr(dependant, "dependencies", ()):
        if dependency.call in _GUARDS:
            credentials = await bearer(request)
            await run_in_threadpool(dependency.call, request, credentials, get_container(request))


def actor(principal: Principal) -> Actor:
    """Who the audit trail names for a request: the key id and its role."""
    return Actor(key_id=principal.key_id, role=principal.role)


def bad_cursor() -> ValidationFailed:
    """The refusal of a `cursor` that no page of this listing handed out."""
    return ValidationFailed(
        [DomainProblem(("query", "cursor"), "not a cursor of this listing", "bad_cursor")]
    )
