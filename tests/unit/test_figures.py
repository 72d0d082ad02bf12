"""Pre/post figures: well-formed SVG with a panel per subscale and a line per pair."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.instruments import CATALOGUE, Instrument
from services.figures import nice_ticks, prepost_figure_svg

SVG = "{http://www.w3.org/2000/svg}"
REPORT: dict[str, Any] = {"comparison": {"pre": "week-1", "post": "week-12"}}
HADS = CATALOGUE.get("hads")
PAIRS: dict[str, list[tuple[str, float, float]]] = {
    "anxiety": [("P01", 14.0, 9.0), ("P02", 13.0, 10.5), ("P03", 18.0, 6.0)],
    "depression": [("P01", 12.0, 11.0), ("P02", 8.0, 8.0)],
}


def figure(
    pairs: Mapping[str, Sequence[tuple[str, float, float]]] = PAIRS,
    report: Mapping[str, Any] = REPORT,
    instrument: Instrument = HADS,
) -> ET.Element:
    # Parsing our own output, not untrusted input.
    return ET.fromstring(  # noqa: S314
        prepost_figure_svg(instrument=instrument, report=report, pairs_by_subscale=pairs)
    )


def panels(root: ET.Element) -> list[ET.Element]:
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "panel"]


def pair_lines(panel: ET.Element) -> list[ET.Element]:
    return [line for line in panel.iter(f"{SVG}line") if line.get("class") == "pair"]


def tooltip(element: ET.Element) -> str | None:
    title = element.find(f"{SVG}title")
    assert title is not None
    return title.text


def test_the_figure_is_svg_with_its_size_and_viewbox_set() -> None:
    root = figure()

    assert root.tag == f"{SVG}svg"
    assert root.get("width") == "480"
    assert root.get("height") is not None
    assert root.get("viewBox") == f"0 0 480 {root.get('height')}"


def test_there_is_one_panel_per_subscale_and_one_line_per_pair() -> None:
    root = figure()

    assert [p.get("data-subscale") for p in panels(root)] == ["anxiety", "depression"]
    assert [len(pair_lines(p)) for p in panels(root)] == [3, 2]


def test_each_pair_line_carries_the_participant_code_as_its_tooltip() -> None:
    anxiety = panels(figure())[0]

    assert [tooltip(line) for line in pair_lines(anxiety)] == ["P01", "P02", "P03"]


def test_panel_titles_give_the_subscale_label_and_the_number_of_pairs() -> None:
    titles = [
        t.text
        for p in panels(figure())
        for t in p.iter(f"{SVG}text")
        if t.get("class") == "panel-title"
    ]

    assert titles == ["Anxiety (n = 3)", "Depression (n = 2)"]


def test_the_x_axis_is_labelled_with_the_comparison_timepoints() -> None:
    texts = [t.text for t in panels(figure())[0].iter(f"{SVG}text")]

    assert "week-1" in texts
    assert "week-12" in texts


def test_the_group_means_are_drawn_where_the_pairs_are_and_not_for_an_empty_panel() -> None:
    root = figure({"anxiety": PAIRS["anxiety"]})
    anxiety, depression = panels(root)

    assert len([g for g in anxiety.iter(f"{SVG}g") if g.get("class") == "mean"]) == 1
    assert [g for g in depression.iter(f"{SVG}g") if g.get("class") == "mean"] == []
    assert "no pairs" in [t.text for t in depression.iter(f"{SVG}text")]


def test_higher_scores_are_drawn_higher_up() -> None:
    line = pair_lines(panels(figure())[0])[2]  # P03: 18 -> 6

    assert float(line.get("y1", "nan")) < float(line.get("y2", "nan"))


def test_markup_in_ids_titles_and_labels_is_escaped() -> None:
    instrument = dataclasses.replace(HADS, title='A <b>"bold"</b> & \x07 title')
    report = {"comparison": {"pre": "<pre>", "post": "post & after"}}
    root = figure({"anxiety": [("<P&1>", 3.0, 2.0)]}, report, instrument)

    assert tooltip(pair_lines(panels(root)[0])[0]) == "<P&1>"
    assert 'A <b>"bold"</b> & \ufffd title' in [t.text for t in root.iter(f"{SVG}text")]
    assert "post & after" in [t.text for t in root.iter(f"{SVG}text")]


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
