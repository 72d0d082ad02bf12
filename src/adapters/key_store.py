"""API keys in the main table: one item per key, ``KEY#{sha256(key)}`` / ``KEY``.

Found by the hash of the key (authentication) and, through the sparse index
``keys_by_trial`` (key_owner = ``KEYS#{trial_id}``, key_id), by their trial (listing,
revocation). The key itself is never stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from adapters import keys
from adapters.cursors import decode_cursor, encode_cursor
from adapters.dynamodb import ConditionFailed, DynamoTable
from domain.errors import AlreadyExists
from domain.trial import ApiKey


def _api_key_from_item(item: Mapping[str, Any]) -> ApiKey:
    return ApiKey(
        key_id=item["key_id"],
        role=item["role"],
        trial_id=item["trial_id"],
        label=item.get("label", ""),
        created_at=item["created_at"],
        expires_at=item.get("key_expires_at"),
        revoked_at=item.get("revoked_at"),
        last_used=item.get("last_used"),
    )


class KeyTable:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def put_api_key(self, key_hash: str, key: ApiKey) -> None:
        item: dict[str, Any] = {
            **keys.api_key(key_hash),
            "entity": "api_key",
            "key_owner": keys.api_key_owner(key.trial_id),
            "key_id": key.key_id,
            "role": key.role,
            "trial_id": key.trial_id,
            "label": key.label,
            "created_at": key.created_at,
        }
        if key.expires_at:
            item["key_expires_at"] = key.expires_at
        try:
            self.table.put(item, condition="attribute_not_exists(pk)")
        except ConditionFailed:
            raise AlreadyExists(f"API key {key.key_id}") from None

    def get_api_key(self, key_hash: str) -> ApiKey | None:
        item = self.table.get(keys.api_key(key_hash))
        return _api_key_from_item(item) if item else None

    def touch_api_key(self, key_hash: str, *, day: str) -> None:
        """Record the day a key was last accepted (at most one write per key and day)."""
        with contextlib.suppress(ConditionFailed):
            self.table.update(
                keys.api_key(key_hash),
                update="SET last_used = :day",
                condition="attribute_exists(pk) AND (attribute_not_exists(last_used) "
                "OR last_used <> :day)",
                values={":day": day},
            )

    def list_api_keys(
        self, trial_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[ApiKey], str | None]:
        owner = keys.api_key_owner(trial_id)
        after = None
        if cursor:
            after = decode_cursor(cursor, pk=owner, pk_name="key_owner", sk_name="key_id")
            after = {**after, **self._listed(owner, after["key_id"])}
        items, last = self.table.query_page(
            pk=owner,
            index=keys.KEYS_BY_TRIAL_INDEX,
            pk_name="key_owner",
            sk_name="key_id",
            limit=limit,
            start_key=after,
        )
        next_cursor = (
            encode_cursor({"key_owner": owner, "key_id": str(last["key_id"])}) if last else None
        )
        return [_api_key_from_item(i) for i in items], next_cursor

    def revoke_api_key(self, trial_id: str, key_id: str, *, at: str) -> ApiKey | None:
        """Mark a key of this trial revoked (once: the first revocation time stays)."""
        found = self._listed(keys.api_key_owner(trial_id), key_id)
        if not found:
            return None
        item = self.table.update(
            {"pk": found["pk"], "sk": found["sk"]},
            update="SET revoked_at = if_not_exists(revoked_at, :at)",
            condition="attribute_exists(pk)",
            values={":at": at},
            return_new=True,
        )
        return _api_key_from_item(item) if item else None

    def _listed(self, owner: str, key_id: str) -> dict[str, str]:
        """The table key (and index key) of a listed API key, or {} when there is none."""
        items, _ = self.table.query_page(
            pk=owner,
            index=keys.KEYS_BY_TRIAL_INDEX,
            pk_name="key_owner",
            sk_name="key_id",
            between=(key_id, key_id),
        )
        if not items:
            return {}
        return {"pk": items[0]["pk"], "sk": items[0]["sk"], "key_owner": owner, "key_id": key_id}
