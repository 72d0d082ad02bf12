"""Participant access: enrolment codes (coordinator), their exchange (no key), revocation.

A coordinator gives a participant a one-time code; the participant's front end exchanges it
for a participant token (`services.access`). The exchange takes no key, so it is throttled
against guessing (`ExchangeThrottle`: per source address and per function instance, and on
AWS by the route's own API Gateway throttle), and every wrong code gets the same 401.
"""

from __future__ import annotations

from fastapi import APIRouter

from handlers import schemas
from handlers.api_errors import UnicodeCheckedRoute, problems
from handlers.http.dependencies import (
    ContainerDep,
    Coordinator,
    ExchangeThrottle,
    ParticipantIdPath,
    TrialIdPath,
    actor,
)
from services.audit import Actor

router = APIRouter(tags=["participant access"], route_class=UnicodeCheckedRoute)
_NO_PARTICIPANT = problems(404, described={404: "no such trial, or the participant is not in it"})


@router.post(
    "/v1/trials/{trial_id}/participants/{participant_id}/access-codes",
    status_code=201,
    response_model=schemas.AccessCodeOut,
    responses={
        **problems(401, 403, 422, 429, described={422: "a bad path, or a withdrawn participant"}),
        **_NO_PARTICIPANT,
    },
)
def create_access_code(
    trial_id: TrialIdPath,
    participant_id: ParticipantIdPath,
    principal: Coordinator,
    container: ContainerDep,
) -> schemas.AccessCodeOut:
    """A one-time code for the participant (shown once, 14 days); it replaces an unused one."""
    trial = container.trials.get(trial_id)
    participant = container.participants.code_for(trial, participant_id)
    issued = container.access.issue_code(participant)
    container.audit.record(
        actor(principal),
        trial_id=trial_id,
        action="participant.access_code",
        targets={"participant_id": participant_id},
    )
    return schemas.AccessCodeOut(
        code=issued.code,
        trial_id=trial_id,
        participant_id=participant_id,
        expires_at=issued.expires_at,
    )


@router.post(
    "/v1/access/exchange",
    status_code=201,
    response_model=schemas.ExchangeOut,
    dependencies=[ExchangeThrottle],
    responses=problems(
        401,
        413,
        422,
        429,
        described={
            401: "the code opens nothing (mistyped, used, replaced or expired: one answer)",
            429: "too many exchanges from this address, or on this server: retry after "
            "`Retry-After` seconds",
        },
    ),
)
def exchange_access_code(body: schemas.ExchangeIn, container: ContainerDep) -> schemas.ExchangeOut:
    """Exchange a one-time code for a participant token (no key; throttled)."""
    issued = container.access.exchange(body.code)
    container.audit.record(
        Actor(key_id=issued.token_id, role="participant"),
        trial_id=issued.trial_id,
        action="participant.access_exchange",
        targets={"participant_id": issued.participant_id, "token_id": issued.token_id},
    )
    return schemas.ExchangeOut(
        participant_token=issued.participant_token,
        trial_id=issued.trial_id,
        participant_id=issued.participant_id,
        expires_at=issued.expires_at,
    )


@router.delete(
    "/v1/trials/{trial_id}/participants/{participant_id}/tokens",
    response_model=schemas.TokensRevoked,
    responses={**problems(401, 403, 422, 429), **_NO_PARTICIPANT},
)
def revoke_participant_tokens(
    trial_id: TrialIdPath,
    participant_id: ParticipantIdPath,
    principal: Coordinator,
    container: ContainerDep,
) -> schemas.TokensRevoked:
    """End every token of the participant: refused on every warm function within 5 s."""
    container.trials.get(trial_id)
    ended = container.access.revoke(trial_id, participant_id, with_code=False)
    container.audit.record(
        actor(principal),
        trial_id=trial_id,
        action="participant.tokens_revoke",
        targets={"participant_id": participant_id, "tokens": str(ended)},
    )
    return schemas.TokensRevoked(
        trial_id=trial_id, participant_id=participant_id, tokens_revoked=ended
    )
