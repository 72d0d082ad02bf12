"""Trials: create/update with a validated protocol and alert rules; cached reads.

A protocol's timing
-------------------
Each timepoint lies ``offset_days`` after enrolment with a window of ``window_days``
either side (`domain.schedule`). ``week-N`` and ``follow-up`` have defaults (API.md v1.1);
``protocol.timing`` may set any timepoint's timing, e.g.
``{"baseline": {"offset_days": 0, "window_days": 7}}``. Every scheduled timepoint must end
up with a timing: one without a default and without an entry in ``timing`` is refused
(422, ``missing_timing``, naming the timepoint), since its slots could never be due or
missed. Only what the request sets is stored; the trial shows every timepoint's timing,
defaults included.
"""

from __future__ import annotations

import re
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.errors import Problem, UnknownInstrument
from domain.instruments import CATALOGUE
from domain.schedule import default_timing
from domain.trial import (
    DEFAULT_ALERT_RULES,
    AlertRule,
    Comparison,
    StudyProtocol,
    TimepointTiming,
    Trial,
    default_protocol,
)
from services.clock import Clock, iso
from services.errors import NotFound, ValidationFailed
from services.ports import TrialStore

TIMEPOINT_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


TRIAL_FIELDS = ("title", "coordinator_emails", "protocol", "alert_rules")
#: The latest a timepoint may lie after enrolment (about ten years), and the widest window.
MAX_OFFSET_DAYS = 3660
MAX_WINDOW_DAYS = 366


@dataclass(frozen=True)
class TrialInput:
    """The fields of a trial a request sent; None is a field not sent."""

    title: str | None = None
    coordinator_emails: Sequence[str] | None = None
    protocol: Mapping[str, Any] | None = None
    alert_rules: Sequence[Mapping[str, Any]] | None = None

    def missing(self) -> list[str]:
        return [name for name in TRIAL_FIELDS if getattr(self, name) is None]


def parse_protocol(raw: Mapping[str, Any] | None) -> tuple[StudyProtocol, list[Problem]]:
    """Validate a trial's own protocol, reporting every problem; None means the default."""
    if raw is None:
        return default_protocol(), []
    problems: list[Problem] = []
    timepoints = list(raw.get("timepoints") or [])
    seen: set[str] = set()
    for n, tp in enumerate(timepoints):
        if not isinstance(tp, str) or not TIMEPOINT_PATTERN.match(tp):
            problems.append(
                Problem(
                    ("protocol", "timepoints", n),
                    "timepoint must match ^[a-z0-9][a-z0-9-]{0,31}$",
                    "bad_timepoint",
                )
            )
        elif tp in seen:
            problems.append(
                Problem(("protocol", "timepoints", n), f"{tp} listed twice", "duplicate")
            )
        seen.add(str(tp))
    if not timepoints:
        problems.append(Problem(("protocol", "timepoints"), "at least one timepoint", "missing"))
    schedule_raw = raw.get("schedule") or {}
    schedule: dict[str, tuple[str, ...]] = {}
    for instrument, tps in schedule_raw.items():
        try:
            CATALOGUE.get(instrument)
        except UnknownInstrument:
            problems.append(
                Problem(
                    ("protocol", "schedule", instrument),
                    f"unknown instrument {instrument}",
                    "unknown_instrument",
                )
            )
            continue
        for n, tp in enumerate(tps or []):
            if tp not in seen:
                problems.append(
                    Problem(
                        ("protocol", "schedule", instrument, n),
                        f"{tp} is not one of the protocol's timepoints",
                        "unknown_timepoint",
                    )
                )
        schedule[instrument] = tuple(tps or [])
    if not schedule:
        problems.append(
            Problem(("protocol", "schedule"), "schedule at least one instrument", "missing")
        )
    comparison = raw.get("comparison") or {}
    pre, post = comparison.get("pre"), comparison.get("post")
    for side, value in (("pre", pre), ("post", post)):
        if value not in seen:
            problems.append(
                Problem(
                    ("protocol", "comparison", side),
                    f"{value!r} is not one of the protocol's timepoints",
                    "unknown_timepoint",
                )
            )
    if pre is not None and pre == post:
        problems.append(
            Problem(
                ("protocol", "comparison", "post"), "pre and post must differ", "same_timepoint"
            )
        )
    timing = _parse_timing(
        raw.get("timing"),
        order=[t for t in timepoints if isinstance(t, str)],
        schedule=schedule,
        problems=problems,
    )
    protocol = StudyProtocol(
        timepoints=tuple(str(t) for t in timepoints),
        schedule=schedule,
        comparison=Comparison(pre=str(pre), post=str(post)),
        timing=timing,
    )
    return protocol, problems


def _days(
    value: object, loc: tuple[str | int, ...], *, most: int, problems: list[Problem]
) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(Problem(loc, "must be a whole number of days", "not_integer"))
        return None
    if not 0 <= value <= most:
        problems.append(Problem(loc, f"must be 0-{most} days", "out_of_range"))
        return None
    return value


def _parse_timing(
    raw: object,
    *,
    order: Sequence[str],
    schedule: Mapping[str, Sequence[str]],
    problems: list[Problem],
) -> dict[str, TimepointTiming]:
    """The protocol's own timing; every problem with it, and every scheduled timepoint left
    without any timing, is a problem."""
    known = set(order)
    given = raw if isinstance(raw, Mapping) else {}
    timing: dict[str, TimepointTiming] = {}
    for timepoint, entry in given.items():
        loc: tuple[str | int, ...] = ("protocol", "timing", str(timepoint))
        if timepoint not in known:
            problems.append(
                Problem(
                    loc, f"{timepoint} is not one of the protocol's timepoints", "unknown_timepoint"
                )
            )
            continue
        fields = entry if isinstance(entry, Mapping) else {}
        offset = _days(
            fields.get("offset_days"),
            (*loc, "offset_days"),
            most=MAX_OFFSET_DAYS,
            problems=problems,
        )
        window = _days(
            fields.get("window_days"),
            (*loc, "window_days"),
            most=MAX_WINDOW_DAYS,
            problems=problems,
        )
        if offset is not None and window is not None:
            timing[str(timepoint)] = TimepointTiming(offset_days=offset, window_days=window)
    scheduled = {t for points in schedule.values() for t in points}
    for timepoint in dict.fromkeys(t for t in order if t in scheduled):
        if timepoint not in given and default_timing(timepoint) is None:
            problems.append(
                Problem(
                    ("protocol", "timing", timepoint),
                    f"timepoint {timepoint} is scheduled but has no timing (only week-N and "
                    'follow-up have defaults): give it {"offset_days": ..., "window_days": ...}',
                    "missing_timing",
                )
            )
    return timing


def parse_alert_rules(
    raw: Sequence[Mapping[str, Any]] | None,
) -> tuple[tuple[AlertRule, ...], list[Problem]]:
    if raw is None:
        return DEFAULT_ALERT_RULES, []
    problems: list[Problem] = []
    rules: list[AlertRule] = []
    seen: dict[tuple[str, object], int] = {}
    for n, rule in enumerate(raw):
        loc = ("alert_rules", n)
        earlier = seen.setdefault((str(rule.get("instrument")), rule.get("item")), n)
        if earlier != n:
            problems.append(
                Problem(
                    loc,
                    f"rule {earlier} already watches {rule.get('instrument')} item "
                    f"{rule.get('item')}: one rule per item (keep the lower at_least)",
                    "duplicate_rule",
                )
            )
            continue
        try:
            instrument = CATALOGUE.get(str(rule.get("instrument")))
        except UnknownInstrument:
            problems.append(
                Problem(
                    (*loc, "instrument"),
                    f"unknown instrument {rule.get('instrument')!r}",
                    "unknown_instrument",
                )
            )
            continue
        item, at_least = rule.get("item"), rule.get("at_least")
        ok = True
        if not isinstance(item, int) or isinstance(item, bool) or not 1 <= item <= instrument.items:
            problems.append(
                Problem((*loc, "item"), f"item must be 1-{instrument.items}", "out_of_range")
            )
            ok = False
        if (
            not isinstance(at_least, int)
            or isinstance(at_least, bool)
            or not instrument.response_min <= at_least <= instrument.response_max
        ):
            problems.append(
                Problem(
                    (*loc, "at_least"),
                    f"at_least must be {instrument.response_min}-{instrument.response_max}",
                    "out_of_range",
                )
            )
            ok = False
        if ok and isinstance(item, int) and isinstance(at_least, int):
            rules.append(AlertRule(instrument=instrument.id, item=item, at_least=at_least))
    return tuple(rules), problems


@dataclass(frozen=True, slots=True)
class _Assessed:
    """A trial as a request would leave it, before it is stored, and what is wrong with it."""

    trial_id: str
    existing: Trial | None
    title: str
    coordinator_emails: tuple[str, ...]
    protocol: StudyProtocol
    alert_rules: tuple[AlertRule, ...]
    problems: list[Problem]


class TrialService:
    def __init__(self, store: TrialStore, clock: Clock, cache_seconds: float = 30.0) -> None:
        self.store = store
        self.clock = clock
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, Trial]] = {}

    def put(self, trial_id: str, data: TrialInput) -> tuple[Trial, bool]:
        """Create, or replace as a whole; returns the trial and whether it was created.

        Creating needs only a title (the default protocol and alert rule apply, the default
        rule only where its instrument is scheduled). Replacing needs every field: a field
        left out is a 422, never a silent default.
        """
        existing = self.store.get_trial(trial_id)
        trial = self._stored(self._assess(trial_id, existing, data, replacing=True))
        return trial, existing is None

    def patch(self, trial_id: str, data: TrialInput) -> Trial:
        """Change only the fields sent; the whole trial must still be valid."""
        existing = self.get(trial_id)
        return self._stored(self._assess(trial_id, existing, data, replacing=False))

    def problems(
        self, trial_id: str, data: TrialInput, *, skip: Collection[str], replacing: bool
    ) -> list[Problem]:
        """What `put` (`replacing`) or `patch` would refuse in a body, leaving out `skip`.

        For a body whose `skip` fields the API's schema refused (they are None in `data`),
        so that one answer names every bad field: those fields, and the checks across fields
        that involve one of them, are not looked at. Nothing is stored.
        """
        existing = self.store.get_trial(trial_id)
        if existing is None and not replacing:
            return []  # no trial to change: the 404 comes once the body is right
        return self._assess(trial_id, existing, data, replacing=replacing, skip=skip).problems

    def _assess(
        self,
        trial_id: str,
        existing: Trial | None,
        data: TrialInput,
        *,
        replacing: bool,
        skip: Collection[str] = (),
    ) -> _Assessed:
        """The trial a PUT (`replacing`) or PATCH would store, and every problem with it."""
        problems: list[Problem] = []
        if replacing:
            if existing is not None:
                problems += [
                    Problem(
                        (name,),
                        f"required: PUT replaces trial {trial_id} as a whole, so send every "
                        f"field ({', '.join(TRIAL_FIELDS)}), or PATCH to change some",
                        "missing",
                    )
                    for name in data.missing()
                    if name not in skip
                ]
            protocol, found = parse_protocol(data.protocol)
            rules, rule_problems = parse_alert_rules(data.alert_rules)
            if data.alert_rules is None:
                # the default rule applies only where its instrument is scheduled
                rules = tuple(r for r in rules if r.instrument in protocol.schedule)
            title = str(data.title)
            emails = tuple(data.coordinator_emails or ())
            problems += found + rule_problems
        else:
            assert existing is not None
            if not skip and not [name for name in TRIAL_FIELDS if getattr(data, name) is not None]:
                problems.append(
                    Problem((), f"send at least one of {', '.join(TRIAL_FIELDS)}", "empty")
                )
            protocol, rules = existing.protocol, existing.alert_rules
            if data.protocol is not None:
                protocol, found = parse_protocol(data.protocol)
                problems += found
            if data.alert_rules is not None:
                rules, rule_problems = parse_alert_rules(data.alert_rules)
                problems += rule_problems
            title = existing.title if data.title is None else data.title
            emails = tuple(
                existing.coordinator_emails
                if data.coordinator_emails is None
                else data.coordinator_emails
            )
        problems = [Problem(("body", *p.loc), p.msg, p.type) for p in problems]
        if not {"protocol", "alert_rules"} & set(skip):
            for instrument in sorted({r.instrument for r in rules} - set(protocol.schedule)):
                problems.append(
                    Problem(
                        ("body", "alert_rules"),
                        f"{instrument} is not in the protocol's schedule",
                        "not_scheduled",
                    )
                )
        if rules and not emails and not {"alert_rules", "coordinator_emails"} & set(skip):
            problems.append(
                Problem(
                    ("body", "coordinator_emails"),
                    "a trial with safety-alert rules needs at least one coordinator address "
                    "(or send alert_rules: [] to have none)",
                    "no_recipient",
                )
            )
        return _Assessed(
            trial_id=trial_id,
            existing=existing,
            title=title,
            coordinator_emails=emails,
            protocol=protocol,
            alert_rules=rules,
            problems=problems,
        )

    def _stored(self, assessed: _Assessed) -> Trial:
        """Store an assessed trial (created_at kept, updated_at now), or refuse it whole."""
        if assessed.problems:
            raise ValidationFailed(assessed.problems)
        now = iso(self.clock())
        existing = assessed.existing
        trial = Trial(
            trial_id=assessed.trial_id,
            title=assessed.title,
            coordinator_emails=assessed.coordinator_emails,
            protocol=assessed.protocol,
            alert_rules=assessed.alert_rules,
            created_at=existing.created_at if existing else now,
            updated_at=now,
        )
        self.store.put_trial(trial)
        self._cache.pop(trial.trial_id, None)
        return trial

    def list_all(self) -> list[Trial]:
        """Every trial (the schedules run over them)."""
        return self.store.list_trials()

    def get(self, trial_id: str) -> Trial:
        trial = self.store.get_trial(trial_id)
        if trial is None:
            raise NotFound(f"no trial {trial_id}")
        return trial

    def get_cached(self, trial_id: str) -> Trial:
        """The trial as seen at most `cache_seconds` ago (the submit path's hot read)."""
        now = time.monotonic()
        hit = self._cache.get(trial_id)
        if hit and now - hit[0] < self.cache_seconds:
            return hit[1]
        trial = self.get(trial_id)
        self._cache[trial_id] = (now, trial)
        return trial
