"""`make bench --only ...` keeps the figures it did not run, rows and sections, marked."""

from __future__ import annotations

import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "benchmarks"))

import run


def _document(outcomes: dict[str, run.Outcome], previous: dict[str, str] | None = None) -> str:
    config = run.Config.from_env({}, quick=True)
    machine = {"code measured": "commit abc1234, src/ clean"}
    return run.render_markdown(config, machine, outcomes, 1.0, previous)


def test_a_figure_not_run_keeps_its_summary_rows_and_section_with_the_code_they_measured() -> None:
    earlier = run.previous_sections(
        _document({figure: run.Outcome(error="boom") for figure in run.FIGURES})
    )
    assert "failed" in earlier["## Summary"]  # every figure has a row in the earlier summary
    later = _document(
        {figure: run.Outcome(skipped="not selected (--only)") for figure in run.FIGURES},
        earlier,
    )
    sections = run.previous_sections(later)
    summary = sections["## Summary"]
    assert "1. cold init (kept)" in summary
    assert "7. scale (kept)" in summary
    assert "not selected" not in summary  # each figure's earlier rows, not a skip
    assert sections[run.SECTION_TITLES["scale"]].startswith(
        f"{run.KEPT} (code measured there: commit abc1234, src/ clean):"
    )
    # kept once more, a row and a section are not marked twice
    again = run.previous_sections(
        _document({f: run.Outcome(skipped="not selected (--only)") for f in run.FIGURES}, sections)
    )
    assert "(kept) (kept)" not in again["## Summary"]
    assert again[run.SECTION_TITLES["scale"]].count(run.KEPT) == 1
