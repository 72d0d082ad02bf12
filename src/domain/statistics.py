"""Pre/post statistics as the pilot study's Table 1 computed them (SPSS), in pure Python.

Descriptives, the Wilcoxon signed-rank test (tie-corrected normal approximation without
continuity correction, plus the exact null distribution where it applies), the effect
size r, the Hodges-Lehmann estimate of the shift and the Jacobson & Truax reliable change
index. Only the standard library is used (``math.erfc`` for the normal tail, integer
dynamic programming for the exact distribution), so importing the domain never loads
scipy or numpy; the unit tests check the results against scipy.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from domain.instruments import Improvement

__all__ = [
    "EXACT_MAX_N",
    "RCI_CRITICAL",
    "Descriptives",
    "Direction",
    "Pair",
    "PairedChange",
    "ReliableChange",
    "WilcoxonResult",
    "describe",
    "hodges_lehmann",
    "paired_change",
    "reliable_change",
    "reliable_change_counts",
    "wilcoxon_signed_rank",
]

Direction = Literal["increase", "decrease", "none"]
ChangeCategory = Literal["improved", "no_reliable_change", "deteriorated"]

#: Largest number of non-zero differences for which the exact p value is given.
EXACT_MAX_N = 50
#: |RCI| above this is reliable change (two-sided 5%, Jacobson & Truax 1991).
RCI_CRITICAL = 1.96

FEWER_THAN_2_PAIRS = "fewer than 2 pairs"
NO_NONZERO_DIFFERENCES = "no non-zero differences"


def _check_real(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} must be a real number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{what} must be finite, got {value!r}")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class Pair:
    """One completer's score at the pre and at the post timepoint."""

    participant_id: str
    pre: float
    post: float

    def __post_init__(self) -> None:
        _check_real(self.pre, f"{self.participant_id} pre")
        _check_real(self.post, f"{self.participant_id} post")


@dataclass(frozen=True, kw_only=True)
class Descriptives:
    """n, mean, sample SD (n - 1 denominator) and median; None where undefined."""

    n: int
    mean: float | None
    sd: float | None
    median: float | None


@dataclass(frozen=True, kw_only=True)
class WilcoxonResult:
    """Wilcoxon signed-rank test on post - pre differences, SPSS conventions.

    Attributes
    ----------
    n_nonzero : int
        Pairs left after dropping zero differences.
    t : float
        The smaller rank sum, ``min(w_plus, w_minus)``.
    w_plus, w_minus : float
        Rank sums of the positive and negative differences.
    z : float or None
        Tie-corrected normal deviate of `t`, never positive; None when `n_nonzero` is 0.
    p_two_sided : float or None
        Two-sided p from the normal approximation.
    p_exact_two_sided : float or None
        Two-sided p from the exact null distribution, only without ties among the
        non-zero ``|d|`` and with `n_nonzero` <= 50.
    ties : bool
        Whether any two non-zero ``|d|`` are equal.
    """

    n_nonzero: int
    t: float
    w_plus: float
    w_minus: float
    z: float | None
    p_two_sided: float | None
    p_exact_two_sided: float | None
    ties: bool


@dataclass(frozen=True, kw_only=True)
class PairedChange:
    """Everything the pre/post report says about one subscale."""

    n_pairs: int
    pre: Descriptives
    post: Descriptives
    wilcoxon: WilcoxonResult | None
    direction: Direction
    effect_size_r: float | None
    hodges_lehmann: float | None
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class ReliableChange:
    """One participant's reliable change index and what it means."""

    participant_id: str
    rci: float
    category: ChangeCategory


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) / 2


def describe(values: Sequence[float]) -> Descriptives:
    """Sample size, mean, standard deviation and median.

    Parameters
    ----------
    values : sequence of float
        Finite numbers.

    Returns
    -------
    Descriptives
        `mean` and `median` are None for no values, `sd` for fewer than two.

    Notes
    -----
    The SD uses the n - 1 denominator (as SPSS). Sums use `math.fsum`, which is correctly
    rounded, so the result does not depend on the order of `values`.
    """
    xs = [_check_real(v, "value") for v in values]
    n = len(xs)
    if n == 0:
        return Descriptives(n=0, mean=None, sd=None, median=None)
    mean = math.fsum(xs) / n
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1)) if n >= 2 else None
    return Descriptives(n=n, mean=mean, sd=sd, median=_median(xs))


def _iv(pre: Sequence[float], post: Sequence[float]) -> tuple[list[float], list[float]]:
    """Input validation for the paired tests: equal lengths of finite real numbers."""
    if isinstance(pre, str | bytes) or isinstance(post, str | bytes):
        raise TypeError("pre and post must be sequences of numbers")
    xs = [_check_real(v, f"pre[{i}]") for i, v in enumerate(pre)]
    ys = [_check_real(v, f"post[{i}]") for i, v in enumerate(post)]
    if len(xs) != len(ys):
        raise ValueError(f"pre and post differ in length: {len(xs)} != {len(ys)}")
    return xs, ys


@lru_cache(maxsize=EXACT_MAX_N + 1)
def _signed_rank_counts(n: int) -> tuple[int, ...]:
    """Number of sign assignments of ranks 1..n giving each rank sum 0..n(n+1)/2."""
    counts = [1]
    for rank in range(1, n + 1):
        grown = counts + [0] * rank
        for total, ways in enumerate(counts):
            grown[total + rank] += ways
        counts = grown
    return tuple(counts)


def _exact_p_two_sided(t: int, n: int) -> float:
    counts = _signed_rank_counts(n)
    at_most_t = sum(counts[: t + 1])
    return min(1.0, 2 * at_most_t / (1 << n))


def wilcoxon_signed_rank(*, pre: Sequence[float], post: Sequence[float]) -> WilcoxonResult:
    """Wilcoxon signed-rank test of paired scores, as SPSS reports it.

    Parameters
    ----------
    pre, post : sequence of float
        Paired scores, same length, finite; keyword-only because swapping them swaps
        `w_plus` and `w_minus`.

    Returns
    -------
    WilcoxonResult

    Raises
    ------
    ValueError
        Lengths differ or a value is not finite.
    TypeError
        A value is not a real number.

    Notes
    -----
    The differences are ``d = post - pre``. Zero differences are dropped (Wilcoxon's
    original treatment, scipy's ``zero_method="wilcox"``), leaving ``n`` pairs. The
    ``|d|`` are ranked 1..n, tied values sharing the average of their ranks. ``W+`` and
    ``W-`` are the rank sums of positive and negative differences and ``T = min(W+,
    W-)``. The normal approximation is

    .. math:: Z = \\frac{T - n(n+1)/4}{\\sqrt{n(n+1)(2n+1)/24 - \\sum (t^3 - t)/48}}

    where ``t`` runs over the sizes of the groups of tied ``|d|``; no continuity
    correction is applied, so ``Z <= 0`` whichever way scores moved (the direction is in
    ``W+`` against ``W-``). ``p = erfc(|Z| / sqrt(2))`` is two-sided.

    The exact two-sided p is ``min(1, 2 P(W <= T))`` under the null distribution of the
    rank sum of ``n`` untied ranks with random signs, counted by dynamic programming.
    It is given only when there are no ties among the non-zero ``|d|`` (the
    distribution assumes ranks 1..n) and ``n <= 50``; zeros are dropped before, so it
    is the exact test conditional on the non-zero differences.

    scipy computes the same quantities with ``scipy.stats.wilcoxon(post, pre,
    zero_method="wilcox", correction=False, method="asymptotic")`` (``statistic`` is
    T, ``zstatistic`` is Z) and ``method="exact"`` for the exact p.

    References
    ----------
    .. [1] Wilcoxon, F. (1945). Individual comparisons by ranking methods. Biometrics
       Bulletin, 1(6), 80-83. https://doi.org/10.2307/3001968
    .. [2] Field, A. (2005). Discovering Statistics Using SPSS (2nd ed.). Sage.
       (The Wilcoxon signed-rank test as SPSS reports it; cited by the pilot study.)
    .. [3] Lehmann, E. L. (2006). Nonparametrics: Statistical Methods Based on Ranks
       (rev. ed.). Springer. (Tie correction of the variance.)

    Examples
    --------
    Six participants whose scores all fell (the study's HADS anxiety pattern):

    >>> res = wilcoxon_signed_rank(pre=[18, 12, 15, 20, 11, 12], post=[8, 6, 10, 9, 4, 4])
    >>> res.t, res.w_plus, res.w_minus
    (0.0, 0.0, 21.0)
    >>> round(res.z, 4), round(res.p_two_sided, 4), res.p_exact_two_sided
    (-2.2014, 0.0277, 0.03125)
    """
    xs, ys = _iv(pre, post)
    diffs = [y - x for x, y in zip(xs, ys, strict=True)]
    nonzero = sorted((d for d in diffs if d != 0), key=abs)
    n = len(nonzero)
    w_plus = 0.0
    w_minus = 0.0
    tie_term = 0
    start = 0
    while start < n:
        stop = start
        while stop + 1 < n and abs(nonzero[stop + 1]) == abs(nonzero[start]):
            stop += 1
        size = stop - start + 1
        # positions start..stop hold ranks start+1..stop+1; their mean is exact in halves
        rank = (start + stop + 2) / 2
        for d in nonzero[start : stop + 1]:
            if d > 0:
                w_plus += rank
            else:
                w_minus += rank
        tie_term += size**3 - size
        start = stop + 1
    ties = tie_term > 0
    t = min(w_plus, w_minus)
    if n == 0:
        return WilcoxonResult(
            n_nonzero=0,
            t=t,
            w_plus=w_plus,
            w_minus=w_minus,
            z=None,
            p_two_sided=None,
            p_exact_two_sided=None,
            ties=False,
        )
    variance = n * (n + 1) * (2 * n + 1) / 24 - tie_term / 48
    z = (t - n * (n + 1) / 4) / math.sqrt(variance)
    p_two_sided = math.erfc(abs(z) / math.sqrt(2))
    p_exact = None if ties or n > EXACT_MAX_N else _exact_p_two_sided(int(t), n)
    return WilcoxonResult(
        n_nonzero=n,
        t=t,
        w_plus=w_plus,
        w_minus=w_minus,
        z=z,
        p_two_sided=p_two_sided,
        p_exact_two_sided=p_exact,
        ties=ties,
    )


def hodges_lehmann(differences: Sequence[float]) -> float | None:
    """Hodges-Lehmann estimate of the shift: the median of the Walsh averages.

    Parameters
    ----------
    differences : sequence of float
        Paired differences ``post - pre``, zeros included.

    Returns
    -------
    float or None
        ``median((d_i + d_j) / 2 for i <= j)``; None for no differences.

    Notes
    -----
    This is the estimate R reports as ``wilcox.test(post, pre, paired = TRUE,
    conf.int = TRUE)$estimate`` ("(pseudo)median") when it computes it exactly. There
    are n(n+1)/2 Walsh averages, too many to list for large trials, so the median ones are
    selected without listing them: bisection over the floating-point values with an O(n)
    two-pointer count of the pair sums at or below a bound, in O(n log n) time and O(n)
    memory. The result is the same pair sum the full list would give.

    References
    ----------
    .. [1] Hodges, J. L., & Lehmann, E. L. (1963). Estimates of location based on rank
       tests. The Annals of Mathematical Statistics, 34(2), 598-611.
       https://doi.org/10.1214/aoms/1177704172

    Examples
    --------
    >>> hodges_lehmann([1.0, 2.0, 4.0])  # averages 1, 1.5, 2, 2.5, 3, 4
    2.25
    """
    ds = sorted(_check_real(d, "difference") for d in differences)
    if not ds:
        return None
    m = len(ds) * (len(ds) + 1) // 2
    if m % 2:
        return _kth_pair_sum(ds, (m + 1) // 2) / 2
    return (_kth_pair_sum(ds, m // 2) + _kth_pair_sum(ds, m // 2 + 1)) / 4


def _pair_sums_at_most(ds: Sequence[float], bound: float) -> int:
    """How many pairs i <= j of the sorted ``ds`` have ``ds[i] + ds[j] <= bound``."""
    count = 0
    j = len(ds) - 1
    for i, d in enumerate(ds):
        while j >= i and d + ds[j] > bound:
            j -= 1
        if j < i:
            break
        count += j - i + 1
    return count


def _largest_pair_sum_at_most(ds: Sequence[float], bound: float) -> float:
    best = -math.inf
    j = len(ds) - 1
    for i, d in enumerate(ds):
        while j >= i and d + ds[j] > bound:
            j -= 1
        if j < i:
            break
        best = max(best, d + ds[j])
    return best


def _kth_pair_sum(ds: Sequence[float], k: int) -> float:
    """The k-th smallest (1-based) of the sums ``ds[i] + ds[j]``, i <= j, of sorted ``ds``.

    Bisection keeps count(<= lo) < k <= count(<= hi) until lo and hi are neighbouring
    floats; every pair sum in (lo, hi] is then hi itself, the k-th sum.
    """
    lo = 2 * ds[0] - 1.0
    hi = 2 * ds[-1]
    while True:
        mid = lo + (hi - lo) / 2
        if mid <= lo or mid >= hi:
            return _largest_pair_sum_at_most(ds, hi)
        if _pair_sums_at_most(ds, mid) >= k:
            hi = mid
        else:
            lo = mid


def _direction(w_plus: float, w_minus: float) -> Direction:
    if w_plus > w_minus:
        return "increase"
    if w_minus > w_plus:
        return "decrease"
    return "none"


def paired_change(*, pairs: Sequence[Pair]) -> PairedChange:
    """Pre/post change of one subscale over the completers' pairs.

    Parameters
    ----------
    pairs : sequence of Pair
        One pair per completer; order does not matter.

    Returns
    -------
    PairedChange
        Descriptives at pre and post; with at least 2 pairs the Wilcoxon test, the
        effect size ``r = Z / sqrt(n_pairs)`` and the Hodges-Lehmann shift; with fewer,
        those are None and `reason` says why (`direction` is still given for one pair).

    Notes
    -----
    `direction` compares ``W+`` with ``W-`` (``"increase"``, ``"decrease"`` or
    ``"none"``), because Z is computed from the smaller rank sum and so carries no sign
    of its own. ``r`` divides by all pairs, zero differences included, as in Field
    (2005) and Fritz et al. (2012); it is negative like Z. When every difference is
    zero there is no Z, so ``r`` is None with a reason, while the Hodges-Lehmann shift
    is 0.

    References
    ----------
    .. [1] Fritz, C. O., Morris, P. E., & Richler, J. J. (2012). Effect size estimates:
       current use, calculations, and interpretation. Journal of Experimental
       Psychology: General, 141(1), 2-18. https://doi.org/10.1037/a0024338
    .. [2] Hodges, J. L., & Lehmann, E. L. (1963). https://doi.org/10.1214/aoms/1177704172

    Examples
    --------
    >>> pairs = [Pair(participant_id=f"P{i}", pre=10.0 + i, post=5.0) for i in range(6)]
    >>> change = paired_change(pairs=pairs)
    >>> change.direction, round(change.effect_size_r, 4), change.hodges_lehmann
    ('decrease', -0.8987, -7.5)
    """
    pre = [p.pre for p in pairs]
    post = [p.post for p in pairs]
    n_pairs = len(pairs)
    pre_desc = describe(pre)
    post_desc = describe(post)
    result = wilcoxon_signed_rank(pre=pre, post=post)
    direction = _direction(result.w_plus, result.w_minus)
    if n_pairs < 2:
        return PairedChange(
            n_pairs=n_pairs,
            pre=pre_desc,
            post=post_desc,
            wilcoxon=None,
            direction=direction,
            effect_size_r=None,
            hodges_lehmann=None,
            reason=FEWER_THAN_2_PAIRS,
        )
    effect = None if result.z is None else result.z / math.sqrt(n_pairs)
    return PairedChange(
        n_pairs=n_pairs,
        pre=pre_desc,
        post=post_desc,
        wilcoxon=result,
        direction=direction,
        effect_size_r=effect,
        hodges_lehmann=hodges_lehmann([y - x for x, y in zip(pre, post, strict=True)]),
        reason=None if result.z is not None else NO_NONZERO_DIFFERENCES,
    )


def reliable_change(
    *, pairs: Sequence[Pair], alpha: float, improvement: Improvement
) -> tuple[ReliableChange, ...]:
    """Jacobson & Truax reliable change index of each pair.

    Parameters
    ----------
    pairs : sequence of Pair
        The completers' pairs; their pre values give the baseline SD.
    alpha : float
        The subscale's reliability (Cronbach's alpha), in [0, 1).
    improvement : {"decrease", "increase"}
        Which direction of change is clinical improvement on this subscale.

    Returns
    -------
    tuple of ReliableChange
        One per pair in the given order; empty with fewer than 2 pairs or when the
        baseline SD is 0 (no RCI can be formed).

    Raises
    ------
    ValueError
        `alpha` outside [0, 1) or `improvement` not one of the two directions.

    Notes
    -----
    ``SE = SD_pre * sqrt(1 - alpha)``, ``S_diff = sqrt(2) * SE`` and ``RCI = (post -
    pre) / S_diff``; ``|RCI| > 1.96`` is reliable change, "improved" when it goes the
    `improvement` way and "deteriorated" otherwise. ``SD_pre`` is the sample SD (n - 1)
    of the pairs' pre scores, the trial's own baseline.

    References
    ----------
    .. [1] Jacobson, N. S., & Truax, P. (1991). Clinical significance: A statistical
       approach to defining meaningful change in psychotherapy research. Journal of
       Consulting and Clinical Psychology, 59(1), 12-19.
       https://doi.org/10.1037/0022-006X.59.1.12

    Examples
    --------
    SD_pre of 5, 10, 15 is 5; with alpha .84, S_diff = sqrt(2) * 5 * 0.4 = 2.83:

    >>> pairs = [Pair(participant_id="P1", pre=10.0, post=4.0)]
    >>> pairs += [Pair(participant_id="P2", pre=5.0, post=5.0)]
    >>> pairs += [Pair(participant_id="P3", pre=15.0, post=15.0)]
    >>> [c.category for c in reliable_change(pairs=pairs, alpha=0.84, improvement="decrease")]
    ['improved', 'no_reliable_change', 'no_reliable_change']
    """
    alpha = _check_real(alpha, "alpha")
    if not 0.0 <= alpha < 1.0:
        raise ValueError(f"alpha must be in [0, 1), got {alpha}")
    if improvement not in ("decrease", "increase"):
        raise ValueError(f"improvement must be 'decrease' or 'increase', got {improvement!r}")
    if len(pairs) < 2:
        return ()
    sd_pre = describe([p.pre for p in pairs]).sd
    if not sd_pre:
        return ()
    s_diff = math.sqrt(2) * sd_pre * math.sqrt(1 - alpha)
    changes: list[ReliableChange] = []
    for pair in pairs:
        rci = (pair.post - pair.pre) / s_diff
        category: ChangeCategory
        if abs(rci) <= RCI_CRITICAL:
            category = "no_reliable_change"
        elif (rci < 0) == (improvement == "decrease"):
            category = "improved"
        else:
            category = "deteriorated"
        changes.append(
            ReliableChange(participant_id=pair.participant_id, rci=rci, category=category)
        )
    return tuple(changes)


def reliable_change_counts(changes: Iterable[ReliableChange]) -> dict[str, int]:
    """How many participants improved, did not change reliably, or deteriorated."""
    counts = {"improved": 0, "no_reliable_change": 0, "deteriorated": 0}
    for change in changes:
        counts[change.category] += 1
    return counts
