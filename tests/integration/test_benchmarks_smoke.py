"""`make bench` still runs end to end: a quick run with tiny sizes writes every section.

Performance targets live in the benchmark's own output (docs/BENCHMARKS.md), never here: this
test only checks that each measurement runs and is reported.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SECTIONS = (
    "## Machine",
    "## Summary",
    "## 1. Cold init of the API function",
    "## 2. Warm latency per accepted submission",
    "## 3. DynamoDB calls per accepted submission",
    "## 4. Stream scoring throughput",
    "## 5. Pre/post report: wall time and DynamoDB calls by trial size",
    "## 6. Deployment package size",
)
TINY = {
    "CMT_BENCH_QUICK": "1",
    "CMT_BENCH_COLD_RUNS": "2",
    "CMT_BENCH_COLD_NOPYC_RUNS": "1",
    "CMT_BENCH_SUBMISSIONS": "10",
    "CMT_BENCH_STREAM_BATCHES": "1",
    "CMT_BENCH_REPORT_SIZES": "20,60",
    "CMT_BENCH_REPORT_REPEATS": "1",
    "CMT_BENCH_PACKAGE": "0",
}


@pytest.mark.slow
def test_a_quick_benchmark_run_writes_every_section(tmp_path: pathlib.Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMT_")}
    env.update(TINY)
    # figure 7 (scale) has a smoke test of its own: tests/integration/test_scale_benchmark_smoke.py
    only = "cold,submit,stream,report,package"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "--output",
            str(output),
            "--only",
            only,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    document = output.read_text(encoding="utf-8")
    missing = [title for title in SECTIONS if title not in document]
    assert not missing, f"sections missing from the report: {missing}"
    assert "Failed in this run" not in document
    # every measured figure carries its baseline's ratio; the summary table is printed too
    assert "Ratio of medians" in document
    # the cold-start figure measures its second reference, the contract's shape, too
    assert re.search(r"size alone is \*\*\d+\.\d\d×\*\* the minimal app", document)
    assert "| figure" in done.stdout
    assert "not built in a quick run" in document
