"""When each scheduled questionnaire is expected from a participant, and where it stands now.

A protocol names its timepoints and, per instrument, the timepoints it is scheduled at
(API.md, "Default protocol"). This module adds the v1.1 timing (API.md, "Participant
access"): each timepoint lies a whole number of days after enrolment and has a window of
whole days either side of it. From the participant's enrolment, status and done slots it
gives every scheduled instrument x timepoint with its window and its state. The
participant's own schedule (``GET /v1/me``), the coordinator's participant list and the
weekly e-mail all read their due and missed states from `participant_schedule`.

Timing
------
Day 0 is the 24 hours that start at the moment of enrolment (days are counted from the
enrolment instant, in UTC, not from calendar midnights: the trial knows no time zone). A
timepoint at day ``d`` with a window of ``w`` days covers days ``d - w`` to ``d + w``
inclusive, so its window is the half-open interval::

    opens_at  = enrolled_at + (d - w) days      (never before enrolled_at)
    closes_at = enrolled_at + (d + w + 1) days  (the first instant after the window)

The defaults (`default_timing`) are ``week-N`` at day 7 (N - 1) with +/-3 days, and
``follow-up`` at day 182 (26 weeks) with +/-14 days. Weekly windows of +/-3 days are seven
days long and tile the weeks exactly: ``week-2`` closes at the instant ``week-3`` opens,
with no gap and no overlap. ``week-1``'s window is clamped to start at enrolment (nobody
can submit before being enrolled), so it is four days long.

States
------
At the moment ``now``, for a participant whose status is ``active`` or ``completed``:

``done``
    The slot (``"instrument#timepoint"``) has a scored submission, whenever it was made:
    the submission route does not refuse early or late submissions, so a late one turns a
    missed slot into a done one.
``upcoming``
    Not done, and ``now < opens_at``.
``due``
    Not done, and ``opens_at <= now < closes_at``: at ``opens_at`` exactly a slot is due.
``missed``
    Not done, and ``now >= closes_at``: at ``closes_at`` exactly a slot is missed.

``completed`` (the programme is over) keeps the schedule running as for ``active``: the
follow-up comes after the programme, and completed participants may still submit.

A ``withdrawn`` participant's schedule ends at the withdrawal (``status_changed_at``),
whatever ``now`` is: slots that had not opened before the withdrawal were never expected
and are left out (unless done); every other slot is ``done`` or ``missed`` (a slot whose
window was still open at withdrawal is missed: it did not arrive, and it is not coming).
So nothing of a withdrawn participant is ever ``upcoming`` or ``due``.

References
----------
.. [1] cmt-collect HTTP contract, v1.1 additions, "Participant access" (``spec/API.md``).
.. [2] Chan A-W, Tetzlaff JM, Altman DG, et al. SPIRIT 2013 Statement: defining standard
       protocol items for clinical trials. Ann Intern Med. 2013;158(3):200-207,
       doi:10.7326/0003-4819-158-3-201302050-00583 (item 13: the participant timeline,
       with the time windows of each assessment).

Examples
--------
>>> from datetime import UTC, datetime
>>> slots = participant_schedule(
...     timepoints=("week-1", "week-2"),
...     schedule={"diary": ("week-1", "week-2")},
...     enrolled_at=datetime(2026, 11, 2, 9, 0, tzinfo=UTC),
...     status="active",
...     done=frozenset({"diary#week-1"}),
...     now=datetime(2026, 11, 9, 9, 0, tzinfo=UTC),
... )
>>> [(s.slot, s.state, s.closes_at.date().isoformat()) for s in slots]
[('diary#week-1', 'done', '2026-11-06'), ('diary#week-2', 'due', '2026-11-13')]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from domain.trial import ParticipantStatus, Slot, TimepointTiming

__all__ = [
    "DEFAULT_WINDOW_DAYS",
    "FOLLOW_UP",
    "FOLLOW_UP_OFFSET_DAYS",
    "FOLLOW_UP_WINDOW_DAYS",
    "SLOT_STATES",
    "ParticipantStatus",
    "ScheduledSlot",
    "SlotState",
    "TimepointTiming",
    "UntimedTimepoints",
    "count_states",
    "default_timing",
    "effective_timing",
    "participant_schedule",
    "resolve_timing",
    "slot_key",
    "untimed_timepoints",
]

SlotState = Literal["upcoming", "due", "done", "missed"]

#: Every state, in the order a schedule reads: not yet, now, and the two outcomes.
SLOT_STATES: tuple[SlotState, ...] = ("upcoming", "due", "done", "missed")
#: Days either side of a ``week-N`` timepoint (API.md v1.1: +/-3 days).
DEFAULT_WINDOW_DAYS = 3
#: The follow-up timepoint's name, its day after enrolment (26 weeks) and its window.
FOLLOW_UP = "follow-up"
FOLLOW_UP_OFFSET_DAYS = 26 * 7
FOLLOW_UP_WINDOW_DAYS = 14

_WEEK = re.compile(r"week-([1-9][0-9]{0,3})")
_STATUSES: frozenset[str] = frozenset({"active", "withdrawn", "completed"})


class UntimedTimepoints(ValueError):
    """Timepoints with neither a default timing nor an override (``.timepoints``)."""

    def __init__(self, timepoints: Iterable[str]) -> None:
        self.timepoints: tuple[str, ...] = tuple(timepoints)
        super().__init__(
            "no timing for timepoint(s) "
            + ", ".join(repr(t) for t in self.timepoints)
            + ": give each an offset and a window"
        )


@dataclass(frozen=True, kw_only=True)
class ScheduledSlot:
    """One scheduled instrument x timepoint of one participant, with its window and state."""

    instrument: str
    timepoint: str
    opens_at: datetime
    closes_at: datetime
    state: SlotState

    @property
    def slot(self) -> str:
        """The slot key, ``"instrument#timepoint"`` (as in a participant's done set)."""
        return slot_key(instrument=self.instrument, timepoint=self.timepoint)


def slot_key(*, instrument: str, timepoint: str) -> str:
    """``"instrument#timepoint"``, the key of a participant's done slots (`Slot`'s form)."""
    return str(Slot(instrument=instrument, timepoint=timepoint))


def default_timing(timepoint: str) -> TimepointTiming | None:
    """The v1.1 default timing of a timepoint, or None for a name without a default.

    >>> default_timing("week-3")
    TimepointTiming(offset_days=14, window_days=3)
    >>> default_timing("follow-up")
    TimepointTiming(offset_days=182, window_days=14)
    >>> default_timing("baseline") is None
    True
    """
    if timepoint == FOLLOW_UP:
        return TimepointTiming(offset_days=FOLLOW_UP_OFFSET_DAYS, window_days=FOLLOW_UP_WINDOW_DAYS)
    week = _WEEK.fullmatch(timepoint)
    if week:
        return TimepointTiming(
            offset_days=7 * (int(week.group(1)) - 1), window_days=DEFAULT_WINDOW_DAYS
        )
    return None


def untimed_timepoints(
    *, timepoints: Iterable[str], overrides: Mapping[str, TimepointTiming] | None = None
) -> tuple[str, ...]:
    """The timepoints, in order, that have neither an override nor a default timing."""
    given = overrides or {}
    return tuple(t for t in timepoints if t not in given and default_timing(t) is None)


def resolve_timing(
    *, timepoints: Iterable[str], overrides: Mapping[str, TimepointTiming] | None = None
) -> dict[str, TimepointTiming]:
    """Each timepoint's timing: its override where one is given, else its default.

    Raises
    ------
    UntimedTimepoints
        Naming every timepoint that has neither (a protocol with such a timepoint cannot
        be scheduled; a trial's protocol validation can call `untimed_timepoints` first).
    """
    names = tuple(timepoints)
    missing = untimed_timepoints(timepoints=names, overrides=overrides)
    if missing:
        raise UntimedTimepoints(missing)
    given = overrides or {}
    resolved: dict[str, TimepointTiming] = {}
    for name in names:
        timing = given.get(name) or default_timing(name)
        assert timing is not None  # checked above
        resolved[name] = timing
    return resolved


def effective_timing(
    *, timepoints: Iterable[str], overrides: Mapping[str, TimepointTiming] | None = None
) -> dict[str, TimepointTiming]:
    """The timing of each timepoint that has one (override, else default), in order.

    Unlike `resolve_timing` it leaves out, rather than refuses, the timepoints without any:
    what a trial shows of its timing.

    >>> effective_timing(timepoints=("week-2", "baseline"))
    {'week-2': TimepointTiming(offset_days=7, window_days=3)}
    """
    given = overrides or {}
    found: dict[str, TimepointTiming] = {}
    for name in timepoints:
        timing = given.get(name) or default_timing(name)
        if timing is not None:
            found[name] = timing
    return found


def _check_aware(moment: datetime, what: str) -> None:
    if not isinstance(moment, datetime):
        raise TypeError(f"{what} must be a datetime, got {moment!r}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must carry a time zone (UTC), got {moment.isoformat()}")


def participant_schedule(
    *,
    timepoints: Sequence[str],
    schedule: Mapping[str, Sequence[str]],
    enrolled_at: datetime,
    status: ParticipantStatus,
    done: Iterable[str],
    now: datetime,
    status_changed_at: datetime | None = None,
    timing: Mapping[str, TimepointTiming] | None = None,
) -> tuple[ScheduledSlot, ...]:
    """Every scheduled instrument x timepoint of one participant, with window and state.

    Parameters
    ----------
    timepoints : sequence of str
        The protocol's timepoints in protocol order (the order of the result).
    schedule : mapping of str to sequence of str
        Instrument id -> the timepoints it is scheduled at; instruments keep this order
        within a timepoint.
    enrolled_at : datetime
        The participant's enrolment, time-zone aware.
    status : {"active", "withdrawn", "completed"}
        The participant's status now.
    done : iterable of str
        The participant's done slots, ``"instrument#timepoint"``.
    now : datetime
        The moment the states are for, time-zone aware (inject it; never read a clock here).
    status_changed_at : datetime, optional
        When the status was last set; required for ``withdrawn`` (the withdrawal), ignored
        otherwise.
    timing : mapping of str to TimepointTiming, optional
        Per-timepoint overrides of `default_timing`.

    Returns
    -------
    tuple of ScheduledSlot
        Ordered by timepoint (protocol order), then instrument (schedule order). For a
        withdrawn participant, slots that had not opened before the withdrawal are left
        out unless done (see the module docstring for every rule).

    Raises
    ------
    UntimedTimepoints
        A scheduled timepoint has no timing.
    ValueError
        The schedule names a timepoint the protocol does not have, a moment is naive, the
        status is unknown, or a withdrawn participant has no ``status_changed_at``.
    """
    _check_aware(enrolled_at, "enrolled_at")
    _check_aware(now, "now")
    if status not in _STATUSES:
        raise ValueError(f"unknown participant status {status!r}")
    withdrawn_at: datetime | None = None
    if status == "withdrawn":
        if status_changed_at is None:
            raise ValueError("a withdrawn participant needs status_changed_at (the withdrawal)")
        _check_aware(status_changed_at, "status_changed_at")
        withdrawn_at = status_changed_at
    order = {name: index for index, name in enumerate(timepoints)}
    unknown = sorted({t for points in schedule.values() for t in points if t not in order})
    if unknown:
        raise ValueError(f"the schedule names timepoints not in the protocol: {unknown}")
    scheduled = [t for t in timepoints if any(t in points for points in schedule.values())]
    windows = {
        name: t.window(enrolled_at)
        for name, t in resolve_timing(timepoints=scheduled, overrides=timing).items()
    }
    done_slots = frozenset(done)
    slots: list[ScheduledSlot] = []
    for timepoint in scheduled:
        opens_at, closes_at = windows[timepoint]
        for instrument, points in schedule.items():
            if timepoint not in points:
                continue
            key = slot_key(instrument=instrument, timepoint=timepoint)
            state: SlotState
            if key in done_slots:
                state = "done"
            elif withdrawn_at is not None:
                if opens_at >= withdrawn_at:
                    continue  # never expected: the schedule ended before it opened
                state = "missed"
            elif now < opens_at:
                state = "upcoming"
            elif now < closes_at:
                state = "due"
            else:
                state = "missed"
            slots.append(
                ScheduledSlot(
                    instrument=instrument,
                    timepoint=timepoint,
                    opens_at=opens_at,
                    closes_at=closes_at,
                    state=state,
                )
            )
    return tuple(slots)


def count_states(slots: Iterable[ScheduledSlot]) -> dict[SlotState, int]:
    """How many slots are in each state (every state present, zeros included)."""
    counts: dict[SlotState, int] = dict.fromkeys(SLOT_STATES, 0)
    for slot in slots:
        counts[slot.state] += 1
    return counts
