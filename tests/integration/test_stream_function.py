"""The stream function (handlers.stream_batch) on moto: Lambda-shaped events and the real stream.

The batch handler is built around the test container's real scoring service, exactly as the
Lambda entry point builds it around its own; nothing of ours is mocked.
"""

from __future__ import annotations

import copy
import json
import pathlib
import time
from collections import Counter
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from adapters.dynamodb import deserialize, serialize
from conftest import NAMES, REGION, make_trial, submission
from handlers.stream_batch import make_handler
from local.pump import StreamPump

EVENT_FILE = pathlib.Path(__file__).resolve().parents[2] / "events" / "score_stream.json"
TRIAL = "cmt-pilot"


def load_event() -> dict[str, Any]:
    # the event file is written by another part of the project: wait briefly if it is not there
    deadline = time.monotonic() + 30
    while not EVENT_FILE.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    event: dict[str, Any] = json.loads(EVENT_FILE.read_text())
    return event


def aggregate_item(aws: dict[str, Any], instrument: str, timepoint: str) -> dict[str, Any]:
    """The stored aggregate item itself (what the stream function wrote)."""
    item = (
        aws["dynamodb"]
        .get_item(
            TableName=NAMES.main_table,
            Key=serialize({"pk": f"T#{TRIAL}", "sk": f"AG#{instrument}#{timepoint}"}),
            ConsistentRead=True,
        )
        .get("Item")
    )
    return deserialize(item) if item else {}


def main_items(aws: dict[str, Any], prefixes: tuple[str, ...] | None = ("SC#", "AG#")) -> list[Any]:
    """Score and aggregate items of the main table (every item with `prefixes=None`).

    A test-side read of the whole table, to see everything a delivery may have written.
    """
    items: list[Any] = []
    kwargs: dict[str, Any] = {"TableName": NAMES.main_table, "ConsistentRead": True}
    while True:
        page = aws["dynamodb"].scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(
        (i for i in items if prefixes is None or i["sk"]["S"].startswith(prefixes)),
        key=lambda i: (i["pk"]["S"], i["sk"]["S"]),
    )


def insert_record(template: dict[str, Any], *, sequence: str, **overrides: Any) -> dict[str, Any]:
    """A copy of an INSERT record whose NewImage has `overrides` (python values) applied."""
    record = copy.deepcopy(template)
    record["eventID"] = f"evt-{sequence}"
    record["dynamodb"]["SequenceNumber"] = sequence
    image = record["dynamodb"]["NewImage"]
    image.update(serialize(overrides))
    record["dynamodb"]["Keys"] = {"pk": image["pk"], "sk": image["sk"]}
    return record


@pytest.fixture
def seeded(client, container):
    return make_trial(client, container, participants=("P01", "P02", "P03", "P04"))


def test_the_event_file_insert_is_scored_and_modify_and_remove_are_ignored(
    aws, container, seeded, stores
):
    event = load_event()
    names = [r["eventName"] for r in event["Records"]]
    assert "INSERT" in names
    assert {"MODIFY", "REMOVE"} & set(names)
    handler = make_handler(container.scoring)

    response = handler(event, None)

    assert response == {"batchItemFailures": []}
    inserted = [r for r in event["Records"] if r["eventName"] == "INSERT"]
    scored = {s.submission_id: s for s in stores.scores.list_scores(TRIAL)}
    assert set(scored) == {r["dynamodb"]["NewImage"]["submission_id"]["S"] for r in inserted}
    # the INSERT is the HADS example: anxiety 2+3+2+0+1+2+2, depression 0+1+1+2+3+1+0
    first = scored[inserted[0]["dynamodb"]["NewImage"]["submission_id"]["S"]]
    assert first.subscales["anxiety"].score == 12
    assert first.subscales["depression"].score == 8
    # the MODIFY (P02) and REMOVE (P03) records left no trace
    assert stores.scores.list_scores(TRIAL, "P02") == []
    assert stores.scores.list_scores(TRIAL, "P03") == []
    aggregate = aggregate_item(aws, "hads", "week-1")
    assert aggregate["n_anxiety"] == len(inserted)


def test_the_same_batch_delivered_twice_changes_nothing(aws, container, seeded):
    event = load_event()
    template = next(r for r in event["Records"] if r["eventName"] == "INSERT")
    original = insert_record(
        template,
        sequence="400000000000000000000004",
        participant_id="P04",
        pk=f"T#{TRIAL}#P#P04",
        submission_id="01JD00000000000000000000P4",
        responses={str(n): 3 for n in range(1, 15)},
    )
    correction = insert_record(
        original,
        sequence="500000000000000000000005",
        sk="S#hads#week-1#001",
        seq=1,
        submission_id="01JD00000000000000000000Q4",
        supersedes="01JD00000000000000000000P4",
        responses={str(n): 0 for n in range(1, 15)},
    )
    flagged = insert_record(
        template,
        sequence="600000000000000000000006",
        participant_id="P03",
        pk=f"T#{TRIAL}#P#P03",
        sk="S#fscrs#week-1#000",
        instrument="fscrs",
        submission_id="01JD00000000000000000000F3",
        responses={str(n): 3 for n in range(1, 23)},
    )
    batch = {"Records": [*event["Records"], original, correction, flagged]}
    handler = make_handler(container.scoring)
    assert handler(batch, None) == {"batchItemFailures": []}
    before = main_items(aws, None)
    aggregate = aggregate_item(aws, "hads", "week-1")
    # P01's 12 and P04's correction (0) count; P04's first answer (21) was taken back
    assert (aggregate["n_anxiety"], aggregate["sum_anxiety"]) == (2, 12)
    assert any(i["sk"]["S"].startswith("AL#P03#") for i in before)
    mails = len(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)

    assert handler(copy.deepcopy(batch), None) == {"batchItemFailures": []}

    assert main_items(aws, None) == before
    assert len(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages) == mails


def test_a_failing_record_is_reported_alone_while_the_rest_of_its_batch_commits(
    aws, container, seeded, stores
):
    event = load_event()
    template = next(r for r in event["Records"] if r["eventName"] == "INSERT")
    good = insert_record(
        template,
        sequence="500000000000000000000005",
        participant_id="P04",
        pk=f"T#{TRIAL}#P#P04",
        submission_id="01JD00000000000000000000P4",
        trial_received="2026-11-20T10:30:00Z#01JD00000000000000000000P4",
    )
    unknown_version = insert_record(
        template,
        sequence="400000000000000000000004",
        participant_id="P02",
        pk=f"T#{TRIAL}#P#P02",
        submission_id="01JD00000000000000000000V9",
        instrument_version="99",
    )
    orphan_correction = insert_record(
        template,
        sequence="600000000000000000000006",
        participant_id="P03",
        pk=f"T#{TRIAL}#P#P03",
        sk="S#hads#week-1#001",
        seq=1,
        submission_id="01JD00000000000000000000C1",
        supersedes="01JD00000000000000000000XX",
    )
    batch = {"Records": [*event["Records"], unknown_version, good, orphan_correction]}

    response = make_handler(container.scoring)(batch, None)

    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    assert failed == {"400000000000000000000004", "600000000000000000000006"}
    scored_ids = {s.submission_id for s in stores.scores.list_scores(TRIAL)}
    assert "01JD00000000000000000000P4" in scored_ids
    assert template["dynamodb"]["NewImage"]["submission_id"]["S"] in scored_ids
    assert "01JD00000000000000000000V9" not in scored_ids
    assert "01JD00000000000000000000C1" not in scored_ids
    # the uncounted correction changed no aggregate: only the two good HADS are counted
    aggregate = aggregate_item(aws, "hads", "week-1")
    assert aggregate["n_anxiety"] == 2
    # the score items are the ledger of what counts: no id set grows in the aggregate
    assert {s.submission_id for s in stores.scores.list_scores(TRIAL)} == {
        template["dynamodb"]["NewImage"]["submission_id"]["S"],
        "01JD00000000000000000000P4",
    }
    assert "applied" not in aggregate


def test_records_of_other_items_are_ignored(aws, container, seeded):
    event = load_event()
    template = next(r for r in event["Records"] if r["eventName"] == "INSERT")
    not_a_submission = insert_record(
        template, sequence="700000000000000000000007", entity="something_else"
    )
    no_image = copy.deepcopy(template)
    no_image["dynamodb"].pop("NewImage")
    no_image["dynamodb"]["SequenceNumber"] = "800000000000000000000008"

    response = make_handler(container.scoring)({"Records": [not_a_submission, no_image]}, None)

    assert response == {"batchItemFailures": []}
    assert main_items(aws) == []


def test_real_stream_records_read_by_the_pump_are_scored(
    client, container, pump, seeded, stores, aws
):
    bodies = [
        submission("P01"),
        submission("P02", responses={str(n): 1 for n in range(1, 15)}),
        submission("P03", instrument="hads", timepoint="week-12"),
    ]
    for body in bodies:
        r = client.post(f"/v1/trials/{TRIAL}/submissions", headers=seeded.submitter, json=body)
        assert r.status_code == 201, r.text

    pump.drain()

    assert pump.stats.records == 3
    assert pump.stats.failures == 0
    scores = {(s.participant_id, s.timepoint): s for s in stores.scores.list_scores(TRIAL)}
    assert scores[("P01", "week-1")].subscales["anxiety"].score == 12
    assert scores[("P02", "week-1")].subscales["depression"].score == 7
    assert scores[("P03", "week-12")].subscales["depression"].score == 8
    aggregate = aggregate_item(aws, "hads", "week-1")
    assert (aggregate["n_anxiety"], aggregate["sum_anxiety"]) == (2, 12 + 7)
    # a second drain has nothing left to deliver
    pump.drain()
    assert pump.stats.records == 3


# -- the local event-source mapping (local.pump) around the real handler ---------------------


def submission_id_of(record: dict[str, Any]) -> str:
    return str(record["dynamodb"]["NewImage"]["submission_id"]["S"])


def failing_around(handler: Any, *, target: str, times: int | None) -> tuple[Any, Counter[str]]:
    """The real handler, except that `target` fails its first `times` deliveries (None: all)."""
    deliveries: Counter[str] = Counter()

    def wrapper(event: dict[str, Any], context: Any) -> dict[str, Any]:
        failing = []
        passing = []
        for record in event["Records"]:
            sid = submission_id_of(record)
            deliveries[sid] += 1
            if sid == target and (times is None or deliveries[sid] <= times):
                failing.append(record)
            else:
                passing.append(record)
        response = handler({"Records": passing}, context) if passing else {}
        failures = list(response.get("batchItemFailures", []))
        failures += [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in failing]
        return {"batchItemFailures": failures}

    return wrapper, deliveries


def pump_around(aws: dict[str, Any], handler: Any) -> StreamPump:
    return StreamPump(
        streams_client=aws["dynamodbstreams"],
        dynamodb_client=aws["dynamodb"],
        table_name=NAMES.submissions_table,
        handler=handler,
        sqs_client=aws["sqs"],
        dead_letter_queue_url=aws["sqs"].get_queue_url(QueueName=NAMES.dead_letter_queue)[
            "QueueUrl"
        ],
        region=REGION,
    )


def post_four(client, keys) -> list[str]:
    ids = []
    for pid in ("P01", "P02", "P03", "P04"):
        body = submission(pid, responses={str(n): 1 for n in range(1, 15)})
        r = client.post(f"/v1/trials/{TRIAL}/submissions", headers=keys.submitter, json=body)
        assert r.status_code == 201, r.text
        ids.append(r.json()["submission_id"])
    return ids


def test_a_record_failing_once_is_redelivered_from_there_and_counted_once(
    aws, client, container, seeded, stores
):
    ids = post_four(client, seeded)
    handler, deliveries = failing_around(make_handler(container.scoring), target=ids[1], times=1)
    pump = pump_around(aws, handler)

    pump.drain()

    # Lambda resumes from the first failed record: the one before it is not redelivered,
    # the ones after it are (and must change nothing the second time)
    assert [deliveries[i] for i in ids] == [1, 2, 2, 2]
    assert pump.stats.failures == 1
    assert pump.stats.dead_lettered == 0
    assert sorted(s.submission_id for s in stores.scores.list_scores(TRIAL)) == sorted(ids)
    aggregate = aggregate_item(aws, "hads", "week-1")
    assert "applied" not in aggregate  # the scores above are the ledger
    assert (aggregate["n_anxiety"], aggregate["sum_anxiety"]) == (4, 4 * 7)
    events = container.audit.page(TRIAL, start="0", end="9", limit=100, cursor=None)[0]
    created = [e.targets["submission_id"] for e in events if e.action == "submission.create"]
    assert sorted(created) == sorted(ids)


def test_a_record_that_always_fails_goes_to_the_on_failure_queue_after_the_last_retry(
    aws, client, container, seeded, stores
):
    ids = post_four(client, seeded)
    handler, deliveries = failing_around(make_handler(container.scoring), target=ids[2], times=None)
    pump = pump_around(aws, handler)

    pump.drain()

    assert deliveries[ids[2]] == 1 + pump.max_retry_attempts
    assert pump.stats.dead_lettered == 1
    queue_url = aws["sqs"].get_queue_url(QueueName=NAMES.dead_letter_queue)["QueueUrl"]
    messages = aws["sqs"].receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    bodies = [json.loads(m["Body"]) for m in messages.get("Messages", [])]
    assert len(bodies) == 1
    assert bodies[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert bodies[0]["keys"]["pk"] == {"S": f"T#{TRIAL}#P#P03"}
    assert bodies[0]["keys"]["sk"] == {"S": "S#hads#week-1#000"}
    assert "NewImage" not in json.dumps(bodies[0])  # coordinates only, never the data
    scored = {s.submission_id for s in stores.scores.list_scores(TRIAL)}
    assert scored == {ids[0], ids[1], ids[3]}
    aggregate = aggregate_item(aws, "hads", "week-1")
    assert aggregate["n_anxiety"] == 3
