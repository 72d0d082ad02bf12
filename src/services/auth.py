"""API keys: creation (shown once, stored as a hash) and authorisation by role and trial.

A request's caller is a `Principal`: an API key's (admin, coordinator, submitter) or a
participant token's (`services.access`), which acts for one participant of one trial.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from domain.errors import Problem
from domain.trial import ALL_TRIALS, ApiKey, Role
from services.clock import Clock, iso
from services.errors import Forbidden, NotAuthenticated, NotFound, ValidationFailed
from services.ports import KeyStore

KEY_PREFIX = "cmt_"


#: The longest a warm function may keep accepting a revoked key (API.md: within 5 seconds).
MAX_KEY_CACHE_SECONDS = 5.0


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


#: Who can call: a key's role, or a participant token ("participant").
CallerRole = Literal["admin", "coordinator", "submitter", "participant"]


@dataclass(frozen=True)
class Principal:
    """The caller of a request: a key, or a participant token (`participant_id` set).

    `key_id` is the public id of the key or token: what the audit trail, the stored
    submission and the rate limit name.
    """

    key_id: str
    role: CallerRole
    trial_id: str  # "*" for admin
    participant_id: str | None = None  # a participant token's participant

    def may_act_on(self, trial_id: str, roles: Collection[CallerRole]) -> bool:
        if self.role == "admin":
            return "admin" in roles
        return self.role in roles and self.trial_id == trial_id

    @property
    def credential(self) -> str:
        """What the caller presented, in words: "participant token" or "<role> key"."""
        return "participant token" if self.role == "participant" else f"{self.role} key"


@dataclass(frozen=True)
class CreatedKey:
    api_key: str
    key_id: str
    role: Role
    trial_id: str
    expires_at: str | None = None


class KeyService:
    """Creates, lists and revokes keys, and resolves a presented key to its principal.

    A resolved key is cached for at most `cache_seconds` (capped at 5 s), so a revoked or
    expired key is refused on every warm function within 5 seconds. Unknown keys are never
    cached: a new key works at once.
    """

    def __init__(
        self,
        store: KeyStore,
        clock: Clock,
        cache_seconds: float = MAX_KEY_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.clock = clock
        self.cache_seconds = min(cache_seconds, MAX_KEY_CACHE_SECONDS)
        self.monotonic = monotonic
        self._cache: dict[str, tuple[float, ApiKey]] = {}

    def create(
        self, *, role: Role, trial_id: str, label: str, expires_at: datetime | None = None
    ) -> CreatedKey:
        if expires_at is not None and expires_at <= self.clock():
            raise ValidationFailed(
                [Problem(("body", "expires_at"), "must be in the future", "in_past")]
            )
        # 256 random bits; the key id is public and appears in the audit trail
        secret = secrets.token_urlsafe(32)
        key_id = "k_" + secrets.token_hex(8)
        api_key = f"{KEY_PREFIX}{secret}"
        self.store.put_api_key(
            hash_key(api_key),
            ApiKey(
                key_id=key_id,
                role=role,
                trial_id=ALL_TRIALS if role == "admin" else trial_id,
                label=label,
                created_at=iso(self.clock()),
                expires_at=iso(expires_at) if expires_at else None,
            ),
        )
        return CreatedKey(
            api_key=api_key,
            key_id=key_id,
            role=role,
            trial_id=trial_id,
            expires_at=iso(expires_at) if expires_at else None,
        )

    def install(self, *, api_key: str, role: Role, trial_id: str, label: str) -> str:
        """Store a caller-chosen key (CMT_BOOTSTRAP_ADMIN_KEY); idempotent."""
        key_hash = hash_key(api_key)
        existing = self.store.get_api_key(key_hash)
        if existing:
            return existing.key_id
        key_id = "k_" + hashlib.sha256(b"bootstrap" + key_hash.encode()).hexdigest()[:16]
        self.store.put_api_key(
            key_hash,
            ApiKey(
                key_id=key_id,
                role=role,
                trial_id=ALL_TRIALS if role == "admin" else trial_id,
                label=label,
                created_at=iso(self.clock()),
            ),
        )
        return key_id

    def authenticate(self, api_key: str | None) -> Principal:
        if not api_key:
            raise NotAuthenticated("send 'Authorization: Bearer <api key>'")
        key_hash = hash_key(api_key)
        now = self.monotonic()
        cached = self._cache.get(key_hash)
        if cached and now - cached[0] < self.cache_seconds:
            stored: ApiKey | None = cached[1]
        else:
            stored = self.store.get_api_key(key_hash)
            if stored is None:
                self._cache.pop(key_hash, None)
                raise NotAuthenticated("unknown API key")
            self._cache[key_hash] = (now, stored)
        assert stored is not None
        moment = iso(self.clock())
        if stored.revoked_at is not None and stored.revoked_at <= moment:
            raise NotAuthenticated("this API key was revoked")
        if stored.expires_at is not None and stored.expires_at <= moment:
            raise NotAuthenticated("this API key has expired; ask for a new one")
        day = moment[:10]
        if stored.last_used != day:
            self.store.touch_api_key(key_hash, day=day)
            self._cache[key_hash] = (self._cache[key_hash][0], replace(stored, last_used=day))
        return Principal(key_id=stored.key_id, role=stored.role, trial_id=stored.trial_id)

    def list(
        self, trial_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[ApiKey], str | None]:
        return self.store.list_api_keys(trial_id, limit=limit, cursor=cursor)

    def revoke(self, trial_id: str, key_id: str) -> ApiKey:
        revoked = self.store.revoke_api_key(trial_id, key_id, at=iso(self.clock()))
        self._cache.clear()  # this instance refuses it at once; the others within 5 s
        if revoked is None:
            raise NotFound(f"no API key {key_id} in {trial_id}")
        return revoked


def require(principal: Principal, *, trial_id: str, roles: Collection[CallerRole]) -> None:
    if not principal.may_act_on(trial_id, roles):
        raise Forbidden(
            f"a {principal.credential} may not do this"
            + (
                ""
                if principal.role == "admin" or principal.trial_id == trial_id
                else " on this trial"
            )
        )
