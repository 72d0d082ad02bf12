"""The main table: trials, API keys, participants, scores, aggregates, alerts, audit, idempotency.

Every method is one DynamoDB call (Query pages aside); key patterns come from `adapters.keys`
and are documented in docs/data-model.md.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from adapters import keys
from adapters.dynamodb import ConditionFailed, DynamoTable, to_decimal
from services.paging import decode_cursor, encode_cursor
from services.records import (
    AlertRecord,
    AlertRule,
    ApiKey,
    AuditEvent,
    Comparison,
    Participant,
    Protocol,
    ScoreRecord,
    SubscaleValue,
    Trial,
)

__all__ = ["ConditionFailed", "MainStore"]


def protocol_to_item(protocol: Protocol) -> dict[str, Any]:
    return {
        "timepoints": list(protocol.timepoints),
        "schedule": {k: list(v) for k, v in protocol.schedule.items()},
        "comparison": {"pre": protocol.comparison.pre, "post": protocol.comparison.post},
    }


def protocol_from_item(item: Mapping[str, Any]) -> Protocol:
    return Protocol(
        timepoints=tuple(item["timepoints"]),
        schedule={k: tuple(v) for k, v in item["schedule"].items()},
        comparison=Comparison(pre=item["comparison"]["pre"], post=item["comparison"]["post"]),
    )


def _trial_from_item(item: Mapping[str, Any]) -> Trial:
    return Trial(
        trial_id=item["trial_id"],
        title=item["title"],
        coordinator_emails=tuple(item.get("coordinator_emails", [])),
        protocol=protocol_from_item(item["protocol"]),
        alert_rules=tuple(
            AlertRule(instrument=r["instrument"], item=int(r["item"]), at_least=int(r["at_least"]))
            for r in item.get("alert_rules", [])
        ),
        created_at=item["created_at"],
        updated_at=item["updated_at"],
    )


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


def _key_of_listed(table: DynamoTable, owner: str, key_id: str) -> dict[str, str]:
    """The table key (and index key) of a listed API key, or {} when there is none."""
    items, _ = table.query_page(
        pk=owner,
        index=keys.KEYS_BY_TRIAL_INDEX,
        pk_name="key_owner",
        sk_name="key_id",
        between=(key_id, key_id),
    )
    if not items:
        return {}
    return {"pk": items[0]["pk"], "sk": items[0]["sk"], "key_owner": owner, "key_id": key_id}


def _participant_from_item(item: Mapping[str, Any]) -> Participant:
    return Participant(
        trial_id=item["trial_id"],
        participant_id=item["participant_id"],
        status=item["status"],
        enrolled_at=item["enrolled_at"],
        status_changed_at=item["status_changed_at"],
        reason=item.get("reason"),
        done=frozenset(item.get("done", ())),
    )


def subscale_value_to_item(value: SubscaleValue) -> dict[str, Any]:
    return {
        "score": value.score,
        "prorated": value.prorated,
        "answered": value.answered,
        "missing": value.missing,
        "reason": value.reason,
        "band": value.band,
    }


def _score_from_item(item: Mapping[str, Any]) -> ScoreRecord:
    return ScoreRecord(
        trial_id=item["trial_id"],
        participant_id=item["participant_id"],
        submission_id=item["submission_id"],
        instrument=item["instrument"],
        instrument_version=str(item["instrument_version"]),
        timepoint=item["timepoint"],
        seq=int(item["seq"]),
        completed_at=item["completed_at"],
        received_at=item["received_at"],
        scored_at=item["scored_at"],
        subscales={
            name: SubscaleValue(
                subscale=name,
                score=None if v.get("score") is None else float(v["score"]),
                prorated=bool(v.get("prorated")),
                answered=int(v.get("answered", 0)),
                missing=int(v.get("missing", 0)),
                reason=v.get("reason"),
                band=v.get("band"),
            )
            for name, v in item["subscales"].items()
        },
        supersedes=item.get("supersedes"),
        superseded_by=item.get("superseded_by"),
    )


class MainStore:
    def __init__(self, table: DynamoTable) -> None:
        self.table = table

    # -- trials -------------------------------------------------------------------------
    def get_trial(self, trial_id: str) -> Trial | None:
        item = self.table.get(keys.trial(trial_id))
        return _trial_from_item(item) if item else None

    def put_trial(self, trial: Trial) -> None:
        self.table.put(
            {
                **keys.trial(trial.trial_id),
                "entity": "trial",
                "trial_id": trial.trial_id,
                "title": trial.title,
                "coordinator_emails": list(trial.coordinator_emails),
                "protocol": protocol_to_item(trial.protocol),
                "alert_rules": [
                    {"instrument": r.instrument, "item": r.item, "at_least": r.at_least}
                    for r in trial.alert_rules
                ],
                "created_at": trial.created_at,
                "updated_at": trial.updated_at,
            }
        )

    def list_trials(self) -> list[Trial]:
        return [_trial_from_item(i) for i in self.table.query_all(pk=keys.TRIALS_PK)]

    # -- API keys -----------------------------------------------------------------------
    # One item per key, found by the hash of the key (authentication) and, through the
    # sparse index keys_by_trial (key_owner, key_id), by its trial (listing, revocation).
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
        self.table.put(item, condition="attribute_not_exists(pk)")

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
            after = {**after, **_key_of_listed(self.table, owner, after["key_id"])}
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
        found = _key_of_listed(self.table, keys.api_key_owner(trial_id), key_id)
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

    # -- participants -------------------------------------------------------------------
    def enrol(self, participant: Participant) -> None:
        self.table.put(
            {
                **keys.participant(participant.trial_id, participant.participant_id),
                "entity": "participant",
                "trial_id": participant.trial_id,
                "participant_id": participant.participant_id,
                "status": participant.status,
                "enrolled_at": participant.enrolled_at,
                "status_changed_at": participant.status_changed_at,
            },
            condition="attribute_not_exists(pk)",
        )

    def get_participant(self, trial_id: str, participant_id: str) -> Participant | None:
        item = self.table.get(keys.participant(trial_id, participant_id))
        return _participant_from_item(item) if item else None

    def set_participant_status(
        self, trial_id: str, participant_id: str, *, status: str, reason: str | None, at: str
    ) -> Participant:
        item = self.table.update(
            keys.participant(trial_id, participant_id),
            update="SET #status = :status, #reason = :reason, status_changed_at = :at",
            condition="attribute_exists(pk)",
            names={"#status": "status", "#reason": "reason"},
            values={":status": status, ":reason": reason, ":at": at},
            return_new=True,
        )
        assert item is not None
        return _participant_from_item(item)

    def list_participants(self, trial_id: str) -> list[Participant]:
        items = self.table.query_all(pk=keys.trial_pk(trial_id), prefix=keys.PARTICIPANT_PREFIX)
        return [_participant_from_item(i) for i in items]

    def mark_done(self, trial_id: str, participant_id: str, slot: str) -> bool:
        """Record a submitted slot (adherence); ADD to a set is naturally idempotent.

        False when the participant no longer exists (erased): nothing is marked.
        """
        try:
            self.table.update(
                keys.participant(trial_id, participant_id),
                update="ADD done :slot",
                condition="attribute_exists(pk)",
                values={":slot": {slot}},
            )
        except ConditionFailed:
            return False
        return True

    def delete_participant(self, trial_id: str, participant_id: str) -> None:
        self.table.delete(keys.participant(trial_id, participant_id))

    # -- scores -------------------------------------------------------------------------
    def put_score(self, record: ScoreRecord) -> bool:
        """Store a score once; False when it was already stored (redelivery)."""
        item = {
            **keys.score(
                record.trial_id,
                record.participant_id,
                record.instrument,
                record.timepoint,
                record.seq,
            ),
            "entity": "score",
            "trial_id": record.trial_id,
            "participant_id": record.participant_id,
            "submission_id": record.submission_id,
            "instrument": record.instrument,
            "instrument_version": record.instrument_version,
            "timepoint": record.timepoint,
            "seq": record.seq,
            "completed_at": record.completed_at,
            "received_at": record.received_at,
            "scored_at": record.scored_at,
            "subscales": {k: subscale_value_to_item(v) for k, v in record.subscales.items()},
        }
        if record.supersedes:
            item["supersedes"] = record.supersedes
        try:
            self.table.put(item, condition="attribute_not_exists(pk)")
        except ConditionFailed:
            return False
        return True

    def get_score(
        self, trial_id: str, participant_id: str, instrument: str, timepoint: str, seq: int
    ) -> ScoreRecord | None:
        item = self.table.get(keys.score(trial_id, participant_id, instrument, timepoint, seq))
        return _score_from_item(item) if item else None

    def mark_superseded(self, record: ScoreRecord, *, by: str) -> None:
        """Note the correction on the superseded score, unless erasure removed it meanwhile."""
        with contextlib.suppress(ConditionFailed):
            self._update_existing(
                keys.score(
                    record.trial_id,
                    record.participant_id,
                    record.instrument,
                    record.timepoint,
                    record.seq,
                ),
                update="SET superseded_by = :by",
                values={":by": by},
            )

    def _update_existing(
        self, key: Mapping[str, str], *, update: str, values: Mapping[str, Any]
    ) -> None:
        """An update that never re-creates an item erasure has removed (ConditionFailed)."""
        self.table.update(key, update=update, condition="attribute_exists(pk)", values=values)

    def list_scores(
        self, trial_id: str, participant_id: str | None = None, *, consistent: bool = False
    ) -> list[ScoreRecord]:
        prefix = keys.SCORE_PREFIX + (f"{participant_id}#" if participant_id else "")
        items = self.table.query_all(
            pk=keys.trial_pk(trial_id), prefix=prefix, consistent=consistent
        )
        return [_score_from_item(i) for i in items]

    def delete_score(self, record: ScoreRecord) -> None:
        self.table.delete(
            keys.score(
                record.trial_id,
                record.participant_id,
                record.instrument,
                record.timepoint,
                record.seq,
            )
        )

    # -- aggregates ---------------------------------------------------------------------
    def apply_to_aggregate(
        self,
        *,
        trial_id: str,
        instrument: str,
        timepoint: str,
        submission_id: str,
        add: Mapping[str, float],
        remove: Mapping[str, float],
        retract_id: str | None,
    ) -> bool:
        """Count a submission's subscale scores exactly once (and take back a superseded one).

        One conditional UpdateItem: the condition `NOT contains(applied, :sid)` makes a
        redelivered record a no-op, and the superseded submission's values are subtracted in
        the same write, so the aggregate never shows both. Returns False on a repeat.
        """
        parts: list[str] = []
        names: dict[str, str] = {"#applied": "applied"}
        values: dict[str, Any] = {":sid": {submission_id}, ":sid_s": submission_id}
        deltas: dict[str, list[Decimal]] = {}
        for subscale, score in add.items():
            d = to_decimal(score)
            deltas.setdefault(subscale, [Decimal(0), Decimal(0), Decimal(0)])
            deltas[subscale][0] += 1
            deltas[subscale][1] += d
            deltas[subscale][2] += d * d
        for subscale, score in remove.items():
            d = to_decimal(score)
            deltas.setdefault(subscale, [Decimal(0), Decimal(0), Decimal(0)])
            deltas[subscale][0] -= 1
            deltas[subscale][1] -= d
            deltas[subscale][2] -= d * d
        for n, (subscale, (dn, ds, dq)) in enumerate(sorted(deltas.items())):
            names[f"#n{n}"] = f"n_{subscale}"
            names[f"#s{n}"] = f"sum_{subscale}"
            names[f"#q{n}"] = f"sumsq_{subscale}"
            values[f":n{n}"], values[f":s{n}"], values[f":q{n}"] = dn, ds, dq
            parts.append(f"#n{n} :n{n}, #s{n} :s{n}, #q{n} :q{n}")
        parts.append("#applied :sid")
        condition = "NOT contains(#applied, :sid_s)"
        if retract_id:
            names["#retracted"] = "retracted"
            values[":rid"] = {retract_id}
            values[":rid_s"] = retract_id
            parts.append("#retracted :rid")
            # the superseded submission must have been counted (and not yet taken back)
            condition += " AND contains(#applied, :rid_s) AND NOT contains(#retracted, :rid_s)"
        try:
            self.table.update(
                keys.aggregate(trial_id, instrument, timepoint),
                update="ADD " + ", ".join(parts),
                condition=condition if not retract_id else f"attribute_exists(pk) AND {condition}",
                names=names,
                values=values,
            )
        except ConditionFailed:
            return False
        return True

    def aggregate_state(self, trial_id: str, instrument: str, timepoint: str) -> dict[str, Any]:
        return self.table.get(keys.aggregate(trial_id, instrument, timepoint)) or {}

    def retract_from_aggregate(
        self,
        *,
        trial_id: str,
        instrument: str,
        timepoint: str,
        submission_id: str,
        remove: Mapping[str, float],
    ) -> bool:
        """Take a counted submission back out (erasure); exactly once."""
        names: dict[str, str] = {"#applied": "applied", "#retracted": "retracted"}
        values: dict[str, Any] = {":rid": {submission_id}, ":rid_s": submission_id}
        parts = ["#retracted :rid"]
        for n, (subscale, score) in enumerate(sorted(remove.items())):
            d = to_decimal(score)
            names[f"#n{n}"] = f"n_{subscale}"
            names[f"#s{n}"] = f"sum_{subscale}"
            names[f"#q{n}"] = f"sumsq_{subscale}"
            values[f":n{n}"], values[f":s{n}"], values[f":q{n}"] = Decimal(-1), -d, -(d * d)
            parts.append(f"#n{n} :n{n}, #s{n} :s{n}, #q{n} :q{n}")
        try:
            self.table.update(
                keys.aggregate(trial_id, instrument, timepoint),
                update="ADD " + ", ".join(parts),
                condition="contains(#applied, :rid_s) AND NOT contains(#retracted, :rid_s)",
                names=names,
                values=values,
            )
        except ConditionFailed:
            return False
        return True

    def list_aggregates(self, trial_id: str) -> list[dict[str, Any]]:
        return self.table.query_all(pk=keys.trial_pk(trial_id), prefix=keys.AGGREGATE_PREFIX)

    # -- alerts -------------------------------------------------------------------------
    def claim_alert(self, record: AlertRecord) -> dict[str, Any] | None:
        """Create the alert once. Returns None when created, else the existing item."""
        try:
            self.table.put(
                {
                    **keys.alert(
                        record.trial_id, record.participant_id, record.submission_id, record.rule_no
                    ),
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
            return exc.existing or {}
        return None

    def mark_alert_sent(
        self, record: AlertRecord, *, sent_at: str, recipients: Iterable[str]
    ) -> None:
        with contextlib.suppress(ConditionFailed):
            self._update_existing(
                keys.alert(
                    record.trial_id, record.participant_id, record.submission_id, record.rule_no
                ),
                update="SET sent_at = :at, recipients = :to",
                values={":at": sent_at, ":to": list(recipients)},
            )

    def mark_alert_suppressed(self, record: AlertRecord, *, reason: str) -> None:
        with contextlib.suppress(ConditionFailed):
            self._update_existing(
                keys.alert(
                    record.trial_id, record.participant_id, record.submission_id, record.rule_no
                ),
                update="SET suppressed = :why",
                values={":why": reason},
            )

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
                keys.alert_cap(
                    record.trial_id, record.participant_id, record.rule.instrument, record.rule.item
                ),
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
            return "participant_rule_24h"
        try:
            self.table.update(
                keys.alert_rate(record.trial_id, hour),
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
            state = self.table.get(keys.alert_rate(record.trial_id, hour)) or {}
            if claim in set(state.get("claims", ())):
                return None  # counted by an earlier delivery of this record
            # no e-mail goes out: give the participant-and-rule window back
            with contextlib.suppress(ConditionFailed):
                self.table.delete(
                    keys.alert_cap(
                        record.trial_id,
                        record.participant_id,
                        record.rule.instrument,
                        record.rule.item,
                    ),
                    condition="submission_id = :sid",
                    values={":sid": record.submission_id},
                )
            return "trial_hourly_cap"
        return None

    def delete_alert_caps(self, trial_id: str, participant_id: str) -> int:
        """Remove the participant's e-mail cap items (they name the participant)."""
        items = self.table.query_all(
            pk=keys.trial_pk(trial_id),
            prefix=f"{keys.ALERT_CAP_PREFIX}{participant_id}#",
            consistent=True,
        )
        for item in items:
            self.table.delete({"pk": item["pk"], "sk": item["sk"]})
        return len(items)

    def list_alerts(
        self, trial_id: str, participant_id: str | None = None, *, consistent: bool = False
    ) -> list[AlertRecord]:
        prefix = keys.ALERT_PREFIX + (f"{participant_id}#" if participant_id else "")
        items = self.table.query_all(
            pk=keys.trial_pk(trial_id), prefix=prefix, consistent=consistent
        )
        return [
            AlertRecord(
                trial_id=i["trial_id"],
                participant_id=i["participant_id"],
                submission_id=i["submission_id"],
                rule_no=int(i["rule_no"]),
                rule=AlertRule(
                    instrument=i["rule"]["instrument"],
                    item=int(i["rule"]["item"]),
                    at_least=int(i["rule"]["at_least"]),
                ),
                instrument=i["instrument"],
                timepoint=i["timepoint"],
                created_at=i["created_at"],
                sent_at=i.get("sent_at"),
                recipients=tuple(i.get("recipients", ())),
                suppressed=i.get("suppressed"),
            )
            for i in items
        ]

    def delete_alert(self, record: AlertRecord) -> None:
        self.table.delete(
            keys.alert(record.trial_id, record.participant_id, record.submission_id, record.rule_no)
        )

    # -- audit --------------------------------------------------------------------------
    def append_audit(self, event: AuditEvent) -> None:
        """Append once; the sort key is deterministic, so a retried append is a no-op."""
        with contextlib.suppress(ConditionFailed):
            self.table.put(
                {
                    "pk": keys.audit_pk(event.trial_id),
                    "sk": f"{event.at}#{event.event_id}",
                    "entity": "audit",
                    "trial_id": event.trial_id,
                    "at": event.at,
                    "event_id": event.event_id,
                    "key_id": event.key_id,
                    "role": event.role,
                    "action": event.action,
                    "targets": dict(event.targets),
                },
                condition="attribute_not_exists(pk)",
            )

    def audit_page(
        self,
        trial_id: str,
        *,
        start: str,
        end: str,
        limit: int,
        after: Mapping[str, Any] | None,
    ) -> tuple[list[AuditEvent], dict[str, Any] | None]:
        items, last = self.table.query_page(
            pk=keys.audit_pk(trial_id),
            between=(start, end + "\uffff"),
            limit=limit,
            start_key=after,
            consistent=True,
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
        return events, last

    # -- idempotency --------------------------------------------------------------------
    def claim_idempotency(
        self,
        scope_hash: str,
        *,
        body_hash: str,
        submission_key: Mapping[str, str],
        submission_id: str,
        received_at: str,
        expires_at: int,
    ) -> dict[str, Any] | None:
        """Claim an Idempotency-Key; returns None when claimed, else the earlier record."""
        try:
            self.table.put(
                {
                    **keys.idempotency(scope_hash),
                    "entity": "idempotency",
                    "body_hash": body_hash,
                    "submission_pk": submission_key["pk"],
                    "submission_sk": submission_key["sk"],
                    "submission_id": submission_id,
                    "received_at": received_at,
                    "expires_at": expires_at,
                },
                condition="attribute_not_exists(pk)",
                return_existing=True,
            )
        except ConditionFailed as exc:
            return exc.existing or {}
        return None

    def release_idempotency(self, scope_hash: str) -> None:
        self.table.delete(keys.idempotency(scope_hash))
