"""Summaries of repeated measurements: median, p95, IQR, ratios and a straight-line fit.

Every figure the benchmarks publish is a distribution summarised the same way, and every
headline is a ratio against a baseline measured in the same run (absolute times on a shared
2-core machine say more about the machine than about the code).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["LinearFit", "Summary", "fmt_ms", "linear_fit", "ratio", "summarize"]


@dataclass(frozen=True)
class Summary:
    """One sample of measurements (seconds, or any other unit the caller keeps track of)."""

    n: int
    median: float
    p95: float
    q1: float
    q3: float
    minimum: float
    maximum: float
    mean: float

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1


def summarize(values: Sequence[float]) -> Summary:
    """Median, nearest-rank p95, quartiles (inclusive method), min, max and mean."""
    if not values:
        raise ValueError("no measurements to summarise")
    ordered = sorted(values)
    n = len(ordered)
    if n == 1:
        q1 = q3 = ordered[0]
    else:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    # nearest rank: the smallest value with at least 95 % of the sample at or below it
    p95 = ordered[max(0, math.ceil(0.95 * n) - 1)]
    return Summary(
        n=n,
        median=statistics.median(ordered),
        p95=p95,
        q1=q1,
        q3=q3,
        minimum=ordered[0],
        maximum=ordered[-1],
        mean=statistics.fmean(ordered),
    )


def ratio(measured: Summary, baseline: Summary) -> float:
    """Ratio of medians (the headline figure of every comparison)."""
    return measured.median / baseline.median if baseline.median else math.inf


@dataclass(frozen=True)
class LinearFit:
    """Least-squares ``y = intercept + slope * x`` and its largest absolute residual."""

    intercept: float
    slope: float
    max_residual: float


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> LinearFit:
    if len(xs) != len(ys) or len(xs) < 2:
        raise ValueError("a line needs at least two (x, y) points")
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        raise ValueError("all x values are equal")
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sxx
    intercept = mean_y - slope * mean_x
    residual = max(abs(y - (intercept + slope * x)) for x, y in zip(xs, ys, strict=True))
    return LinearFit(intercept=intercept, slope=slope, max_residual=residual)


def fmt_ms(seconds: float) -> str:
    """Seconds as milliseconds with three significant figures."""
    ms = seconds * 1000
    if ms >= 100:
        return f"{ms:.0f} ms"
    if ms >= 10:
        return f"{ms:.1f} ms"
    return f"{ms:.2f} ms"
