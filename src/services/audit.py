"""The append-only audit trail: who (by key id) did what to which ids, and when."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from domain.trial import AuditEvent
from services.clock import Clock, iso, new_ulid
from services.ports import AuditStore


@dataclass(frozen=True, kw_only=True)
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
            self.event(
                actor, trial_id=trial_id, action=action, targets=targets, at=at, event_id=event_id
            )
        )

    def event(
        self,
        actor: Actor,
        *,
        trial_id: str,
        action: str,
        targets: Mapping[str, str] | None = None,
        at: str | None = None,
        event_id: str | None = None,
    ) -> AuditEvent:
        return AuditEvent(
            trial_id=trial_id,
            at=at or iso(self.clock()),
            event_id=event_id or new_ulid(),
            key_id=actor.key_id,
            role=actor.role,
            action=action,
            targets=dict(targets or {}),
        )

    def record_many(self, events: Sequence[AuditEvent]) -> None:
        """Events fully determined by their ids (a retry writes them again, unchanged)."""
        if events:
            self.store.append_many(events)

    def page(
        self, trial_id: str, *, start: str, end: str, limit: int, cursor: str | None
    ) -> tuple[list[AuditEvent], str | None]:
        """One page of the trial's events in [start, end]; BadCursor for a bad cursor."""
        return self.store.audit_page(trial_id, start=start, end=end, limit=limit, cursor=cursor)

    def events(self, trial_id: str, *, start: str, end: str) -> list[AuditEvent]:
        """Every event of the trial in [start, end], page after page."""
        events: list[AuditEvent] = []
        cursor: str | None = None
        while True:
            page, cursor = self.page(trial_id, start=start, end=end, limit=500, cursor=cursor)
            events.extend(page)
            if cursor is None:
                return events
