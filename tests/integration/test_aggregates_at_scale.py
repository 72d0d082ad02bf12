"""Past the old cap: scoring, aggregates and alerts stay exact beyond 16,000 submissions of one
trial × instrument × timepoint, and the aggregate item does not grow.

The old aggregate kept the id of every counted submission and failed at 15,748 of them (the
400 KB item limit), after which the record's audit event and safety alert were never
written. Here 16,100 FSCRS week-1 submissions (the last few meeting the safety rule) are
stored as the API stores them (straight into the table, for speed) and then delivered to
the real stream handler in batches of 100, as Lambda delivers them.
"""

from __future__ import annotations

import math
import random
import statistics
from typing import Any

import pytest

from adapters.dynamodb import serialize
from adapters.participant_store import ParticipantTable
from adapters.submission_store import SubmissionTable
from conftest import NAMES, REGION, World, make_trial
from domain.instruments import CATALOGUE
from domain.scoring import score_responses
from domain.submissions import SubmissionRecord
from domain.trial import Participant, Slot
from handlers.stream_batch import make_handler

pytestmark = pytest.mark.slow

TRIAL = "cmt-national"
N = 16_100
ALERTING = 5  # the last five meet the default rule (FSCRS item 9 at 3 or more)


class Seeding:
    """Where the adapters' own item builders write, straight into moto's tables (seeding
    only: 32,000 items through the API would take minutes; what the test checks is the
    stream function that reads them)."""

    def __init__(self, table_name: str) -> None:
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        self.backend = dynamodb_backends[DEFAULT_ACCOUNT_ID][REGION]
        self.table_name = table_name

    def put(self, item: dict[str, Any], **_: Any) -> None:
        self.backend.put_item(self.table_name, serialize(item))


def test_scoring_and_alerts_stay_exact_past_sixteen_thousand_submissions_of_one_slot(
    world: World,
) -> None:
    make_trial(world.client, world.container, trial_id=TRIAL, participants=())
    rng = random.Random(16100)
    main = Seeding(NAMES.main_table)
    submissions = Seeding(NAMES.submissions_table)
    records = []
    for n in range(N):
        pid = f"N{n:05d}"
        ParticipantTable(main).enrol(  # type: ignore[arg-type]
            Participant(
                trial_id=TRIAL,
                participant_id=pid,
                status="active",
                enrolled_at="2026-09-01T00:00:00.000Z",
                status_changed_at="2026-09-01T00:00:00.000Z",
            )
        )
        responses = {i: rng.randint(0, 4) for i in range(1, 23)}
        responses[9] = 4 if n >= N - ALERTING else rng.randint(0, 2)
        record = SubmissionRecord(
            trial_id=TRIAL,
            participant_id=pid,
            submission_id=f"01M8S{n:021d}",
            instrument="fscrs",
            instrument_version="1",
            timepoint="week-1",
            seq=0,
            completed_at="2026-09-02T10:00:00.000Z",
            received_at=f"2026-09-02T10:{n // 6000:02d}:{(n // 100) % 60:02d}.{n % 100:03d}Z",
            responses=responses,
            key_id="k_seed",
            role="submitter",
            body_hash="seeded",
        )
        SubmissionTable(submissions).put_new(record)  # type: ignore[arg-type]
        records.append(record)

    handler = make_handler(world.container.scoring)
    for start in range(0, N, 100):
        batch = {
            "Records": [
                stream_record(r, start + k) for k, r in enumerate(records[start : start + 100])
            ]
        }
        assert handler(batch, None) == {"batchItemFailures": []}, start

    # exact: n, mean and SD of every subscale equal a recomputation from the responses
    moments = world.stores.aggregates.list_aggregates(TRIAL)[
        Slot(instrument="fscrs", timepoint="week-1")
    ]
    fscrs = CATALOGUE.get("fscrs")
    for sub in fscrs.subscales:
        values = [score_responses(fscrs, r.responses).get(sub.id).score for r in records]
        assert moments[sub.id].n == N
        assert math.isclose(moments[sub.id].mean or 0, statistics.fmean(values), rel_tol=1e-12)
        assert math.isclose(moments[sub.id].sd or 0, statistics.stdev(values), rel_tol=1e-9)
    # the aggregate item stays small: no list of ids grows with the trial
    item = world.aws["dynamodb"].get_item(
        TableName=NAMES.main_table,
        Key={"pk": {"S": f"T#{TRIAL}"}, "sk": {"S": "AG#fscrs#week-1"}},
        ReturnConsumedCapacity="TOTAL",
    )["Item"]
    assert len(str(item)) < 2_000
    # the alerts past the old cap were claimed and e-mailed, the audit trail is complete
    alerts = world.container.reads.alerts(TRIAL)["alerts"]
    assert sorted(a["participant_id"] for a in alerts) == [
        f"N{n:05d}" for n in range(N - ALERTING, N)
    ]
    assert all(a["sent_at"] for a in alerts)
    # the audit events of the last batch, well past the old cap, are all written
    last = records[-100:]
    created = world.container.audit.events(
        TRIAL, start=last[0].received_at, end=last[-1].received_at
    )
    assert {e.event_id for e in created if e.action == "submission.create"} == {
        r.submission_id for r in last
    }


def stream_record(record: SubmissionRecord, n: int) -> dict[str, Any]:
    from adapters.submission_store import _item

    image = serialize(_item(record))
    return {
        "eventID": f"e{n}",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"pk": image["pk"], "sk": image["sk"]},
            "NewImage": image,
            "SequenceNumber": f"{n:024d}",
            "StreamViewType": "NEW_IMAGE",
        },
    }
