"""Safety alerts in the main table, with the two e-mail caps.

- alert      ``T#{trial}`` / ``AL#{participant}#{submission_id}#{rule_no}``
- e-mail cap ``T#{trial}`` / ``AC#{participant}#{instrument}#{item}`` (one e-mail a day)
- rate       ``T#{trial}`` / ``AR#{YYYY-MM-DDTHH}`` (e-mails of one trial-hour; TTL 2 days)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from typing import Any

from adapters import keys
from adapters.cursors import decode_cursor, encode_cursor
from adapters.dynamodb import ConditionFailed, DynamoTable
from domain.trial import AlertRecord, AlertRule

#: why an alert was logged without an e-mail
PARTICIPANT_RULE_24H = "participant_rule_24h"
TRIAL_HOURLY_CAP = "trial_hourly_cap"


def _alert_key(record: AlertRecord) -> dict[str, str]:
    return keys.alert(
        trial_id=record.trial_id,
        participant_id=record.participant_id,
        submission_id=record.submission_id,
        rule_no=record.rule_no,
    )


def _cap_key(record: AlertRecord) -> dict[str, str]:
    return keys.alert_cap(
        trial_id=record.trial_id,
        participant_id=record.participant_id,
        instrument=record.rule.instrument,
        item=record.rule.item,
    )


def _alert_from_item(item: Mapping[str, Any]) -> AlertRecord:
    return AlertRecord(
        trial_id=item["trial_id"],
        participant_id=item["participant_id"],
        submission_id=item["submission_id"],
        rule_no=int(item["rule_no"]),
        rule=AlertRule(
            instrument=item["rule"]["instrument"],
            item=int(item["rule"]["item"]),
            at_least=int(item["rule"]["at_least"]),
        ),
        instrument=item["instrument"],
        timepoint=item["timepoint"],
        created_at=item["created_at"],
        sent_at=item.get("sent_at"),
        recipients=tuple(item.get("recipients", ())),
        suppressed=item.get("suppressed"),
    )


class AlertTable:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    def claim_alert(self, record: AlertRecord) -> AlertRecord | None:
        """Create the alert once. Returns None when created, else the alert stored before."""
        try:
            self.table.put(
                {
                    **_alert_key(record),
                    "entity": "alert",
                    "trial_id": record.trial_id,
                    "participant_id": record.participant_id,
                    "submission_id": record.submission_id,
                    "rule_no": record.rule_no,
                    "rule": {
                        "instrument": record.rule.instrument,
                        "item": record.rule.item,
                        "at_least": record.rule.at_least,
                    },
                    "instrument": record.instrument,
                    "timepoint": record.timepoint,
                    "created_at": record.created_at,
                },
                condition="attribute_not_exists(pk)",
                return_existing=True,
            )
        except ConditionFailed as exc:
            return _alert_from_item(exc.existing) if exc.existing else record
        return None

    def _update_existing(
        self, record: AlertRecord, *, update: str, values: Mapping[str, Any]
    ) -> None:
        """Never re-creates an alert that erasure removed meanwhile."""
        with contextlib.suppress(ConditionFailed):
            self.table.update(
                _alert_key(record), update=update, condition="attribute_exists(pk)", values=values
            )

    def mark_alert_sent(
        self, record: AlertRecord, *, sent_at: str, recipients: Iterable[str]
    ) -> None:
        self._update_existing(
            record,
            update="SET sent_at = :at, recipients = :to",
            values={":at": sent_at, ":to": list(recipients)},
        )

    def mark_alert_suppressed(self, record: AlertRecord, *, reason: str) -> None:
        self._update_existing(record, update="SET suppressed = :why", values={":why": reason})

    def claim_alert_email(
        self,
        record: AlertRecord,
        *,
        now: str,
        not_since: str,
        hour: str,
        hourly_cap: int,
        expires_at: int,
    ) -> str | None:
        """Claim the right to e-mail this alert; None when claimed, else why not.

        Two conditional writes: the participant-and-rule item takes one e-mail per window
        (no e-mail for this rule and participant since `not_since`, unless the holder is this
        very submission: a retry), then the trial's hourly counter takes at most
        `hourly_cap` (a retry of a claim already counted passes). Both are idempotent for
        the same submission, so a redelivered record claims what it claimed before.
        """
        claim = f"{record.submission_id}#{record.rule_no}"
        try:
            self.table.update(
                _cap_key(record),
                update="SET last_sent_at = :now, submission_id = :sid, entity = :entity, "
                "participant_id = :pid",
                condition=(
                    "attribute_not_exists(pk) OR last_sent_at < :since OR submission_id = :sid"
                ),
                values={
                    ":now": now,
                    ":sid": record.submission_id,
                    ":since": not_since,
                    ":entity": "alert_cap",
                    ":pid": record.participant_id,
                },
            )
        except ConditionFailed:
            return PARTICIPANT_RULE_24H
        rate = keys.alert_rate(trial_id=record.trial_id, hour=hour)
        try:
            self.table.update(
                rate,
                update="ADD sent :one, claims :claim SET expires_at = :ttl",
                condition="(attribute_not_exists(sent) OR sent < :cap) AND "
                "NOT contains(claims, :claim_s)",
                values={
                    ":one": 1,
                    ":claim": {claim},
                    ":claim_s": claim,
                    ":cap": hourly_cap,
                    ":ttl": expires_at,
                },
            )
        except ConditionFailed:
            state = self.table.get(rate) or {}
            if claim in set(state.get("claims", ())):
                return None  # counted by an earlier delivery of this record
            # no e-mail goes out: give the participant-and-rule window back
            with contextlib.suppress(ConditionFailed):
                self.table.delete(
                    _cap_key(record),
                    condition="submission_id = :sid",
                    values={":sid": record.submission_id},
                )
            return TRIAL_HOURLY_CAP
        return None

    def delete_alert_caps(self, trial_id: str, participant_id: str) -> int:
        """Remove the participant's e-mail cap items (they name the participant)."""
        items = self.table.query_all(
            pk=keys.trial_pk(trial_id), prefix=keys.alert_caps_of(participant_id), consistent=True
        )
        for item in items:
            self.table.delete({"pk": item["pk"], "sk": item["sk"]})
        return len(items)

    def list_alerts(
        self, trial_id: str, participant_id: str | None = None, *, consistent: bool = False
    ) -> list[AlertRecord]:
        items = self.table.query_all(
            pk=keys.trial_pk(trial_id), prefix=keys.alerts_of(participant_id), consistent=consistent
        )
        return [_alert_from_item(i) for i in items]

    def alert_page(
        self, trial_id: str, *, limit: int, cursor: str | None
    ) -> tuple[list[AlertRecord], str | None]:
        """One page of the trial's alerts in key order: by participant, then in the order
        their submissions arrived (submission ids are ULIDs), then by rule.

        Raises the domain's BadCursor for a cursor this listing did not issue.
        """
        pk, prefix = keys.trial_pk(trial_id), keys.alerts_of(None)
        after = decode_cursor(cursor, pk=pk, sk_prefix=prefix) if cursor else None
        items, last = self.table.query_page(
            pk=pk, prefix=prefix, limit=limit, start_key=after, consistent=True
        )
        return [_alert_from_item(i) for i in items], encode_cursor(last) if last else None

    def delete_alert(self, record: AlertRecord) -> None:
        self.table.delete(_alert_key(record))
