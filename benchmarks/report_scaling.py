"""Figure 5: the pre/post report's wall time and DynamoDB calls as the trial grows.

One trial is seeded up to each size in turn, straight into the main table through the
participant and score adapters (participant items, and HADS week-1 and week-12 scores computed
by the domain's own scoring from random responses; sent by BatchWriteItem for speed), then
`container.reporting.publish(trial)` runs: two paged Queries, the statistics, the SVG
figures, the S3 objects and one audit event. The baseline is the bare paged Queries of the
same items through the same client (no deserialising, no statistics, no S3): the least any
report over these items must read.

The statistics and figures alone (`ReportService.compute` over the same records held in
memory) are also timed in a fresh interpreter, whose peak memory is compared with the
memory the template gives the functions that compute reports.
"""

from __future__ import annotations

import json
import math
import pathlib
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from moto_stack import CallCounter, PatientSession, bench_names, create_resources, settings_for
from timing import LinearFit, Summary, fmt_ms, linear_fit, ratio, summarize

__all__ = [
    "BatchedTable",
    "ComputeProfile",
    "ReportResult",
    "ReportSize",
    "compute_profile",
    "measure_report",
    "trial_records",
]

BENCH_DIR = pathlib.Path(__file__).resolve().parent
TRIAL_ID = "bench-report"
SEED = 20261126
# the functions whose code computes a pre/post report: the nightly one, and the API's
# POST /v1/trials/{id}/reports/pre-post
REPORTING_FUNCTIONS = ("PrePostReportFunction", "ApiFunction")
_COLUMNS = (
    "participants",
    "runs",
    "publish: median",
    "p95",
    "IQR",
    "bare paged Queries: median",
    "ratio",
    "DynamoDB calls (publish)",
    "calls (bare Queries)",
    "S3 calls",
)
_COMPUTE_COLUMNS = (
    "participants",
    "statistics + figures: median",
    "peak RSS of the process",
    "added by computing",
)


def _header(columns: Sequence[str]) -> str:
    return "| " + " | ".join(columns) + " |\n|" + " --- |" * len(columns)


@dataclass(frozen=True)
class ComputeProfile:
    """`ReportService.compute` on in-memory records, in a fresh interpreter."""

    seconds: Summary
    peak_rss_mb: float  # the whole process, records included
    compute_rss_mb: float | None  # how far computing lifts the peak above the RSS before


@dataclass(frozen=True)
class ReportSize:
    participants: int
    publish: Summary
    bare_read: Summary
    compute: ComputeProfile
    dynamodb_calls: int
    operations: dict[str, int]
    bare_read_calls: int
    s3_calls: int
    seed_seconds: float

    @property
    def ratio(self) -> float:
        return ratio(self.publish, self.bare_read)


@dataclass(frozen=True)
class ReportResult:
    sizes: tuple[ReportSize, ...]
    repeats: int
    large_repeats: int
    large_from: int
    calls_fit: LinearFit
    memory_limits: dict[str, int]  # function -> MemorySize (MB) from the template
    skipped: tuple[int, ...]
    failed: tuple[tuple[int, str], ...] = ()

    @property
    def largest(self) -> ReportSize:
        return self.sizes[-1]

    @property
    def smallest_memory(self) -> tuple[str, int]:
        return min(self.memory_limits.items(), key=lambda kv: kv[1])

    def growth(self, attribute: str) -> list[tuple[int, int, float]]:
        """Exponent k of time ∝ n^k between consecutive sizes."""
        out = []
        for a, b in zip(self.sizes, self.sizes[1:], strict=False):
            ta = a.publish.median if attribute == "publish" else a.compute.seconds.median
            tb = b.publish.median if attribute == "publish" else b.compute.seconds.median
            if ta > 0 and tb > 0:
                k = math.log(tb / ta) / math.log(b.participants / a.participants)
                out.append((a.participants, b.participants, k))
        return out

    def section(self) -> str:
        rows = "\n".join(
            f"| {s.participants:,} | {s.publish.n} | {fmt_ms(s.publish.median)} | "
            f"{_spread(s.publish.p95, s.publish)} | {_spread(s.publish.iqr, s.publish)} | "
            f"{fmt_ms(s.bare_read.median)} | {s.ratio:.2f} | "
            f"{s.dynamodb_calls} ({_operations(s.operations)}) | {s.bare_read_calls} | "
            f"{s.s3_calls} |"
            for s in self.sizes
        )
        compute_rows = "\n".join(
            f"| {s.participants:,} | {fmt_ms(s.compute.seconds.median)} | "
            f"{s.compute.peak_rss_mb:,.0f} MB | "
            + (
                f"{s.compute.compute_rss_mb:,.0f} MB |"
                if s.compute.compute_rss_mb is not None
                else "n/a |"
            )
            for s in self.sizes
        )
        notes = ""
        if self.skipped:
            notes += (
                f"\nSkipped in this run: {', '.join(f'{n:,}' for n in self.skipped)} "
                "participants (CMT_BENCH_QUICK=1 or CMT_BENCH_REPORT_SIZES).\n"
            )
        for size, error in self.failed:
            notes += (
                f"\n**Failed at {size:,} participants** (larger sizes not attempted): "
                f"`{error[:300]}`\n"
            )
        fit = self.calls_fit
        growth = "; ".join(
            f"{a:,} → {b:,}: publish n^{kp:.2f}, statistics + figures n^{kc:.2f}"
            for (a, b, kp), (_, _, kc) in zip(
                self.growth("publish"), self.growth("compute"), strict=True
            )
        )
        limits = ", ".join(f"{name} {mb} MB" for name, mb in sorted(self.memory_limits.items()))
        largest = self.largest
        verdict = ", ".join(
            f"{'fits' if largest.compute.peak_rss_mb < mb else '**does not fit**'} in "
            f"{name}'s {mb} MB"
            for name, mb in sorted(self.memory_limits.items(), key=lambda kv: kv[1])
        )
        return f"""\
{self.repeats} publishes per size ({self.large_repeats} from {self.large_from:,} participants:
moto answers a Query at roughly 3 ms per score item, so one read of 10,000 participants'
items takes minutes of moto's time); each publish is followed by the bare paged Queries of the
same items. Each participant has a HADS week-1 and week-12 score, both subscales paired.
Calls are counted on the container's DynamoDB and S3 clients.

{_header(_COLUMNS)}
{rows}
{notes}
Least-squares fit of DynamoDB calls against participants n: **calls = {fit.intercept:.2f} +
{fit.slope:.6f} · n**, i.e. **b = {fit.slope:.6f}** ({fit.slope * 1000:.2f} calls per 1,000
participants; largest residual {fit.max_residual:.2f} calls). The calls are Query pages
(DynamoDB returns at most 1 MB per page) plus one audit PutItem, so they grow linearly with
this trial's items only, and there is no call per participant.

Statistics and figures without I/O (`ReportService.compute` over the same records in memory,
in a fresh interpreter; peak RSS is the process's VmHWM). Memory the template gives the functions
that compute this report: {limits}.

{_header(_COMPUTE_COLUMNS)}
{compute_rows}

Growth of the median times between sizes (time ∝ n^k): {growth}. At
{largest.participants:,} participants the process peaks at {largest.compute.peak_rss_mb:,.0f}
MB, which {verdict} (the Lambda runtime, boto3 and the items as read need memory on
top of this).
"""


def _spread(value: float, sample: Summary) -> str:
    return fmt_ms(value) if sample.n >= 3 else "n/a"


def _operations(ops: Mapping[str, int]) -> str:
    return ", ".join(f"{op} {n}" for op, n in sorted(ops.items()))


def trial_records(first: int, last: int) -> tuple[list[Any], list[Any]]:
    """Participants `first`..`last - 1` of the benchmark trial and their HADS scores.

    Each participant's responses come from its own seeded generator, so a fresh process
    rebuilds exactly the records the store holds.
    """
    from domain.submissions import SubmissionRecord
    from domain.trial import Participant
    from services.clock import iso, new_ulid
    from services.score_submission import to_score_record

    start = datetime(2026, 8, 1, tzinfo=UTC)
    participants = []
    scores = []
    for n in range(first, last):
        rng = random.Random(SEED * 1_000_003 + n)
        participant = Participant(
            trial_id=TRIAL_ID,
            participant_id=f"R{n:06d}",
            status="active",
            enrolled_at=iso(start),
            status_changed_at=iso(start),
        )
        participants.append(participant)
        for week, timepoint in ((1, "week-1"), (12, "week-12")):
            # a little lower at week 12 on average, as a programme that helps would be
            ceiling = 3 if week == 1 else 2
            completed = start + timedelta(weeks=week - 1, minutes=n)
            submission = SubmissionRecord(
                trial_id=TRIAL_ID,
                participant_id=participant.participant_id,
                submission_id=new_ulid(int(completed.timestamp() * 1000)),
                instrument="hads",
                instrument_version="1",
                timepoint=timepoint,
                seq=0,
                completed_at=iso(completed),
                received_at=iso(completed),
                responses={item: rng.randint(0, ceiling) for item in range(1, 15)},
            )
            scores.append(to_score_record(submission, iso(completed)))
    return participants, scores


class InMemoryScores:
    """What `ReportService.compute` reads, already in memory (for the no-I/O timing)."""

    def __init__(self, participants: list[Any], scores: list[Any]) -> None:
        self.participants = participants
        self.scores = scores

    def list_participants(self, _trial_id: str) -> list[Any]:
        return self.participants

    def list_scores(self, _trial_id: str) -> list[Any]:
        return self.scores

    def scores_by_participant(self, _trial_id: str) -> Iterator[list[Any]]:
        from domain.report import group_by_participant

        yield from group_by_participant(self.scores)


def _status_kib(field: str) -> int | None:
    """A `VmRSS`/`VmHWM` figure of this process from /proc (Linux), in KiB."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Make VmHWM start again from the current RSS (Linux 4.0+); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def compute_profile(size: int, repeats: int) -> dict[str, Any]:
    """Run in a fresh interpreter: time `ReportService.compute` and watch the peak RSS.

    The peak is read from /proc/self/status (VmHWM): `getrusage`'s ru_maxrss would also
    count the parent's memory at fork, here the benchmark process with moto's tables.
    """
    import gc
    import resource

    from domain.trial import Trial, default_protocol
    from services.clock import utc_now
    from services.reporting import ReportService

    participants, scores = trial_records(0, size)
    trial = Trial(
        trial_id=TRIAL_ID,
        title="Report benchmark",
        coordinator_emails=(),
        protocol=default_protocol(),
        alert_rules=(),
        created_at="2026-08-01T00:00:00.000Z",
        updated_at="2026-08-01T00:00:00.000Z",
    )
    store: Any = InMemoryScores(participants, scores)
    # compute() reads only the store and the clock; no bucket or audit log is needed
    service = ReportService(
        trials=store,
        participants=store,
        scores=store,
        bucket=None,  # type: ignore[arg-type]
        audit=None,  # type: ignore[arg-type]
        clock=utc_now,
        software_version="bench",
    )
    gc.collect()
    peak_before = _status_kib("VmHWM")
    rss_before = _status_kib("VmRSS")
    reset = _reset_peak()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        service.compute(trial)
        seconds.append(time.perf_counter() - started)
    peak_after = _status_kib("VmHWM")
    if peak_after is None or peak_before is None or rss_before is None:
        # not Linux: fall back to getrusage (KiB on Linux, bytes on macOS; close enough here)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return {"seconds": seconds, "peak_kib": peak, "compute_kib": None}
    return {
        "seconds": seconds,
        "peak_kib": max(peak_before, peak_after),
        "compute_kib": peak_after - rss_before if reset else None,
    }


_PROFILE = (
    "import json, sys; sys.path.insert(0, sys.argv[1]); "
    "from report_scaling import compute_profile; "
    "print(json.dumps(compute_profile(int(sys.argv[2]), int(sys.argv[3]))))"
)


def _compute_in_fresh_process(size: int, repeats: int) -> ComputeProfile:
    done = subprocess.run(
        [sys.executable, "-c", _PROFILE, str(BENCH_DIR), str(size), str(repeats)],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"computing the report for {size} failed:\n{done.stderr[-2000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return ComputeProfile(
        seconds=summarize(out["seconds"]),
        peak_rss_mb=out["peak_kib"] / 1024,
        compute_rss_mb=None if out["compute_kib"] is None else out["compute_kib"] / 1024,
    )


class BatchedTable:
    """A `DynamoTable` stand-in for seeding: the store's puts, sent 25 at a time.

    The adapters build the items exactly as in production; only the transport differs
    (BatchWriteItem instead of one conditional PutItem each, for speed). Conditions are
    dropped: every seeded key is new.
    """

    def __init__(self, client: Any, name: str) -> None:
        self.client = client
        self.name = name
        self.pending: list[dict[str, Any]] = []

    def put(self, item: Mapping[str, Any], **_: Any) -> None:
        from adapters.dynamodb import serialize

        self.pending.append({"PutRequest": {"Item": serialize(item)}})
        if len(self.pending) >= 25:
            self.flush()

    def flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[:25], self.pending[25:]
            response = self.client.batch_write_item(RequestItems={self.name: batch})
            self.pending.extend(response.get("UnprocessedItems", {}).get(self.name, []))


def _bare_read(client: Any, table: str, pk: str, prefix: str) -> int:
    """Every page of one Query, as raw DynamoDB JSON; returns the number of pages."""
    pages = 0
    start: dict[str, Any] | None = None
    while True:
        kwargs: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":prefix": {"S": prefix}},
        }
        if start:
            kwargs["ExclusiveStartKey"] = start
        response = client.query(**kwargs)
        pages += 1
        start = response.get("LastEvaluatedKey")
        if not start:
            return pages


def measure_report(
    sizes: Sequence[int],
    repeats: int,
    skipped: Sequence[int] = (),
    *,
    large_from: int = 10_000,
    large_repeats: int = 1,
) -> ReportResult:
    """Run after the environment points at moto (AWS_ENDPOINT_URL)."""
    from package_size import template_functions

    from adapters import keys
    from adapters.participant_store import ParticipantTable
    from adapters.score_store import ScoreTable
    from handlers.wiring import build, build_adapters
    from services.trials import TrialInput

    memory_limits = {
        f.logical_id: f.memory_mb
        for f in template_functions()
        if f.logical_id in REPORTING_FUNCTIONS
    }
    names = bench_names("bench-report")
    create_resources(names)
    adapters = build_adapters(settings_for(names), session=PatientSession())  # type: ignore[arg-type]
    container = build(settings_for(names), adapters=adapters)
    trial, _ = container.trials.put(
        TRIAL_ID,
        TrialInput(
            title="Report benchmark",
            coordinator_emails=["coordinator@example.org"],
            protocol=None,
            alert_rules=None,
        ),
    )
    seed_table = BatchedTable(adapters.dynamodb, names.main_table)
    seed_participants = ParticipantTable(seed_table)  # type: ignore[arg-type]
    seed_scores = ScoreTable(seed_table)  # type: ignore[arg-type]
    reporting = container.reporting
    dynamodb = CallCounter(adapters.dynamodb)
    s3 = CallCounter(adapters.s3, service="s3")
    seeded = 0

    def measure_size(size: int) -> ReportSize:
        nonlocal seeded
        seed_started = time.perf_counter()
        participants, scores = trial_records(seeded, size)
        for participant in participants:
            seed_participants.enrol(participant)
        for score in scores:
            seed_scores.put_score(score)
        seed_table.flush()
        seeded = size
        seed_seconds = time.perf_counter() - seed_started

        runs = large_repeats if size >= large_from else repeats
        publish_times: list[float] = []
        read_times: list[float] = []
        calls: Counter[str] = Counter()
        read_calls = s3_calls = 0
        for _ in range(runs):
            dynamodb.take()
            s3.take()
            started = time.perf_counter()
            report = reporting.publish(trial)
            publish_times.append(time.perf_counter() - started)
            calls = dynamodb.take()
            s3_calls = s3.total
            pairs = {row["n_pairs"] for row in report["results"] if row["instrument"] == "hads"}
            if pairs != {size}:
                raise RuntimeError(f"expected {size} HADS pairs, the report has {pairs}")
            started = time.perf_counter()
            read_calls = sum(
                _bare_read(adapters.dynamodb, names.main_table, keys.trial_pk(TRIAL_ID), p)
                for p in (keys.PARTICIPANT_PREFIX, keys.SCORE_PREFIX)
            )
            read_times.append(time.perf_counter() - started)
        return ReportSize(
            participants=size,
            publish=summarize(publish_times),
            bare_read=summarize(read_times),
            compute=_compute_in_fresh_process(size, max(3, runs) if size < large_from else 1),
            dynamodb_calls=sum(calls.values()),
            operations=dict(calls),
            bare_read_calls=read_calls,
            s3_calls=s3_calls,
            seed_seconds=seed_seconds,
        )

    results: list[ReportSize] = []
    failed: list[tuple[int, str]] = []
    try:
        for size in sorted(sizes):
            try:
                results.append(measure_size(size))
            except Exception as exc:  # noqa: BLE001 (larger sizes would fail the same way)
                failed.append((size, f"{type(exc).__name__}: {exc}"))
                break
    finally:
        dynamodb.close()
        s3.close()
    if len(results) < 2:
        raise RuntimeError(f"fewer than two sizes measured; failed: {failed}")
    xs = [float(s.participants) for s in results]
    return ReportResult(
        sizes=tuple(results),
        repeats=repeats,
        large_repeats=large_repeats,
        large_from=large_from,
        calls_fit=linear_fit(xs, [float(s.dynamodb_calls) for s in results]),
        memory_limits=memory_limits,
        skipped=tuple(skipped),
        failed=tuple(failed),
    )
