"""The bulk read of an export job: botocore's parser and the garbage collector, measured.

An export job reads every score item of a trial (30 per participant in the default protocol:
six questionnaires at three timepoints and twelve weekly diaries). This measures the cost of
turning the Query answers into `ScoreRecord`s, the part of the read that is ours to make lean,
apart from DynamoDB's (or moto's) own time:

- the pages are the JSON bodies DynamoDB returns for such a Query (items serialised by the
  adapters' own `score_item` and boto3's `TypeSerializer`, cut into pages of at most 1 MB as
  DynamoDB cuts them), built once and held in memory;
- **baseline**: `json.loads` of every page, the least any reader of these bytes must do;
- **stock**: botocore's JSON response parser with the Query output shape (what every boto3
  call does), then `TypeDeserializer` and the Decimal-to-int/float pass the adapters used,
  then `score_from_item`, the garbage collector on;
- **lean**: what `adapters.bulk_read` does: `json.loads`, `decode_item`, `score_from_item`,
  with the collector on and then paused (`gc_paused`).

Runs are interleaved (baseline, stock, lean, lean paused, stock paused, repeated) and each
keeps every record it made alive until the run ends, as an export does.

Usage: ``.venv/bin/python benchmarks/bulk_read.py [participants ...] [--repeats N]``
(default 1,000 and 3,000 participants, 5 repeats).
"""

from __future__ import annotations

import argparse
import gc
import json
import pathlib
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

BENCH_DIR = pathlib.Path(__file__).resolve().parent
SRC = BENCH_DIR.parent / "src"
for path in (BENCH_DIR, SRC):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import botocore.session  # noqa: E402
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer  # noqa: E402
from botocore.parsers import create_parser  # noqa: E402
from timing import Summary, fmt_ms, ratio, summarize  # noqa: E402

from adapters.bulk_read import decode_item, gc_paused  # noqa: E402
from adapters.dynamodb import _python_to_dynamo  # noqa: E402
from adapters.score_store import score_from_item, score_item  # noqa: E402
from domain.instruments import CATALOGUE  # noqa: E402
from domain.scoring import SubscaleScore  # noqa: E402
from domain.submissions import ScoreRecord  # noqa: E402
from domain.trial import default_protocol  # noqa: E402

PAGE_BYTES = 1_000_000  # DynamoDB returns at most 1 MB of items per Query page
TRIAL_ID = "bench-bulk"

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _stock_value(value: Any) -> Any:
    # the Decimal pass adapters.dynamodb applied after TypeDeserializer (before bulk_read)
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _stock_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stock_value(v) for v in value]
    if isinstance(value, set):
        return {_stock_value(v) for v in value}
    return value


def records(participants: int) -> list[ScoreRecord]:
    """Every score record of a trial of the default protocol, one per scheduled slot."""
    protocol = default_protocol()
    out = []
    for p in range(participants):
        pid = f"P{p:06d}"
        for instrument, timepoints in protocol.schedule.items():
            definition = CATALOGUE.get(instrument)
            for timepoint in timepoints:
                out.append(
                    ScoreRecord(
                        trial_id=TRIAL_ID,
                        participant_id=pid,
                        submission_id=f"01JBENCH{p:010d}{len(out) % 100_000:08d}",
                        instrument=instrument,
                        instrument_version=definition.version,
                        timepoint=timepoint,
                        seq=1,
                        completed_at="2026-11-26T09:30:00Z",
                        received_at="2026-11-26T09:30:01.123Z",
                        scored_at="2026-11-26T09:30:02.456Z",
                        subscales={
                            s.id: SubscaleScore(
                                subscale=s.id,
                                score=float(len(s.items)) * 2.5,
                                prorated=False,
                                answered=len(s.items),
                                missing=0,
                                reason=None,
                                band=None,
                            )
                            for s in definition.subscales
                        },
                    )
                )
    return out


def pages(scores: Sequence[ScoreRecord]) -> list[bytes]:
    """The Query answers DynamoDB would send for these items, at most 1 MB of items each."""
    bodies: list[bytes] = []
    page: list[str] = []
    size = 0

    def flush(last: dict[str, Any] | None) -> None:
        tail = f', "LastEvaluatedKey": {json.dumps(last)}' if last else ""
        items = ",".join(page)
        body = f'{{"Count": {len(page)}, "ScannedCount": {len(page)}, "Items": [{items}]{tail}}}'
        bodies.append(body.encode())

    for record in scores:
        item = score_item(record)
        wire = {k: _serializer.serialize(_python_to_dynamo(v)) for k, v in item.items()}
        text = json.dumps(wire, separators=(",", ":"))
        if size + len(text) > PAGE_BYTES and page:
            flush({"pk": wire["pk"], "sk": wire["sk"]})
            page, size = [], 0
        page.append(text)
        size += len(text)
    flush(None)
    return bodies


def _response(body: bytes) -> dict[str, Any]:
    return {
        "status_code": 200,
        "headers": {"x-amzn-requestid": "bench", "content-type": "application/x-amz-json-1.0"},
        "body": body,
    }


def make_readers(bodies: Sequence[bytes]) -> dict[str, Callable[[], int]]:
    model = botocore.session.get_session().get_service_model("dynamodb")
    shape = model.operation_model("Query").output_shape
    parser = create_parser("json")

    def baseline() -> int:
        kept = [json.loads(b) for b in bodies]
        return sum(len(p["Items"]) for p in kept)

    def stock() -> int:
        kept = []
        for body in bodies:
            parsed = parser.parse(_response(body), shape)
            kept += [
                score_from_item(
                    {k: _stock_value(_deserializer.deserialize(v)) for k, v in i.items()}
                )
                for i in parsed["Items"]
            ]
        return len(kept)

    def lean() -> int:
        kept = []
        for body in bodies:
            kept += [score_from_item(decode_item(i)) for i in json.loads(body)["Items"]]
        return len(kept)

    def paused(read: Callable[[], int]) -> Callable[[], int]:
        def run() -> int:
            with gc_paused():
                return read()

        return run

    return {
        "json.loads (baseline)": baseline,
        "stock: botocore + TypeDeserializer, GC on": stock,
        "stock, GC paused": paused(stock),
        "lean: json.loads + decode_item, GC on": lean,
        "lean, GC paused (what the job does)": paused(lean),
    }


def measure(participants: int, repeats: int) -> dict[str, Summary]:
    scores = records(participants)
    bodies = pages(scores)
    del scores
    readers = make_readers(bodies)
    expected = sum(body.count(b'"entity"') for body in bodies)
    times: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(repeats):
        for name, read in readers.items():
            gc.collect()
            start = time.perf_counter()
            count = read()
            times[name].append(time.perf_counter() - start)
            if count != expected:
                raise AssertionError(f"{name} read {count} items of {expected}")
    print(
        f"\n{participants:,} participants: {expected:,} score items in {len(bodies)} pages "
        f"({sum(map(len, bodies)) / 1e6:.1f} MB)"
    )
    return {name: summarize(t) for name, t in times.items()}


def table(participants: int, results: dict[str, Summary]) -> str:
    base = results["json.loads (baseline)"]
    stock = results["stock: botocore + TypeDeserializer, GC on"]
    lines = [
        "| read | median | IQR | × json.loads | × stock |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, summary in results.items():
        lines.append(
            f"| {name} | {fmt_ms(summary.median)} | {fmt_ms(summary.iqr)} | "
            f"{ratio(summary, base):.2f} | {ratio(summary, stock):.2f} |"
        )
    return f"{participants:,} participants\n\n" + "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("participants", nargs="*", type=int, default=[1_000, 3_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    for n in args.participants:
        print(table(n, measure(n, args.repeats)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
