"""The v1.1 statistics: exact p with ties, Holm, effect sizes, tie rounding, guards.

References are independent of the code under test: brute-force enumeration of every sign
assignment written out here, values computed once with R (coin 1.4.2, R 4.2.2, Debian
bookworm's r-cran-coin) and quoted with the call that gave them, hand arithmetic, and
exact rational arithmetic (`fractions.Fraction`). The suite itself needs no R.
"""

from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import Pair, paired_change, wilcoxon_signed_rank
from domain.statistics import (
    EXACT_MAX_N,
    effect_sizes,
    hodges_lehmann,
    holm_adjust,
    reliable_change,
    reliable_change_index,
)


def _mid_ranks(magnitudes: list[Fraction]) -> list[Fraction]:
    """Average ranks of `magnitudes` (1-based), written out without the code under test."""
    ordered = sorted(magnitudes)
    return [
        Fraction(sum(i + 1 for i, m in enumerate(ordered) if m == value), ordered.count(value))
        for value in magnitudes
    ]


def brute_force_exact_p(differences: list[float]) -> float:
    """coin's two-sided exact p by enumerating all 2**n sign assignments of the mid-ranks.

    P(|W+ - E W+| >= |w+ - E W+|) over equally likely sign patterns, zeros dropped and
    ties decided on differences rounded to 9 decimals, in exact rational arithmetic.
    """
    rounded = [Fraction(round(d, 9)) for d in differences]
    nonzero = [d for d in rounded if d != 0]
    ranks = _mid_ranks([abs(d) for d in nonzero])
    observed = sum((r for r, d in zip(ranks, nonzero, strict=True) if d > 0), Fraction(0))
    centre = sum(ranks, Fraction(0)) / 2
    distance = abs(observed - centre)
    hits = 0
    for signs in itertools.product((False, True), repeat=len(ranks)):
        w = sum((r for r, positive in zip(ranks, signs, strict=True) if positive), Fraction(0))
        if abs(w - centre) >= distance:
            hits += 1
    return float(Fraction(hits, 2 ** len(ranks)))


# -- exact p with ties -----------------------------------------------------------------------

# Each value below is printed by R 4.2.2 with coin 1.4.2 as
#   coin::pvalue(coin::wilcoxsign_test(post ~ pre, distribution = "exact",
#                                      zero.method = "Wilcoxon"))
# with pre = c(...) and post = c(...) the vectors given here, printed with %.17g.
COIN_EXACT = [
    # n = 5, all differences negative, T = 0: 2 / 32
    ([6, 7, 8, 9, 10], [5, 5, 5, 5, 5], 0.0625),
    # n = 4, all positive: 2 / 16
    ([0, 0, 0, 0], [1, 2, 3, 4], 0.125),
    # d = +1, +1, -2, +3: mid-ranks 1.5, 1.5, 3, 4
    ([0, 0, 2, 0], [1, 1, 0, 3], 0.625),
    # d = -14, -14, -11 (the integration test's HADS anxiety): 2 / 8
    ([21, 14, 18], [7, 0, 7], 0.25),
    # prorated 10.5 among integer scores, no ties
    ([10, 13, 15, 17, 14, 20], [9, 10.5, 12, 13, 9, 14], 0.03125),
    # fractional ties and a zero: d = .5, -.5, 1.5, 2, -2, 2, 3.25, -1.5, 0
    ([0] * 9, [0.5, -0.5, 1.5, 2, -2, 2, 3.25, -1.5, 0], 0.390625),
    # twelve pairs, several ties and one zero
    (
        [10, 12, 9, 14, 11, 13, 10, 15, 12, 9, 11, 16],
        [8, 12, 12, 10, 9, 13, 14, 11, 10, 7, 14, 12],
        0.486328125,
    ),
    # twenty differences in seven tie groups
    (
        [0] * 20,
        [1, 1, 1, -1, 2, 2, -2, 2, 3, 3, 3, -3, 4, 4, -4, 5, 5, 6, -6, 7],
        0.04613494873046875,
    ),
]


@pytest.mark.parametrize(("pre", "post", "coin_p"), COIN_EXACT)
def test_the_exact_p_with_ties_equals_r_coins_exact_wilcoxsign_test(
    pre: list[float], post: list[float], coin_p: float
) -> None:
    result = wilcoxon_signed_rank(pre=pre, post=post)
    assert result.p_exact_two_sided == pytest.approx(coin_p, rel=1e-12)
    assert result.p_method_primary == "exact"
    assert result.p_primary == result.p_exact_two_sided


@pytest.mark.parametrize(("pre", "post", "coin_p"), [c for c in COIN_EXACT if len(c[0]) <= 12])
def test_brute_force_enumeration_reproduces_the_r_values(
    pre: list[float], post: list[float], coin_p: float
) -> None:
    # checks the reference itself, so the random comparisons below rest on coin's definition
    differences = [b - a for a, b in zip(pre, post, strict=True)]
    assert brute_force_exact_p(differences) == pytest.approx(coin_p, rel=1e-12)


def test_the_exact_p_matches_enumeration_of_all_sign_assignments_on_random_data() -> None:
    rng = random.Random(20261126)
    values = (0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 10.5, 7 / 3, 35 / 3)
    for _ in range(200):
        n = rng.randint(1, 10)
        pre = [rng.choice(values) + rng.randint(0, 3) for _ in range(n)]
        post = [rng.choice(values) + rng.randint(0, 3) for _ in range(n)]
        differences = [b - a for a, b in zip(pre, post, strict=True)]
        result = wilcoxon_signed_rank(pre=pre, post=post)
        if result.n_nonzero == 0:
            assert result.p_exact_two_sided is None
            continue
        assert result.p_exact_two_sided == pytest.approx(
            brute_force_exact_p(differences), rel=1e-12
        ), (pre, post)


@settings(max_examples=120, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 6), st.sampled_from([1, 2, 4, 7])),
        min_size=1,
        max_size=11,
    )
)
def test_the_exact_p_of_prorated_fractions_matches_enumeration(
    scores: list[tuple[int, int, int]],
) -> None:
    # prorated scores: a sum of answered items scaled to the item count (x * 7 / answered)
    pre = [x * 7 / k for x, _, k in scores]
    post = [y * 7 / k for _, y, k in scores]
    result = wilcoxon_signed_rank(pre=pre, post=post)
    differences = [b - a for a, b in zip(pre, post, strict=True)]
    if result.n_nonzero == 0:
        assert result.p_exact_two_sided is None
    else:
        assert result.p_exact_two_sided == pytest.approx(
            brute_force_exact_p(differences), rel=1e-12
        )


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_without_ties_the_exact_p_is_unchanged_and_agrees_with_scipy(data: st.DataObject) -> None:
    import scipy.stats

    magnitudes = data.draw(st.lists(st.integers(1, 60), min_size=1, max_size=25, unique=True))
    signs = data.draw(
        st.lists(st.sampled_from([-1, 1]), min_size=len(magnitudes), max_size=len(magnitudes))
    )
    post = [float(s * m) for s, m in zip(signs, magnitudes, strict=True)]
    pre = [0.0] * len(post)
    # reference: scipy.stats.wilcoxon(post, pre, method="exact").pvalue (no ties)
    reference = scipy.stats.wilcoxon(post, pre, method="exact").pvalue
    result = wilcoxon_signed_rank(pre=pre, post=post)
    assert result.ties is False
    assert result.p_exact_two_sided == pytest.approx(float(reference), abs=1e-12)


def test_the_exact_p_is_given_up_to_50_non_zero_differences_with_ties_and_not_above() -> None:
    post = [float(1 + i // 3) for i in range(EXACT_MAX_N + 1)]  # groups of three ties
    pre = [0.0] * len(post)
    above = wilcoxon_signed_rank(pre=pre, post=post)
    at_limit = wilcoxon_signed_rank(pre=pre[:EXACT_MAX_N], post=post[:EXACT_MAX_N])
    assert above.p_exact_two_sided is None
    assert above.p_method_primary == "asymptotic"
    assert above.p_primary == above.p_two_sided
    assert at_limit.ties
    # every difference positive: only the all-positive and all-negative patterns reach T = 0
    assert at_limit.p_exact_two_sided == 2 / 2**EXACT_MAX_N


def test_the_exact_p_of_one_non_zero_difference_is_one() -> None:
    result = wilcoxon_signed_rank(pre=[3.0, 4.0], post=[3.0, 6.0])
    assert (result.n_nonzero, result.p_exact_two_sided) == (1, 1.0)


# -- ties decided on rounded differences -------------------------------------------------------


def test_prorated_scores_that_are_mathematically_equal_tie() -> None:
    # 35/3 prorated two ways: the mean of 6 answered items (sum 10) times 7, and 70 / 6
    first_way, second_way = 10 / 6 * 7, 70 / 6
    assert first_way != second_way  # they differ in the last bit
    pre = [20.0, 20.0, 5.0, 30.0]
    post = [first_way, second_way, 6.0, 18.0]
    result = wilcoxon_signed_rank(pre=pre, post=post)
    # |d| = 8.33.., 8.33.. (tied: ranks 2.5 each), 1 (rank 1), 12 (rank 4)
    assert result.ties is True
    assert (result.w_plus, result.w_minus) == (1.0, 9.0)
    # variance 4*5*9/24 - (2**3 - 2)/48 = 7.5 - 0.125
    assert result.z == pytest.approx((1 - 5) / math.sqrt(7.375), rel=1e-12)


def test_a_difference_that_is_zero_but_for_rounding_error_is_dropped() -> None:
    # 10.5 as 3 * 3.5 and as 0.14 * 75: the float 0.14 * 75 is 10.500000000000002
    pre = [3 * 3.5, 4.0, 2.0]
    post = [0.14 * 75, 7.0, 9.0]
    assert post[0] - pre[0] != 0
    result = wilcoxon_signed_rank(pre=pre, post=post)
    assert result.n_nonzero == 2
    change = paired_change(
        pairs=[
            Pair(participant_id=f"P{i}", pre=a, post=b)
            for i, (a, b) in enumerate(zip(pre, post, strict=True))
        ]
    )
    # d = 0, 3, 7: Walsh averages 0, 1.5, 3, 3.5, 5, 7, median (3 + 3.5) / 2 (not a
    # stray 1e-15 in place of the 0)
    assert change.hodges_lehmann == 3.25


def test_a_difference_that_overflows_is_refused() -> None:
    with pytest.raises(ValueError, match="not finite"):
        wilcoxon_signed_rank(pre=[-1.5e308, 0.0], post=[1.5e308, 1.0])


# -- Holm -------------------------------------------------------------------------------------


def test_holm_by_hand() -> None:
    # sorted .005, .01, .03, .04 times 4, 3, 2, 1: .02, .03, .06, .04 -> running max
    # .02, .03, .06, .06; back in the given order
    assert holm_adjust([0.01, 0.04, 0.03, 0.005]) == pytest.approx((0.03, 0.06, 0.06, 0.02))


def test_holm_matches_r_p_adjust() -> None:
    # R 4.2.2: p.adjust(c(0.03125, 0.0277, 0.25, 0.0625, 0.5, 0.0625, 1, 0.001),
    #                   method = "holm")
    # [1] 0.1939 0.1939 0.7500 0.3125 1.0000 0.3125 1.0000 0.0080
    ps = [0.03125, 0.0277, 0.25, 0.0625, 0.5, 0.0625, 1, 0.001]
    expected = (0.1939, 0.1939, 0.75, 0.3125, 1.0, 0.3125, 1.0, 0.008)
    assert holm_adjust(ps) == pytest.approx(expected, rel=1e-12)


def _holm_by_definition(ps: list[float]) -> list[float]:
    """Holm (1979) as a closed step-down test, written out independently.

    Sort the p values; the i-th smallest is adjusted to the largest, over j <= i, of
    (m - j + 1) * p_(j), capped at 1.
    """
    m = len(ps)
    ranked = sorted(range(m), key=lambda k: (ps[k], k))
    adjusted = [0.0] * m
    for i, k in enumerate(ranked):
        adjusted[k] = min(1.0, max((m - j) * ps[ranked[j]] for j in range(i + 1)))
    return adjusted


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=0, max_size=20))
def test_holm_agrees_with_its_definition_and_never_lowers_a_p(ps: list[float]) -> None:
    adjusted = holm_adjust(ps)
    assert list(adjusted) == pytest.approx(_holm_by_definition(ps), rel=1e-12, abs=0)
    assert all(a >= p for a, p in zip(adjusted, ps, strict=True))
    assert all(a <= 1.0 for a in adjusted)


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan])
def test_holm_refuses_a_p_outside_0_to_1(bad: float) -> None:
    with pytest.raises(ValueError, match=r"p values? must be"):
        holm_adjust([0.5, bad])


# -- effect sizes -----------------------------------------------------------------------------


def test_effect_sizes_of_the_study_pattern_by_hand() -> None:
    # six falls: Z = -10.5 / sqrt(22.75); r = Z / sqrt(6); over observations Z / sqrt(12);
    # rank-biserial (0 - 21) / 21 = -1
    change = paired_change(
        pairs=[Pair(participant_id=f"P{i}", pre=10.0 + i, post=5.0) for i in range(6)]
    )
    z = -10.5 / math.sqrt(22.75)
    assert change.effect_sizes is not None
    assert change.effect_sizes.r_pairs == pytest.approx(z / math.sqrt(6), rel=1e-12)
    assert change.effect_sizes.r_observations == pytest.approx(z / math.sqrt(12), rel=1e-12)
    assert change.effect_sizes.rank_biserial == -1.0
    assert change.effect_size_r == change.effect_sizes.r_pairs


def test_the_rank_biserial_correlation_is_positive_when_scores_rose() -> None:
    # d = +1, +1, -2, +3: W+ = 7, W- = 3 -> (7 - 3) / 10 = 0.4 (Kerby 2014)
    result = wilcoxon_signed_rank(pre=[0, 0, 2, 0], post=[1, 1, 0, 3])
    sizes = effect_sizes(result=result, n_pairs=4)
    assert sizes.rank_biserial == pytest.approx(0.4)
    swapped = effect_sizes(
        result=wilcoxon_signed_rank(pre=[1, 1, 0, 3], post=[0, 0, 2, 0]), n_pairs=4
    )
    assert swapped.rank_biserial == pytest.approx(-0.4)
    assert swapped.r_pairs == sizes.r_pairs  # r has Z's sign, not the direction


def test_zero_differences_count_in_r_but_not_in_the_rank_biserial_correlation() -> None:
    # two unchanged of six; four falls: rank-biserial -1, r = Z / sqrt(6), Z from n = 4
    change = paired_change(
        pairs=[
            Pair(participant_id=f"P{i}", pre=a, post=b)
            for i, (a, b) in enumerate([(9, 8), (9, 7), (9, 6), (9, 5), (4, 4), (3, 3)])
        ]
    )
    assert change.effect_sizes is not None
    assert change.effect_sizes.rank_biserial == -1.0
    assert change.effect_sizes.r_pairs == pytest.approx(-5 / math.sqrt(7.5) / math.sqrt(6))


def test_without_non_zero_differences_no_effect_size_is_defined() -> None:
    change = paired_change(pairs=[Pair(participant_id="A", pre=3, post=3)] * 2)
    assert change.effect_sizes is not None
    assert (
        change.effect_sizes.r_pairs,
        change.effect_sizes.r_observations,
        change.effect_sizes.rank_biserial,
    ) == (None, None, None)


# -- Hodges-Lehmann near the float limit -------------------------------------------------------


def _exact_walsh_median(differences: list[float]) -> Fraction:
    walsh = sorted(
        (Fraction(a) + Fraction(b)) / 2
        for a, b in itertools.combinations_with_replacement(differences, 2)
    )
    mid = len(walsh) // 2
    return walsh[mid] if len(walsh) % 2 else (walsh[mid - 1] + walsh[mid]) / 2


@pytest.mark.parametrize(
    "differences",
    [
        [1e308, 1.7e308, -1.79e308],
        [-1.7976931348623157e308, 1.7976931348623157e308],
        [1.7976931348623157e308] * 3,
        [-1.7976931348623157e308] * 4,
        [1.5e308, -1.2e308, 3.0, -2.5, 1e-300, 1.1e308, -1.0e308],
        [1e308, 1e308, 9e307, 8e307, -1.5e308, 0.0],
    ],
)
def test_hodges_lehmann_returns_the_exact_median_for_differences_near_1e308(
    differences: list[float],
) -> None:
    # before the guard the bisection met an infinite pair sum and never ended
    estimate = hodges_lehmann(differences)
    assert estimate is not None
    assert math.isfinite(estimate)
    assert estimate == pytest.approx(float(_exact_walsh_median(differences)), rel=1e-15)


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.floats(-1.7976931348623157e308, 1.7976931348623157e308, allow_nan=False),
        min_size=1,
        max_size=9,
    )
)
def test_hodges_lehmann_of_any_finite_differences_is_the_exact_median(
    differences: list[float],
) -> None:
    estimate = hodges_lehmann(differences)
    assert estimate is not None
    assert estimate == pytest.approx(float(_exact_walsh_median(differences)), rel=1e-15, abs=1e-300)


# -- reliable change on a given basis ----------------------------------------------------------


def test_reliable_change_index_on_a_reference_sd_and_reliability_by_hand() -> None:
    # S_diff = sqrt(2) * 4 * sqrt(1 - .84) = 2.2627; d = -5, +1, +5
    pairs = [
        Pair(participant_id="P1", pre=15.0, post=10.0),
        Pair(participant_id="P2", pre=10.0, post=11.0),
        Pair(participant_id="P3", pre=10.0, post=15.0),
    ]
    changes = reliable_change_index(
        pairs=pairs, reference_sd=4.0, reliability=0.84, improvement="decrease"
    )
    s_diff = math.sqrt(2) * 4.0 * 0.4
    assert [c.rci for c in changes] == pytest.approx([-5 / s_diff, 1 / s_diff, 5 / s_diff])
    assert [c.category for c in changes] == ["improved", "no_reliable_change", "deteriorated"]


def test_a_published_basis_needs_no_spread_at_baseline() -> None:
    flat = [Pair(participant_id=f"P{i}", pre=10.0, post=float(i)) for i in range(4)]
    assert reliable_change(pairs=flat, alpha=0.84, improvement="decrease") == ()
    assert (
        len(
            reliable_change_index(
                pairs=flat, reference_sd=3.0, reliability=0.8, improvement="decrease"
            )
        )
        == 4
    )


@pytest.mark.parametrize(("sd", "r"), [(0.0, 0.8), (-1.0, 0.8), (3.0, 1.0), (3.0, -0.2)])
def test_a_reference_sd_or_reliability_out_of_range_is_refused(sd: float, r: float) -> None:
    with pytest.raises(ValueError, match=r"reference_sd must be positive|reliability must be in"):
        reliable_change_index(pairs=[], reference_sd=sd, reliability=r, improvement="decrease")
