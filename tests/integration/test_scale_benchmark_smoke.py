"""The scale benchmark (figure 7 of `make bench`) runs in its quick mode and lists every route.

Timings are never asserted (a busy machine would fail them); this checks that the harness
seeds a trial, calls every route of the app and every job on this branch, and writes the
table with a line for each, the capacity units and the cost.
"""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

import pytest

from handlers.http.app import create_app

REPO = pathlib.Path(__file__).resolve().parents[2]
TITLE = "## 7. Scale: every route and job at 1,000, 10,000 and 50,000 participants"


def _operations() -> list[str]:
    """`METHOD /path` of every operation of the app, its parameters written `{}`."""
    document = create_app(None).openapi()  # type: ignore[arg-type]
    return sorted(
        f"{method.upper()} {re.sub(r'{[^}]+}', '{}', path)}"
        for path, operations in document["paths"].items()
        for method in operations
    )


@pytest.mark.slow
def test_a_quick_scale_run_writes_a_line_for_every_route(tmp_path: pathlib.Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMT_")}
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "--quick",
            "--only",
            "scale",
            "--output",
            str(output),
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    document = output.read_text(encoding="utf-8")
    assert TITLE in document
    section = document.split(TITLE, 1)[1]
    assert "Failed in this run" not in section.split("\n## ", 1)[0]
    assert "not in ROUTES" not in section
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    listed = {re.sub(r"{[^}]+}", "{}", row.split("`")[1].split("?")[0]) for row in rows}
    missing = [op for op in _operations() if op not in listed]
    assert not missing, f"routes without a line in the scale table: {missing}"
    # each route of the app was measured at the quick size: a status, a size and a time
    unmeasured = [
        row.split("`")[1]
        for row in rows
        if re.sub(r"{[^}]+}", "{}", row.split("`")[1].split("?")[0]) in _operations()
        and " s here" not in row
    ]
    assert not unmeasured, f"routes not measured: {unmeasured}"
    assert "| route | 200 participants |" in section
    assert "nightly pre/post report" in section
    assert "per accepted submission" in section
    assert "100,000 participants over twelve weeks" in section
