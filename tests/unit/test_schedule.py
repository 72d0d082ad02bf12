"""The participant schedule: windows from enrolment, and upcoming / due / done / missed."""

from __future__ import annotations

import doctest
import itertools
import subprocess
import sys
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

import domain.schedule
from domain.schedule import (
    ParticipantStatus,
    ScheduledSlot,
    TimepointTiming,
    UntimedTimepoints,
    count_states,
    default_timing,
    participant_schedule,
    resolve_timing,
    slot_key,
    untimed_timepoints,
)

ENROLLED = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)  # a Monday
DAY = timedelta(days=1)
WEEKS = tuple(f"week-{n}" for n in range(1, 13))
TIMEPOINTS = (*WEEKS, "follow-up")
QUESTIONNAIRES = ("hads", "fscs", "fscrs", "oas", "scs", "sbs")
SCHEDULE: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(QUESTIONNAIRES, ("week-1", "week-12", "follow-up")),
    "diary": WEEKS,
}


def slots(
    *,
    now: datetime,
    done: Iterable[str] = (),
    status: ParticipantStatus = "active",
    status_changed_at: datetime | None = None,
    timing: dict[str, TimepointTiming] | None = None,
) -> dict[str, ScheduledSlot]:
    result = participant_schedule(
        timepoints=TIMEPOINTS,
        schedule=SCHEDULE,
        enrolled_at=ENROLLED,
        status=status,
        status_changed_at=status_changed_at,
        done=frozenset(done),
        now=now,
        timing=timing,
    )
    return {s.slot: s for s in result}


def test_week_n_falls_seven_days_apart_from_enrolment_and_follow_up_at_26_weeks() -> None:
    assert default_timing("week-1") == TimepointTiming(offset_days=0, window_days=3)
    assert default_timing("week-12") == TimepointTiming(offset_days=77, window_days=3)
    assert default_timing("follow-up") == TimepointTiming(offset_days=182, window_days=14)


@pytest.mark.parametrize("name", ["baseline", "week-0", "week-01", "Week-2", "week-2 ", "post"])
def test_names_outside_the_default_pattern_have_no_default_timing(name: str) -> None:
    assert default_timing(name) is None


def test_a_window_covers_the_days_either_side_inclusive_as_a_half_open_interval() -> None:
    week_3 = slots(now=ENROLLED)["diary#week-3"]

    # day 14 +/- 3 days: days 11 to 17 inclusive, so it closes at the start of day 18
    assert week_3.opens_at == ENROLLED + 11 * DAY
    assert week_3.closes_at == ENROLLED + 18 * DAY


def test_the_first_window_opens_at_enrolment_not_before_it() -> None:
    week_1 = slots(now=ENROLLED)["hads#week-1"]

    assert week_1.opens_at == ENROLLED
    assert week_1.closes_at == ENROLLED + 4 * DAY


def test_the_follow_up_window_is_two_weeks_either_side_of_week_26() -> None:
    follow_up = slots(now=ENROLLED)["hads#follow-up"]

    assert follow_up.opens_at == ENROLLED + 168 * DAY
    assert follow_up.closes_at == ENROLLED + 197 * DAY


def test_default_weekly_windows_tile_the_weeks_without_gap_or_overlap() -> None:
    diary = [s for s in slots(now=ENROLLED).values() if s.instrument == "diary"]

    for before, after in itertools.pairwise(diary):
        assert before.closes_at == after.opens_at
    assert all(s.closes_at - s.opens_at == 7 * DAY for s in diary[1:])


def test_a_slot_is_upcoming_until_the_instant_its_window_opens_and_due_from_then() -> None:
    opens = ENROLLED + 11 * DAY  # diary week-3

    assert slots(now=opens - timedelta(microseconds=1))["diary#week-3"].state == "upcoming"
    assert slots(now=opens)["diary#week-3"].state == "due"


def test_a_slot_is_due_until_the_instant_its_window_closes_and_missed_from_then() -> None:
    closes = ENROLLED + 18 * DAY  # diary week-3

    assert slots(now=closes - timedelta(microseconds=1))["diary#week-3"].state == "due"
    assert slots(now=closes)["diary#week-3"].state == "missed"


def test_at_enrolment_the_week_1_questionnaires_are_due_and_the_rest_upcoming() -> None:
    states = {key: s.state for key, s in slots(now=ENROLLED).items()}

    assert {k for k, v in states.items() if v == "due"} == {
        *(f"{q}#week-1" for q in QUESTIONNAIRES),
        "diary#week-1",
    }
    assert {v for k, v in states.items() if not k.endswith("#week-1")} == {"upcoming"}


def test_a_done_slot_is_done_whenever_it_was_submitted_early_on_time_or_late() -> None:
    late = ENROLLED + 60 * DAY
    done = {"diary#week-3", "diary#week-11"}  # one long closed, one not open yet

    result = slots(now=late, done=done)

    assert result["diary#week-3"].state == "done"
    assert result["diary#week-11"].state == "done"
    assert result["diary#week-4"].state == "missed"


def test_a_done_slot_that_the_schedule_does_not_have_is_ignored() -> None:
    result = slots(now=ENROLLED, done={"diary#week-13", "hads#week-2"})

    assert "diary#week-13" not in result
    assert "hads#week-2" not in result
    assert len(result) == 6 * 3 + 12


def test_every_scheduled_instrument_and_timepoint_appears_once_in_protocol_order() -> None:
    result = participant_schedule(
        timepoints=TIMEPOINTS,
        schedule=SCHEDULE,
        enrolled_at=ENROLLED,
        status="active",
        done=frozenset(),
        now=ENROLLED,
    )

    assert len(result) == len({s.slot for s in result}) == 30
    assert [s.slot for s in result][:8] == [
        *(f"{q}#week-1" for q in QUESTIONNAIRES),
        "diary#week-1",
        "diary#week-2",
    ]
    assert result[-1].slot == "sbs#follow-up"


def test_a_withdrawn_participants_schedule_ends_at_the_withdrawal() -> None:
    withdrawn = ENROLLED + 16 * DAY  # during week-3's window
    result = slots(
        now=ENROLLED + 300 * DAY,
        done={"diary#week-1", "hads#week-1"},
        status="withdrawn",
        status_changed_at=withdrawn,
    )

    assert result["diary#week-1"].state == "done"
    assert result["diary#week-2"].state == "missed"
    # open at the withdrawal: it did not arrive and it is not coming
    assert result["diary#week-3"].state == "missed"
    # never expected: its window opened after the withdrawal
    assert "diary#week-4" not in result
    assert "hads#week-12" not in result
    assert {s.state for s in result.values()} == {"done", "missed"}


def test_a_withdrawn_participant_has_nothing_due_even_before_now_passes_the_window() -> None:
    withdrawn = ENROLLED + DAY
    result = slots(now=withdrawn, status="withdrawn", status_changed_at=withdrawn)

    assert {k: s.state for k, s in result.items()} == {
        **{f"{q}#week-1": "missed" for q in QUESTIONNAIRES},
        "diary#week-1": "missed",
    }


def test_a_slot_opening_at_the_instant_of_withdrawal_was_never_expected() -> None:
    week_2_opens = ENROLLED + 4 * DAY

    at = slots(now=week_2_opens, status="withdrawn", status_changed_at=week_2_opens)
    just_after = slots(
        now=week_2_opens,
        status="withdrawn",
        status_changed_at=week_2_opens + timedelta(microseconds=1),
    )

    assert "diary#week-2" not in at
    assert just_after["diary#week-2"].state == "missed"


def test_a_withdrawn_participants_done_slot_after_the_withdrawal_still_shows_as_done() -> None:
    result = slots(
        now=ENROLLED + 100 * DAY,
        done={"hads#week-12"},
        status="withdrawn",
        status_changed_at=ENROLLED + 10 * DAY,
    )

    assert result["hads#week-12"].state == "done"
    assert "fscs#week-12" not in result


def test_a_completed_participants_follow_up_is_still_expected_on_time() -> None:
    after_programme = ENROLLED + 90 * DAY
    in_follow_up = ENROLLED + 170 * DAY
    done = {f"diary#{w}" for w in WEEKS}

    before = slots(now=after_programme, done=done, status="completed")
    during = slots(now=in_follow_up, done=done, status="completed")

    assert before["hads#follow-up"].state == "upcoming"
    assert during["hads#follow-up"].state == "due"
    assert before["hads#week-12"].state == "missed"  # completing does not excuse a gap


def test_a_completed_participant_is_scheduled_exactly_like_an_active_one() -> None:
    now = ENROLLED + 40 * DAY
    done = {"diary#week-2", "hads#week-1"}

    completed = slots(now=now, done=done, status="completed", status_changed_at=now)
    active = slots(now=now, done=done, status="active")

    assert completed == active


def test_overrides_change_only_the_timepoints_they_name() -> None:
    timing = {"follow-up": TimepointTiming(offset_days=77 + 61, window_days=7)}

    result = slots(now=ENROLLED, timing=timing)

    assert result["hads#follow-up"].opens_at == ENROLLED + 131 * DAY
    assert result["hads#follow-up"].closes_at == ENROLLED + 146 * DAY
    assert result["hads#week-12"].opens_at == ENROLLED + 74 * DAY


def test_a_window_of_zero_days_is_the_one_day_of_the_timepoint() -> None:
    timing = {"week-2": TimepointTiming(offset_days=7, window_days=0)}

    week_2 = slots(now=ENROLLED, timing=timing)["diary#week-2"]

    assert (week_2.opens_at, week_2.closes_at) == (ENROLLED + 7 * DAY, ENROLLED + 8 * DAY)


def test_a_custom_timepoint_without_timing_is_named_in_the_error() -> None:
    with pytest.raises(UntimedTimepoints) as raised:
        participant_schedule(
            timepoints=("baseline", "week-1", "post"),
            schedule={"hads": ("baseline", "post")},
            enrolled_at=ENROLLED,
            status="active",
            done=frozenset(),
            now=ENROLLED,
        )

    assert raised.value.timepoints == ("baseline", "post")
    assert "'baseline'" in str(raised.value)


def test_untimed_timepoints_lists_only_those_without_override_or_default() -> None:
    overrides = {"baseline": TimepointTiming(offset_days=0, window_days=7)}

    assert untimed_timepoints(timepoints=("baseline", "week-2", "post"), overrides=overrides) == (
        "post",
    )
    assert resolve_timing(timepoints=("baseline", "week-2"), overrides=overrides) == {
        "baseline": TimepointTiming(offset_days=0, window_days=7),
        "week-2": TimepointTiming(offset_days=7, window_days=3),
    }


def test_timepoints_the_schedule_never_uses_need_no_timing() -> None:
    result = participant_schedule(
        timepoints=("screening", "week-1"),
        schedule={"hads": ("week-1",)},
        enrolled_at=ENROLLED,
        status="active",
        done=frozenset(),
        now=ENROLLED,
    )

    assert [s.slot for s in result] == ["hads#week-1"]


def test_a_schedule_naming_a_timepoint_outside_the_protocol_is_refused() -> None:
    with pytest.raises(ValueError, match="not in the protocol"):
        participant_schedule(
            timepoints=("week-1",),
            schedule={"hads": ("week-1", "week-12")},
            enrolled_at=ENROLLED,
            status="active",
            done=frozenset(),
            now=ENROLLED,
        )


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        slots(now=datetime(2026, 11, 30, 8, 0))  # naive: the point of the test


def test_a_withdrawn_participant_without_the_withdrawal_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="status_changed_at"):
        slots(now=ENROLLED, status="withdrawn")


def test_an_unknown_status_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown participant status"):
        slots(now=ENROLLED, status="paused")  # type: ignore[arg-type]


@pytest.mark.parametrize(("offset", "window"), [(-1, 3), (7, -1), (7.0, 3), (True, 3), (7, "3")])
def test_timing_takes_whole_non_negative_days_only(offset: object, window: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        TimepointTiming(offset_days=offset, window_days=window)  # type: ignore[arg-type]


def test_other_time_zones_give_the_same_instants() -> None:
    cet = timezone(timedelta(hours=1))
    now = ENROLLED + 20 * DAY

    in_utc = slots(now=now)
    in_cet = participant_schedule(
        timepoints=TIMEPOINTS,
        schedule=SCHEDULE,
        enrolled_at=ENROLLED.astimezone(cet),
        status="active",
        done=frozenset(),
        now=now.astimezone(cet),
    )

    assert [(s.slot, s.opens_at, s.closes_at, s.state) for s in in_cet] == [
        (s.slot, s.opens_at, s.closes_at, s.state) for s in in_utc.values()
    ]


def test_count_states_gives_every_state_with_zeros() -> None:
    counts = count_states(slots(now=ENROLLED + 20 * DAY, done={"diary#week-1"}).values())

    assert counts == {"upcoming": 20, "due": 1, "done": 1, "missed": 8}


def test_slot_keys_match_the_done_set_format() -> None:
    assert slot_key(instrument="diary", timepoint="week-4") == "diary#week-4"


@given(
    day=st.integers(min_value=0, max_value=400),
    seconds=st.integers(min_value=0, max_value=86_399),
    done=st.sets(st.sampled_from([f"diary#{w}" for w in WEEKS] + ["hads#week-12"])),
)
def test_states_follow_the_window_at_any_moment(day: int, seconds: int, done: set[str]) -> None:
    now = ENROLLED + day * DAY + timedelta(seconds=seconds)

    for key, slot in slots(now=now, done=done).items():
        assert slot.opens_at < slot.closes_at
        if key in done:
            assert slot.state == "done"
        elif now < slot.opens_at:
            assert slot.state == "upcoming"
        elif now < slot.closes_at:
            assert slot.state == "due"
        else:
            assert slot.state == "missed"


@given(day=st.integers(min_value=0, max_value=120))
def test_at_most_one_diary_week_is_due_at_any_moment_with_default_timing(day: int) -> None:
    result = slots(now=ENROLLED + day * DAY)

    due = [k for k, s in result.items() if s.instrument == "diary" and s.state == "due"]
    assert len(due) == (1 if day < 81 else 0)


def test_the_documented_example_runs_as_written() -> None:
    result = doctest.testmod(domain.schedule)

    assert result.attempted > 0
    assert result.failed == 0


def test_the_schedule_module_imports_only_the_standard_library() -> None:
    # `import domain` too: the package's names load on first use, so it adds no module
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import domain.schedule; import domain"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in completed.stderr.splitlines()}
    assert "domain.schedule" in imported
    assert not imported & {"domain.statistics", "domain.fhir", "domain.instruments"}
    ours = {m for m in imported if m.split(".")[0] in {"services", "adapters", "handlers"}}
    assert ours == set()
    assert not {"boto3", "botocore", "jinja2"} & {m.split(".")[0] for m in imported}
