"""API keys: creation (shown once, stored as a hash) and authorisation by role and trial."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from services.clock import Clock, iso
from services.errors import Forbidden, NotAuthenticated
from services.records import ApiKey, Role

KEY_PREFIX = "cmt_"
ALL_TRIALS = "*"


class KeyStore(Protocol):
    def put_api_key(self, key_hash: str, key: ApiKey) -> None: ...

    def get_api_key(self, key_hash: str) -> ApiKey | None: ...


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: Role
    trial_id: str  # "*" for admin

    def may_act_on(self, trial_id: str, roles: Collection[Role]) -> bool:
        if self.role == "admin":
            return "admin" in roles
        return self.role in roles and self.trial_id == trial_id


@dataclass(frozen=True)
class CreatedKey:
    api_key: str
    key_id: str
    role: Role
    trial_id: str


class KeyService:
    """Creates keys and resolves a presented key to its principal (cached briefly)."""

    def __init__(self, store: KeyStore, clock: Clock, cache_seconds: float = 60.0) -> None:
        self.store = store
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def create(self, *, role: Role, trial_id: str, label: str) -> CreatedKey:
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
            ),
        )
        return CreatedKey(api_key=api_key, key_id=key_id, role=role, trial_id=trial_id)

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
        now = time.monotonic()
        cached = self._cache.get(key_hash)
        if cached and now - cached[0] < self.cache_seconds:
            principal = cached[1]
        else:
            stored = self.store.get_api_key(key_hash)
            principal = (
                Principal(key_id=stored.key_id, role=stored.role, trial_id=stored.trial_id)
                if stored
                else None
            )
            if principal is not None:  # unknown keys are not cached: a new key works at once
                self._cache[key_hash] = (now, principal)
        if principal is None:
            raise NotAuthenticated("unknown API key")
        return principal


def require(principal: Principal, *, trial_id: str, roles: Collection[Role]) -> None:
    if not principal.may_act_on(trial_id, roles):
        raise Forbidden(
            f"a {principal.role} key may not do this"
            + (
                ""
                if principal.role == "admin" or principal.trial_id == trial_id
                else " on this trial"
            )
        )
