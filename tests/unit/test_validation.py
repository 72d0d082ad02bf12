"""Submissions are refused with every problem named, and nothing else is refused."""

from __future__ import annotations

import pytest

from domain import CATALOGUE, InvalidSubmission, Problem, validate_notes, validate_responses

HADS = CATALOGUE.get("hads")
DIARY = CATALOGUE.get("diary")

# The example body of API.md.
HADS_BODY: dict[str, object] = {
    "1": 2, "2": 0, "3": 3, "4": 1, "5": 2, "6": 1, "7": 0,
    "8": 2, "9": 1, "10": 3, "11": 2, "12": 1, "13": 2, "14": 0,
}  # fmt: skip


def _problems(responses: dict[str, object]) -> tuple[Problem, ...]:
    with pytest.raises(InvalidSubmission) as excinfo:
        validate_responses(HADS, responses)
    return excinfo.value.problems


def test_a_complete_submission_comes_back_as_item_numbers_with_values() -> None:
    values = validate_responses(HADS, HADS_BODY)
    assert values == {int(k): v for k, v in HADS_BODY.items()}
    assert list(values) == list(range(1, 15))


def test_omitted_and_null_items_both_come_back_as_none() -> None:
    values = validate_responses(HADS, {"1": 3, "2": None})
    assert values[1] == 3
    assert values[2] is None
    assert values[14] is None
    assert len(values) == 14


def test_the_response_range_ends_are_accepted() -> None:
    assert validate_responses(HADS, {"1": 0, "2": 3})[2] == 3
    scs = CATALOGUE.get("scs")
    assert validate_responses(scs, {"1": 1, "11": 10})[11] == 10


@pytest.mark.parametrize("key", ["15", "0", "01", "x", "-1", " 1", "1.0", "+1", ""])
def test_a_key_that_is_not_an_item_number_of_the_instrument_is_unknown(key: str) -> None:
    problems = _problems({"1": 2, key: 1})
    assert problems == (
        Problem(("responses", key), f"unknown item {key}: hads has items 1-14", "unknown_item"),
    )


@pytest.mark.parametrize("value", [2.0, 2.5, "2", True, False, [2], {"v": 2}])
def test_a_value_that_is_not_an_integer_is_refused(value: object) -> None:
    problems = _problems({"1": 2, "3": value})
    assert [(p.loc, p.type) for p in problems] == [(("responses", "3"), "not_integer")]


@pytest.mark.parametrize("value", [-1, 4, 100])
def test_an_integer_outside_the_response_range_is_refused(value: int) -> None:
    problems = _problems({"1": value})
    assert [(p.loc, p.type) for p in problems] == [(("responses", "1"), "out_of_range")]
    assert "between 0 and 3" in problems[0].msg


def test_scs_refuses_zero_because_its_scale_starts_at_1() -> None:
    with pytest.raises(InvalidSubmission) as excinfo:
        validate_responses(CATALOGUE.get("scs"), {"1": 0})
    assert excinfo.value.problems[0].type == "out_of_range"


@pytest.mark.parametrize("responses", [{}, {"1": None, "2": None}])
def test_a_submission_with_no_item_answered_is_refused(responses: dict[str, object]) -> None:
    assert _problems(responses) == (
        Problem(("responses",), "no item was answered", "no_items_answered"),
    )


def test_answers_only_to_unknown_items_count_as_nothing_answered() -> None:
    problems = _problems({"15": 2})
    assert [p.type for p in problems] == ["unknown_item", "no_items_answered"]


def test_every_problem_is_reported_together() -> None:
    problems = _problems({"1": 2, "2": 7, "3": 1.5, "15": 1, "x": 0, "4": True})
    assert [(p.loc, p.type) for p in problems] == [
        (("responses", "2"), "out_of_range"),
        (("responses", "3"), "not_integer"),
        (("responses", "15"), "unknown_item"),
        (("responses", "x"), "unknown_item"),
        (("responses", "4"), "not_integer"),
    ]


def test_responses_that_are_not_an_object_are_refused() -> None:
    with pytest.raises(InvalidSubmission) as excinfo:
        validate_responses(HADS, [1, 2, 3])  # type: ignore[arg-type]
    assert excinfo.value.problems[0].type == "not_object"


def test_the_error_message_names_every_problem() -> None:
    with pytest.raises(InvalidSubmission, match=r"2 problem\(s\).*responses\.1.*responses\.2"):
        validate_responses(HADS, {"1": 9, "2": 9})


# -- notes -------------------------------------------------------------------------------


def test_no_notes_is_nothing_to_store() -> None:
    assert validate_notes(HADS, None) is None
    assert validate_notes(DIARY, None) is None
    assert validate_notes(HADS, {}) is None


def test_notes_on_an_instrument_without_free_text_are_refused() -> None:
    with pytest.raises(InvalidSubmission) as excinfo:
        validate_notes(HADS, {"critical_thoughts": "x"})
    assert [(p.loc, p.type) for p in excinfo.value.problems] == [(("notes",), "notes_not_allowed")]


def test_diary_notes_are_kept_as_given_and_nulls_dropped() -> None:
    notes = {"critical_thoughts": "  I'm useless  ", "soothing_thoughts": None}
    assert validate_notes(DIARY, notes) == {"critical_thoughts": "  I'm useless  "}
    assert validate_notes(DIARY, {"soothing_thoughts": None}) is None


def test_diary_notes_up_to_4000_characters_are_accepted_and_longer_refused() -> None:
    assert validate_notes(DIARY, {"critical_situations": "a" * 4000}) is not None
    with pytest.raises(InvalidSubmission) as excinfo:
        validate_notes(DIARY, {"critical_situations": "a" * 4001})
    assert [(p.loc, p.type) for p in excinfo.value.problems] == [
        (("notes", "critical_situations"), "too_long")
    ]


def test_every_diary_notes_problem_is_reported_together() -> None:
    with pytest.raises(InvalidSubmission) as excinfo:
        validate_notes(
            DIARY,
            {"mood": "fine", "critical_thoughts": 3, "soothing_thoughts": "b" * 5000},
        )
    assert [(p.loc, p.type) for p in excinfo.value.problems] == [
        (("notes", "mood"), "unknown_field"),
        (("notes", "critical_thoughts"), "not_string"),
        (("notes", "soothing_thoughts"), "too_long"),
    ]
