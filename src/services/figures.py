"""Pre/post figures as self-contained SVG, written by hand (no plotting library).

One figure per instrument, one panel per subscale: every completer's pre and post score
joined by a thin grey line (their pseudonymous code as the tooltip), the group means as a
thick line with markers, the y axis spanning the subscale's possible range. The pairs come
from `services.prepost.pairs_by_subscale`, the same pairs the report's statistics used.

Every piece of text is XML-escaped and stripped of characters XML 1.0 cannot hold, so any
title or identifier gives a well-formed document.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from statistics import fmean
from typing import Any
from xml.sax.saxutils import escape

from domain.instruments import Instrument, Subscale

__all__ = ["nice_ticks", "prepost_figure_svg"]

_PANEL_WIDTH = 240
_PANEL_HEIGHT = 300
_TITLE_HEIGHT = 40
_MARGIN_LEFT = 48
_MARGIN_RIGHT = 16
_MARGIN_TOP = 34
_MARGIN_BOTTOM = 36
_FONT = "font-family:Helvetica,Arial,sans-serif"
# Characters XML 1.0 does not allow, even escaped.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _text(value: object) -> str:
    return escape(_XML_INVALID.sub("\ufffd", str(value)), {'"': "&quot;"})


def _num(value: float) -> str:
    return f"{value:.2f}"


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


def prepost_figure_svg(
    *,
    instrument: Instrument,
    report: Mapping[str, Any],
    pairs_by_subscale: Mapping[str, Sequence[tuple[str, float, float]]],
) -> str:
    """One SVG document for `instrument`: a panel per subscale in catalogue order.

    Parameters
    ----------
    instrument : Instrument
        Gives the title, the subscales and their ranges (the y axes).
    report : mapping
        The pre/post report (`services.prepost.build_report`); its ``comparison`` labels
        the x axis.
    pairs_by_subscale : mapping of str to sequence of (participant_id, pre, post)
        The analysed pairs per subscale id (`services.prepost.pairs_by_subscale`); a
        subscale without an entry is drawn empty with n = 0.

    Returns
    -------
    str
        A standalone SVG 1.1 document with ``width``, ``height`` and ``viewBox`` set.
    """
    comparison = report["comparison"]
    labels = (str(comparison["pre"]), str(comparison["post"]))
    panels = instrument.subscales
    width = _PANEL_WIDTH * len(panels)
    height = _TITLE_HEIGHT + _PANEL_HEIGHT
    title = f"{instrument.title}: {labels[0]} to {labels[1]}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-labelledby="figure-title">',
        f'<title id="figure-title">{_text(title)}</title>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{width / 2:.1f}" y="26" text-anchor="middle" font-size="16" '
        f'font-weight="bold" style="{_FONT}">{_text(instrument.title)}</text>',
    ]
    for index, subscale in enumerate(panels):
        parts.append(
            _panel(
                subscale=subscale,
                pairs=pairs_by_subscale.get(subscale.id, ()),
                labels=labels,
                x0=index * _PANEL_WIDTH,
                y0=_TITLE_HEIGHT,
            )
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _panel(
    *,
    subscale: Subscale,
    pairs: Sequence[tuple[str, float, float]],
    labels: tuple[str, str],
    x0: float,
    y0: float,
) -> str:
    left = x0 + _MARGIN_LEFT
    right = x0 + _PANEL_WIDTH - _MARGIN_RIGHT
    top = y0 + _MARGIN_TOP
    bottom = y0 + _PANEL_HEIGHT - _MARGIN_BOTTOM
    low, high = (float(v) for v in subscale.range)
    values = [v for _, pre, post in pairs for v in (pre, post)]
    # Scores lie within the range; widen rather than draw outside the panel if one does not.
    low, high = min([low, *values]), max([high, *values])
    span = high - low or 1.0

    def y(value: float) -> float:
        return bottom - (value - low) / span * (bottom - top)

    x_pre = left + (right - left) * 0.25
    x_post = left + (right - left) * 0.75
    out = [
        f'<g class="panel" data-subscale="{_text(subscale.id)}">',
        f'<text class="panel-title" x="{_num((left + right) / 2)}" y="{_num(y0 + 18)}" '
        f'text-anchor="middle" font-size="13" style="{_FONT}">'
        f"{_text(f'{subscale.label} (n = {len(pairs)})')}</text>",
        f'<line x1="{_num(left)}" y1="{_num(top)}" x2="{_num(left)}" y2="{_num(bottom)}" '
        f'stroke="#333333" stroke-width="1"/>',
        f'<line x1="{_num(left)}" y1="{_num(bottom)}" x2="{_num(right)}" y2="{_num(bottom)}" '
        f'stroke="#333333" stroke-width="1"/>',
    ]
    for tick in nice_ticks(low, high):
        label = str(int(tick)) if tick.is_integer() else f"{tick:g}"
        out.append(
            f'<line x1="{_num(left - 4)}" y1="{_num(y(tick))}" x2="{_num(left)}" '
            f'y2="{_num(y(tick))}" stroke="#333333" stroke-width="1"/>'
            f'<text x="{_num(left - 7)}" y="{_num(y(tick) + 4)}" text-anchor="end" '
            f'font-size="11" style="{_FONT}">{label}</text>'
        )
    for x, label in ((x_pre, labels[0]), (x_post, labels[1])):
        out.append(
            f'<text x="{_num(x)}" y="{_num(bottom + 18)}" text-anchor="middle" '
            f'font-size="12" style="{_FONT}">{_text(label)}</text>'
        )
    for participant_id, pre, post in pairs:
        out.append(
            f'<line class="pair" x1="{_num(x_pre)}" y1="{_num(y(pre))}" x2="{_num(x_post)}" '
            f'y2="{_num(y(post))}" stroke="#9e9e9e" stroke-width="1" stroke-opacity="0.8">'
            f"<title>{_text(participant_id)}</title></line>"
        )
    if pairs:
        pre_mean = fmean(pre for _, pre, _ in pairs)
        post_mean = fmean(post for _, _, post in pairs)
        tooltip = f"mean {labels[0]} {pre_mean:.2f}, {labels[1]} {post_mean:.2f}"
        out.append(
            f'<g class="mean"><title>{_text(tooltip)}</title>'
            f'<line x1="{_num(x_pre)}" y1="{_num(y(pre_mean))}" x2="{_num(x_post)}" '
            f'y2="{_num(y(post_mean))}" stroke="#1f4e9a" stroke-width="3.5"/>'
            f'<circle cx="{_num(x_pre)}" cy="{_num(y(pre_mean))}" r="5" fill="#1f4e9a"/>'
            f'<circle cx="{_num(x_post)}" cy="{_num(y(post_mean))}" r="5" fill="#1f4e9a"/>'
            "</g>"
        )
    else:
        out.append(
            f'<text x="{_num((left + right) / 2)}" y="{_num((top + bottom) / 2)}" '
            f'text-anchor="middle" font-size="12" fill="#666666" style="{_FONT}">'
            "no pairs</text>"
        )
    out.append("</g>")
    return "".join(out)
