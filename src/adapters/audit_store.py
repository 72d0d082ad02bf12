"""The audit trail in the main table: ``AUDIT#{trial_id}`` / ``{iso time}#{event id}``."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any

from adapters import keys
from adapters.cursors import decode_cursor, encode_cursor
from adapters.dynamodb import ConditionFailed, DynamoTable
from domain.trial import AuditEvent


def _item(event: AuditEvent) -> dict[str, Any]:
    return {
        "pk": keys.audit_pk(event.trial_id),
        "sk": keys.audit_sk(at=event.at, event_id=event.event_id),
        "entity": "audit",
        "trial_id": event.trial_id,
        "at": event.at,
        "event_id": event.event_id,
        "key_id": event.key_id,
        "role": event.role,
        "action": event.action,
        "targets": dict(event.targets),
    }


class AuditTable:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def append_audit(self, event: AuditEvent) -> None:
        """Append once; the sort key is deterministic, so a retried append is a no-op."""
        with contextlib.suppress(ConditionFailed):
            self.table.put(_item(event), condition="attribute_not_exists(pk)")

    def append_many(self, events: Sequence[AuditEvent]) -> None:
        """Append events whose content is determined by their key (the stream's submission
        events): a batch put, where a repeat writes the same item again."""
        self.table.batch_put([_item(e) for e in events])

    def audit_page(
        self, trial_id: str, *, start: str, end: str, limit: int, cursor: str | None
    ) -> tuple[list[AuditEvent], str | None]:
        """Events from `start` to `end` (ISO times, inclusive), oldest first, one page.

        Raises the domain's BadCursor for a cursor this listing did not issue.
        """
        pk = keys.audit_pk(trial_id)
        bounds = (start, end + "\uffff")
        after = decode_cursor(cursor, pk=pk, sk_range=bounds) if cursor else None
        items, last = self.table.query_page(
            pk=pk, between=bounds, limit=limit, start_key=after, consistent=True
        )
        events = [
            AuditEvent(
                trial_id=i["trial_id"],
                at=i["at"],
                event_id=i["event_id"],
                key_id=i["key_id"],
                role=i["role"],
                action=i["action"],
                targets=i.get("targets", {}),
            )
            for i in items
        ]
        return events, encode_cursor(last) if last else None
