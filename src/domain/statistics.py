"""Pre/post statistics as the pilot study's Table 1 computed them (SPSS), in pure Python.

Descriptives, the Wilcoxon signed-rank test (tie-corrected normal approximation without
continuity correction, plus the exact conditional null distribution of the signed
mid-ranks, ties included), Holm's step-down adjustment across a report's tests, effect
sizes (r over pairs and over observations, the matched-pairs rank-biserial correlation),
the Hodges-Lehmann estimate of the shift and the Jacobson & Truax reliable change index.
Only the standard library is used (``math.erfc`` for the normal tail, integer dynamic
programming for the exact distribution), so importing the domain never loads scipy or
numpy; the unit tests check the results against scipy, R (coin, p.adjust) and brute force.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from domain.instruments import Improvement

__all__ = [
    "EXACT_MAX_N",
    "RCI_CRITICAL",
    "TIE_DECIMALS",
    "Descriptives",
    "Direction",
    "EffectSizes",
    "PMethod",
    "Pair",
    "PairedChange",
    "ReliableChange",
    "WilcoxonResult",
    "describe",
    "difference",
    "effect_sizes",
    "hodges_lehmann",
    "holm_adjust",
    "paired_change",
    "reliable_change",
    "reliable_change_counts",
    "reliable_change_index",
    "wilcoxon_signed_rank",
]

Direction = Literal["increase", "decrease", "none"]
PMethod = Literal["exact", "asymptotic"]
ChangeCategory = Literal["improved", "no_reliable_change", "deteriorated"]

#: Largest number of non-zero differences for which the exact p value is given.
EXACT_MAX_N = 50
#: Differences are rounded to this many decimals (1e-9) before zeros, signs and ties are
#: decided, so that prorated scores that are mathematically equal tie although their
#: floating-point values differ in the last bits (10.5 as 6 / 4 * 7 or as 10 + 0.5).
TIE_DECIMALS = 9
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


@dataclass(frozen=True, kw_only=True, slots=True)
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
        Two-sided p from the exact conditional null distribution of the signed
        (mid-)ranks, ties included, when `n_nonzero` is 1..50; None otherwise.
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

    @property
    def p_method_primary(self) -> PMethod:
        """``"exact"`` whenever the exact p exists, else ``"asymptotic"``."""
        return "exact" if self.p_exact_two_sided is not None else "asymptotic"

    @property
    def p_primary(self) -> float | None:
        """The p a report leads with: the exact one when it exists, else the normal one."""
        return self.p_exact_two_sided if self.p_exact_two_sided is not None else self.p_two_sided


@dataclass(frozen=True, kw_only=True)
class EffectSizes:
    """Three effect sizes of one paired comparison; None where undefined.

    Attributes
    ----------
    r_pairs : float or None
        ``Z / sqrt(n_pairs)`` (Rosenthal 1994), the study's and the contract's
        ``effect_size_r``; negative like Z.
    r_observations : float or None
        ``Z / sqrt(2 n_pairs)``, dividing by the number of observations (two per pair),
        as Fritz, Morris & Richler (2012) discuss for repeated measures.
    rank_biserial : float or None
        Matched-pairs rank-biserial correlation ``(W+ - W-) / (W+ + W-)`` (Kerby 2014):
        signed, positive when scores rose, in [-1, 1]; None without non-zero differences.
    """

    r_pairs: float | None
    r_observations: float | None
    rank_biserial: float | None


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
    effect_sizes: EffectSizes | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
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


def difference(*, pre: float, post: float) -> float:
    """``post - pre`` rounded to `TIE_DECIMALS` decimals, as every rank statistic uses it.

    Raises
    ------
    ValueError
        The difference overflows (only possible for scores near the float limit).

    Examples
    --------
    Two ways of computing the prorated 10.5 differ in the last bit, their differences not:

    >>> (6 / 4 * 7 - 3.1) == (10 + 0.5 - 3.1), difference(pre=3.1, post=10.5)
    (True, 7.4)
    >>> 0.1 * 3 - 0.3, difference(pre=0.3, post=0.1 * 3)
    (5.551115123125783e-17, 0.0)
    """
    d = post - pre
    if not math.isfinite(d):
        raise ValueError(f"difference {post!r} - {pre!r} is not finite")
    return round(d, TIE_DECIMALS)


def _iv(pre: Sequence[float], post: Sequence[float]) -> list[float]:
    """Input validation for the paired tests; returns the rounded differences."""
    if isinstance(pre, str | bytes) or isinstance(post, str | bytes):
        raise TypeError("pre and post must be sequences of numbers")
    xs = [_check_real(v, f"pre[{i}]") for i, v in enumerate(pre)]
    ys = [_check_real(v, f"post[{i}]") for i, v in enumerate(post)]
    if len(xs) != len(ys):
        raise ValueError(f"pre and post differ in length: {len(xs)} != {len(ys)}")
    return [difference(pre=x, post=y) for x, y in zip(xs, ys, strict=True)]


@lru_cache(maxsize=256)
def _signed_rank_counts(doubled_ranks: tuple[int, ...]) -> tuple[int, ...]:
    """Sign assignments of the ranks giving each doubled positive rank sum 0..sum(ranks).

    ``counts[s]`` is how many of the ``2**n`` assignments of + and - to the ranks (given
    doubled, so that mid-ranks such as 2.5 are the integers 5) make the positive ranks
    sum to ``s / 2``. One pass per rank: each either joins the positive sum or not.
    """
    counts = [1]
    for rank in doubled_ranks:
        grown = counts + [0] * rank
        for total, ways in enumerate(counts):
            if ways:
                grown[total + rank] += ways
        counts = grown
    return tuple(counts)


def _exact_p_two_sided(*, doubled_t: int, doubled_ranks: tuple[int, ...]) -> float:
    counts = _signed_rank_counts(tuple(sorted(doubled_ranks)))
    at_most_t = sum(counts[: doubled_t + 1])
    # 2 P(W+ <= T) over 2**n equally likely sign patterns; Python's int / int is
    # correctly rounded, so no precision is lost on the way to a float
    return min(1.0, 2 * at_most_t / (1 << len(doubled_ranks)))


def wilcoxon_signed_rank(*, pre: Sequence[float], post: Sequence[float]) -> WilcoxonResult:
    """Wilcoxon signed-rank test of paired scores, as SPSS reports it, with an exact p.

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
        Lengths differ, a value is not finite or a difference overflows.
    TypeError
        A value is not a real number.

    Notes
    -----
    The differences are ``d = post - pre``, rounded to 9 decimals (`TIE_DECIMALS`) so
    that differences that are mathematically equal but differ in their last bits (as
    prorated scores computed in different orders do) are equal; zeros, signs and ties
    are all decided on the rounded values. Zero differences are dropped (Wilcoxon's
    original treatment, scipy's ``zero_method="wilcox"``), leaving ``n`` pairs. The
    ``|d|`` are ranked 1..n, tied values sharing the average of their ranks. ``W+`` and
    ``W-`` are the rank sums of positive and negative differences and ``T = min(W+,
    W-)``. The normal approximation is

    .. math:: Z = \\frac{T - n(n+1)/4}{\\sqrt{n(n+1)(2n+1)/24 - \\sum (t^3 - t)/48}}

    where ``t`` runs over the sizes of the groups of tied ``|d|``; no continuity
    correction is applied, so ``Z <= 0`` whichever way scores moved (the direction is in
    ``W+`` against ``W-``). ``p = erfc(|Z| / sqrt(2))`` is two-sided.

    The exact p is that of the permutation test conditional on the observed ``|d|``:
    under the null hypothesis each of the ``2**n`` assignments of signs to the (mid-)
    ranks is equally likely, and ``W+`` is the sum of the positive ones. Its
    distribution is counted exactly, in integers, by dynamic programming over the
    doubled ranks (mid-ranks are multiples of 1/2); without ties it is the classical
    distribution of Wilcoxon (1945) and scipy's ``method="exact"``. The two-sided p is
    ``P(|W+ - E W+| >= |w+ - E W+|)``, the definition of R's ``coin::wilcoxsign_test``
    (the probability of a standardized statistic at least as far from 0 as the observed
    one, and 1 when it is 0). The null distribution is symmetric about ``E W+ = n(n+1)/4``
    (reversing every sign maps ``W+`` to ``n(n+1)/2 - W+``), so that equals ``min(1, 2
    P(W+ <= T))``, which is how it is computed. It is given for ``1 <= n <= 50``
    (`EXACT_MAX_N`), at most ``2550`` doubled sums; zeros are dropped before, so it is
    conditional on the non-zero differences, like `z`.

    scipy computes the normal approximation with ``scipy.stats.wilcoxon(post, pre,
    zero_method="wilcox", correction=False, method="asymptotic")`` (``statistic`` is T,
    ``zstatistic`` is Z) and, for untied data only, the exact p with ``method="exact"``;
    R computes the exact p with ties as ``coin::pvalue(coin::wilcoxsign_test(post ~ pre,
    distribution = "exact", zero.method = "Wilcoxon"))``.

    References
    ----------
    .. [1] Wilcoxon, F. (1945). Individual comparisons by ranking methods. Biometrics
       Bulletin, 1(6), 80-83. https://doi.org/10.2307/3001968
    .. [2] Field, A. (2005). Discovering Statistics Using SPSS (2nd ed.). Sage.
       (The Wilcoxon signed-rank test as SPSS reports it; cited by the pilot study.)
    .. [3] Lehmann, E. L. (2006). Nonparametrics: Statistical Methods Based on Ranks
       (rev. ed.). Springer. (Tie correction of the variance; the conditional exact
       distribution of the signed mid-ranks.)
    .. [4] Hothorn, T., Hornik, K., van de Wiel, M. A., & Zeileis, A. (2008).
       Implementing a class of permutation tests: the coin package. Journal of
       Statistical Software, 28(8), 1-23. https://doi.org/10.18637/jss.v028.i08

    Examples
    --------
    Six participants whose scores all fell (the study's HADS anxiety pattern):

    >>> res = wilcoxon_signed_rank(pre=[18, 12, 15, 20, 11, 12], post=[8, 6, 10, 9, 4, 4])
    >>> res.t, res.w_plus, res.w_minus
    (0.0, 0.0, 21.0)
    >>> round(res.z, 4), round(res.p_two_sided, 4), res.p_exact_two_sided
    (-2.2014, 0.0277, 0.03125)

    With ties, d = +1, +1, -2, +3 have mid-ranks 1.5, 1.5, 3, 4 and T = 3; 10 of the 16
    sign patterns are at least as far from the centre 5 (coin gives 0.625):

    >>> wilcoxon_signed_rank(pre=[0, 0, 2, 0], post=[1, 1, 0, 3]).p_exact_two_sided
    0.625
    """
    diffs = _iv(pre, post)
    nonzero = sorted((d for d in diffs if d != 0), key=abs)
    n = len(nonzero)
    w_plus = 0.0
    w_minus = 0.0
    doubled_t_plus = 0
    doubled_ranks: list[int] = []
    tie_term = 0
    start = 0
    while start < n:
        stop = start
        while stop + 1 < n and abs(nonzero[stop + 1]) == abs(nonzero[start]):
            stop += 1
        size = stop - start + 1
        # positions start..stop hold ranks start+1..stop+1; twice their mean is an integer
        doubled = start + stop + 2
        rank = doubled / 2
        for d in nonzero[start : stop + 1]:
            doubled_ranks.append(doubled)
            if d > 0:
                w_plus += rank
                doubled_t_plus += doubled
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
    p_exact = None
    if n <= EXACT_MAX_N:
        doubled_t = min(doubled_t_plus, n * (n + 1) - doubled_t_plus)
        p_exact = _exact_p_two_sided(doubled_t=doubled_t, doubled_ranks=tuple(doubled_ranks))
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


def holm_adjust(p_values: Sequence[float]) -> tuple[float, ...]:
    """Holm's step-down adjustment of a family of p values, in the given order.

    Parameters
    ----------
    p_values : sequence of float
        The unadjusted p values of the family, each in [0, 1].

    Returns
    -------
    tuple of float
        ``p_holm[i]`` for each ``p_values[i]``.

    Raises
    ------
    ValueError
        A p value is not a finite number in [0, 1].

    Notes
    -----
    With the ``m`` p values sorted ascending, ``p_(1) <= ... <= p_(m)``, the adjusted
    value of the j-th smallest is ``max over i <= j of min(1, (m - i + 1) p_(i))``;
    rejecting where ``p_holm <= alpha`` controls the family-wise error rate at alpha
    under any dependence. Equal p values get equal adjusted values, so the order among
    ties does not matter. This is R's ``p.adjust(p, method = "holm")``.

    References
    ----------
    .. [1] Holm, S. (1979). A simple sequentially rejective multiple test procedure.
       Scandinavian Journal of Statistics, 6(2), 65-70. https://www.jstor.org/stable/4615733

    Examples
    --------
    >>> holm_adjust([0.01, 0.04, 0.03])  # 3 * .01; max(2 * .03, .03); max(.06, 1 * .04)
    (0.03, 0.06, 0.06)
    """
    ps = [_check_real(p, "p value") for p in p_values]
    for p in ps:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p values must be in [0, 1], got {p}")
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    adjusted = [0.0] * m
    running = 0.0
    for position, index in enumerate(order):
        running = max(running, min(1.0, (m - position) * ps[index]))
        adjusted[index] = running
    return tuple(adjusted)


def effect_sizes(*, result: WilcoxonResult, n_pairs: int) -> EffectSizes:
    """r over pairs, r over observations and the matched-pairs rank-biserial correlation.

    Parameters
    ----------
    result : WilcoxonResult
        The signed-rank test of the pairs.
    n_pairs : int
        All pairs, zero differences included (the denominator of both r).

    Returns
    -------
    EffectSizes
        Each None where it is undefined: both r without a Z (no non-zero difference),
        the rank-biserial correlation when ``W+ + W-`` is 0.

    Notes
    -----
    ``r_pairs = Z / sqrt(N)`` with ``N`` the number of pairs is the r of Rosenthal (1994)
    that the report has always called ``effect_size_r``. Fritz, Morris & Richler (2012)
    point out that for a within-subjects design ``N`` may instead be taken as the number
    of observations, ``2 N``; ``r_observations = Z / sqrt(2 N)`` is that choice, smaller
    by ``sqrt(2)``. Both carry the sign of Z, which is never positive here (SPSS
    convention), so they give magnitude only; the direction is in ``direction``.

    The matched-pairs rank-biserial correlation is the simple difference formula of
    Kerby (2014), ``(W+ - W-) / (W+ + W-)``: the proportion of the rank sum favouring a
    rise minus the proportion favouring a fall, so it is signed (positive when scores
    rose), in [-1, 1], and ``-1`` when every non-zero difference is a fall. Zero
    differences are dropped from it, as from the test.

    References
    ----------
    .. [1] Rosenthal, R. (1994). Parametric measures of effect size. In H. Cooper &
       L. V. Hedges (Eds.), The Handbook of Research Synthesis (pp. 231-244). Russell
       Sage Foundation.
    .. [2] Fritz, C. O., Morris, P. E., & Richler, J. J. (2012). Effect size estimates:
       current use, calculations, and interpretation. Journal of Experimental
       Psychology: General, 141(1), 2-18. https://doi.org/10.1037/a0024338
    .. [3] Kerby, D. S. (2014). The simple difference formula: an approach to teaching
       nonparametric correlation. Comprehensive Psychology, 3, 11.IT.3.1.
       https://doi.org/10.2466/11.IT.3.1

    Examples
    --------
    >>> res = wilcoxon_signed_rank(pre=[0, 0, 2, 0], post=[1, 1, 0, 3])  # W+ 7, W- 3
    >>> sizes = effect_sizes(result=res, n_pairs=4)
    >>> round(sizes.r_pairs, 4), round(sizes.r_observations, 4), sizes.rank_biserial
    (-0.3682, -0.2604, 0.4)
    """
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be at least 1, got {n_pairs}")
    total = result.w_plus + result.w_minus
    rank_biserial = (result.w_plus - result.w_minus) / total if total else None
    if result.z is None:
        return EffectSizes(r_pairs=None, r_observations=None, rank_biserial=rank_biserial)
    return EffectSizes(
        r_pairs=result.z / math.sqrt(n_pairs),
        r_observations=result.z / math.sqrt(2 * n_pairs),
        rank_biserial=rank_biserial,
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
    selected without listing them: bisection over the ordered floating-point values (on
    their bit patterns, so at most 64 steps whatever their magnitude) with an O(n)
    two-pointer count of the pair sums at or below a bound, in O(n log n) time and O(n)
    memory. The result is the same pair sum the full list would give.

    Pair sums of differences beyond ``2**1022`` in magnitude would overflow; such
    differences are halved first (exact, as halving a float is, except for values
    below ``2**-1022``) and the estimate doubled back, so the answer stays finite and
    the search always ends.

    References
    ----------
    .. [1] Hodges, J. L., & Lehmann, E. L. (1963). Estimates of location based on rank
       tests. The Annals of Mathematical Statistics, 34(2), 598-611.
       https://doi.org/10.1214/aoms/1177704172

    Examples
    --------
    >>> hodges_lehmann([1.0, 2.0, 4.0])  # averages 1, 1.5, 2, 2.5, 3, 4
    2.25

    Near the float limit (Walsh averages -1.5, .05, .1, 1.6, 1.65 and 1.7 times 1e308):

    >>> hodges_lehmann([-1.5e308, 1.7e308, 1.6e308])  # (.1 + 1.6) / 2 times 1e308
    8.5e+307
    """
    ds = sorted(_check_real(d, "difference") for d in differences)
    if not ds:
        return None
    scale = 1.0
    if max(-ds[0], ds[-1]) > _HALVE_ABOVE:
        ds = [d / 2 for d in ds]
        scale = 2.0
    m = len(ds) * (len(ds) + 1) // 2
    if m % 2:
        return _kth_pair_sum(ds, (m + 1) // 2) / 2 * scale
    low = _kth_pair_sum(ds, m // 2)
    high = _kth_pair_sum(ds, m // 2 + 1)
    return (low / 4 + high / 4 if math.isinf(low + high) else (low + high) / 4) * scale


#: Beyond this magnitude a pair sum of two differences could overflow.
_HALVE_ABOVE = 2.0**1022
_SIGN_BIT = 1 << 63


def _ordinal(x: float) -> int:
    """An integer that orders like the float `x` (-0.0 and 0.0 both map to 0)."""
    bits = int(struct.unpack("<q", struct.pack("<d", x))[0])
    return bits if bits >= 0 else -(bits & (_SIGN_BIT - 1))


def _from_ordinal(o: int) -> float:
    bits = o if o >= 0 else (-o) | _SIGN_BIT
    (x,) = struct.unpack("<d", struct.pack("<Q", bits))
    return float(x)


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


def _kth_pair_sum(ds: Sequence[float], k: int) -> float:
    """The k-th smallest (1-based) of the sums ``ds[i] + ds[j]``, i <= j, of sorted ``ds``.

    Every pair sum is a float in ``[2 ds[0], 2 ds[-1]]`` (finite: the caller halved
    large differences). Bisection on the floats' ordinals keeps count(<= lo) < k <=
    count(<= hi) until lo and hi are neighbouring floats; the k-th sum, a float in
    (lo, hi], is then hi itself. The ordinals span at most 2**64, so the loop ends
    within 64 steps.
    """
    smallest = 2 * ds[0]
    if _pair_sums_at_most(ds, smallest) >= k:
        return smallest
    lo = _ordinal(smallest)
    hi = _ordinal(2 * ds[-1])
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if _pair_sums_at_most(ds, _from_ordinal(mid)) >= k:
            hi = mid
        else:
            lo = mid
    return _from_ordinal(hi)


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
        effect sizes (`effect_sizes`; ``effect_size_r`` is ``r_pairs = Z / sqrt(n_pairs)``)
        and the Hodges-Lehmann shift; with fewer, those are None and `reason` says why
        (`direction` is still given for one pair).

    Notes
    -----
    `direction` compares ``W+`` with ``W-`` (``"increase"``, ``"decrease"`` or
    ``"none"``), because Z is computed from the smaller rank sum and so carries no sign
    of its own. ``r`` divides by all pairs, zero differences included (Rosenthal 1994;
    Fritz, Morris & Richler 2012 discuss the choice of N); it is negative like Z. When
    every difference is zero there is no Z, so ``r`` is None with a reason, while the
    Hodges-Lehmann shift is 0. The shift is computed from the same differences as the
    test, rounded to `TIE_DECIMALS` decimals.

    References
    ----------
    .. [1] Rosenthal, R. (1994). Parametric measures of effect size. In H. Cooper &
       L. V. Hedges (Eds.), The Handbook of Research Synthesis (pp. 231-244). Russell
       Sage Foundation.
    .. [2] Fritz, C. O., Morris, P. E., & Richler, J. J. (2012). Effect size estimates:
       current use, calculations, and interpretation. Journal of Experimental
       Psychology: General, 141(1), 2-18. https://doi.org/10.1037/a0024338
    .. [3] Hodges, J. L., & Lehmann, E. L. (1963). https://doi.org/10.1214/aoms/1177704172

    Examples
    --------
    >>> pairs = [Pair(participant_id=f"P{i}", pre=10.0 + i, post=5.0) for i in range(6)]
    >>> change = paired_change(pairs=pairs)
    >>> change.direction, round(change.effect_size_r, 4), change.hodges_lehmann
    ('decrease', -0.8987, -7.5)
    >>> change.effect_sizes.rank_biserial
    -1.0
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
    sizes = effect_sizes(result=result, n_pairs=n_pairs)
    return PairedChange(
        n_pairs=n_pairs,
        pre=pre_desc,
        post=post_desc,
        wilcoxon=result,
        direction=direction,
        effect_size_r=sizes.r_pairs,
        hodges_lehmann=hodges_lehmann(
            [difference(pre=x, post=y) for x, y in zip(pre, post, strict=True)]
        ),
        reason=None if result.z is not None else NO_NONZERO_DIFFERENCES,
        effect_sizes=sizes,
    )


def reliable_change_index(
    *, pairs: Sequence[Pair], reference_sd: float, reliability: float, improvement: Improvement
) -> tuple[ReliableChange, ...]:
    """Jacobson & Truax reliable change index of each pair, from a given SD and reliability.

    Parameters
    ----------
    pairs : sequence of Pair
        The pairs to classify.
    reference_sd : float
        The SD of the measure in the reference population (positive); keyword-only, like
        `reliability`, because the two are easily swapped.
    reliability : float
        The measure's reliability in [0, 1): test-retest in Jacobson & Truax (1991).
    improvement : {"decrease", "increase"}
        Which direction of change is clinical improvement on this subscale.

    Returns
    -------
    tuple of ReliableChange
        One per pair, in the given order.

    Raises
    ------
    ValueError
        `reference_sd` not positive, `reliability` outside [0, 1) or `improvement` not
        one of the two directions.

    Notes
    -----
    ``SE = SD * sqrt(1 - r)``, ``S_diff = sqrt(2) * SE`` and ``RCI = (post - pre) /
    S_diff``; ``|RCI| > 1.96`` is reliable change, "improved" when it goes the
    `improvement` way and "deteriorated" otherwise.

    References
    ----------
    .. [1] Jacobson, N. S., & Truax, P. (1991). Clinical significance: A statistical
       approach to defining meaningful change in psychotherapy research. Journal of
       Consulting and Clinical Psychology, 59(1), 12-19.
       https://doi.org/10.1037/0022-006X.59.1.12

    Examples
    --------
    >>> pairs = [Pair(participant_id="P1", pre=10.0, post=4.0)]  # S_diff = 2.83
    >>> reliable_change_index(pairs=pairs, reference_sd=5.0, reliability=0.84,
    ...                       improvement="decrease")[0].category
    'improved'
    """
    reference_sd = _check_real(reference_sd, "reference_sd")
    if reference_sd <= 0:
        raise ValueError(f"reference_sd must be positive, got {reference_sd}")
    reliability = _check_real(reliability, "reliability")
    if not 0.0 <= reliability < 1.0:
        raise ValueError(f"reliability must be in [0, 1), got {reliability}")
    if improvement not in ("decrease", "increase"):
        raise ValueError(f"improvement must be 'decrease' or 'increase', got {improvement!r}")
    s_diff = math.sqrt(2) * reference_sd * math.sqrt(1 - reliability)
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


def reliable_change(
    *, pairs: Sequence[Pair], alpha: float, improvement: Improvement
) -> tuple[ReliableChange, ...]:
    """Jacobson & Truax reliable change index of each pair on the sample's own basis.

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
    `reliable_change_index` with ``SD`` the sample SD (n - 1) of the pairs' pre
    scores, the trial's own baseline, and the internal consistency alpha in place of
    the test-retest reliability: the fallback when no published reference SD and
    test-retest reliability are known for the subscale.

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
    return reliable_change_index(
        pairs=pairs, reference_sd=sd_pre, reliability=alpha, improvement=improvement
    )


def reliable_change_counts(changes: Iterable[ReliableChange]) -> dict[str, int]:
    """How many participants improved, did not change reliably, or deteriorated."""
    counts = {"improved": 0, "no_reliable_change": 0, "deteriorated": 0}
    for change in changes:
        counts[change.category] += 1
    return counts
