"""Pre/post statistics against hand arithmetic, the study's Table 1 and scipy.

scipy is imported inside the tests only, as an independent reference; the domain itself
never imports it.
"""

from __future__ import annotations

import doctest
import itertools
import math
import random
import statistics as stdlib_statistics
import warnings
from collections.abc import Callable

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain import (
    Descriptives,
    Pair,
    PairedChange,
    ReliableChange,
    describe,
    hodges_lehmann,
    paired_change,
    reliable_change,
    reliable_change_counts,
    wilcoxon_signed_rank,
)


def _pairs(pre: list[float], post: list[float]) -> list[Pair]:
    return [
        Pair(participant_id=f"P{i:02d}", pre=x, post=y)
        for i, (x, y) in enumerate(zip(pre, post, strict=True), start=1)
    ]


# -- descriptives -------------------------------------------------------------------------


def test_descriptives_of_a_small_sample_by_hand() -> None:
    # mean 40 / 8 = 5; squared deviations 9+1+1+1+0+0+4+16 = 32; sd = sqrt(32 / 7)
    result = describe([2, 4, 4, 4, 5, 5, 7, 9])
    assert (result.n, result.mean, result.median) == (8, 5.0, 4.5)
    assert result.sd == pytest.approx(math.sqrt(32 / 7), rel=1e-15)


def test_descriptives_of_one_value_have_no_sd_and_of_none_have_nothing() -> None:
    assert describe([3.0]) == Descriptives(n=1, mean=3.0, sd=None, median=3.0)
    assert describe([]) == Descriptives(n=0, mean=None, sd=None, median=None)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=40))
def test_descriptives_agree_with_the_standard_library(values: list[float]) -> None:
    result = describe(values)
    assert result.mean == pytest.approx(stdlib_statistics.fmean(values), rel=1e-12, abs=1e-9)
    assert result.sd == pytest.approx(stdlib_statistics.stdev(values), rel=1e-9, abs=1e-6)
    assert result.median == stdlib_statistics.median(values)


# -- Wilcoxon: hand values and the study's Table 1 --------------------------------------


@pytest.mark.parametrize(
    ("n", "expected_z"),
    [
        # T = 0; Z = -(n(n+1)/4) / sqrt(n(n+1)(2n+1)/24)
        (6, -2.2014),  # -10.5 / sqrt(22.75)
        (5, -2.0226),  # -7.5 / sqrt(13.75)
        (4, -1.8257),  # -5 / sqrt(7.5)
    ],
)
def test_differences_all_of_one_sign_give_the_published_z(n: int, expected_z: float) -> None:
    pre = [20.0 + 3 * i for i in range(n)]
    post = [10.0 + 2 * i for i in range(n)]  # differences -10, -11, ... all distinct
    result = wilcoxon_signed_rank(pre=pre, post=post)
    assert (result.t, result.w_plus, result.w_minus) == (0.0, 0.0, n * (n + 1) / 2)
    assert result.z == pytest.approx(expected_z, abs=1e-4)
    assert result.z is not None
    assert result.p_two_sided == pytest.approx(math.erfc(abs(result.z) / math.sqrt(2)))


def test_the_exact_p_for_six_differences_of_one_sign_is_2_in_64() -> None:
    # only the all-negative and all-positive sign patterns reach T = 0: 2 / 2**6
    result = wilcoxon_signed_rank(pre=[6, 5, 4, 3, 2, 1], post=[0, 0, 0, 0, 0, 0])
    assert result.p_exact_two_sided == 0.03125
    assert result.ties is False


def test_table_1_hads_anxiety_row() -> None:
    # Six completers, every anxiety score fell (Table 1: T = 0, Z = -2.20); means 14.67
    # before and 6.83 after, as in the table, though the SDs need not match.
    pre = [18.0, 12.0, 15.0, 20.0, 11.0, 12.0]
    post = [8.0, 6.0, 10.0, 9.0, 4.0, 4.0]
    change = paired_change(pairs=_pairs(pre, post))
    assert change.wilcoxon is not None
    assert change.wilcoxon.t == 0.0
    assert change.wilcoxon.z == pytest.approx(-2.2014, abs=1e-4)
    assert change.effect_size_r == pytest.approx(-0.8987, abs=1e-4)  # -2.2014 / sqrt(6)
    assert change.direction == "decrease"
    assert change.pre.mean == pytest.approx(14.67, abs=0.005)
    assert change.post.mean == pytest.approx(6.83, abs=0.005)
    assert change.reason is None


def test_zero_differences_are_dropped_as_table_1_self_persecution_shows() -> None:
    # Table 1 self-persecution: T = 0, Z = -1.83 among six completers, i.e. four non-zero
    # differences of one sign and two unchanged scores.
    pre = [20.0, 15.0, 25.0, 10.0, 18.0, 17.0]
    post = [12.0, 9.0, 20.0, 8.0, 18.0, 17.0]
    change = paired_change(pairs=_pairs(pre, post))
    assert change.wilcoxon is not None
    assert change.wilcoxon.n_nonzero == 4
    assert change.wilcoxon.z == pytest.approx(-1.8257, abs=1e-4)
    assert change.effect_size_r == pytest.approx(-1.8257 / math.sqrt(6), abs=1e-4)


def test_tied_differences_share_their_average_rank() -> None:
    # d = +1, +1, -2, +3: |d| ranks 1.5, 1.5, 3, 4; W+ = 1.5 + 1.5 + 4 = 7, W- = 3
    result = wilcoxon_signed_rank(pre=[0, 0, 2, 0], post=[1, 1, 0, 3])
    assert (result.w_plus, result.w_minus, result.t) == (7.0, 3.0, 3.0)
    assert result.ties is True
    # v1.1: the exact p is given with ties too (R coin 1.4.2: 0.625, see the exact-p tests)
    assert result.p_exact_two_sided == 0.625
    # variance 4*5*9/24 - (2**3 - 2)/48 = 7.5 - 0.125; Z = (3 - 5) / sqrt(7.375)
    assert result.z == pytest.approx(-2 / math.sqrt(7.375), rel=1e-12)


def test_no_non_zero_difference_gives_no_z_and_no_p() -> None:
    result = wilcoxon_signed_rank(pre=[3, 4], post=[3, 4])
    assert (result.n_nonzero, result.t, result.z, result.p_two_sided) == (0, 0.0, None, None)
    assert result.p_exact_two_sided is None


def test_the_exact_p_is_left_out_above_50_non_zero_differences() -> None:
    pre = [0.0] * 51
    post = [float(i) for i in range(1, 52)]
    assert wilcoxon_signed_rank(pre=pre, post=post).p_exact_two_sided is None
    assert wilcoxon_signed_rank(pre=pre[:50], post=post[:50]).p_exact_two_sided is not None


@pytest.mark.parametrize(
    ("pre", "post", "message"),
    [
        ([1.0, 2.0], [1.0], "differ in length"),
        ([1.0, math.nan], [1.0, 2.0], "finite"),
        ([1.0, 2.0], [1.0, math.inf], "finite"),
    ],
)
def test_unequal_or_non_finite_input_is_refused(
    pre: list[float], post: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        wilcoxon_signed_rank(pre=pre, post=post)


@pytest.mark.parametrize("bad", [True, "3", None])
def test_input_that_is_not_a_number_is_refused(bad: object) -> None:
    with pytest.raises(TypeError, match="real number"):
        wilcoxon_signed_rank(pre=[1.0, bad], post=[2.0, 3.0])  # type: ignore[list-item]


def test_a_pair_with_a_non_finite_score_is_refused() -> None:
    with pytest.raises(ValueError, match="finite"):
        Pair(participant_id="P01", pre=math.nan, post=1.0)


# -- Wilcoxon against scipy ---------------------------------------------------------------


FIXED_TIES_AND_ZEROS = [
    ([1, 2, 3, 4, 5, 6, 7], [1, 0, 5, 2, 5, 9, 7]),  # two zeros, tied |d| of 2
    ([10, 10, 10, 10, 10, 10], [8, 12, 8, 12, 13, 10]),  # |d| = 2 four times, one zero
    ([3.5, 2.0, 7.25, 1.0, 9.0], [2.5, 3.0, 7.25, 3.0, 8.0]),  # ties of 1 and a zero
]


@pytest.mark.parametrize(("pre", "post"), FIXED_TIES_AND_ZEROS)
def test_data_with_ties_and_zeros_agree_with_scipy(pre: list[float], post: list[float]) -> None:
    import scipy.stats

    # reference: scipy.stats.wilcoxon(post, pre, zero_method="wilcox", correction=False,
    #                                  method="asymptotic")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = scipy.stats.wilcoxon(
            post, pre, zero_method="wilcox", correction=False, method="asymptotic"
        )
    ours = wilcoxon_signed_rank(pre=pre, post=post)
    assert ours.ties
    assert ours.t == pytest.approx(float(ref.statistic), abs=1e-9)
    assert ours.z == pytest.approx(float(ref.zstatistic), abs=1e-9)
    assert ours.p_two_sided == pytest.approx(float(ref.pvalue), abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.integers(0, 12)), min_size=1, max_size=30))
def test_small_integer_scores_agree_with_scipy_asymptotic(scores: list[tuple[int, int]]) -> None:
    import scipy.stats

    pre = [float(x) for x, _ in scores]
    post = [float(y) for _, y in scores]
    assume(any(x != y for x, y in scores))
    # reference: scipy.stats.wilcoxon(post, pre, zero_method="wilcox", correction=False,
    #                                  method="asymptotic")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = scipy.stats.wilcoxon(
            post, pre, zero_method="wilcox", correction=False, method="asymptotic"
        )
    ours = wilcoxon_signed_rank(pre=pre, post=post)
    assert ours.t == pytest.approx(float(ref.statistic), abs=1e-9)
    assert ours.z == pytest.approx(float(ref.zstatistic), abs=1e-9)
    assert ours.p_two_sided == pytest.approx(float(ref.pvalue), abs=1e-9)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_the_exact_p_agrees_with_scipy_for_tie_free_data_up_to_20_pairs(
    data: st.DataObject,
) -> None:
    import scipy.stats

    magnitudes = data.draw(st.lists(st.integers(1, 100), min_size=1, max_size=20, unique=True))
    signs = data.draw(st.lists(st.sampled_from([-1, 1]), min_size=len(magnitudes)))
    pre = data.draw(
        st.lists(st.integers(0, 50), min_size=len(magnitudes), max_size=len(magnitudes))
    )
    post = [x + s * m for x, s, m in zip(pre, signs, magnitudes, strict=False)]
    # reference: scipy.stats.wilcoxon(post, pre, method="exact").pvalue
    ref = scipy.stats.wilcoxon(post, pre, method="exact")
    ours = wilcoxon_signed_rank(pre=[float(x) for x in pre], post=[float(y) for y in post])
    assert ours.p_exact_two_sided == pytest.approx(float(ref.pvalue), abs=1e-12)
    assert ours.t == float(ref.statistic)


# -- paired change --------------------------------------------------------------------------


def test_fewer_than_2_pairs_still_give_descriptives_and_a_reason() -> None:
    one = paired_change(pairs=_pairs([10.0], [4.0]))
    assert one == PairedChange(
        n_pairs=1,
        pre=Descriptives(n=1, mean=10.0, sd=None, median=10.0),
        post=Descriptives(n=1, mean=4.0, sd=None, median=4.0),
        wilcoxon=None,
        direction="decrease",
        effect_size_r=None,
        hodges_lehmann=None,
        reason="fewer than 2 pairs",
    )
    none = paired_change(pairs=[])
    assert (none.n_pairs, none.direction, none.reason) == (0, "none", "fewer than 2 pairs")
    assert none.pre == Descriptives(n=0, mean=None, sd=None, median=None)


def test_unchanged_scores_give_no_effect_size_and_say_why() -> None:
    change = paired_change(pairs=_pairs([5.0, 7.0, 9.0], [5.0, 7.0, 9.0]))
    assert change.wilcoxon is not None
    assert change.wilcoxon.n_nonzero == 0
    assert (change.direction, change.effect_size_r) == ("none", None)
    assert change.hodges_lehmann == 0.0
    assert change.reason == "no non-zero differences"


def test_a_rise_is_an_increase_although_z_stays_negative() -> None:
    change = paired_change(pairs=_pairs([6.0, 4.0, 8.0, 3.0], [19.0, 20.0, 30.0, 12.0]))
    assert change.direction == "increase"
    assert change.wilcoxon is not None
    assert change.wilcoxon.z is not None
    assert change.wilcoxon.z < 0
    assert change.wilcoxon.w_plus == 10.0


def test_hodges_lehmann_of_three_differences_by_hand() -> None:
    # Walsh averages of 1, 2, 4: 1, 1.5, 2.5, 2, 3, 4 -> sorted 1, 1.5, 2, 2.5, 3, 4;
    # median (2 + 2.5) / 2 = 2.25
    assert hodges_lehmann([4.0, 1.0, 2.0]) == 2.25
    assert hodges_lehmann([]) is None


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(-30, 30), min_size=1, max_size=25))
def test_hodges_lehmann_matches_a_brute_force_median_of_walsh_averages(
    differences: list[int],
) -> None:
    walsh = [(a + b) / 2 for a, b in itertools.combinations_with_replacement(differences, 2)]
    assert hodges_lehmann([float(d) for d in differences]) == stdlib_statistics.median(walsh)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.floats(-110, 110, allow_nan=False).map(lambda x: round(x, 3)), min_size=1, max_size=60
    )
)
def test_hodges_lehmann_of_fractional_differences_matches_the_brute_force_median(
    differences: list[float],
) -> None:
    # prorated scores make fractional differences; the selection must still find the
    # very same Walsh average the full list's median gives
    walsh = [(a + b) / 2 for a, b in itertools.combinations_with_replacement(differences, 2)]
    assert hodges_lehmann(differences) == stdlib_statistics.median(walsh)


def test_hodges_lehmann_of_ten_thousand_differences_needs_no_list_of_fifty_million() -> None:
    import tracemalloc

    rng = random.Random(7)
    differences = [rng.randint(-20, 5) + rng.choice((0.0, 0.5, 1 / 7)) for _ in range(10_000)]
    tracemalloc.start()
    estimate = hodges_lehmann(differences)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # independent check without listing the averages: exactly half of the n(n+1)/2 Walsh
    # averages lie at or below the median, counted by brute force over value pairs
    values = sorted(set(differences))
    counts = {v: differences.count(v) for v in values}

    def walsh_count(keep: Callable[[float], bool]) -> int:
        return sum(
            (counts[a] * (counts[a] + 1) // 2 if a == b else counts[a] * counts[b])
            for i, a in enumerate(values)
            for b in values[i:]
            if keep((a + b) / 2)
        )

    m = 10_000 * 10_001 // 2
    assert walsh_count(lambda w: w <= estimate) >= m / 2
    assert walsh_count(lambda w: w >= estimate) >= m / 2
    assert peak < 5_000_000  # bytes: a list of 50 million averages would need gigabytes


def test_paired_change_reports_the_hodges_lehmann_shift_of_post_minus_pre() -> None:
    # d = -1, -2, -4: Walsh median -2.25
    change = paired_change(pairs=_pairs([5.0, 6.0, 8.0], [4.0, 4.0, 4.0]))
    assert change.hodges_lehmann == -2.25


_score = st.integers(0, 40).map(float)


@st.composite
def _pair_lists(draw: st.DrawFn) -> list[Pair]:
    scores = draw(st.lists(st.tuples(_score, _score), min_size=0, max_size=25))
    return [Pair(participant_id=f"P{i}", pre=x, post=y) for i, (x, y) in enumerate(scores)]


@settings(max_examples=150, deadline=None)
@given(_pair_lists(), st.data())
def test_reordering_the_pairs_changes_no_statistic(pairs: list[Pair], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(pairs))
    assert paired_change(pairs=shuffled) == paired_change(pairs=pairs)


_FLIPPED = {"increase": "decrease", "decrease": "increase", "none": "none"}


@settings(max_examples=150, deadline=None)
@given(_pair_lists())
def test_swapping_pre_and_post_keeps_t_z_and_p_and_flips_the_direction(pairs: list[Pair]) -> None:
    swapped = [Pair(participant_id=p.participant_id, pre=p.post, post=p.pre) for p in pairs]
    forward = paired_change(pairs=pairs)
    backward = paired_change(pairs=swapped)
    assert backward.direction == _FLIPPED[forward.direction]
    assert backward.effect_size_r == forward.effect_size_r
    if forward.wilcoxon is None:
        assert backward.wilcoxon is None
        return
    assert backward.wilcoxon is not None
    assert backward.wilcoxon.t == forward.wilcoxon.t
    assert backward.wilcoxon.z == forward.wilcoxon.z
    assert backward.wilcoxon.p_two_sided == forward.wilcoxon.p_two_sided
    assert backward.wilcoxon.p_exact_two_sided == forward.wilcoxon.p_exact_two_sided
    assert (backward.wilcoxon.w_plus, backward.wilcoxon.w_minus) == (
        forward.wilcoxon.w_minus,
        forward.wilcoxon.w_plus,
    )
    if forward.hodges_lehmann is not None:
        assert backward.hodges_lehmann == -forward.hodges_lehmann


# -- reliable change ------------------------------------------------------------------------


RCI_PAIRS = [
    Pair(participant_id="P1", pre=5.0, post=0.0),
    Pair(participant_id="P2", pre=10.0, post=4.0),
    Pair(participant_id="P3", pre=15.0, post=21.0),
]


def test_reliable_change_index_by_hand() -> None:
    # SD_pre of 5, 10, 15 = sqrt((25 + 0 + 25) / 2) = 5; alpha .84: SE = 5 * sqrt(.16) = 2
    # S_diff = sqrt(2) * 2 = 2.8284; RCI = -5 / 2.8284 = -1.768 (not reliable),
    # -6 / 2.8284 = -2.121 (reliable fall), +6 / 2.8284 = +2.121 (reliable rise)
    changes = reliable_change(pairs=RCI_PAIRS, alpha=0.84, improvement="decrease")
    assert [c.participant_id for c in changes] == ["P1", "P2", "P3"]
    assert [c.rci for c in changes] == pytest.approx([-1.7678, -2.1213, 2.1213], abs=1e-4)
    assert [c.category for c in changes] == ["no_reliable_change", "improved", "deteriorated"]
    assert reliable_change_counts(changes) == {
        "improved": 1,
        "no_reliable_change": 1,
        "deteriorated": 1,
    }


def test_on_a_subscale_where_a_rise_is_improvement_the_categories_turn_round() -> None:
    changes = reliable_change(pairs=RCI_PAIRS, alpha=0.84, improvement="increase")
    assert [c.category for c in changes] == ["no_reliable_change", "deteriorated", "improved"]


def test_no_reliable_change_index_without_two_pairs_or_baseline_spread() -> None:
    assert reliable_change(pairs=RCI_PAIRS[:1], alpha=0.84, improvement="decrease") == ()
    flat = [Pair(participant_id=f"P{i}", pre=10.0, post=float(i)) for i in range(4)]
    assert reliable_change(pairs=flat, alpha=0.84, improvement="decrease") == ()


@pytest.mark.parametrize("alpha", [1.0, -0.1, 1.5])
def test_a_reliability_outside_0_to_1_is_refused(alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha"):
        reliable_change(pairs=RCI_PAIRS, alpha=alpha, improvement="decrease")


def test_counts_of_no_changes_are_all_zero() -> None:
    assert reliable_change_counts([]) == {"improved": 0, "no_reliable_change": 0, "deteriorated": 0}
    one = ReliableChange(participant_id="P1", rci=2.5, category="deteriorated")
    assert reliable_change_counts([one])["deteriorated"] == 1


def test_the_documented_examples_run_as_written() -> None:
    import domain.scoring
    import domain.statistics

    for module in (domain.statistics, domain.scoring):
        result = doctest.testmod(module)
        assert result.attempted > 0
        assert result.failed == 0
