"""Pre/post figures: well-formed SVG that explains itself, with a line per distinct pair."""

from __future__ import annotations

import dataclasses
import doctest
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import services.figures
from domain.instruments import CATALOGUE, Instrument
from domain.report import (
    Descriptives,
    EffectSizes,
    ParticipantCounts,
    PrePostReport,
    ResultRow,
    Sensitivity,
    WilcoxonStats,
)
from domain.statistics import Pair
from domain.trial import Comparison
from services.figures import FIGURE_WIDTH, nice_ticks, prepost_figure_svg, prepost_figures

SVG = "{http://www.w3.org/2000/svg}"
HADS = CATALOGUE.get("hads")
FSCRS = CATALOGUE.get("fscrs")
WEEKS = Comparison(pre="week-1", post="week-12")
NO_VALUES = Descriptives(mean=None, sd=None, median=None)
NO_SIZES = EffectSizes(r_pairs=None, r_observations=None, rank_biserial=None)


@dataclasses.dataclass(frozen=True)
class PanelTest:
    """What a report row says about its test: the p values (None: no test) and Holm's p."""

    p_two_sided: float | None = None
    p_exact_two_sided: float | None = None
    p_holm: float | None = None
    reason: str | None = None


# The p values of PAIRS: scipy.stats.wilcoxon([-5, -2.5, -12], method="approx",
# correction=False).pvalue = 0.10880943004054568, given here without an exact p (as a report
# gives it beyond 50 non-zero differences); for the one non-zero difference of depression,
# scipy.stats.wilcoxon([-1], method="approx", correction=False).pvalue = 0.31731050786291415
# and the exact p is 1.
TESTS: dict[str, PanelTest | None] = {
    "anxiety": PanelTest(p_two_sided=0.10880943004054568),
    "depression": PanelTest(p_two_sided=0.31731050786291415, p_exact_two_sided=1.0, p_holm=1.0),
}
PAIRS: dict[str, list[tuple[str, float, float]]] = {
    "anxiety": [("P01", 14.0, 9.0), ("P02", 13.0, 10.5), ("P03", 18.0, 6.0)],
    "depression": [("P01", 12.0, 11.0), ("P02", 8.0, 8.0)],
}


def result(
    instrument: Instrument,
    subscale: str,
    pairs: Sequence[tuple[str, float, float]],
    test: PanelTest,
) -> ResultRow:
    """A report row with `pairs` and `test`; the statistics no figure draws left empty."""
    tested = test.p_two_sided is not None or test.p_exact_two_sided is not None
    statistics: dict[str, Any] = {
        "n_pairs": len(pairs),
        "pre": NO_VALUES,
        "post": NO_VALUES,
        "wilcoxon": (
            WilcoxonStats(
                n_nonzero=len(pairs),
                t=None,
                w_plus=None,
                w_minus=None,
                z=None,
                p_two_sided=test.p_two_sided,
                p_exact_two_sided=test.p_exact_two_sided,
            )
            if tested
            else None
        ),
        "direction": None,
        "effect_size_r": None,
        "effect_sizes": NO_SIZES,
        "hodges_lehmann_median_change": None,
        "reason": test.reason,
        "prorated_pairs": 0,
    }
    return ResultRow(
        instrument=instrument.id,
        subscale=subscale,
        subscale_label=instrument.subscale(subscale).label,
        **statistics,
        p_holm=test.p_holm,
        reliable_change=None,
        excluded=(),
        sensitivity=Sensitivity(population="all", withdrawn_pairs=0, **statistics),
        pairs=tuple(Pair(participant_id=p, pre=pre, post=post) for p, pre, post in pairs),
    )


def report(
    pairs: Mapping[str, Sequence[tuple[str, float, float]]] = PAIRS,
    tests: Mapping[str, PanelTest | None] = TESTS,
    instrument: Instrument = HADS,
    comparison: Comparison = WEEKS,
) -> PrePostReport:
    """A report on `instrument`: a row for each subscale with a test or with pairs (a row
    with pairs and no entry in `tests` has no test); other subscales have no row."""
    rows = [
        result(instrument, sub.id, pairs.get(sub.id, ()), tests.get(sub.id) or PanelTest())
        for sub in instrument.subscales
        if sub.id in tests or sub.id in pairs
    ]
    return PrePostReport(
        trial_id="t-1",
        generated_at="2026-11-26T02:00:00Z",
        software_version="0.1.0",
        comparison=comparison,
        method="",
        participants=ParticipantCounts(enrolled=0, withdrawn=0, completed=0, active=0),
        results=tuple(rows),
        instruments=(instrument,),
    )


def figure(
    pairs: Mapping[str, Sequence[tuple[str, float, float]]] = PAIRS,
    tests: Mapping[str, PanelTest | None] = TESTS,
    instrument: Instrument = HADS,
    comparison: Comparison = WEEKS,
) -> ET.Element:
    # Parsing our own output, not untrusted input.
    return ET.fromstring(  # noqa: S314
        prepost_figure_svg(
            instrument=instrument, report=report(pairs, tests, instrument, comparison)
        )
    )


def panels(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "panel"]


def by_class(element: ET.Element, tag: str, name: str) -> list[ET.Element]:
    return [e for e in element.iter(f"{SVG}{tag}") if e.get("class") == name]


def texts(element: ET.Element, name: str | None = None) -> list[str]:
    return [
        t.text or "" for t in element.iter(f"{SVG}text") if name is None or t.get("class") == name
    ]


def pair_lines(panel: ET.Element) -> list[ET.Element]:
    return by_class(panel, "line", "pair")


def tooltip(element: ET.Element) -> str | None:
    title = element.find(f"{SVG}title")
    assert title is not None
    return title.text


def test_the_figure_is_svg_with_its_size_and_viewbox_set() -> None:
    root = figure()

    assert root.tag == f"{SVG}svg"
    assert root.get("width") == str(FIGURE_WIDTH) == "380"
    assert root.get("height") is not None
    assert root.get("viewBox") == f"0 0 380 {root.get('height')}"


def test_a_figure_fits_a_390_px_phone_whatever_the_number_of_subscales() -> None:
    for instrument in CATALOGUE.instruments():
        root = figure({}, {}, instrument=instrument)

        assert int(root.get("width", "0")) <= 390
        for panel in panels(root):
            xs = [float(e.get("x", "0")) for e in panel.iter(f"{SVG}text")]
            assert all(0 <= x <= 390 for x in xs)


def test_panels_are_laid_out_two_to_a_row_and_a_lone_last_panel_is_centred() -> None:
    root = figure({}, instrument=FSCRS)

    lines = [next(e for e in p.iter(f"{SVG}line") if e.get("class") is None) for p in panels(root)]
    axis_x = [float(line.get("x1", "nan")) for line in lines]
    axis_y = [float(line.get("y1", "nan")) for line in lines]
    assert axis_x[0] < axis_x[2] < axis_x[1]  # third panel between the two above it
    assert axis_y[0] == axis_y[1] < axis_y[2]


def test_there_is_one_panel_per_subscale_and_one_line_per_pair() -> None:
    root = figure()

    assert [p.get("data-subscale") for p in panels(root)] == ["anxiety", "depression"]
    assert [len(pair_lines(p)) for p in panels(root)] == [3, 2]


def test_each_pair_line_carries_the_participant_code_as_its_tooltip() -> None:
    anxiety = panels(figure())[0]

    assert [tooltip(line) for line in pair_lines(anxiety)] == ["P01", "P02", "P03"]


def test_identical_pairs_are_drawn_once_thicker_with_their_count_and_every_code() -> None:
    pairs = {
        "anxiety": [("P01", 14.0, 9.0), ("P02", 12.0, 8.0), ("P03", 14.0, 9.0), ("P04", 14, 9)]
    }

    anxiety = panels(figure(pairs))[0]

    lines = pair_lines(anxiety)
    assert [(tooltip(line), line.get("data-count")) for line in lines] == [
        ("P01, P03, P04", "3"),
        ("P02", "1"),
    ]
    assert float(lines[0].get("stroke-width", "0")) > float(lines[1].get("stroke-width", "0"))
    assert texts(anxiety, "pair-count") == ["×3"]


def test_mathematically_equal_prorated_pairs_count_as_identical() -> None:
    prorated = 10.5 / 6 * 7  # 12.25 computed two ways
    pairs = {"anxiety": [("P01", 12.25, 7.0), ("P02", prorated, 7.0)]}

    assert texts(panels(figure(pairs))[0], "pair-count") == ["×2"]


def test_the_legend_names_participant_lines_and_the_group_mean() -> None:
    root = figure()

    (legend,) = by_class(root, "g", "legend")
    assert texts(legend) == ["one participant", "group mean"]
    assert by_class(root, "text", "legend-note") == []  # no identical pairs to explain


def test_the_legend_explains_the_counts_when_some_pairs_are_identical() -> None:
    root = figure({"anxiety": [("P01", 1.0, 2.0), ("P02", 1.0, 2.0)]})

    assert texts(root, "legend-note") == [
        "×k: k participants with identical scores (one thicker line)"
    ]


def test_the_heading_says_completers_only_and_names_the_comparison() -> None:
    root = figure()

    assert texts(root, "figure-title") == ["Hospital Anxiety and Depression Scale"]
    assert texts(root, "figure-subtitle") == ["week-1 to week-12 · completers only (both scored)"]
    assert "completers only" in (tooltip(root) or "")


def test_a_long_instrument_title_wraps_onto_two_lines() -> None:
    lines = texts(figure({}, instrument=FSCRS), "figure-title")

    assert lines == ["Forms of Self-Criticising/Attacking &", "Self-Reassuring Scale"]


def test_each_y_axis_is_titled_with_the_subscales_score_range() -> None:
    assert texts(figure({}, instrument=FSCRS), "axis-title") == [
        "Score, 0–36",
        "Score, 0–20",
        "Score, 0–32",
    ]
    assert texts(figure({}, instrument=CATALOGUE.get("scs")), "axis-title") == ["Score, 11–110"]


def test_each_panel_says_which_direction_is_better() -> None:
    assert texts(figure({}, instrument=FSCRS), "improvement") == [
        "↓ lower is better",
        "↓ lower is better",
        "↑ higher is better",
    ]


def test_the_panel_shows_the_reports_test_with_its_primary_p_and_method() -> None:
    anxiety, depression = panels(figure())

    # without an exact p the panel leads with the asymptotic one; with one, the exact p
    assert texts(anxiety, "panel-test") == ["n = 3 · p = 0.109 (asymptotic)"]
    assert texts(depression, "panel-test") == ["n = 2 · p = 1.000 (exact)"]
    assert texts(anxiety, "panel-holm") == []
    assert texts(depression, "panel-holm") == ["Holm-adjusted p = 1.000"]


def test_a_panel_without_a_test_says_why() -> None:
    tests = {"anxiety": PanelTest(reason="fewer than 2 pairs")}

    anxiety, depression = panels(figure({"anxiety": [("P01", 3.0, 2.0)]}, tests))

    assert texts(anxiety, "panel-test") == ["n = 1 · no test (fewer than 2 pairs)"]
    assert texts(depression, "panel-test") == ["n = 0 · no test in the report"]


def test_small_p_values_are_shown_as_below_one_in_a_thousand() -> None:
    tests = {"anxiety": PanelTest(p_two_sided=0.00001)}

    assert texts(panels(figure(PAIRS, tests))[0], "panel-test") == [
        "n = 3 · p < 0.001 (asymptotic)"
    ]


def test_panel_titles_give_the_subscale_label() -> None:
    assert texts(figure(), "panel-title") == ["Anxiety", "Depression"]


def test_the_x_axis_is_labelled_with_the_comparison_timepoints() -> None:
    labels = texts(panels(figure())[0])

    assert "week-1" in labels
    assert "week-12" in labels


def test_the_group_means_are_drawn_where_the_pairs_are_and_not_for_an_empty_panel() -> None:
    root = figure({"anxiety": PAIRS["anxiety"]})
    anxiety, depression = panels(root)

    assert len(by_class(anxiety, "g", "mean")) == 1
    assert by_class(depression, "g", "mean") == []
    assert "no pairs" in texts(depression)


def test_higher_scores_are_drawn_higher_up() -> None:
    line = pair_lines(panels(figure())[0])[2]  # P03: 18 -> 6

    assert float(line.get("y1", "nan")) < float(line.get("y2", "nan"))


def test_no_text_is_smaller_than_12_px() -> None:
    svg = prepost_figure_svg(instrument=FSCRS, report=report({}, {}, FSCRS))

    sizes = [float(s) for s in re.findall(r'font-size="([0-9.]+)"', svg)]
    assert sizes
    assert min(sizes) >= 12


def test_markup_in_ids_titles_and_labels_is_escaped() -> None:
    instrument = dataclasses.replace(HADS, title='A <b>"bold"</b> & \x07 title')
    comparison = Comparison(pre="<pre>", post="post & after")
    root = figure({"anxiety": [("<P&1>", 3.0, 2.0)]}, {}, instrument, comparison)

    assert tooltip(pair_lines(panels(root)[0])[0]) == "<P&1>"
    assert 'A <b>"bold"</b> & \ufffd title' in texts(root)
    assert "post & after" in texts(root)


def test_there_is_a_figure_per_compared_instrument_each_drawn_from_its_own_rows() -> None:
    hads = report()
    both = dataclasses.replace(
        hads,
        results=hads.results + report({}, {}, FSCRS).results,
        instruments=(HADS, FSCRS),
    )

    svgs = prepost_figures(both)

    assert list(svgs) == ["hads", "fscrs"]
    assert svgs["hads"] == prepost_figure_svg(instrument=HADS, report=hads)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 21, [0, 5, 10, 15, 20]),
        (11, 110, [20, 40, 60, 80, 100]),
        (0, 52, [0, 10, 20, 30, 40, 50]),
    ],
)
def test_ticks_are_round_numbers_inside_the_subscale_range(
    low: int, high: int, expected: list[int]
) -> None:
    assert nice_ticks(low, high) == expected


@given(st.integers(-100, 100), st.integers(1, 500))
def test_ticks_always_lie_inside_the_range(low: int, span: int) -> None:
    ticks = nice_ticks(low, low + span)

    assert ticks
    assert all(low <= t <= low + span for t in ticks)
    assert ticks == sorted(ticks)


def test_the_documented_examples_run_as_written() -> None:
    result = doctest.testmod(services.figures)

    assert result.attempted > 0
    assert result.failed == 0
