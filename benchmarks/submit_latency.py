"""Figures 2 and 3: a warm API function accepting submissions, on moto in server mode.

`handlers.api.handler` (Mangum around the FastAPI app, exactly what Lambda invokes) is called
with HTTP API v2 events, each for a fresh participant/timepoint slot so every one is accepted
(201). The baseline is one bare conditional `PutItem` of the same stored item, through the
same boto3 client (same config, same connection pool), made right after each request: a warm
function cannot accept a submission faster than the one write it must make.

DynamoDB calls are counted with a `before-call.dynamodb.*` hook on the container's client.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from moto_stack import CallCounter, LambdaContext, api_gateway_v2_event
from timing import Summary, fmt_ms, ratio, summarize

__all__ = ["SubmitResult", "Variant", "measure_submissions"]

TRIAL_ID = "bench-submit"
TARGET_CALLS_WITHOUT_KEY = 2
#: warm submission without Idempotency-Key against a bare conditional put (issue 11.6)
TARGET_RATIO_WITHOUT_KEY = 2.0
HADS_RESPONSES = {
    "1": 2, "2": 0, "3": 3, "4": 1, "5": 2, "6": 1, "7": 0,
    "8": 2, "9": 1, "10": 3, "11": 2, "12": 1, "13": 2, "14": 0,
}  # fmt: skip
# (label, Idempotency-Key sent?, timepoint used): one slot per participant per variant
VARIANTS = (("without Idempotency-Key", False, "week-1"), ("with Idempotency-Key", True, "week-12"))


@dataclass(frozen=True)
class Variant:
    label: str
    api: Summary
    bare_put: Summary
    calls: Summary  # DynamoDB calls per accepted submission
    operations: dict[str, float]  # mean calls per submission, by operation

    @property
    def ratio(self) -> float:
        return ratio(self.api, self.bare_put)


@dataclass(frozen=True)
class SubmitResult:
    variants: tuple[Variant, ...]
    submissions: int
    warmup: int

    @property
    def without_key(self) -> Variant:
        return self.variants[0]

    @property
    def with_key(self) -> Variant:
        return self.variants[1]

    @property
    def meets_call_target(self) -> bool:
        return self.without_key.calls.median <= TARGET_CALLS_WITHOUT_KEY

    def latency_section(self) -> str:
        rows = []
        for v in self.variants:
            for name, s in (
                (f"API, {v.label}", v.api),
                ("bare conditional PutItem (same item)", v.bare_put),
            ):
                rows.append(
                    f"| {name} | {fmt_ms(s.median)} | {fmt_ms(s.p95)} | {fmt_ms(s.iqr)} | "
                    f"{fmt_ms(s.minimum)} | {fmt_ms(s.maximum)} |"
                )
            rows.append(f"| **ratio of medians** | **{v.ratio:.2f}** | | | | |")
        table = "\n".join(rows)
        return f"""\
{self.submissions} accepted submissions per variant after {self.warmup} discarded warm-up
requests, API requests and bare puts interleaved (variant order alternating). Each request is
`handlers.api.handler(event, context)` with an HTTP API v2 event; the time includes Mangum,
FastAPI validation, authentication (key cached after the first request, as in a warm
function), the trial (cached 30 s) and the DynamoDB round trips to moto over loopback HTTP.

| per submission | median | p95 | IQR | min | max |
| --- | --- | --- | --- | --- | --- |
{table}
"""

    def calls_section(self) -> str:
        rows = "\n".join(
            f"| {v.label} | {v.calls.median:g} | {v.calls.minimum:g} | {v.calls.maximum:g} | "
            f"{v.calls.mean:.2f} | {_operations(v.operations)} |"
            for v in self.variants
        )
        met = "met" if self.meets_call_target else "NOT met"
        return f"""\
Counted per request on the warm function of figure 2 (same requests).

| DynamoDB calls per accepted submission | median | min | max | mean | operations (mean) |
| --- | --- | --- | --- | --- | --- |
{rows}

Target without Idempotency-Key: median ≤ {TARGET_CALLS_WITHOUT_KEY} ({met}).
A warm function re-reads the API key at most every 60 s and the trial at most every 30 s
(one GetItem each), so over a long enough run the mean creeps above the per-request floor.
"""


def _operations(ops: dict[str, float]) -> str:
    return ", ".join(f"{name} {count:g}" for name, count in sorted(ops.items()))


def _body(participant_id: str, timepoint: str) -> dict[str, Any]:
    completed = datetime.now(UTC) - timedelta(hours=1)
    return {
        "participant_id": participant_id,
        "instrument": "hads",
        "instrument_version": "1",
        "timepoint": timepoint,
        "completed_at": completed.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "responses": HADS_RESPONSES,
        "notes": None,
    }


def measure_submissions(count: int, warmup: int = 5) -> SubmitResult:
    """Run after the environment points at moto with this benchmark's table names."""
    import handlers.api as api
    from adapters import keys
    from domain.trial import Slot
    from services.trials import TrialInput

    container = api.container
    client = api.adapters.dynamodb
    table = container.settings.submissions_table
    trial, _ = container.trials.put(
        TRIAL_ID,
        TrialInput(
            title="Benchmark trial",
            coordinator_emails=["coordinator@example.org"],
            protocol=None,
            alert_rules=None,
        ),
    )
    api_key = container.keys.create(role="submitter", trial_id=TRIAL_ID, label="bench").api_key
    participants = [f"B{n:05d}" for n in range(count + warmup + 1)]
    for participant_id in participants:
        container.participants.enrol(trial, participant_id)

    def submit(participant_id: str, timepoint: str, *, keyed: bool) -> float:
        headers = {"authorization": f"Bearer {api_key}"}
        if keyed:
            headers["idempotency-key"] = str(uuid.uuid4())
        event = api_gateway_v2_event(
            method="POST",
            path=f"/v1/trials/{TRIAL_ID}/submissions",
            body=_body(participant_id, timepoint),
            headers=headers,
        )
        context = LambdaContext()
        started = time.perf_counter()
        response = api.handler(event, context)
        elapsed = time.perf_counter() - started
        if response.get("statusCode") != 201:
            raise RuntimeError(f"submission not accepted: {response}")
        return elapsed

    # the first participant's stored items are the templates of the baseline puts
    templates: dict[bool, dict[str, Any]] = {}
    for _, keyed, timepoint in VARIANTS:
        submit(participants[0], timepoint, keyed=keyed)
        key = keys.submission(
            trial_id=TRIAL_ID,
            participant_id=participants[0],
            slot=Slot(instrument="hads", timepoint=timepoint),
            seq=0,
        )
        stored = client.get_item(
            TableName=table,
            Key={"pk": {"S": key["pk"]}, "sk": {"S": key["sk"]}},
            ConsistentRead=True,
        )
        templates[keyed] = stored["Item"]

    api_times: dict[bool, list[float]] = {False: [], True: []}
    put_times: dict[bool, list[float]] = {False: [], True: []}
    call_counts: dict[bool, list[Counter[str]]] = {False: [], True: []}
    counter = CallCounter(client)
    try:
        for n, participant_id in enumerate(participants[1:]):
            order = VARIANTS if n % 2 == 0 else VARIANTS[::-1]
            for _, keyed, timepoint in order:
                counter.take()
                seconds = submit(participant_id, timepoint, keyed=keyed)
                calls = counter.take()
                item = {**templates[keyed], "pk": {"S": f"BASELINE#{keyed:d}#{participant_id}"}}
                started = time.perf_counter()
                # the floor: the same item, written once, on the same condition the
                # submission's own write carries (no item with this key yet)
                client.put_item(
                    TableName=table, Item=item, ConditionExpression="attribute_not_exists(pk)"
                )
                put_seconds = time.perf_counter() - started
                if n >= warmup:
                    api_times[keyed].append(seconds)
                    put_times[keyed].append(put_seconds)
                    call_counts[keyed].append(calls)
    finally:
        counter.close()

    variants = []
    for label, keyed, _ in VARIANTS:
        counts = call_counts[keyed]
        operations: Counter[str] = Counter()
        for c in counts:
            operations.update(c)
        variants.append(
            Variant(
                label=label,
                api=summarize(api_times[keyed]),
                bare_put=summarize(put_times[keyed]),
                calls=summarize([float(sum(c.values())) for c in counts]),
                operations={op: total / len(counts) for op, total in operations.items()},
            )
        )
    return SubmitResult(variants=tuple(variants), submissions=count, warmup=warmup)
