"""Pre/post figures as self-contained SVG, written by hand (no plotting library).

One figure per compared instrument (`prepost_figures`), one panel per subscale, two panels to
a row (a figure is 380 px wide, so it fits a 390 px phone at full size, with no text below
12 px). Each panel is a slope graph of the completers, drawn from the typed report
(`domain.report.PrePostReport`): each result row carries the very pairs its statistics used,
so a figure shows exactly what was analysed.

* every participant's pre and post score joined by a thin grey line, their pseudonymous
  code as its tooltip; participants with identical pre and post scores would hide one
  another, so identical pairs are drawn once, thicker, labelled ``×k`` at the post end,
  with every code in the tooltip;
* the group means as a thick blue line with markers;
* the y axis spans the subscale's possible range and is titled with it ("Score, 0–21");
* above the plot the test result from the report (n, the primary p and its method, and
  the Holm-adjusted p where the report gives one); below it which direction is better.

The figure's heading says "completers only" and carries a legend. Every piece of text is
XML-escaped and stripped of characters XML 1.0 cannot hold, so any title or identifier
gives a well-formed document.
"""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Sequence
from statistics import fmean
from xml.sax.saxutils import escape

from domain.instruments import Instrument, Subscale
from domain.report import PrePostReport, ResultRow
from domain.statistics import Pair

__all__ = ["FIGURE_WIDTH", "nice_ticks", "prepost_figure_svg", "prepost_figures"]

_COLUMNS = 2
_PANEL_WIDTH = 190
FIGURE_WIDTH = _COLUMNS * _PANEL_WIDTH
_PANEL_HEIGHT = 318
_MARGIN_LEFT = 54
_MARGIN_RIGHT = 30
_PLOT_TOP = 84  # below the panel's title (two lines), test result and Holm line
_PLOT_BOTTOM = 268
_FONT = "font-family:Helvetica,Arial,sans-serif"
_INK = "#1d2533"
_MUTED = "#5b6576"
_PAIR = "#8a94a6"
_MEAN = "#1f4e9a"
# Characters XML 1.0 does not allow, even escaped.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _text(value: object) -> str:
    return escape(_XML_INVALID.sub("\ufffd", str(value)), {'"': "&quot;"})


def _num(value: float) -> str:
    return f"{value:.2f}"


def _label(tick: float) -> str:
    return str(int(tick)) if float(tick).is_integer() else f"{tick:g}"


def _wrap(text: str, width: int, lines: int) -> list[str]:
    """At most `lines` lines of about `width` characters (the last one cut with …)."""
    wrapped = textwrap.wrap(text, width=width, break_long_words=True) or [""]
    if len(wrapped) > lines:
        wrapped = [*wrapped[: lines - 1], textwrap.shorten(" ".join(wrapped[lines - 1 :]), width)]
        if len(wrapped[-1]) > width:
            wrapped[-1] = wrapped[-1][: width - 1] + "…"
    return wrapped


def nice_ticks(low: float, high: float, *, target: int = 6) -> list[float]:
    """Round tick values (steps of 1, 2, 2.5 or 5 × 10^k) inside ``[low, high]``.

    >>> nice_ticks(0, 21)
    [0.0, 5.0, 10.0, 15.0, 20.0]
    >>> nice_ticks(7, 70)
    [20.0, 40.0, 60.0]
    """
    if high <= low:
        return [float(low)]
    raw = (high - low) / target
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    ticks: list[float] = []
    value = first
    while value <= high + 1e-9:
        ticks.append(float(round(value, 10)))
        value += step
    return ticks


def _format_p(value: float) -> str:
    return "p < 0.001" if value < 0.001 else f"p = {value:.3f}"


def _test_lines(row: ResultRow | None, n: int) -> tuple[str, str | None]:
    """``("n = 6 · p = 0.031 (exact)", "Holm-adjusted p = 0.372")`` for a panel."""
    if row is None:
        return f"n = {n} · no test in the report", None
    wilcoxon = row.wilcoxon
    p = wilcoxon.p_primary if wilcoxon else None
    if wilcoxon is None or p is None:
        return f"n = {n} · no test" + (f" ({row.reason})" if row.reason else ""), None
    return (
        f"n = {n} · {_format_p(p)} ({wilcoxon.p_method_primary})",
        None if row.p_holm is None else f"Holm-adjusted {_format_p(row.p_holm)}",
    )


def prepost_figures(report: PrePostReport) -> dict[str, str]:
    """``instrument id -> SVG`` for every instrument the report compares, in its order."""
    return {
        instrument.id: prepost_figure_svg(instrument=instrument, report=report)
        for instrument in report.instruments
    }


def prepost_figure_svg(*, instrument: Instrument, report: PrePostReport) -> str:
    """One SVG document for `instrument`: a panel per subscale in catalogue order.

    Parameters
    ----------
    instrument : Instrument
        Gives the title, the subscales, their ranges (the y axes) and their direction of
        improvement.
    report : PrePostReport
        The pre/post report (`domain.report.build_report`): its ``comparison`` labels the
        x axis, and the result row of each subscale gives the panel's pairs and its test;
        a subscale without a row is drawn empty with n = 0.

    Returns
    -------
    str
        A standalone SVG 1.1 document with ``width``, ``height`` and ``viewBox`` set.
    """
    labels = (report.comparison.pre, report.comparison.post)
    rows = {row.subscale: row for row in report.results if row.instrument == instrument.id}
    panels = instrument.subscales
    title_lines = _wrap(instrument.title, 40, 2)
    overlapping = any(
        len(codes) > 1
        for sub in panels
        if (row := rows.get(sub.id))
        for codes, _, _ in _grouped(row.pairs)
    )
    header = 26 + 20 * len(title_lines) + 44 + (16 if overlapping else 0)
    grid_rows = math.ceil(len(panels) / _COLUMNS)
    height = header + _PANEL_HEIGHT * grid_rows
    width = FIGURE_WIDTH
    title = f"{instrument.title}: {labels[0]} to {labels[1]}, completers only"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="figure-title">',
        f'<title id="figure-title">{_text(title)}</title>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
    ]
    for n, line in enumerate(title_lines):
        parts.append(
            f'<text class="figure-title" x="{width / 2:.1f}" y="{24 + 20 * n}" '
            f'text-anchor="middle" font-size="16" font-weight="bold" fill="{_INK}" '
            f'style="{_FONT}">{_text(line)}</text>'
        )
    y = 24 + 20 * len(title_lines)
    parts.append(
        f'<text class="figure-subtitle" x="{width / 2:.1f}" y="{y}" text-anchor="middle" '
        f'font-size="12" fill="{_MUTED}" style="{_FONT}">'
        f"{_text(f'{labels[0]} to {labels[1]} · completers only (both scored)')}</text>"
    )
    parts.append(_legend(y=y + 24, width=width))
    if overlapping:
        parts.append(
            f'<text class="legend-note" x="{width / 2:.1f}" y="{y + 42}" text-anchor="middle" '
            f'font-size="12" fill="{_MUTED}" style="{_FONT}">'
            "×k: k participants with identical scores (one thicker line)</text>"
        )
    last_row_single = len(panels) % _COLUMNS == 1
    for index, subscale in enumerate(panels):
        row_no, column = divmod(index, _COLUMNS)
        x0: float = column * _PANEL_WIDTH
        if last_row_single and index == len(panels) - 1:
            x0 = (width - _PANEL_WIDTH) / 2
        row = rows.get(subscale.id)
        parts.append(
            _panel(
                subscale=subscale,
                pairs=row.pairs if row else (),
                row=row,
                labels=labels,
                x0=x0,
                y0=header + row_no * _PANEL_HEIGHT,
            )
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _legend(*, y: float, width: float) -> str:
    left = width / 2 - 118
    return (
        f'<g class="legend" style="{_FONT}" font-size="12" fill="{_INK}">'
        f'<line x1="{_num(left)}" y1="{_num(y - 4)}" x2="{_num(left + 22)}" y2="{_num(y - 4)}" '
        f'stroke="{_PAIR}" stroke-width="1.2"/>'
        f'<text x="{_num(left + 27)}" y="{_num(y)}">one participant</text>'
        f'<line x1="{_num(left + 134)}" y1="{_num(y - 4)}" x2="{_num(left + 156)}" '
        f'y2="{_num(y - 4)}" stroke="{_MEAN}" stroke-width="3.5"/>'
        f'<circle cx="{_num(left + 145)}" cy="{_num(y - 4)}" r="4" fill="{_MEAN}"/>'
        f'<text x="{_num(left + 161)}" y="{_num(y)}">group mean</text>'
        "</g>"
    )


def _grouped(pairs: Sequence[Pair]) -> list[tuple[list[str], float, float]]:
    """Identical (pre, post) pairs together, in first-seen order (equal to 1e-9)."""
    groups: dict[tuple[float, float], tuple[list[str], float, float]] = {}
    for pair in pairs:
        key = (round(pair.pre, 9), round(pair.post, 9))
        if key not in groups:
            groups[key] = ([], pair.pre, pair.post)
        groups[key][0].append(pair.participant_id)
    return list(groups.values())


def _panel(
    *,
    subscale: Subscale,
    pairs: Sequence[Pair],
    row: ResultRow | None,
    labels: tuple[str, str],
    x0: float,
    y0: float,
) -> str:
    left = x0 + _MARGIN_LEFT
    right = x0 + _PANEL_WIDTH - _MARGIN_RIGHT
    top = y0 + _PLOT_TOP
    bottom = y0 + _PLOT_BOTTOM
    low, high = (float(v) for v in subscale.range)
    values = [v for pair in pairs for v in (pair.pre, pair.post)]
    # Scores lie within the range; widen rather than draw outside the panel if one does not.
    low, high = min([low, *values]), max([high, *values])
    span = high - low or 1.0

    def y(value: float) -> float:
        return bottom - (value - low) / span * (bottom - top)

    x_pre = left + (right - left) * 0.2
    x_post = left + (right - left) * 0.8
    centre = x0 + _PANEL_WIDTH / 2
    test, holm = _test_lines(row, len(pairs))
    out = [f'<g class="panel" data-subscale="{_text(subscale.id)}" style="{_FONT}">']
    for n, line in enumerate(_wrap(subscale.label, 24, 2)):
        out.append(
            f'<text class="panel-title" x="{_num(centre)}" y="{_num(y0 + 16 + 16 * n)}" '
            f'text-anchor="middle" font-size="13" font-weight="bold" fill="{_INK}">'
            f"{_text(line)}</text>"
        )
    below_title = y0 + 16 + 16 * len(_wrap(subscale.label, 24, 2))
    out.append(
        f'<text class="panel-test" x="{_num(centre)}" y="{_num(below_title + 4)}" '
        f'text-anchor="middle" font-size="12" fill="{_INK}">{_text(test)}</text>'
    )
    if holm:
        out.append(
            f'<text class="panel-holm" x="{_num(centre)}" y="{_num(below_title + 19)}" '
            f'text-anchor="middle" font-size="12" fill="{_MUTED}">{_text(holm)}</text>'
        )
    axis_title = f"Score, {_label(subscale.range[0])}–{_label(subscale.range[1])}"
    mid = (top + bottom) / 2
    out += [
        f'<text class="axis-title" x="{_num(x0 + 14)}" y="{_num(mid)}" text-anchor="middle" '
        f'font-size="12" fill="{_MUTED}" transform="rotate(-90 {_num(x0 + 14)} {_num(mid)})">'
        f"{_text(axis_title)}</text>",
        f'<line x1="{_num(left)}" y1="{_num(top)}" x2="{_num(left)}" y2="{_num(bottom)}" '
        f'stroke="#333333" stroke-width="1"/>',
        f'<line x1="{_num(left)}" y1="{_num(bottom)}" x2="{_num(right)}" y2="{_num(bottom)}" '
        f'stroke="#333333" stroke-width="1"/>',
    ]
    for tick in nice_ticks(low, high):
        out.append(
            f'<line x1="{_num(left - 4)}" y1="{_num(y(tick))}" x2="{_num(left)}" '
            f'y2="{_num(y(tick))}" stroke="#333333" stroke-width="1"/>'
            f'<text class="tick" x="{_num(left - 7)}" y="{_num(y(tick) + 4)}" '
            f'text-anchor="end" font-size="12" fill="{_INK}">{_label(tick)}</text>'
        )
    for x, label in ((x_pre, labels[0]), (x_post, labels[1])):
        out.append(
            f'<text x="{_num(x)}" y="{_num(bottom + 17)}" text-anchor="middle" '
            f'font-size="12" fill="{_INK}">{_text(label)}</text>'
        )
    better = "lower" if subscale.improvement == "decrease" else "higher"
    arrow = "↓" if subscale.improvement == "decrease" else "↑"
    out.append(
        f'<text class="improvement" x="{_num((left + right) / 2)}" y="{_num(bottom + 36)}" '
        f'text-anchor="middle" font-size="12" fill="{_MUTED}">'
        f"{arrow} {better} is better</text>"
    )
    counts: list[str] = []  # drawn last, over the mean line
    for codes, pre, post in _grouped(pairs):
        count = len(codes)
        out.append(
            f'<line class="pair" data-count="{count}" x1="{_num(x_pre)}" y1="{_num(y(pre))}" '
            f'x2="{_num(x_post)}" y2="{_num(y(post))}" stroke="{_PAIR}" '
            f'stroke-width="{min(1.2 + 1.3 * (count - 1), 6.0):.1f}" stroke-opacity="0.85">'
            f"<title>{_text(', '.join(codes))}</title></line>"
        )
        if count > 1:
            counts.append(
                f'<text class="pair-count" x="{_num(x_post + 8)}" y="{_num(y(post) + 4)}" '
                f'font-size="12" font-weight="bold" fill="{_INK}" stroke="#ffffff" '
                f'stroke-width="3" paint-order="stroke">×{count}</text>'
            )
    if pairs:
        pre_mean = fmean(pair.pre for pair in pairs)
        post_mean = fmean(pair.post for pair in pairs)
        tooltip = f"mean {labels[0]} {pre_mean:.2f}, {labels[1]} {post_mean:.2f}"
        out.append(
            f'<g class="mean"><title>{_text(tooltip)}</title>'
            f'<line x1="{_num(x_pre)}" y1="{_num(y(pre_mean))}" x2="{_num(x_post)}" '
            f'y2="{_num(y(post_mean))}" stroke="{_MEAN}" stroke-width="3.5"/>'
            f'<circle cx="{_num(x_pre)}" cy="{_num(y(pre_mean))}" r="5" fill="{_MEAN}"/>'
            f'<circle cx="{_num(x_post)}" cy="{_num(y(post_mean))}" r="5" fill="{_MEAN}"/>'
            "</g>"
        )
    else:
        out.append(
            f'<text x="{_num((left + right) / 2)}" y="{_num((top + bottom) / 2)}" '
            f'text-anchor="middle" font-size="12" fill="{_MUTED}">no pairs</text>'
        )
    out += counts
    out.append("</g>")
    return "".join(out)
