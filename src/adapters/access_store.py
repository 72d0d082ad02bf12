"""A participant's own access: one-time enrolment codes and participant tokens.

Two kinds of item in the main table:

- the code, ``CODE#{sha256(code)}`` / ``CODE``: trial_id, participant_id, enrolled_at,
  created_at, code_expires_at, and ``expires_at`` (TTL, epoch seconds) so that DynamoDB
  deletes it once it can no longer be used. It only says where the code leads;
- the participant item (``T#{trial_id}`` / ``P#{participant_id}``) holds what is valid:
  ``code_hash`` and ``code_expires_at`` of the one unused code, and ``tokens``, a map from
  the hash of each participant token to ``{token_id, issued_at, expires_at}``.

So every decision is one conditional write on the participant item: a code is exchanged
once (the update that adds the token also removes ``code_hash``, on the condition that it
is still this code's), a new code replaces the unused one (``code_hash`` is overwritten),
revocation empties ``tokens``, and erasing the participant deletes their tokens with them.
A token names its trial and participant itself (`services.access`), so checking it is one
GetItem of the participant item. Neither the code nor the token is ever stored.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from adapters import keys
from adapters.dynamodb import ConditionFailed, DynamoTable
from adapters.participant_store import participant_from_item
from domain.trial import AccessCode, Participant, ParticipantToken

__all__ = ["AccessTable"]


def _epoch(moment: str) -> int:
    return int(datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp())


def _token_from_item(item: Mapping[str, Any]) -> ParticipantToken:
    return ParticipantToken(
        token_id=str(item["token_id"]),
        issued_at=str(item["issued_at"]),
        expires_at=str(item["expires_at"]),
    )


class AccessTable:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def issue_code(self, code_hash: str, code: AccessCode) -> bool:
        """Store a new code and make it the participant's one unused code.

        False (nothing stored) when the participant is not enrolled or is withdrawn. The
        code it replaces is refused from the moment the participant item names the new one;
        its item is deleted afterwards.
        """
        self.table.put(
            {
                **keys.access_code(code_hash),
                "entity": "access_code",
                "trial_id": code.trial_id,
                "participant_id": code.participant_id,
                "enrolled_at": code.enrolled_at,
                "created_at": code.created_at,
                "code_expires_at": code.expires_at,
                "expires_at": _epoch(code.expires_at),
            },
            condition="attribute_not_exists(pk)",
        )
        try:
            old = self.table.update(
                keys.participant(trial_id=code.trial_id, participant_id=code.participant_id),
                update="SET code_hash = :hash, code_expires_at = :expires, "
                "tokens = if_not_exists(tokens, :none)",
                condition="attribute_exists(pk) AND #status <> :withdrawn",
                names={"#status": "status"},
                values={
                    ":hash": code_hash,
                    ":expires": code.expires_at,
                    ":none": {},
                    ":withdrawn": "withdrawn",
                },
                return_old=True,
            )
        except ConditionFailed:
            self.table.delete(keys.access_code(code_hash))
            return False
        replaced = (old or {}).get("code_hash")
        if replaced and replaced != code_hash:
            self.table.delete(keys.access_code(str(replaced)))
        return True

    def code(self, code_hash: str) -> AccessCode | None:
        """Where a code leads, if such a code was issued and its item is still there."""
        item = self.table.get(keys.access_code(code_hash))
        if not item:
            return None
        return AccessCode(
            trial_id=str(item["trial_id"]),
            participant_id=str(item["participant_id"]),
            enrolled_at=str(item["enrolled_at"]),
            created_at=str(item["created_at"]),
            expires_at=str(item["code_expires_at"]),
        )

    def exchange_code(
        self,
        code_hash: str,
        code: AccessCode,
        *,
        token_hash: str,
        token: ParticipantToken,
        now: str,
    ) -> tuple[Participant, dict[str, ParticipantToken]] | None:
        """Use the code once: add the token and drop the code in one conditional update.

        Returns the participant and all their tokens (by hash) after it; None when the code
        is no longer the participant's unused one (used, replaced, revoked), has expired, or
        the participant is withdrawn or erased: of two concurrent exchanges of one code
        exactly one gets a participant back.
        """
        try:
            item = self.table.update(
                keys.participant(trial_id=code.trial_id, participant_id=code.participant_id),
                update="SET tokens.#token = :token REMOVE code_hash, code_expires_at",
                condition="code_hash = :hash AND code_expires_at > :now AND #status <> :withdrawn",
                names={"#token": token_hash, "#status": "status"},
                values={
                    ":token": {
                        "token_id": token.token_id,
                        "issued_at": token.issued_at,
                        "expires_at": token.expires_at,
                    },
                    ":hash": code_hash,
                    ":now": now,
                    ":withdrawn": "withdrawn",
                },
                return_new=True,
            )
        except ConditionFailed:
            return None
        self.table.delete(keys.access_code(code_hash))
        if not item:
            return None
        tokens = {h: _token_from_item(t) for h, t in (item.get("tokens") or {}).items()}
        return participant_from_item(item), tokens

    def drop_tokens(self, trial_id: str, participant_id: str, token_hashes: Iterable[str]) -> None:
        """Remove some of the participant's tokens (expired ones, the oldest beyond a cap)."""
        names = {f"#t{n}": h for n, h in enumerate(token_hashes)}
        if not names:
            return
        with contextlib.suppress(ConditionFailed):
            self.table.update(
                keys.participant(trial_id=trial_id, participant_id=participant_id),
                update="REMOVE " + ", ".join(f"tokens.{name}" for name in names),
                condition="attribute_exists(pk)",
                names=names,
            )

    def token_holder(
        self, *, trial_id: str, participant_id: str, token_hash: str
    ) -> tuple[Participant, ParticipantToken] | None:
        """The participant holding this token and the token, or None (one GetItem)."""
        item = self.table.get(keys.participant(trial_id=trial_id, participant_id=participant_id))
        if not item:
            return None
        token = (item.get("tokens") or {}).get(token_hash)
        if not token:
            return None
        return participant_from_item(item), _token_from_item(token)

    def revoke_token(self, *, trial_id: str, participant_id: str, token_hash: str) -> bool:
        """End one token; False when it was not (or no longer) the participant's."""
        try:
            self.table.update(
                keys.participant(trial_id=trial_id, participant_id=participant_id),
                update="REMOVE tokens.#token",
                condition="attribute_exists(tokens.#token)",
                names={"#token": token_hash},
            )
        except ConditionFailed:
            return False
        return True

    def revoke_access(self, trial_id: str, participant_id: str, *, with_code: bool) -> int | None:
        """End every token of the participant (and, `with_code`, the unused code).

        Returns how many tokens were ended, or None when the participant is not enrolled.
        """
        update = "SET tokens = :none" + (" REMOVE code_hash, code_expires_at" if with_code else "")
        try:
            old = self.table.update(
                keys.participant(trial_id=trial_id, participant_id=participant_id),
                update=update,
                condition="attribute_exists(pk)",
                values={":none": {}},
                return_old=True,
            )
        except ConditionFailed:
            return None
        old = old or {}
        if with_code and old.get("code_hash"):
            self.table.delete(keys.access_code(str(old["code_hash"])))
        return len(old.get("tokens") or {})
