"""Figure 4: the stream function scoring Lambda-shaped batches of 100 records, on moto.

Submissions are stored through the submit service (the items the API would store), then
`local.pump.StreamPump` reads the submissions table's stream from moto and hands batches of
up to 100 records to `make_handler(container.scoring)`, the stream function's handler. Only
the handler call is timed. Right after each batch, the same number of bare `PutItem`s of the
batch's own submission images is timed through the same client: the baseline is "one write
per record", which no scoring can beat.
"""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from moto_stack import (
    REGION,
    CallCounter,
    LambdaContext,
    bench_names,
    create_resources,
    quiet_service_logs,
    settings_for,
)
from timing import Summary, fmt_ms, ratio, summarize

__all__ = ["StreamResult", "measure_stream"]

TRIAL_ID = "bench-stream"
TIMEPOINTS = ("week-1", "week-12", "follow-up")


@dataclass(frozen=True)
class StreamResult:
    records: int
    batches: int
    handler_seconds: float
    baseline_seconds: float
    per_record: Summary  # handler seconds per record, one value per batch
    baseline_per_record: Summary  # bare PutItem seconds per record, one value per batch
    calls_per_record: float
    operations: dict[str, float]
    failures: int

    @property
    def records_per_second(self) -> float:
        return self.records / self.handler_seconds

    @property
    def baseline_per_second(self) -> float:
        return self.records / self.baseline_seconds

    @property
    def ratio(self) -> float:
        """Scoring time per record over bare-put time per record (medians of the batches)."""
        return ratio(self.per_record, self.baseline_per_record)

    def section(self) -> str:
        rows = "\n".join(
            f"| {name} | {rate:,.0f} /s | {fmt_ms(s.median)} | {fmt_ms(s.p95)} | {fmt_ms(s.iqr)} |"
            for name, rate, s in (
                ("stream handler (scoring)", self.records_per_second, self.per_record),
                ("bare PutItem, same count", self.baseline_per_second, self.baseline_per_record),
            )
        )
        operations = ", ".join(f"{op} {n:.3g}" for op, n in sorted(self.operations.items()))
        return f"""\
{self.records} submissions ({self.batches} Lambda-shaped batches from `local.pump`), scored by
`handlers.stream_batch.make_handler(container.scoring)`; per-record figures are one value per
batch (batch time / batch size). Failed records reported by the handler: {self.failures}.

| | throughput (total) | per record: median | p95 | IQR |
| --- | --- | --- | --- | --- |
{rows}

**Ratio (scoring / bare put, medians per record): {self.ratio:.2f}**: a record costs about
as much as {self.ratio:.1f} bare writes. DynamoDB calls per record:
{self.calls_per_record:.2f} ({operations}). Each step is its own conditional write, because
each must be idempotent on its own (see `services/score_submission.py`), so the handler's
time is almost all round trips: the ratio is roughly the calls per record times the extra
cost of a conditional write or update over a bare put on moto.
"""


def _responses(rng: random.Random) -> dict[str, int]:
    return {str(item): rng.randint(0, 3) for item in range(1, 15)}


def measure_stream(batches: int) -> StreamResult:
    """Run after the environment points at moto (AWS_ENDPOINT_URL)."""
    from handlers.stream_batch import make_handler
    from handlers.wiring import build, build_adapters
    from local.pump import BATCH_SIZE, StreamPump
    from services.auth import Principal
    from services.submit import SubmissionInput
    from services.trials import TrialInput

    names = bench_names("bench-stream")
    clients = create_resources(names)
    quiet_service_logs()
    adapters = build_adapters(settings_for(names))
    container = build(settings_for(names), adapters=adapters)
    trial, _ = container.trials.put(
        TRIAL_ID,
        TrialInput(
            title="Stream benchmark",
            coordinator_emails=["coordinator@example.org"],
            protocol=None,
            alert_rules=None,
        ),
    )
    total = BATCH_SIZE * batches
    participants = [f"S{n:05d}" for n in range(math.ceil(total / len(TIMEPOINTS)))]
    for participant_id in participants:
        container.participants.enrol(trial, participant_id)
    principal = Principal(key_id="k_bench", role="submitter", trial_id=TRIAL_ID)
    rng = random.Random(20261126)
    completed = datetime.now(UTC) - timedelta(hours=1)
    for n in range(total):
        container.submit.submit(
            trial=trial,
            principal=principal,
            data=SubmissionInput(
                participant_id=participants[n // len(TIMEPOINTS)],
                instrument="hads",
                instrument_version="1",
                timepoint=TIMEPOINTS[n % len(TIMEPOINTS)],
                completed_at=completed,
                responses=_responses(rng),
                notes=None,
                supersedes=None,
            ),
            idempotency_key=None,
        )

    client = adapters.dynamodb
    scorer = make_handler(container.scoring)
    counter = CallCounter(client)
    per_record: list[float] = []
    baseline_per_record: list[float] = []
    handler_seconds = baseline_seconds = 0.0
    operations: Counter[str] = Counter()
    failures = 0
    scored = 0

    def timed_handler(event: dict[str, Any], _context: Any) -> dict[str, Any]:
        nonlocal handler_seconds, baseline_seconds, failures, scored
        records = event["Records"]
        counter.take()
        started = time.perf_counter()
        response = scorer(event, LambdaContext())
        elapsed = time.perf_counter() - started
        operations.update(counter.take())
        failures += len(response.get("batchItemFailures", []))
        scored += len(records)
        started = time.perf_counter()
        for record in records:
            image = record["dynamodb"]["NewImage"]
            item = {**image, "pk": {"S": "BASELINE#" + record["dynamodb"]["SequenceNumber"]}}
            client.put_item(TableName=names.main_table, Item=item)
        put_elapsed = time.perf_counter() - started
        counter.take()
        handler_seconds += elapsed
        baseline_seconds += put_elapsed
        per_record.append(elapsed / len(records))
        baseline_per_record.append(put_elapsed / len(records))
        return response

    pump = StreamPump(
        streams_client=clients["dynamodbstreams"],
        dynamodb_client=clients["dynamodb"],
        table_name=names.submissions_table,
        handler=timed_handler,
        sqs_client=clients["sqs"],
        dead_letter_queue_url=clients["sqs"].get_queue_url(QueueName=names.dead_letter_queue)[
            "QueueUrl"
        ],
        region=REGION,
    )
    try:
        # pump.drain() would retry failed records for a long while; a failure here means the
        # code under test is broken, so stop at the first batch that reports one
        while pump.poll_once():
            if failures or pump.stats.failures:
                raise RuntimeError(
                    f"the stream handler reported {failures or pump.stats.failures} failed "
                    "records; scoring is broken, so there is no throughput to report"
                )
    finally:
        counter.close()
    stored = len(adapters.stores.scores.list_scores(TRIAL_ID))
    if stored != total or pump.stats.dead_lettered:
        raise RuntimeError(
            f"{stored} of {total} submissions scored, {pump.stats.dead_lettered} dead-lettered"
        )
    return StreamResult(
        records=scored,
        batches=len(per_record),
        handler_seconds=handler_seconds,
        baseline_seconds=baseline_seconds,
        per_record=summarize(per_record),
        baseline_per_record=summarize(baseline_per_record),
        calls_per_record=sum(operations.values()) / scored,
        operations={op: n / scored for op, n in operations.items()},
        failures=failures,
    )
