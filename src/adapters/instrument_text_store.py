"""A trial's licensed item wording: ``T#{trial_id}`` / ``IT#{instrument_id}#{version}``.

One item per trial and instrument version: ``texts`` (the upload as
`domain.forms.instrument_texts_to_dict` gives it, which parses back with
`domain.forms.parse_instrument_texts`), ``updated_at`` and ``key_id`` (who uploaded it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adapters import keys
from adapters.dynamodb import DynamoTable

__all__ = ["InstrumentTextTable"]


class InstrumentTextTable:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def put_texts(
        self,
        *,
        trial_id: str,
        instrument_id: str,
        version: str,
        texts: Mapping[str, Any],
        updated_at: str,
        key_id: str,
    ) -> bool:
        """Store (or replace) the wording; True when there was none before."""
        old = self.table.update(
            keys.instrument_texts(trial_id=trial_id, instrument_id=instrument_id, version=version),
            update="SET entity = :entity, trial_id = :trial, instrument = :instrument, "
            "instrument_version = :version, texts = :texts, updated_at = :at, key_id = :key",
            values={
                ":entity": "instrument_texts",
                ":trial": trial_id,
                ":instrument": instrument_id,
                ":version": version,
                ":texts": dict(texts),
                ":at": updated_at,
                ":key": key_id,
            },
            return_old=True,
        )
        return not old

    def get_texts(
        self, *, trial_id: str, instrument_id: str, version: str
    ) -> dict[str, Any] | None:
        """The stored wording (an upload body), or None when the trial has none."""
        item = self.table.get(
            keys.instrument_texts(trial_id=trial_id, instrument_id=instrument_id, version=version)
        )
        return dict(item["texts"]) if item else None
