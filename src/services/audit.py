"""The append-only audit trail: who (by key id) did what to which ids, and when."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from services.clock import Clock, iso, new_ulid
from services.paging import decode_cursor, encode_cursor
from services.records import AuditEvent


class AuditStore(Protocol):
    def append_audit(self, event: AuditEvent) -> None: ...

    def audit_page(
        self, trial_id: str, *, start: str, end: str, limit: int, after: Mapping[str, Any] | None
    ) -> tuple[list[AuditEvent], dict[str, Any] | None]: ...


@dataclass(frozen=True)
class Actor:
    key_id: str
    role: str


class AuditLog:
    def __init__(self, store: AuditStore, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def record(
        self,
        actor: Actor,
        *,
        trial_id: str,
        action: str,
        targets: Mapping[str, str] | None = None,
        at: str | None = None,
        event_id: str | None = None,
    ) -> None:
        self.store.append_audit(
            AuditEvent(
                trial_id=trial_id,
                at=at or iso(self.clock()),
                event_id=event_id or new_ulid(),
                key_id=actor.key_id,
                role=actor.role,
                action=action,
                targets=dict(targets or {}),
            )
        )

    def page(
        self, trial_id: str, *, start: str, end: str, limit: int, cursor: str | None
    ) -> tuple[list[AuditEvent], str | None]:
        """One page of the trial's audit events in [start, end]; BadCursor for a bad cursor."""
        after = (
            decode_cursor(cursor, pk=f"AUDIT#{trial_id}", sk_range=(start, end + "\uffff"))
            if cursor
            else None
        )
        events, last = self.store.audit_page(
            trial_id, start=start, end=end, limit=limit, after=after
        )
        return events, encode_cursor(last) if last else None
