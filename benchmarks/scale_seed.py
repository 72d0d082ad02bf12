"""Seeding a trial at scale: the items the system would have stored, written 25 at a time.

A participant of the default protocol who has done everything has 30 submissions (six
questionnaires at week 1, week 12 and follow-up, twelve weekly diaries), 30 scores, a
participant item whose `done` set names those 30 slots, and, when a submission meets the
trial's alert rule (FSCRS item 9 at 3 or more), a sent safety alert. The trial's 30 aggregate
items hold the moments of every score.

Every item is built by the adapter that stores it in production, so it is byte for byte what
the system writes: participants by `ParticipantTable.enrol`, submissions by
`SubmissionTable.put_new`, alerts by `AlertTable.claim_alert` (each given a `CaptureTable`
that keeps the item instead of sending a conditional PutItem), scores by
`score_store.score_item` over `to_score_record` (the stream function's own scoring), keys by
`adapters.keys`. What the scoring ledger adds with `ADD` (the participant's `done` set, the
aggregate's `n_`/`sum_`/`sumsq_`) and `mark_alert_sent` adds with `SET` is added to the item
here, and each item is serialised by `adapters.dynamodb.serialize`, as every write of the
system is.

The serialised items are stored in moto's own tables by `moto_scale.put_compact`, not sent
through BatchWriteItem: on this machine BatchWriteItem through moto costs about 4 ms per item
(moto sums an item's size again for every attribute it sets, and botocore validates and
serialises every request), which is 3.4 hours for a trial of 50,000 participants, and moto's
own items would need 17 GB. The table then holds exactly what the batch writes would have left
(no stream records: the stream function sees only what the benchmark submits afterwards).
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

__all__ = ["CaptureTable", "SeedStats", "TrialSeeder"]

SEED = 20261201
#: a safety-alert rule met by one FSCRS submission in fifty
ALERT_RATE = 0.02
#: a diary with free-text notes, one in three (never read by any route, but stored)
NOTES_RATE = 1 / 3
START = datetime(2026, 1, 5, tzinfo=UTC)


class CaptureTable:
    """A `DynamoTable` stand-in that keeps what an adapter would put (conditions dropped:
    every seeded key is new)."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def put(self, item: Mapping[str, Any], **_: Any) -> None:
        self.items.append(dict(item))

    def take(self) -> list[dict[str, Any]]:
        taken, self.items = self.items, []
        return taken


@dataclass
class SeedStats:
    participants: int = 0
    items: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    workers: int = 1

    def add(self, kind: str, n: int) -> None:
        self.items[kind] = self.items.get(kind, 0) + n

    @property
    def total_items(self) -> int:
        return sum(self.items.values())


class TrialSeeder:
    """Grows one trial, participant by participant, in its main and submissions tables."""

    def __init__(self, *, settings: Any, trial: Any, key_id: str) -> None:
        import moto_scale

        self.trial = trial
        self.key_id = key_id
        self.main = _moto_table(settings.main_table)
        self.submissions = _moto_table(settings.submissions_table)
        for table in (self.main, self.submissions):
            if not moto_scale.adopt(table):
                raise RuntimeError(f"cannot seed {table.name}: not a string-keyed table")
        self.settings = settings
        self.seeded = 0
        self.stats = SeedStats()
        # subscale moments per slot over every seeded score: the aggregate items
        self.moments: dict[Any, dict[str, Any]] = {}

    # -- the records of one participant ----------------------------------------------------
    def participant_id(self, n: int) -> str:
        return f"S{n:06d}"

    def records(self, n: int) -> tuple[Any, list[Any], list[Any], list[Any]]:
        """Participant n's participant, submissions, scores and alerts (seeded per n)."""
        from domain.instruments import CATALOGUE
        from domain.submissions import SubmissionRecord
        from domain.trial import AlertRecord, Participant
        from services.clock import iso, new_ulid
        from services.score_submission import to_score_record

        rng = random.Random(SEED * 1_000_003 + n)
        pid = self.participant_id(n)
        enrolled = START + timedelta(minutes=n)
        participant = Participant(
            trial_id=self.trial.trial_id,
            participant_id=pid,
            status="active",
            enrolled_at=iso(enrolled),
            status_changed_at=iso(enrolled),
        )
        submissions = []
        scores = []
        alerts = []
        order = {tp: k for k, tp in enumerate(self.trial.protocol.timepoints)}
        for slot in self.trial.protocol.slots():
            instrument = CATALOGUE.get(slot.instrument)
            week = order[slot.timepoint]  # week-1 is 0, follow-up is 12
            completed = enrolled + timedelta(weeks=week, hours=rng.randint(1, 120))
            responses: dict[int, int | None] = {
                item: rng.randint(instrument.response_min, instrument.response_max)
                for item in range(1, instrument.items + 1)
            }
            for rule in self.trial.alert_rules:
                if rule.instrument == slot.instrument:
                    met = rng.random() < ALERT_RATE
                    responses[rule.item] = (
                        instrument.response_max
                        if met
                        else rng.randint(instrument.response_min, rule.at_least - 1)
                    )
            notes = None
            if instrument.free_text and rng.random() < NOTES_RATE:
                notes = {instrument.free_text[0]: "x" * rng.randint(40, 240)}
            at = iso(completed)
            body_hash = hashlib.sha256(f"{pid}{slot}".encode()).hexdigest()
            submission = SubmissionRecord(
                trial_id=self.trial.trial_id,
                participant_id=pid,
                submission_id=new_ulid(int(completed.timestamp() * 1000)),
                instrument=slot.instrument,
                instrument_version=instrument.version,
                timepoint=slot.timepoint,
                seq=0,
                completed_at=at,
                received_at=at,
                responses=responses,
                notes=notes,
                key_id=self.key_id,
                role="submitter",
                body_hash=body_hash,
            )
            submissions.append(submission)
            scores.append(to_score_record(submission, iso(completed + timedelta(seconds=2))))
            for rule_no, rule in enumerate(self.trial.alert_rules):
                if rule.met_by(instrument=slot.instrument, responses=responses):
                    alerts.append(
                        AlertRecord(
                            trial_id=self.trial.trial_id,
                            participant_id=pid,
                            submission_id=submission.submission_id,
                            rule_no=rule_no,
                            rule=rule,
                            instrument=slot.instrument,
                            timepoint=slot.timepoint,
                            created_at=iso(completed + timedelta(seconds=2)),
                            sent_at=iso(completed + timedelta(seconds=3)),
                            recipients=tuple(self.trial.coordinator_emails),
                        )
                    )
        return participant, submissions, scores, alerts

    # -- items -------------------------------------------------------------------------------
    def _items(self, n: int) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(table, kind, item) of participant n, built by the adapters."""
        from adapters.alert_store import AlertTable
        from adapters.participant_store import ParticipantTable
        from adapters.score_store import score_item
        from adapters.submission_store import SubmissionTable
        from domain.aggregates import Moments

        participant, submissions, scores, alerts = self.records(n)
        capture = CaptureTable()
        ParticipantTable(capture).enrol(participant)  # type: ignore[arg-type]
        (participant_item,) = capture.take()
        # what the scoring ledger's `ADD done :slot` leaves
        participant_item["done"] = {str(s.slot) for s in scores}
        yield "main", "participant", participant_item
        table = SubmissionTable(capture)  # type: ignore[arg-type]
        for submission in submissions:
            table.put_new(submission)
        for item in capture.take():
            yield "submissions", "submission", item
        for score in scores:
            yield "main", "score", score_item(score)
            slot_moments = self.moments.setdefault(score.slot, {})
            for subscale, value in score.values().items():
                slot_moments[subscale] = slot_moments.get(subscale, Moments()).add(value)
        alert_table = AlertTable(capture)  # type: ignore[arg-type]
        for alert in alerts:
            alert_table.claim_alert(alert)
            (item,) = capture.take()
            # what `mark_alert_sent` sets
            item["sent_at"] = alert.sent_at
            item["recipients"] = list(alert.recipients)
            yield "main", "alert", item

    def aggregate_items(self) -> list[dict[str, Any]]:
        """The slots' aggregate items as the ledger's `ADD n_s, sum_s, sumsq_s` leaves them."""
        from adapters import keys

        items = []
        for slot, moments in self.moments.items():
            item: dict[str, Any] = dict(keys.aggregate(trial_id=self.trial.trial_id, slot=slot))
            for subscale, m in moments.items():
                item[f"n_{subscale}"] = Decimal(m.n)
                item[f"sum_{subscale}"] = m.total
                item[f"sumsq_{subscale}"] = m.sumsq
            items.append(item)
        return items

    # -- writing -----------------------------------------------------------------------------
    def grow_to(self, size: int, *, chunk: int = 250, workers: int = 2) -> SeedStats:
        """Seed participants `seeded`..`size - 1` and rewrite the aggregates.

        The items are built and serialised in `workers` processes (each runs the adapters'
        builders for its participants and hands back compressed DynamoDB JSON); this process
        stores them in moto's tables.
        """
        import concurrent.futures
        import multiprocessing

        import moto_scale

        started = time.perf_counter()
        specs = {
            "main": self.main._cmt_indexes.specs,
            "submissions": self.submissions._cmt_indexes.specs,
        }
        tables = {"main": self.main, "submissions": self.submissions}
        ranges = [(n, min(size, n + chunk)) for n in range(self.seeded, size, chunk)]
        context = multiprocessing.get_context("fork")
        # the workers are forked after this: they inherit the trial rather than unpickling it
        # (its instrument texts are read-only mappings, which do not pickle)
        _FORKED["trial"] = self.trial
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            jobs = [pool.submit(_build_chunk, self.key_id, lo, hi, specs) for lo, hi in ranges]
            for job in jobs:
                built = job.result()
                for table, hash_value, range_value, blob, size_, entries in built.items:
                    moto_scale.put_blob(
                        tables[table], hash_value, range_value, blob, size_, entries
                    )
                for kind, n in built.counts.items():
                    self.stats.add(kind, n)
                for slot, moments in built.moments.items():
                    mine = self.moments.setdefault(slot, {})
                    for subscale, m in moments.items():
                        mine[subscale] = mine.get(subscale, _zero()) + m
                self.stats.participants += built.participants
        self.seeded = size
        for table in tables.values():
            moto_scale.settle(table)
        aggregates = self.aggregate_items()
        for item in aggregates:
            moto_scale.put_compact(self.main, fast_serialize(item))
        self.stats.items["aggregate"] = len(aggregates)
        self.stats.workers = workers
        self.stats.seconds += time.perf_counter() - started
        return self.stats


def _zero() -> Any:
    from domain.aggregates import Moments

    return Moments()


@dataclass
class _Built:
    items: list[tuple[str, str, str, bytes, int, list[Any]]]
    counts: dict[str, int]
    moments: dict[Any, dict[str, Any]]
    participants: int


_FORKED: dict[str, Any] = {}


def _build_chunk(
    key_id: str, lo: int, hi: int, specs: Mapping[str, list[tuple[str, str, str]]]
) -> _Built:
    """Participants lo..hi-1 as compressed items (run in a worker process)."""
    trial = _FORKED["trial"]
    import json
    import zlib

    from adapters.dynamodb import serialize

    seeder = TrialSeeder.__new__(TrialSeeder)
    seeder.trial = trial
    seeder.key_id = key_id
    seeder.moments = {}
    from capacity import item_size

    out: list[tuple[str, str, str, bytes, int, list[Any]]] = []
    counts: dict[str, int] = {}
    checked = 0
    for n in range(lo, hi):
        for table, kind, item in seeder._items(n):
            image = fast_serialize(item)
            if n == lo and checked < 64:
                # the adapters' own serialiser gives the same DynamoDB JSON
                if _unordered(image) != _unordered(serialize(item)):
                    raise AssertionError(f"fast_serialize differs from serialize for {kind}")
                checked += 1
            hash_value, range_value = image["pk"]["S"], image["sk"]["S"]
            entries = []
            for name, hash_attr, range_attr in specs[table]:
                if hash_attr in image and range_attr in image:
                    entries.append(
                        (
                            name,
                            image[hash_attr]["S"],
                            (image[range_attr]["S"], hash_value, range_value),
                        )
                    )
            blob = zlib.compress(json.dumps(image, separators=(",", ":")).encode(), 1)
            out.append((table, hash_value, range_value, blob, item_size(image), entries))
            counts[kind] = counts.get(kind, 0) + 1
    return _Built(items=out, counts=counts, moments=seeder.moments, participants=hi - lo)


def _unordered(value: Any) -> Any:
    """DynamoDB JSON with its sets as sets (a set's order means nothing)."""
    if isinstance(value, dict):
        return {k: frozenset(v) if k in ("SS", "NS") else _unordered(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unordered(v) for v in value]
    return value


def fast_serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    """`adapters.dynamodb.serialize`, for the value types the stored items hold, faster
    (checked equal to it on the first items of every chunk)."""
    return {k: _value(v) for k, v in item.items()}


def _value(value: Any) -> dict[str, Any]:
    from boto3.dynamodb.types import DYNAMODB_CONTEXT

    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, bool):
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if isinstance(value, int):
        return {"N": str(DYNAMODB_CONTEXT.create_decimal(value))}
    if isinstance(value, float | Decimal):
        from adapters.dynamodb import to_decimal

        number = to_decimal(value) if isinstance(value, float) else value
        return {"N": str(DYNAMODB_CONTEXT.create_decimal(number))}
    if isinstance(value, Mapping):
        return {"M": {str(k): _value(v) for k, v in value.items()}}
    if isinstance(value, set | frozenset):
        if all(isinstance(v, str) for v in value):
            return {"SS": list(value)}
        raise TypeError("only string sets are seeded")
    if isinstance(value, list | tuple):
        return {"L": [_value(v) for v in value]}
    raise TypeError(f"cannot seed {type(value).__name__}")


def _moto_table(name: str) -> Any:
    """moto's own table of that name (the benchmark runs moto in its process)."""
    from moto.dynamodb.models import dynamodb_backends

    for account in dynamodb_backends.values():
        for backend in account.values():
            if name in backend.tables:
                return backend.tables[name]
    raise LookupError(f"no moto table {name}")
