"""Subscale scores: hand-computed sums, the missing-item rule and reverse keying."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain import (
    CATALOGUE,
    Instrument,
    ScoreSet,
    Subscale,
    SubscaleScore,
    score_responses,
)


def _scores(score_set: ScoreSet) -> dict[str, float | None]:
    return {s.subscale: s.score for s in score_set.subscales}


def _cycle(n_items: int) -> dict[int, int | None]:
    """Responses item % 5: 1, 2, 3, 4, 0, 1, 2, ... (for the 0-4 scales)."""
    return {i: i % 5 for i in range(1, n_items + 1)}


# -- a hand-computed example per instrument and subscale --------------------------------


def test_hads_example_from_the_api_document_scores_by_hand() -> None:
    responses: dict[int, int | None] = {
        1: 2, 2: 0, 3: 3, 4: 1, 5: 2, 6: 1, 7: 0, 8: 2, 9: 1, 10: 3, 11: 2, 12: 1, 13: 2, 14: 0,
    }  # fmt: skip
    result = score_responses(CATALOGUE.get("hads"), responses)
    # anxiety, odd items 1..13:  2 + 3 + 2 + 0 + 1 + 2 + 2 = 12 -> case (11-21)
    # depression, even 2..14:    0 + 1 + 1 + 2 + 3 + 1 + 0 = 8  -> borderline (8-10)
    assert result.get("anxiety") == SubscaleScore(
        subscale="anxiety",
        score=12.0,
        answered=7,
        missing=0,
        prorated=False,
        reason=None,
        band="case",
    )
    assert result.get("depression").score == 8.0
    assert result.get("depression").band == "borderline"
    assert (result.instrument, result.version) == ("hads", "1")


def test_fscs_subscales_score_by_hand() -> None:
    # values item % 5 -> 1 2 3 4 0 1 2 3 4 0 1 2 3 4 0 1 2 3 4 0 1 for items 1..21
    # self-correction 1,3,5,7,11,12,14,15,16,17,18,19,20:
    #   1 + 3 + 0 + 2 + 1 + 2 + 4 + 0 + 1 + 2 + 3 + 4 + 0 = 23
    # self-persecution 2,4,6,8,9,10,13,21:  2 + 4 + 1 + 3 + 4 + 0 + 3 + 1 = 18
    # (23 + 18 = 41 = sum of all 21 values)
    result = score_responses(CATALOGUE.get("fscs"), _cycle(21))
    assert _scores(result) == {"self_correction": 23.0, "self_persecution": 18.0}


def test_fscrs_subscales_score_by_hand() -> None:
    # values item % 5 for items 1..22: 1 2 3 4 0 1 2 3 4 0 1 2 3 4 0 1 2 3 4 0 1 2
    # inadequate self 1,2,4,6,7,14,17,18,20: 1 + 2 + 4 + 1 + 2 + 4 + 2 + 3 + 0 = 19
    # hated self 9,10,12,15,22:               4 + 0 + 2 + 0 + 2 = 8
    # reassured self 3,5,8,11,13,16,19,21:    3 + 0 + 3 + 1 + 3 + 1 + 4 + 1 = 16
    # (19 + 8 + 16 = 43 = sum of all 22 values)
    result = score_responses(CATALOGUE.get("fscrs"), _cycle(22))
    assert _scores(result) == {"inadequate_self": 19.0, "hated_self": 8.0, "reassured_self": 16.0}


def test_oas_total_scores_by_hand() -> None:
    # items 1..18 as item % 5: three cycles 1+2+3+4+0 = 10 each (items 1..15) = 30,
    # then 1 + 2 + 3 = 6 (items 16..18): 36
    assert _scores(score_responses(CATALOGUE.get("oas"), _cycle(18))) == {"total": 36.0}


def test_scs_total_scores_by_hand() -> None:
    # items 1..10 answered 1..10 (sum 55), item 11 answered 5: 60
    responses: dict[int, int | None] = {i: i for i in range(1, 11)}
    responses[11] = 5
    assert _scores(score_responses(CATALOGUE.get("scs"), responses)) == {"total": 60.0}


def test_sbs_total_scores_by_hand() -> None:
    # items 1..15 as item % 5: 3 x 10 = 30, item 16 -> 1: 31
    assert _scores(score_responses(CATALOGUE.get("sbs"), _cycle(16))) == {"total": 31.0}


def test_diary_domains_score_by_hand() -> None:
    criticism = [9, 8, 7, 9, 8, 6, 5]  # 9+8+7+9+8+6+5 = 52
    compassion = [2, 3, 1, 2, 4, 3, 2]  # 2+3+1+2+4+3+2 = 17
    responses: dict[int, int | None] = dict(enumerate(criticism + compassion, start=1))
    result = score_responses(CATALOGUE.get("diary"), responses)
    assert _scores(result) == {"self_criticism": 52.0, "self_compassion": 17.0}
    assert result.get("self_criticism").band is None


# -- missing items ------------------------------------------------------------------------


def test_hads_with_3_of_7_anxiety_items_missing_is_prorated_and_unrounded() -> None:
    # anxiety items 1, 3, 5, 7 answered 2, 1, 3, 0; 9, 11, 13 missing:
    # mean 6 / 4 = 1.5, times 7 items = 10.5 (rounded half up to 11 for the band: case)
    responses: dict[int, int | None] = {1: 2, 3: 1, 5: 3, 7: 0, 9: None}
    anxiety = score_responses(CATALOGUE.get("hads"), responses).get("anxiety")
    assert anxiety == SubscaleScore(
        subscale="anxiety",
        score=10.5,
        answered=4,
        missing=3,
        prorated=True,
        reason=None,
        band="case",
    )


def test_hads_with_4_of_7_items_missing_has_no_score_and_says_why() -> None:
    responses: dict[int, int | None] = {1: 2, 3: 1, 5: 3}
    anxiety = score_responses(CATALOGUE.get("hads"), responses).get("anxiety")
    assert anxiety == SubscaleScore(
        subscale="anxiety",
        score=None,
        answered=3,
        missing=4,
        prorated=False,
        reason="too_many_missing",
        band=None,
    )


def test_fscs_self_correction_allows_2_missing_items_but_not_3() -> None:
    fscs = CATALOGUE.get("fscs")
    responses = _cycle(21)
    responses[15] = None  # value 0
    responses[18] = None  # value 3
    # 23 - 0 - 3 = 20 over 11 answered items, times 13 = 260 / 11 = 23.6363...
    two_missing = score_responses(fscs, responses).get("self_correction")
    assert two_missing.score == pytest.approx(260 / 11, rel=1e-15)
    assert two_missing.prorated
    responses[1] = None
    assert score_responses(fscs, responses).get("self_correction").reason == "too_many_missing"


def test_fscs_self_persecution_allows_1_missing_item_but_not_2() -> None:
    fscs = CATALOGUE.get("fscs")
    responses = _cycle(21)
    responses[21] = None  # value 1: 18 - 1 = 17 over 7 answered, times 8 = 136 / 7
    assert score_responses(fscs, responses).get("self_persecution").score == pytest.approx(
        136 / 7, rel=1e-15
    )
    responses[2] = None
    assert score_responses(fscs, responses).get("self_persecution").score is None


# Typed from the spec's rule: 20% of the items rounded down, at least 1 (HADS: 3).
ALLOWED_MISSING = [
    ("hads", "depression", 3),
    ("fscrs", "inadequate_self", 1),
    ("fscrs", "hated_self", 1),
    ("fscrs", "reassured_self", 1),
    ("oas", "total", 3),
    ("scs", "total", 2),
    ("sbs", "total", 3),
    ("diary", "self_criticism", 1),
    ("diary", "self_compassion", 1),
]


@pytest.mark.parametrize(("instrument_id", "subscale_id", "allowed"), ALLOWED_MISSING)
def test_a_subscale_is_scored_up_to_its_allowance_of_missing_items_and_no_further(
    instrument_id: str, subscale_id: str, allowed: int
) -> None:
    instrument = CATALOGUE.get(instrument_id)
    items = instrument.subscale(subscale_id).items
    full: dict[int, int | None] = dict.fromkeys(instrument.item_numbers, instrument.response_max)
    at_limit = full | dict.fromkeys(items[:allowed])
    over = full | dict.fromkeys(items[: allowed + 1])
    scored = score_responses(instrument, at_limit).get(subscale_id)
    # every answered item at the maximum: prorated score is the subscale maximum
    assert scored.score == pytest.approx(len(items) * instrument.response_max)
    assert (scored.missing, scored.prorated) == (allowed, True)
    refused = score_responses(instrument, over).get(subscale_id)
    assert (refused.score, refused.reason) == (None, "too_many_missing")


# -- reverse keying -----------------------------------------------------------------------


def _reverse_keyed_instrument() -> Instrument:
    """Four items rated 1..5, items 2 and 4 reverse keyed; item 2 and 4 in two subscales."""
    return Instrument(
        id="synthetic",
        version="1",
        title="Synthetic reverse-keyed scale",
        citation="test fixture",
        items=4,
        response_min=1,
        response_max=5,
        reverse_items=(2, 4),
        subscales=(
            Subscale(
                id="all",
                label="All",
                items=(1, 2, 3, 4),
                max_missing=1,
                range=(4, 20),
                reliability_alpha=None,
                improvement="decrease",
            ),
            Subscale(
                id="even",
                label="Even",
                items=(2, 4),
                max_missing=0,
                range=(2, 10),
                reliability_alpha=None,
                improvement="decrease",
            ),
        ),
    )


def test_reverse_keyed_items_are_turned_round_exactly_once() -> None:
    instrument = _reverse_keyed_instrument()
    # given 1, 1, 1, 2; items 2 and 4 become 1 + 5 - 1 = 5 and 1 + 5 - 2 = 4
    # all:  1 + 5 + 1 + 4 = 11  (never reversed: 5; reversed twice: 5 again)
    # even: 5 + 4 = 9           (never reversed: 3)
    result = score_responses(instrument, {1: 1, 2: 1, 3: 1, 4: 2})
    assert _scores(result) == {"all": 11.0, "even": 9.0}


def test_prorating_uses_the_reverse_keyed_values() -> None:
    instrument = _reverse_keyed_instrument()
    # item 1 missing; 2 -> 5, 3 stays 1, 4 -> 4: (5 + 1 + 4) * 4 / 3 = 40 / 3
    result = score_responses(instrument, {2: 1, 3: 1, 4: 2})
    assert result.get("all").score == pytest.approx(40 / 3, rel=1e-15)


def test_scoring_refuses_values_validation_would_have_refused() -> None:
    hads = CATALOGUE.get("hads")
    with pytest.raises(ValueError, match="validate first"):
        score_responses(hads, {1: 4})
    with pytest.raises(ValueError, match="validate first"):
        score_responses(hads, {15: 1})


def test_asking_a_score_set_for_an_unknown_subscale_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        score_responses(CATALOGUE.get("oas"), _cycle(18)).get("anxiety")


# -- properties ---------------------------------------------------------------------------


@st.composite
def _instrument_and_responses(draw: st.DrawFn) -> tuple[Instrument, dict[int, int | None]]:
    instrument = draw(st.sampled_from([*CATALOGUE.instruments(), _reverse_keyed_instrument()]))
    value = st.integers(instrument.response_min, instrument.response_max)
    responses = {i: draw(st.none() | value) for i in instrument.item_numbers}
    return instrument, responses


@settings(max_examples=200, deadline=None)
@given(_instrument_and_responses())
def test_every_score_stays_within_its_subscale_range(
    case: tuple[Instrument, dict[int, int | None]],
) -> None:
    instrument, responses = case
    for sub, score in zip(
        instrument.subscales, score_responses(instrument, responses).subscales, strict=True
    ):
        assert score.answered + score.missing == len(sub.items)
        if score.score is None:
            assert score.missing > sub.max_missing
            assert score.reason == "too_many_missing"
        else:
            assert sub.range[0] - 1e-9 <= score.score <= sub.range[1] + 1e-9
            assert score.prorated == (score.missing > 0)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(CATALOGUE.instruments()), st.data())
def test_with_nothing_missing_the_score_is_the_plain_sum(
    instrument: Instrument, data: st.DataObject
) -> None:
    value = st.integers(instrument.response_min, instrument.response_max)
    responses: dict[int, int | None] = {i: data.draw(value) for i in instrument.item_numbers}
    for sub in instrument.subscales:
        score = score_responses(instrument, responses).get(sub.id)
        assert score.score == float(sum(responses[i] or 0 for i in sub.items))
        assert not score.prorated


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(CATALOGUE.instruments()), st.data())
def test_a_prorated_score_is_the_mean_of_the_answered_items_times_the_item_count(
    instrument: Instrument, data: st.DataObject
) -> None:
    sub = data.draw(st.sampled_from(instrument.subscales))
    missing = data.draw(st.sets(st.sampled_from(sub.items), max_size=sub.max_missing))
    value = st.integers(instrument.response_min, instrument.response_max)
    responses: dict[int, int | None] = {
        i: None if i in missing else data.draw(value) for i in instrument.item_numbers
    }
    answered = [v for i in sub.items if (v := responses[i]) is not None]
    expected = sum(answered) / len(answered) * len(sub.items)
    assert score_responses(instrument, responses).get(sub.id).score == pytest.approx(
        expected, rel=1e-12
    )
