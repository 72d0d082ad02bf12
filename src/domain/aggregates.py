"""Running aggregates of a subscale: n, sum and sum of squares, kept exactly.

The live summary counts every scored submission once and takes a superseded or erased one
back, so it needs moments that can be added to and retracted from in any order. They are kept
as exact decimals (a float sum would drift after many additions and retractions); mean and SD
are derived on reading.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["AggregateChange", "Counted", "Moments", "exact", "total_moments"]


def exact(value: float) -> Decimal:
    """A float as the exact decimal of its shortest round-trip form (17 digits at most)."""
    if not math.isfinite(value):
        raise ValueError("aggregates hold finite scores only")
    return Decimal(repr(float(value)))


@dataclass(frozen=True, kw_only=True)
class Moments:
    """n, sum and sum of squares of one subscale's counted scores."""

    n: int = 0
    total: Decimal = Decimal(0)
    sumsq: Decimal = Decimal(0)

    def add(self, score: float) -> Moments:
        d = exact(score)
        return Moments(n=self.n + 1, total=self.total + d, sumsq=self.sumsq + d * d)

    def retract(self, score: float) -> Moments:
        d = exact(score)
        return Moments(n=self.n - 1, total=self.total - d, sumsq=self.sumsq - d * d)

    def __add__(self, other: Moments) -> Moments:
        return Moments(
            n=self.n + other.n, total=self.total + other.total, sumsq=self.sumsq + other.sumsq
        )

    @property
    def mean(self) -> float | None:
        return float(self.total) / self.n if self.n else None

    @property
    def sd(self) -> float | None:
        """Sample SD (n - 1); None below 2 scores; never negative from rounding."""
        if self.n < 2:
            return None
        total, sumsq = float(self.total), float(self.sumsq)
        return math.sqrt(max(0.0, (sumsq - total * total / self.n) / (self.n - 1)))


@dataclass(frozen=True, kw_only=True)
class AggregateChange:
    """What counting one submission changes: per subscale, a delta of moments.

    `add` are the submission's scores; `remove` the scores of the submission it supersedes
    (taken back in the same change, so the aggregate never shows both).
    """

    add: Mapping[str, float]
    remove: Mapping[str, float]

    def deltas(self) -> dict[str, Moments]:
        deltas: dict[str, Moments] = {}
        for subscale, score in self.add.items():
            deltas[subscale] = deltas.get(subscale, Moments()).add(score)
        for subscale, score in self.remove.items():
            deltas[subscale] = deltas.get(subscale, Moments()).retract(score)
        return dict(sorted(deltas.items()))

    @classmethod
    def retraction(cls, scores: Mapping[str, float]) -> AggregateChange:
        return cls(add={}, remove=scores)


class Counted(enum.Enum):
    """The outcome of counting a scored submission in the live aggregates."""

    COUNTED = "counted"  # stored and counted now
    ALREADY = "already"  # counted before (a redelivered record): nothing changed
    ERASED = "erased"  # the participant was erased: nothing of theirs was written
    NOT_READY = "not_ready"  # the submission it corrects is not counted yet: retry later


def total_moments(parts: Iterable[Moments]) -> Moments:
    result = Moments()
    for part in parts:
        result = result + part
    return result
