"""What a route can ask for: the container, the caller's key and role, identifiers, paging.

Authentication and authorisation are dependencies (`Admin`, `Coordinator`, `TrialReader`,
`Submitter`, `FrontEnd`, `QuestionnaireReader`, `Me`): they run before the body is validated,
so a request without a valid key learns nothing about the body's shape. The bearer
credential is an API key or a participant token (``cmtp_...``, `services.access`); a token
passes only the guards that name the ``participant`` role (`FrontEnd`, `Me`) and is 403
everywhere else. `ExchangeThrottle` guards the one route without a key, the code exchange.
When FastAPI refuses a body before any dependency has run (it is not JSON, or the schema
refuses it), `authorize_unparsed` runs the route's guard first, so
the key is still checked before the refusal says anything about the body.

Every dependency here is a coroutine, run on the event loop: FastAPI would run a plain
function in a worker thread, and a hop to the thread pool and back costs more than what
these do. A guard answers a key (or token) this instance checked moments ago from memory
(`KeyService.cached_principal`, `AccessService.cached_holder`); only a key it must read or
mark used goes to a worker thread, since boto3 blocks.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, cast

from fastapi import Depends, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from domain.errors import Problem as DomainProblem
from handlers.wiring import Container
from services.access import TokenHolder
from services.audit import Actor
from services.auth import CallerRole, Principal, require
from services.errors import Forbidden, NotAuthenticated, ValidationFailed
from services.rate_limit import RateLimited

__all__ = [
    "Admin",
    "ContainerDep",
    "Coordinator",
    "Cursor",
    "ExchangeThrottle",
    "FrontEnd",
    "Limit",
    "Me",
    "ParticipantIdPath",
    "QuestionnaireReader",
    "Submitter",
    "TrialIdPath",
    "TrialReader",
    "actor",
    "authorize_unparsed",
    "bad_cursor",
    "container_dependency",
    "get_container",
]

TRIAL_ID = r"^[a-z0-9][a-z0-9-]{2,62}$"
PARTICIPANT_ID = r"^[A-Za-z0-9_-]{1,64}$"

TrialIdPath = Annotated[str, Path(pattern=TRIAL_ID)]
ParticipantIdPath = Annotated[str, Path(pattern=PARTICIPANT_ID)]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=2000)]

bearer = HTTPBearer(
    auto_error=False,
    description="API key or participant token: `Authorization: Bearer <key or token>`",
)
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def get_container(request: Request) -> Container:
    """The composition root's container the app was created with (`create_app`)."""
    return cast(Container, request.app.state.container)


async def container_dependency(request: Request) -> Container:
    """`get_container` as a dependency: a coroutine, so FastAPI runs it on the event loop."""
    return get_container(request)


ContainerDep = Annotated[Container, Depends(container_dependency)]

Guard = Callable[[Request, HTTPAuthorizationCredentials | None, Container], Awaitable[Any]]
_GUARDS: set[Guard] = set()


async def authenticate(
    request: Request, credentials: Credentials, container: Container, *, wanted: str
) -> Principal:
    """The caller of a request (a key or a participant token), within its rate limit.

    A token's participant, as read with it, is kept on the request (`token_holder`). Only a
    credential the cache cannot answer is checked in a worker thread (it reads the store).
    A request without a credential is told which the route takes (`wanted`).
    """
    presented = credentials.credentials if credentials else None
    if not presented:
        raise NotAuthenticated(f"send 'Authorization: Bearer <{wanted}>'")
    if presented and container.access.is_token(presented):
        holder = container.access.cached_holder(presented)
        if holder is None:
            holder = await run_in_threadpool(container.access.authenticate, presented)
        request.state.token_holder = holder
        principal = holder.principal
    else:
        cached = container.keys.cached_principal(presented)
        if cached is None:
            cached = await run_in_threadpool(container.keys.authenticate, presented)
        principal = cached
    container.key_limits.take(principal.key_id)
    return principal


def allow(*roles: CallerRole) -> Guard:
    """A dependency that lets through a valid key of one of `roles` (its trial's, if scoped)."""

    wanted = " or ".join(
        name
        for name, fits in (
            ("API key", set(roles) - {"participant"}),
            ("participant token", "participant" in roles),
        )
        if fits
    )

    async def guard(
        request: Request, credentials: Credentials, container: ContainerDep
    ) -> Principal:
        principal = await authenticate(request, credentials, container, wanted=wanted)
        require(principal, trial_id=request.path_params.get("trial_id", ""), roles=roles)
        request.state.principal = principal
        return principal

    guard.__name__ = guard.__qualname__ = "allow_" + "_or_".join(roles)
    _GUARDS.add(guard)
    return guard


async def participant_only(
    request: Request, credentials: Credentials, container: ContainerDep
) -> TokenHolder:
    """A dependency that lets through a valid participant token only (the /v1/me routes)."""
    principal = await authenticate(request, credentials, container, wanted="participant token")
    if principal.role != "participant":
        raise Forbidden(
            f"a {principal.credential} may not do this: /v1/me is a participant's own, "
            "reached with a participant token"
        )
    request.state.principal = principal
    holder: TokenHolder = request.state.token_holder
    return holder


_GUARDS.add(participant_only)


async def exchange_throttle(request: Request, container: ContainerDep) -> None:
    """The code exchange's limits against guessing: per source address, then per instance.

    The source is the connection's address: on AWS the HTTP API's ``sourceIp`` (Mangum
    passes it as the ASGI client), never a header a client can set.
    """
    if getattr(request.state, "exchange_throttled", False):
        return  # counted once per request, even when the refusal of its body runs it again
    request.state.exchange_throttled = True
    source = request.client.host if request.client else "unknown"
    container.exchange_by_source.take(source)
    try:
        container.exchange_all.take("*")
    except RateLimited as exc:
        raise RateLimited(
            f"too many code exchanges at once on this server; retry in {exc.retry_after} s",
            retry_after=exc.retry_after,
        ) from None


_THROTTLES = {exchange_throttle}

Admin = Annotated[Principal, Depends(allow("admin"))]
Coordinator = Annotated[Principal, Depends(allow("coordinator"))]
TrialReader = Annotated[Principal, Depends(allow("coordinator", "admin"))]
Submitter = Annotated[Principal, Depends(allow("submitter", "coordinator"))]
#: Who submits: a front end's key, a coordinator, or a participant token of the trial.
FrontEnd = Annotated[Principal, Depends(allow("participant", "submitter", "coordinator"))]
QuestionnaireReader = Annotated[Principal, Depends(allow("coordinator", "submitter"))]
Me = Annotated[TokenHolder, Depends(participant_only)]
ExchangeThrottle = Depends(exchange_throttle)


async def authorize_unparsed(request: Request) -> None:
    """Run the route's guard when FastAPI refused the request before its dependencies ran."""
    if getattr(request.state, "principal", None) is not None:
        return
    dependant = getattr(request.scope.get("route"), "dependant", None)
    for dependency in getattr(dependant, "dependencies", ()):
        if dependency.call in _GUARDS:
            credentials = await bearer(request)
            await dependency.call(request, credentials, get_container(request))
        elif dependency.call in _THROTTLES:
            await dependency.call(request, get_container(request))


def actor(principal: Principal) -> Actor:
    """Who the audit trail names for a request: the key (or token) id and its role."""
    return Actor(key_id=principal.key_id, role=principal.role)


def bad_cursor() -> ValidationFailed:
    """The refusal of a `cursor` that no page of this listing handed out."""
    return ValidationFailed(
        [DomainProblem(("query", "cursor"), "not a cursor of this listing", "bad_cursor")]
    )
