"""`make bench`: measure cmt-collect's performance figures and write docs/BENCHMARKS.md.

Every figure is a ratio against a baseline measured in the same run, summarised by medians
with p95 and IQR, next to a description of the machine. Sizes come from the environment:

    CMT_BENCH_QUICK=1            small sizes, no package build (< 2 min; the smoke test)
    CMT_BENCH_COLD_RUNS          fresh interpreters per module for figure 1
    CMT_BENCH_COLD_NOPYC_RUNS    the same without bytecode caches (0 to skip)
    CMT_BENCH_SUBMISSIONS        accepted submissions per variant for figures 2 and 3
    CMT_BENCH_STREAM_BATCHES     batches of 100 records for figure 4
    CMT_BENCH_REPORT_SIZES       participants, comma-separated, for figure 5
    CMT_BENCH_REPORT_REPEATS     publishes per size for figure 5 (below 10,000 participants)
    CMT_BENCH_REPORT_LARGE_REPEATS  publishes per size from 10,000 participants
    CMT_BENCH_PACKAGE            1/0: build the deployment package for figure 6
    CMT_BENCH_SCALE_SIZES        participants, comma-separated, for figure 7 (routes and jobs)

See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import pathlib
import re
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

BENCH_DIR = pathlib.Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from cold_start import TARGET_RATIO, ColdStartResult, measure_cold_start  # noqa: E402
from machine import machine_info  # noqa: E402
from moto_stack import (  # noqa: E402
    FAKE_AWS_ENV,
    bench_names,
    cmt_env,
    create_resources,
    moto_server,
)
from package_size import PackageResult, measure_package  # noqa: E402
from report_scaling import ReportResult, measure_report  # noqa: E402
from scale import ScaleResult, measure_scale  # noqa: E402
from stream_throughput import StreamResult, measure_stream  # noqa: E402
from submit_latency import (  # noqa: E402
    TARGET_CALLS_WITHOUT_KEY,
    TARGET_RATIO_WITHOUT_KEY,
    SubmitResult,
    measure_submissions,
)
from timing import fmt_ms  # noqa: E402

DEFAULT_OUTPUT = REPO / "docs" / "BENCHMARKS.md"
FIGURES = ("cold", "submit", "stream", "report", "package", "scale")
FULL_SCALE_SIZES = (1_000, 10_000, 50_000)
QUICK_SCALE_SIZES = (200,)
FULL_REPORT_SIZES = (100, 1_000, 10_000)
QUICK_REPORT_SIZES = (50, 200)
LARGE_REPORT = 10_000
# the slope of report calls against participants that still means "no call per participant"
MAX_CALLS_PER_PARTICIPANT = 0.05

SECTION_TITLES = {
    "cold": "## 1. Cold init of the API function",
    "submit": "## 2. Warm latency per accepted submission",
    "calls": "## 3. DynamoDB calls per accepted submission",
    "stream": "## 4. Stream scoring throughput",
    "report": "## 5. Pre/post report: wall time and DynamoDB calls by trial size",
    "package": "## 6. Deployment package size",
    "scale": "## 7. Scale: every route and job at 1,000, 10,000 and 50,000 participants",
}


@dataclass(frozen=True)
class Config:
    quick: bool
    cold_runs: int
    cold_no_bytecode_runs: int
    submissions: int
    stream_batches: int
    report_sizes: tuple[int, ...]
    report_skipped: tuple[int, ...]
    report_repeats: int
    report_large_repeats: int
    package: bool
    scale_sizes: tuple[int, ...] = FULL_SCALE_SIZES

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, quick: bool = False) -> Config:
        quick = quick or env.get("CMT_BENCH_QUICK", "") not in ("", "0")

        def number(name: str, full: int, fast: int, least: int = 1) -> int:
            value = int(env.get(name) or (fast if quick else full))
            if value < least:
                raise ValueError(f"{name} must be at least {least}")
            return value

        sizes_text = env.get("CMT_BENCH_REPORT_SIZES")
        if sizes_text:
            sizes = tuple(sorted({int(s) for s in sizes_text.split(",") if s.strip()}))
        else:
            sizes = QUICK_REPORT_SIZES if quick else FULL_REPORT_SIZES
        if len(sizes) < 2 or min(sizes) < 1:
            raise ValueError("CMT_BENCH_REPORT_SIZES needs at least two positive sizes")
        package = env.get("CMT_BENCH_PACKAGE")
        scale_text = env.get("CMT_BENCH_SCALE_SIZES")
        scale_sizes = (
            tuple(sorted({int(s) for s in scale_text.split(",") if s.strip()}))
            if scale_text
            else (QUICK_SCALE_SIZES if quick else FULL_SCALE_SIZES)
        )
        return cls(
            scale_sizes=scale_sizes,
            quick=quick,
            cold_runs=number("CMT_BENCH_COLD_RUNS", 15, 3),
            cold_no_bytecode_runs=number("CMT_BENCH_COLD_NOPYC_RUNS", 5, 1, least=0),
            submissions=number("CMT_BENCH_SUBMISSIONS", 300, 20),
            stream_batches=number("CMT_BENCH_STREAM_BATCHES", 5, 1),
            report_sizes=sizes,
            report_skipped=tuple(s for s in FULL_REPORT_SIZES if s not in sizes),
            report_repeats=number("CMT_BENCH_REPORT_REPEATS", 3, 2),
            report_large_repeats=number("CMT_BENCH_REPORT_LARGE_REPEATS", 1, 1),
            package=(not quick) if package in (None, "") else package != "0",
        )

    def describe(self) -> str:
        return (
            f"{'quick' if self.quick else 'full'} run: {self.cold_runs} cold inits per module "
            f"(+ {self.cold_no_bytecode_runs} without bytecode), {self.submissions} submissions "
            f"per variant, {self.stream_batches} stream batches of 100, report sizes "
            f"{', '.join(f'{n:,}' for n in self.report_sizes)} × {self.report_repeats} "
            f"publishes ({self.report_large_repeats} from {LARGE_REPORT:,}), package build "
            f"{'on' if self.package else 'off'}, scale sizes "
            f"{', '.join(f'{n:,}' for n in self.scale_sizes)}"
        )


@dataclass
class Outcome:
    """One measurement's result, or why there is none."""

    result: Any = None
    error: str | None = None
    seconds: float = 0.0
    skipped: str | None = None


def code_state() -> str:
    """The commit measured, and whether src/ differed from it when the run started."""
    import subprocess

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=30, check=False
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if not commit:
        return "not a git checkout"
    changed = [line for line in git("status", "--porcelain", "--", "src").splitlines() if line]
    return f"commit {commit}" + (
        f", with {len(changed)} uncommitted change(s) under src/" if changed else ", src/ clean"
    )


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _attempt(name: str, measure: Callable[[], Any]) -> Outcome:
    _progress(f"bench: {name} ...")
    started = time.perf_counter()
    try:
        result = measure()
    except Exception:  # noqa: BLE001 (report it in the document and carry on)
        error = traceback.format_exc(limit=6)
        _progress(f"bench: {name} FAILED\n{error}")
        return Outcome(error=error, seconds=time.perf_counter() - started)
    seconds = time.perf_counter() - started
    _progress(f"bench: {name} done in {seconds:.1f} s")
    return Outcome(result=result, seconds=seconds)


def run(config: Config, only: Sequence[str]) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {
        name: Outcome(skipped="not selected (--only)") for name in FIGURES if name not in only
    }
    if "cold" in only:
        outcomes["cold"] = _attempt(
            "cold init",
            lambda: measure_cold_start(config.cold_runs, config.cold_no_bytecode_runs),
        )
    if {"submit", "stream", "report"} & set(only):
        with moto_server() as endpoint:
            api_names = bench_names("bench-api")
            os.environ.update({**FAKE_AWS_ENV, **cmt_env(api_names), "AWS_ENDPOINT_URL": endpoint})
            create_resources(api_names)
            if "submit" in only:
                outcomes["submit"] = _attempt(
                    "submission latency and calls",
                    lambda: measure_submissions(config.submissions),
                )
            if "stream" in only:
                outcomes["stream"] = _attempt(
                    "stream throughput", lambda: measure_stream(config.stream_batches)
                )
            if "report" in only:
                outcomes["report"] = _attempt(
                    "report scaling",
                    lambda: measure_report(
                        config.report_sizes,
                        config.report_repeats,
                        config.report_skipped,
                        large_from=LARGE_REPORT,
                        large_repeats=config.report_large_repeats,
                    ),
                )
    if "scale" in only:
        # moto in process (mock_aws), after the moto server of the figures above is gone
        outcomes["scale"] = _attempt(
            "scale (routes and jobs)",
            lambda: measure_scale(config.scale_sizes, quick=config.quick),
        )
    if "package" in only:
        if config.package:
            outcomes["package"] = _attempt("deployment package", measure_package)
        else:
            outcomes["package"] = Outcome(
                skipped="not built in a quick run (set CMT_BENCH_PACKAGE=1 to build it)"
            )
    return outcomes


# -- rendering -------------------------------------------------------------------------------


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join(
        [line(headers), "| " + " | ".join("-" * w for w in widths) + " |", *map(line, rows)]
    )


def _yes(*, flag: bool) -> str:
    return "yes" if flag else "**NO**"


def summary_rows(
    outcomes: Mapping[str, Outcome], kept: Mapping[str, list[list[str]]] | None = None
) -> list[list[str]]:
    """The summary table's rows; a figure not run (--only) keeps its `kept` rows, marked."""
    rows: list[list[str]] = []

    def unavailable(figure: str, outcome: Outcome) -> None:
        numbers = re.findall(r"\d+", figure.split(" ")[0])
        earlier = [row for n in numbers for row in (kept or {}).get(n, [])]
        if outcome.skipped == "not selected (--only)" and earlier:
            for row in earlier:
                label = row[0] if row[0].endswith(KEPT_ROW) else row[0] + KEPT_ROW
                rows.append([label, *row[1:]])
            return
        state = "failed" if outcome.error else f"skipped: {outcome.skipped}"
        rows.append([figure, state, "", "", "", ""])

    cold = outcomes["cold"]
    if isinstance(cold.result, ColdStartResult):
        c = cold.result
        rows.append(
            [
                "1. cold init of `handlers.api` (median import)",
                f"{fmt_ms(c.api.median)} (p95 {fmt_ms(c.api.p95)})",
                f"minimal FastAPI+Mangum+boto3: {fmt_ms(c.baseline.median)} "
                f"(p95 {fmt_ms(c.baseline.p95)})",
                f"{c.ratio:.2f}",
                f"≤ {TARGET_RATIO}",
                _yes(flag=c.meets_target),
            ]
        )
        if c.shape is not None and c.shape_ratio is not None:
            rows.append(
                [
                    "1. the contract's shape alone, doing nothing (reference)",
                    f"{fmt_ms(c.shape.median)} (p95 {fmt_ms(c.shape.p95)})",
                    f"minimal app: {fmt_ms(c.baseline.median)}",
                    f"{c.shape_ratio:.2f}",
                    "—",
                    f"`handlers.api` is {c.api.median / c.shape.median:.2f}× it",
                ]
            )
        if c.api_no_bytecode and c.baseline_no_bytecode and c.ratio_no_bytecode is not None:
            rows.append(
                [
                    "1. the same without bytecode (as a `sam build` package)",
                    f"{fmt_ms(c.api_no_bytecode.median)} (p95 {fmt_ms(c.api_no_bytecode.p95)})",
                    f"minimal app: {fmt_ms(c.baseline_no_bytecode.median)} "
                    f"(p95 {fmt_ms(c.baseline_no_bytecode.p95)})",
                    f"{c.ratio_no_bytecode:.2f}",
                    f"≤ {TARGET_RATIO}",
                    _yes(flag=c.ratio_no_bytecode <= TARGET_RATIO),
                ]
            )
        rows.append(
            [
                "1. numpy / scipy / pandas imported by `handlers.api`",
                ", ".join(c.profile.heavy_loaded) or "no",
                "",
                "",
                "no",
                _yes(flag=not c.profile.heavy_loaded),
            ]
        )
    else:
        unavailable("1. cold init", cold)

    submit = outcomes["submit"]
    if isinstance(submit.result, SubmitResult):
        s = submit.result
        for v in s.variants:
            rows.append(
                [
                    f"2. warm submission, {v.label} (median)",
                    f"{fmt_ms(v.api.median)} (p95 {fmt_ms(v.api.p95)})",
                    f"bare conditional PutItem: {fmt_ms(v.bare_put.median)}"
                    f" (p95 {fmt_ms(v.bare_put.p95)})",
                    f"{v.ratio:.2f}",
                    f"≤ {TARGET_RATIO_WITHOUT_KEY}" if v is s.without_key else "",
                    _yes(flag=v.ratio <= TARGET_RATIO_WITHOUT_KEY) if v is s.without_key else "",
                ]
            )
        for v in s.variants:
            keyless = v is s.without_key
            rows.append(
                [
                    f"3. DynamoDB calls per submission, {v.label}",
                    f"{v.calls.median:g} (max {v.calls.maximum:g})",
                    "",
                    "",
                    f"≤ {TARGET_CALLS_WITHOUT_KEY}" if keyless else "",
                    _yes(flag=s.meets_call_target) if keyless else "",
                ]
            )
    else:
        unavailable("2./3. warm submissions", submit)

    stream = outcomes["stream"]
    if isinstance(stream.result, StreamResult):
        t = stream.result
        rows.append(
            [
                "4. stream scoring, batches of 100",
                f"{t.records_per_second:,.0f} records/s ({t.calls_per_record:.1f} calls/record)",
                f"bare PutItem: {t.baseline_per_second:,.0f} puts/s",
                f"{t.ratio:.2f}",
                f"≤ {TARGET_STREAM_RATIO}",
                _yes(flag=t.ratio <= TARGET_STREAM_RATIO and t.failures == 0)
                + " (no failed records)" * (t.failures == 0),
            ]
        )
    else:
        unavailable("4. stream scoring", stream)

    report = outcomes["report"]
    if isinstance(report.result, ReportResult):
        r = report.result
        for size in r.sizes:
            rows.append(
                [
                    f"5. report, {size.participants:,} participants (median)",
                    f"{fmt_ms(size.publish.median)}, {size.dynamodb_calls} DynamoDB calls",
                    f"bare paged Queries: {fmt_ms(size.bare_read.median)}",
                    f"{size.ratio:.2f}",
                    "",
                    "",
                ]
            )
        for size_failed, error in r.failed:
            rows.append(
                [
                    f"5. report, {size_failed:,} participants",
                    f"failed: {error[:80]}",
                    "",
                    "",
                    "",
                    "",
                ]
            )
        linear = r.calls_fit.slope < MAX_CALLS_PER_PARTICIPANT
        rows.append(
            [
                "5. report calls = a + b·n",
                f"b = {r.calls_fit.slope:.6f} ({r.calls_fit.slope * 1000:.2f} per 1,000)",
                f"a = {r.calls_fit.intercept:.2f}",
                "",
                f"linear, b < {MAX_CALLS_PER_PARTICIPANT}",
                _yes(flag=linear),
            ]
        )
        largest = r.largest
        growth = r.growth("compute")
        function, memory = r.smallest_memory
        rows.append(
            [
                f"5. statistics + figures only, {largest.participants:,} participants",
                f"{fmt_ms(largest.compute.seconds.median)}, peak RSS "
                f"{largest.compute.peak_rss_mb:,.0f} MB"
                + (f"; time ∝ n^{growth[-1][2]:.2f}" if growth else ""),
                f"{function} MemorySize {memory} MB",
                f"{largest.compute.peak_rss_mb / memory:.2f}",
                "peak < MemorySize",
                _yes(flag=largest.compute.peak_rss_mb < memory),
            ]
        )
    else:
        unavailable("5. report", report)

    package = outcomes["package"]
    if isinstance(package.result, PackageResult):
        p = package.result
        rows.append(
            [
                f"6. package, {len(p.functions)} functions (one shared build)",
                f"{p.unzipped_bytes / 2**20:.1f} MB unzipped; numpy/scipy: "
                f"{', '.join(p.forbidden_present) or 'no'}",
                "Lambda limit 250 MB",
                f"{p.fraction_of_limit:.3f}",
                "≤ 250 MB, no numpy/scipy",
                _yes(flag=p.meets_target),
            ]
        )
    else:
        unavailable("6. package", package)

    scale = outcomes["scale"]
    if isinstance(scale.result, ScaleResult):
        sc = scale.result
        over = sc.over_limit()
        rows.append(
            [
                f"7. routes over a synchronous limit at {sc.sizes[-1]:,} participants",
                ", ".join(over) or "none",
                "6 MB, 30 s (API function at its CPU share)",
                "",
                "none",
                _yes(flag=not over),
            ]
        )
    else:
        unavailable("7. scale", scale)
    return rows


#: the stream function per record against a bare put (issue 11.5)
TARGET_STREAM_RATIO = 1.5
SUMMARY_HEADERS = ("figure", "measured", "baseline (same run)", "ratio", "target", "met")


def _section_body(outcome: Outcome, render: Callable[[Any], str]) -> str:
    if outcome.error:
        return f"Failed in this run:\n\n```\n{outcome.error.strip()}\n```\n"
    if outcome.skipped:
        return f"Not measured in this run: {outcome.skipped}.\n"
    return render(outcome.result)


def previous_sections(document: str) -> dict[str, str]:
    """The body of each `## ` section of an earlier document, by its title."""
    sections: dict[str, str] = {}
    title: str | None = None
    lines: list[str] = []
    for line in document.splitlines():
        if line.startswith("## "):
            if title is not None:
                sections[title] = "\n".join(lines).strip() + "\n"
            title, lines = line, []
        elif title is not None:
            lines.append(line)
    if title is not None:
        sections[title] = "\n".join(lines).strip() + "\n"
    return sections


KEPT = "Not measured in this run (--only); kept from the previous document"
KEPT_ROW = " (kept)"


def previous_code(document: str) -> str | None:
    """What an earlier document says it measured (its `code measured` row)."""
    match = re.search(r"^\| code measured \| (.+?) \|$", document, re.MULTILINE)
    return match.group(1) if match else None


def previous_summary_rows(document: str) -> dict[str, list[list[str]]]:
    """The rows of an earlier document's summary table, by figure number ("1" to "7")."""
    rows: dict[str, list[list[str]]] = {}
    for line in previous_sections(document).get("## Summary", "").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        number = re.match(r"(\d+)\.", cells[0]) if line.startswith("|") else None
        if number and len(cells) == len(SUMMARY_HEADERS) and "not selected" not in cells[1]:
            rows.setdefault(number.group(1), []).append(cells)
    return rows


def render_markdown(
    config: Config,
    machine: Mapping[str, str],
    outcomes: Mapping[str, Outcome],
    total_seconds: float,
    previous: Mapping[str, str] | None = None,
) -> str:
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    previous_rows = previous_summary_rows(
        "\n".join(f"{title}\n{text}" for title, text in (previous or {}).items())
    )
    kept_note = (
        f"\nRows marked {KEPT_ROW.strip()} are figures not run this time (--only), kept from "
        "the previous document with their sections.\n"
        if any(o.skipped == "not selected (--only)" for o in outcomes.values()) and previous_rows
        else ""
    )
    machine_rows = "\n".join(f"| {k} | {v} |" for k, v in machine.items())
    sections = [
        (SECTION_TITLES["cold"], _section_body(outcomes["cold"], lambda r: r.section())),
        (
            SECTION_TITLES["submit"],
            _section_body(outcomes["submit"], lambda r: r.latency_section()),
        ),
        (
            SECTION_TITLES["calls"],
            _section_body(outcomes["submit"], lambda r: r.calls_section()),
        ),
        (
            SECTION_TITLES["stream"],
            _section_body(outcomes["stream"], lambda r: r.section()),
        ),
        (
            SECTION_TITLES["report"],
            _section_body(outcomes["report"], lambda r: r.section()),
        ),
        (
            SECTION_TITLES["package"],
            _section_body(outcomes["package"], lambda r: r.section()),
        ),
        (
            SECTION_TITLES["scale"],
            _section_body(outcomes["scale"], lambda r: r.section()),
        ),
    ]
    previous = previous or {}
    code = previous_code("\n".join(previous.values()))
    kept = []
    for title, text in sections:
        figure = next(k for k, v in SECTION_TITLES.items() if v == title)
        outcome = outcomes["submit" if figure == "calls" else figure]
        old = previous.get(title, "")
        if (
            outcome.skipped == "not selected (--only)"
            and old
            and "Not measured in this run" not in old.splitlines()[0]
        ):
            where = f" (code measured there: {code})" if code else ""
            kept.append((title, f"{KEPT}{where}:\n\n{old.strip()}\n"))
        elif outcome.skipped == "not selected (--only)" and old.startswith(KEPT):
            kept.append((title, old))
        else:
            kept.append((title, text))
    body = "\n".join(f"{title}\n\n{text}" for title, text in kept)
    return f"""\
# Benchmarks

Generated by `make bench` (`benchmarks/run.py`) on {started}; do not edit by hand.
What each figure means and how it is measured: [benchmarks/README.md](../benchmarks/README.md).
Each ratio compares two things measured in this same run on this machine; absolute times are
for this machine only. moto (in server mode, in the benchmark's process) stands in for AWS,
so DynamoDB round trips here cost a few milliseconds of moto's Python, not a network hop.

## Machine

| | |
| --- | --- |
{machine_rows}

{config.describe()}; total {total_seconds:.0f} s.

## Summary

{markdown_table(SUMMARY_HEADERS, summary_rows(outcomes, previous_rows))}
{kept_note}
{body}"""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--output",
        type=pathlib.Path,
        default=DEFAULT_OUTPUT,
        help=f"where to write the markdown (default: {DEFAULT_OUTPUT.relative_to(REPO)})",
    )
    parser.add_argument("--quick", action="store_true", help="same as CMT_BENCH_QUICK=1")
    parser.add_argument(
        "--only",
        default=",".join(FIGURES),
        help=f"comma-separated subset of {','.join(FIGURES)}",
    )
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(FIGURES))
    if unknown:
        parser.error(f"unknown figures: {', '.join(unknown)}")
    config = Config.from_env(os.environ, quick=args.quick)
    machine = {**machine_info(), "code measured": code_state()}
    _progress(f"bench: {config.describe()}")
    started = time.perf_counter()
    outcomes = run(config, only)
    total = time.perf_counter() - started
    previous = (
        previous_sections(args.output.read_text(encoding="utf-8")) if args.output.exists() else {}
    )
    document = render_markdown(config, machine, outcomes, total, previous)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(document, encoding="utf-8")
    print(markdown_table(SUMMARY_HEADERS, summary_rows(outcomes)))
    print(
        f"\n{machine['platform']}, {machine['cpu count']} CPUs, Python {machine['python']}; "
        f"{total:.0f} s; written to {args.output}"
    )
    return 1 if any(o.error for o in outcomes.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
