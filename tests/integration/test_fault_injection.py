"""The whole pipeline under faults, on moto: nothing lost, nothing counted twice.

1,000 submissions arrive from 8 concurrent client threads; 10% of them are sent twice with the
same Idempotency-Key (some retries one after the other, some concurrently). While they arrive,
the stream pump (our stand-in for Lambda's event-source mapping) scores them, and:

- the scoring of 5% of the records fails at first delivery (half before doing anything, half
  after doing all the work, as a timed-out Lambda would), so the pump must redeliver them;
- 5% of the API's and the scoring function's DynamoDB writes (PutItem, UpdateItem) are
  throttled before they reach the table, as `ProvisionedThroughputExceededException`
  responses that botocore's standard retry mode has to absorb;
- a few permanently bad records (submission items written straight into the table with an
  instrument version that does not exist) have to end in the on-failure queue.

At the end every accepted submission must be stored once and scored once, the live aggregates
must equal a recomputation from the stored responses, the queue must hold exactly the bad
records, and the pre/post report must equal statistics recomputed independently (scipy).
"""

from __future__ import annotations

import json
import math
import queue
import random
import statistics
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import botocore.endpoint
import pytest
from botocore.awsrequest import AWSResponse
from fastapi.testclient import TestClient
from moto.core.botocore_stubber import BotocoreStubber
from scipy import stats

import conftest
from adapters import keys as key_patterns
from adapters.dynamodb import deserialize, serialize
from domain.instruments import CATALOGUE
from domain.submissions import SubmissionRecord
from domain.trial import Slot
from handlers.api_app import create_app
from handlers.stream_batch import make_handler
from handlers.wiring import Container
from local.pump import StreamPump
from services.rate_limit import RateLimiter, RatePolicy

pytestmark = pytest.mark.slow

SEED = 1126
TRIAL_ID = "cmt-pilot"
N_PARTICIPANTS = 40
DIARY_WEEKS = 7  # 6 instruments x 3 timepoints + 7 diary weeks = 25 slots per participant
CLIENT_THREADS = 8
RETRY_SHARE = 0.10
CONCURRENT_RETRY_SHARE = 0.3  # of the retried submissions, how many race each other
STREAM_FAILURE_SHARE = 0.05
THROTTLE_EVERY = 20  # one write in 20 (5%) is throttled
BACKOFF_COMPRESSION = 100  # botocore's backoff sleeps are recorded, then slept 100x shorter
BAD_RECORDS = 3
COMPLETED_AT = "2026-03-02T09:30:00Z"
QUESTIONNAIRE_TIMEPOINTS = ("week-1", "week-12", "follow-up")


# -- the workload --------------------------------------------------------------------------


@dataclass
class Job:
    body: dict[str, Any]
    idempotency_key: str
    sends: int = 1  # 2 for a retry with the same key
    race: threading.Barrier | None = None  # both sends of a concurrent retry wait here

    @property
    def slot(self) -> tuple[str, str, str]:
        return (self.body["participant_id"], self.body["instrument"], self.body["timepoint"])


def _responses(rng: random.Random, instrument_id: str) -> dict[str, int | None]:
    instrument = CATALOGUE.get(instrument_id)
    low, high = instrument.response_min, instrument.response_max
    values: dict[str, int | None] = {}
    for n in instrument.item_numbers:
        # about one item in 25 skipped, so some subscales are prorated and a few are missing
        values[str(n)] = None if rng.random() < 0.04 else rng.randint(low, high)
    if all(v is None for v in values.values()):
        values["1"] = low
    return values


def build_workload(rng: random.Random) -> list[Job]:
    participants = [f"P{n:03d}" for n in range(1, N_PARTICIPANTS + 1)]
    slots = [
        (instrument, timepoint)
        for instrument in ("hads", "fscs", "fscrs", "oas", "scs", "sbs")
        for timepoint in QUESTIONNAIRE_TIMEPOINTS
    ] + [("diary", f"week-{w}") for w in range(1, DIARY_WEEKS + 1)]
    jobs: list[Job] = []
    for pid in participants:
        for instrument, timepoint in slots:
            body = {
                "participant_id": pid,
                "instrument": instrument,
                "timepoint": timepoint,
                "completed_at": COMPLETED_AT,
                "responses": _responses(rng, instrument),
            }
            if instrument == "diary" and rng.random() < 0.5:
                body["notes"] = {"critical_thoughts": f"note {rng.random()}"}
            jobs.append(Job(body=body, idempotency_key=f"{pid}-{instrument}-{timepoint}"))
    rng.shuffle(jobs)
    for job in rng.sample(jobs, int(len(jobs) * RETRY_SHARE)):
        job.sends = 2
    retried = [j for j in jobs if j.sends == 2]
    for job in rng.sample(retried, int(len(retried) * CONCURRENT_RETRY_SHARE)):
        job.race = threading.Barrier(2, timeout=30)
    return jobs


# -- fault injectors -----------------------------------------------------------------------


class InjectedStreamFailure(Exception):
    pass


@dataclass
class FlakyScoring:
    """Fails the first delivery of chosen submissions, before or after the real work."""

    scoring: Any
    fail_before: set[tuple[str, str, str]]
    fail_after: set[tuple[str, str, str]]
    failed: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    calls: int = 0

    def process_batch(self, submissions: list[SubmissionRecord]) -> dict[str, Any]:
        self.calls += 1
        results: dict[str, Any] = {}
        passing = []
        after: set[str] = set()
        for submission in submissions:
            slot = (submission.participant_id, submission.instrument, submission.timepoint)
            first = self.failed[slot] == 0
            if first and slot in self.fail_before:
                self.failed[slot] += 1
                results[submission.submission_id] = InjectedStreamFailure(
                    f"first delivery of {slot} fails before scoring"
                )
                continue
            if first and slot in self.fail_after:
                self.failed[slot] += 1
                after.add(submission.submission_id)
            passing.append(submission)
        for submission_id, outcome in self.scoring.process_batch(passing).items():
            results[submission_id] = (
                InjectedStreamFailure(f"first delivery of {submission_id} fails after scoring")
                if submission_id in after
                else outcome
            )
        return results


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.body


@dataclass
class Throttler:
    """Answers every `every`-th PutItem/UpdateItem with a throttling error, before moto sees it.

    Registered on `before-send`, the last hook before the HTTP request would leave: a response
    returned there is what botocore parses, so its standard retry mode sees a real
    ProvisionedThroughputExceededException (HTTP 400) and backs off and retries it. The
    `after-call` hook sees each call's final outcome, so absorbed throttles can be counted.
    """

    every: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    writes: int = 0
    injected: int = 0
    throttled_calls: set[str] = field(default_factory=set)
    absorbed: set[str] = field(default_factory=set)
    unabsorbed: set[str] = field(default_factory=set)

    def install(self, client: Any) -> None:
        for operation in ("PutItem", "UpdateItem"):
            client.meta.events.register(f"before-send.dynamodb.{operation}", self.before_send)
            client.meta.events.register(f"after-call.dynamodb.{operation}", self.after_call)

    def before_send(self, request: Any, **_: Any) -> AWSResponse | None:
        with self.lock:
            self.writes += 1
            if self.writes % self.every:
                return None
            self.injected += 1
            self.throttled_calls.add(request.context["retries"]["invocation-id"])
        body = json.dumps(
            {
                "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
                "message": "The level of configured provisioned throughput for the table was "
                "exceeded. Consider increasing your provisioning level with the UpdateTable API.",
            }
        ).encode()
        return AWSResponse(
            request.url,
            400,
            {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "throttled"},
            _Raw(body),
        )

    def after_call(self, parsed: Mapping[str, Any], context: Mapping[str, Any], **_: Any) -> None:
        invocation = context.get("retries", {}).get("invocation-id")
        if invocation not in self.throttled_calls:
            return
        code = parsed.get("Error", {}).get("Code")
        with self.lock:
            if code == "ProvisionedThroughputExceededException":
                self.unabsorbed.add(invocation)
            else:
                self.absorbed.add(invocation)


@dataclass
class BackoffClock:
    """Stands in for `time` in botocore.endpoint: records each backoff, sleeps it shorter."""

    compression: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    sleeps: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
        time.sleep(seconds / self.compression)


@pytest.fixture
def atomic_aws_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each AWS API call is atomic, as it is on AWS.

    moto's in-process backends are not thread-safe (a conditional put is a check, then a
    write; a query iterates a dict another thread may be adding to). conftest already
    serialises moto's DynamoDB dispatch (`local.moto_atomic`); here every service's calls
    (stream reads, SQS, SES too) from the client threads and the pump are serialised, one
    whole API call at a time. This lock is always taken first, so the two cannot deadlock.
    """
    lock = threading.RLock()
    original = BotocoreStubber.process_request

    def process_request(self: BotocoreStubber, request: Any) -> Any:
        with lock:
            return original(self, request)

    monkeypatch.setattr(BotocoreStubber, "process_request", process_request)


# -- recomputation from scratch --------------------------------------------------------------


def subscale_scores(instrument_id: str, responses: Mapping[str, Any]) -> dict[str, float | None]:
    """Each subscale's score from the stored responses (sum, prorated within max_missing)."""
    instrument = CATALOGUE.get(instrument_id)
    result: dict[str, float | None] = {}
    for sub in instrument.subscales:
        answered = [int(responses[str(i)]) for i in sub.items if responses.get(str(i)) is not None]
        missing = len(sub.items) - len(answered)
        if missing > sub.max_missing:
            result[sub.id] = None
        elif missing == 0:
            result[sub.id] = float(sum(answered))
        else:
            result[sub.id] = sum(answered) * len(sub.items) / len(answered)
    return result


def query(client: Any, **kwargs: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        page = client.query(**kwargs)
        items += [deserialize(i) for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def trial_submissions(client: Any) -> list[dict[str, Any]]:
    """Every submission item of the trial, whatever its key (GSI by_trial)."""
    return query(
        client,
        TableName=conftest.NAMES.submissions_table,
        IndexName="by_trial",
        KeyConditionExpression="trial_id = :t",
        ExpressionAttributeValues={":t": {"S": TRIAL_ID}},
    )


def trial_items(client: Any) -> list[dict[str, Any]]:
    """Participants, scores, aggregates and alerts of the trial (pk T#cmt-pilot)."""
    return query(
        client,
        TableName=conftest.NAMES.main_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": key_patterns.trial_pk(TRIAL_ID)}},
        ConsistentRead=True,
    )


def drain_queue(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            messages.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def close(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


# -- the test --------------------------------------------------------------------------------


def test_a_thousand_submissions_under_faults_are_stored_and_scored_exactly_once(
    aws: dict[str, Any],
    world: conftest.World,
    container: Container,
    atomic_aws_calls: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    started = time.perf_counter()
    rng = random.Random(SEED)
    # one server-side front end sends a thousand submissions from 8 threads as fast as it can:
    # its key's rate limit is raised for this test (test_api_keys_and_limits covers the 429s)
    container.key_limits = RateLimiter(RatePolicy(per_second=10_000, burst=10_000))
    app = create_app(container)
    participants = tuple(f"P{n:03d}" for n in range(1, N_PARTICIPANTS + 1))
    with TestClient(app) as setup_client:
        trial = conftest.make_trial(setup_client, container, participants=participants)
    jobs = build_workload(rng)

    # faults: stream failures on 5% of the slots, throttled writes, backoff recorded
    chosen = rng.sample([j.slot for j in jobs], int(len(jobs) * STREAM_FAILURE_SHARE))
    flaky = FlakyScoring(
        container.scoring,
        fail_before=set(chosen[: len(chosen) // 2]),
        fail_after=set(chosen[len(chosen) // 2 :]),
    )
    throttler = Throttler(every=THROTTLE_EVERY)
    throttler.install(world.adapters.dynamodb)
    backoff = BackoffClock(compression=BACKOFF_COMPRESSION)
    monkeypatch.setattr(botocore.endpoint, "time", backoff)

    queue_url = aws["sqs"].get_queue_url(QueueName=conftest.NAMES.dead_letter_queue)["QueueUrl"]
    pump = StreamPump(
        streams_client=aws["dynamodbstreams"],
        dynamodb_client=aws["dynamodb"],
        table_name=conftest.NAMES.submissions_table,
        handler=make_handler(flaky),  # duck-typed: the handler only calls .process_batch(...)
        sqs_client=aws["sqs"],
        dead_letter_queue_url=queue_url,
        region=conftest.REGION,
    )

    # the stream is pumped while submissions arrive, as Lambda would poll it
    stop_pumping = threading.Event()
    pump_errors: list[BaseException] = []

    def pump_loop() -> None:
        while not stop_pumping.is_set():
            try:
                if not pump.poll_once():
                    stop_pumping.wait(0.05)
            except BaseException as exc:  # surfaced by the assertion below
                pump_errors.append(exc)
                return

    # 8 client threads, each with its own TestClient, taking jobs in order
    work: queue.Queue[tuple[Job, int] | None] = queue.Queue()
    for job in jobs:
        work.put((job, 0))
        if job.sends == 2 and job.race is not None:
            work.put((job, 1))  # the concurrent retry: the next free thread takes it at once
    for _ in range(CLIENT_THREADS):
        work.put(None)
    answers: dict[tuple[str, str, str], list[tuple[int, str]]] = defaultdict(list)
    answers_lock = threading.Lock()
    client_errors: list[BaseException] = []

    def answered() -> int:
        with answers_lock:
            return sum(len(a) for a in answers.values())

    def client_loop() -> None:
        with TestClient(app, raise_server_exceptions=False) as client:
            while (taken := work.get()) is not None:
                job, _nth = taken
                try:
                    sends = 1 if job.race is not None else job.sends
                    for _ in range(sends):
                        if job.race is not None:
                            job.race.wait()
                        r = client.post(
                            f"/v1/trials/{TRIAL_ID}/submissions",
                            headers={**trial.submitter, "Idempotency-Key": job.idempotency_key},
                            json=job.body,
                        )
                        with answers_lock:
                            answers[job.slot].append((r.status_code, r.text))
                except BaseException as exc:
                    client_errors.append(exc)

    # permanently bad records, written straight into the table while the load runs
    bad_keys: list[dict[str, str]] = []

    def write_bad_record(n: int) -> None:
        pid = participants[n]
        key = key_patterns.submission(
            trial_id=TRIAL_ID,
            participant_id=pid,
            slot=Slot(instrument="diary", timepoint="week-11"),
            seq=0,
        )
        item = {
            **key,
            "entity": "submission",
            "submission_id": f"BAD{n:03d}",
            "trial_id": TRIAL_ID,
            "participant_id": pid,
            "instrument": "diary",
            "instrument_version": "99",
            "timepoint": "week-11",
            "completed_at": COMPLETED_AT,
            "received_at": "2026-03-02T09:31:00Z",
            "responses": {"1": 5},
            "seq": 0,
            "body_hash": "bad",
            "key_id": "injected",
            "role": "submitter",
            "trial_received": f"2026-03-02T09:31:00Z#BAD{n:03d}",
        }
        aws["dynamodb"].put_item(TableName=conftest.NAMES.submissions_table, Item=serialize(item))
        bad_keys.append(key)

    load_started = time.perf_counter()
    pumper = threading.Thread(target=pump_loop, name="pump")
    pumper.start()
    threads = [
        threading.Thread(target=client_loop, name=f"client-{n}") for n in range(CLIENT_THREADS)
    ]
    for t in threads:
        t.start()
    # one poison record mid-stream (the records behind it are redelivered with it until it
    # is given up), the others at the tail
    while answered() < len(jobs) // 2 and any(t.is_alive() for t in threads):
        time.sleep(0.05)
    write_bad_record(0)
    for t in threads:
        t.join()
    for n in range(1, BAD_RECORDS):
        write_bad_record(n)
    load_seconds = time.perf_counter() - load_started
    stop_pumping.set()
    pumper.join()
    assert not pump_errors, pump_errors
    assert not client_errors, client_errors
    pump.drain()
    total_seconds_before_checks = time.perf_counter() - started

    # every send was answered 201 (first) or 200/201 (replay), with one id per slot
    accepted: dict[tuple[str, str, str], str] = {}
    replays = 0
    for job in jobs:
        got = answers[job.slot]
        assert len(got) == job.sends, (job.slot, got)
        statuses = sorted(code for code, _ in got)
        assert all(code in (200, 201) for code in statuses), (job.slot, got)
        ids = {json.loads(text)["submission_id"] for _, text in got}
        assert len(ids) == 1, (job.slot, got)
        accepted[job.slot] = ids.pop()
        replays += job.sends - 1
    assert len(accepted) == len(jobs) == N_PARTICIPANTS * 25

    # stored once: the submissions table holds each accepted submission exactly once
    stored = [i for i in trial_submissions(aws["dynamodb"]) if i.get("entity") == "submission"]
    good = [i for i in stored if not i["submission_id"].startswith("BAD")]
    assert Counter(i["submission_id"] for i in good) == Counter(accepted.values())
    bodies = {j.slot: j.body for j in jobs}
    for item in good:
        slot = (item["participant_id"], item["instrument"], item["timepoint"])
        assert accepted[slot] == item["submission_id"]
        sent = bodies[slot]["responses"]
        assert item["responses"] == sent, slot
        assert item.get("notes") == bodies[slot].get("notes"), slot

    # scored once: one score item per accepted submission, no score for the bad records
    main_items = trial_items(aws["dynamodb"])
    score_items = [i for i in main_items if i.get("entity") == "score"]
    assert Counter(i["submission_id"] for i in score_items) == Counter(accepted.values())
    by_id = {i["submission_id"]: i for i in good}
    for score in score_items:
        expected = subscale_scores(score["instrument"], by_id[score["submission_id"]]["responses"])
        got_scores = {k: v.get("score") for k, v in score["subscales"].items()}
        assert got_scores.keys() == expected.keys()
        assert all(close(got_scores[k], expected[k]) for k in expected), (score, expected)

    # aggregates: no id set (the score items are the ledger); n/sum/sumsq as recomputed
    recomputed: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for item in good:
        for sub, value in subscale_scores(item["instrument"], item["responses"]).items():
            if value is not None:
                recomputed[(item["instrument"], item["timepoint"])][sub].append(value)
    aggregates = {
        tuple(i["sk"].split("#", 2)[1:]): i for i in main_items if i["sk"].startswith("AG#")
    }
    ids_by_cell: dict[tuple[str, str], set[str]] = defaultdict(set)
    for (_pid, instrument, timepoint), sid in accepted.items():
        ids_by_cell[(instrument, timepoint)].add(sid)
    assert set(aggregates) == set(ids_by_cell)
    for cell, item in aggregates.items():
        assert "applied" not in item, cell
        counting = {
            sc["submission_id"]
            for sc in score_items
            if (sc["instrument"], sc["timepoint"]) == cell and "superseded_by" not in sc
        }
        assert counting == ids_by_cell[cell], cell
        for sub in CATALOGUE.get(cell[0]).subscales:
            values = recomputed[cell][sub.id]
            assert int(item.get(f"n_{sub.id}", 0)) == len(values), (cell, sub.id)
            total = sum(Decimal(repr(v)) for v in values)
            assert math.isclose(float(item.get(f"sum_{sub.id}", 0)), float(total), rel_tol=1e-12)

    # the live summary (GET) equals the recomputation
    with TestClient(app) as client:
        summary = client.get(f"/v1/trials/{TRIAL_ID}/summary", headers=trial.coordinator)
        assert summary.status_code == 200, summary.text
        rows = summary.json()["aggregates"]
        assert len(rows) == sum(len(CATALOGUE.get(i).subscales) for i, _ in ids_by_cell)
        for row in rows:
            values = recomputed[(row["instrument"], row["timepoint"])][row["subscale"]]
            assert row["n"] == len(values)
            assert close(row["mean"], statistics.fmean(values) if values else None), row
            assert close(row["sd"], statistics.stdev(values) if len(values) > 1 else None), row
        adherence = {a["participant_id"]: a for a in summary.json()["diary_adherence"]}
        # a stored diary counts as submitted even when it could not be scored (the poison
        # records: a week-11 diary each), so those participants show one week more
        poisoned = {key["pk"].split("#P#")[1] for key in bad_keys}
        for pid, row in adherence.items():
            assert row["weeks_submitted"] == DIARY_WEEKS + (pid in poisoned), row

        report = client.post(f"/v1/trials/{TRIAL_ID}/reports/pre-post", headers=trial.coordinator)
        assert report.status_code == 200, report.text
        check_report(report.json(), good)

    # the on-failure queue holds exactly the permanently bad records (coordinates only)
    dead = drain_queue(aws["sqs"], queue_url)
    dead_keys = sorted((m["keys"]["pk"]["S"], m["keys"]["sk"]["S"]) for m in dead if "keys" in m)
    assert dead_keys == sorted((k["pk"], k["sk"]) for k in bad_keys)
    assert len(dead) == BAD_RECORDS
    assert pump.stats.dead_lettered == BAD_RECORDS

    # every injected stream failure was redelivered and survived (its submission is scored)
    assert sum(flaky.failed.values()) == len(chosen)
    scored_slots = {(s["participant_id"], s["instrument"], s["timepoint"]) for s in score_items}
    assert set(chosen) <= scored_slots

    # every throttle was absorbed by botocore's retries; none surfaced
    assert throttler.injected > 0
    assert not throttler.unabsorbed
    assert throttler.absorbed == throttler.throttled_calls

    # safety alerts: exactly one per qualifying submission, one e-mail each
    alert_items = [i for i in main_items if i.get("entity") == "alert"]
    qualifying = {
        by_id[sid]["submission_id"]
        for (_p, instrument, _t), sid in accepted.items()
        if instrument == "fscrs" and (by_id[sid]["responses"].get("9") or 0) >= 3
    }
    assert Counter(i["submission_id"] for i in alert_items) == Counter(qualifying)
    # each alert was decided once: e-mailed, or held back by a documented cap (one e-mail per
    # participant and rule per 24 hours; a trial's e-mails per hour), never both, never twice
    assert all(bool(i.get("sent_at")) != bool(i.get("suppressed")) for i in alert_items)
    emailed = [i for i in alert_items if i.get("sent_at")]
    held = Counter(i["suppressed"] for i in alert_items if i.get("suppressed"))
    assert set(held) <= {"participant_rule_24h", "trial_hourly_cap"}
    assert len({i["participant_id"] for i in emailed}) == len(emailed)  # one per participant
    assert len(emailed) <= conftest.settings_for_tests().alert_emails_per_trial_hour
    sent = int(aws["ses"].get_send_quota()["SentLast24Hours"])
    assert sent == len(emailed)

    lost = len(accepted) - len({s["submission_id"] for s in score_items} & set(accepted.values()))
    assert lost == 0
    print(
        f"\nfault injection: {len(accepted)} submissions accepted from {CLIENT_THREADS} "
        f"threads in {load_seconds:.1f} s; {replays} retried with the same Idempotency-Key "
        f"({sum(1 for j in jobs if j.race)} concurrently), all answered with the first id; "
        f"{len(chosen)} stream failures injected ({len(flaky.fail_before)} before, "
        f"{len(flaky.fail_after)} after scoring), {len(chosen)} survived; "
        f"{throttler.injected} of {throttler.writes} DynamoDB writes throttled, "
        f"{len(throttler.absorbed)} absorbed by botocore's standard retries "
        f"({len(backoff.sleeps)} backoffs, {sum(backoff.sleeps):.1f} s requested, slept "
        f"{BACKOFF_COMPRESSION}x shorter); pump: {pump.stats.batches} batches, "
        f"{pump.stats.records} record deliveries, {pump.stats.failures} failed; "
        f"DLQ: {len(dead)} (the {BAD_RECORDS} bad records); alerts: {len(alert_items)} "
        f"({sent} e-mails); records lost: {lost}; "
        f"{total_seconds_before_checks:.1f} s to drain, {time.perf_counter() - started:.1f} s "
        "in all"
    )


def check_report(report: Mapping[str, Any], stored: list[dict[str, Any]]) -> None:
    """The published pre/post report against statistics recomputed from the stored data."""
    values: dict[tuple[str, str, str, str], float | None] = {}
    for item in stored:
        if item["timepoint"] not in ("week-1", "week-12"):
            continue
        for sub, value in subscale_scores(item["instrument"], item["responses"]).items():
            values[(item["participant_id"], item["instrument"], sub, item["timepoint"])] = value
    participants = sorted({k[0] for k in values})
    assert report["comparison"] == {"pre": "week-1", "post": "week-12"}
    assert report["participants"]["enrolled"] == N_PARTICIPANTS
    assert report["participants"]["withdrawn"] == 0
    rows = {(r["instrument"], r["subscale"]): r for r in report["results"]}
    expected_rows = {
        (i.id, s.id) for i in CATALOGUE.instruments() if i.id != "diary" for s in i.subscales
    }
    assert expected_rows <= set(rows)
    for sub in CATALOGUE.get("diary").subscales:
        # diaries were only submitted for weeks 1-7: no week-12 pairs, statistics null
        assert rows[("diary", sub.id)]["n_pairs"] == 0
        assert rows[("diary", sub.id)]["wilcoxon"] is None
    for instrument, subscale in sorted(expected_rows):
        pairs = [
            (
                values[(p, instrument, subscale, "week-1")],
                values[(p, instrument, subscale, "week-12")],
            )
            for p in participants
            if values.get((p, instrument, subscale, "week-1")) is not None
            and values.get((p, instrument, subscale, "week-12")) is not None
        ]
        row = rows[(instrument, subscale)]
        assert row["n_pairs"] == len(pairs), (instrument, subscale)
        assert len(row["excluded"]) == N_PARTICIPANTS - len(pairs)
        pre = [a for a, _ in pairs]
        post = [b for _, b in pairs]
        for side, data in (("pre", pre), ("post", post)):
            assert close(row[side]["mean"], statistics.fmean(data)), (instrument, subscale)
            assert close(row[side]["sd"], statistics.stdev(data)), (instrument, subscale)
            assert close(row[side]["median"], statistics.median(data)), (instrument, subscale)
        # v1.1: ties are decided on differences rounded to 1e-9, so that mathematically
        # equal prorated differences tie (API.md, "The pre/post report, v1.1 fields")
        diffs = [round(b - a, 9) for a, b in pairs]
        nonzero = [d for d in diffs if d != 0]
        w = row["wilcoxon"]
        assert w["n_nonzero"] == len(nonzero)
        # scipy.stats.wilcoxon(post - pre, zero_method="wilcox", correction=False,
        #                      method="approx"): zeros dropped, tie-corrected z, no continuity
        reference = stats.wilcoxon(diffs, zero_method="wilcox", correction=False, method="approx")
        ranks = stats.rankdata([abs(d) for d in nonzero])
        w_plus = float(sum(r for r, d in zip(ranks, nonzero, strict=True) if d > 0))
        w_minus = float(sum(r for r, d in zip(ranks, nonzero, strict=True) if d < 0))
        assert close(w["w_plus"], w_plus)
        assert close(w["w_minus"], w_minus)
        assert close(w["t"], float(reference.statistic))
        assert close(w["p_two_sided"], float(reference.pvalue)), (instrument, subscale, w)
        assert close(w["z"], -abs(float(reference.zstatistic)))
        assert close(row["effect_size_r"], w["z"] / math.sqrt(len(pairs)))
        direction = "increase" if w_plus > w_minus else "decrease" if w_minus > w_plus else "none"
        assert row["direction"] == direction
