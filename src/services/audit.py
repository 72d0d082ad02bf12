"""The append-only audit trail: who (by key id) did what to which ids, and when."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from services.clock import Clock, iso, new_ulid
from services.records import AuditEvent


class AuditStore(Protocol):
    def append_audit(self, event: AuditEvent) -> None: ...

    def audit_page(
        self, trial_id: str, *, start: str, end: str, limit: int, after: Mapping[str, Any] | None
    ) -> tuple[list[AuditEvent], dict[str, Any] | None]: ...


def _decode_cursor(cursor: str, trial_id: str) -> dict[str, Any]:
    """A cursor is the page's last key; refuse one from another trial (ValueError)."""
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, UnicodeError) as exc:
        raise ValueError("malformed cursor") from exc
    if (
        not isinstance(after, dict)
        or after.get("pk") != f"AUDIT#{trial_id}"
        or not isinstance(after.get("sk"), str)
    ):
        raise ValueError("cursor of another listing")
    return {"pk": after["pk"], "sk": after["sk"]}


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
        after = _decode_cursor(cursor, trial_id) if cursor else None
        events, last = self.store.audit_page(
            trial_id, start=start, end=end, limit=limit, after=after
        )
        next_cursor = base64.urlsafe_b64encode(json.dumps(last).encode()).decode() if last else None
        return events, next_cursor
