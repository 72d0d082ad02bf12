"""The coordinators' e-mails, rendered as subject, plain text and HTML (no sending here).

Two mails: the weekly summary and the safety alert. Neither ever carries an item response or
free text: the summary has counts, pseudonymous participant codes, schedule states and
group-level pre/post headlines; the alert names the rule that was met, not the answer, and
its subject names no participant (a phone's lock screen shows subjects).

The HTML is rendered by Jinja2 templates (package data in ``services/templates``, loaded
once) with autoescaping on, so every value is escaped by the engine, not by hand; the plain
text part comes from a sibling ``.txt`` template. Subjects lose their line breaks (a header
cannot be split).

How the mails are laid out, and why
-----------------------------------
* One column at most 600 px wide that shrinks to the screen (a 390 px phone included), built
  from ``role="presentation"`` tables with inline styles: the layout mail clients render
  alike (Gmail drops ``<style>`` blocks in some views, Outlook for Windows renders with
  Word's engine and ignores most CSS layout).
* The figures in the weekly mail are bars built from table cells with a background colour
  and a percentage width. SVG is blocked by Gmail and Outlook; a raster image would need a
  plotting library in the Lambda package and a CID attachment (the mailer sends a text and
  an HTML part only), and remote images are off by default in many clients, and a
  ``data:`` image is blocked by Gmail. Table bars are text: they show with images off,
  scale with the column and are read out by screen readers through their labels.
* No links. The only pages with the full report need a coordinator key in an
  ``Authorization`` header, which a mail client cannot send (a link opens a 401), and a
  presigned S3 link signed by a Lambda's temporary credentials expires within hours. The
  mail says which API route holds the full report instead, without a host, so no mail client
  turns it into a link.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jinja2

from domain.errors import DomainError
from domain.instruments import CATALOGUE, Improvement
from domain.trial import natural_key
from services.prepost import Headline

__all__ = [
    "AlertLine",
    "RenderedMail",
    "ResultLine",
    "Results",
    "ScheduleGroup",
    "ScheduleLine",
    "WeeklySummary",
    "format_day",
    "format_moment",
    "format_span",
    "group_lines",
    "render_safety_alert",
    "render_weekly_summary",
    "results_from_headline",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_DAY = timedelta(days=1)
FOOTER = (
    "Participants are identified by their pseudonymous codes only. This message contains no "
    "questionnaire answers and no diary text. Times are UTC."
)


@dataclass(frozen=True)
class RenderedMail:
    """A mail ready for the mail adapter: one-line subject, text part, HTML part."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True, kw_only=True)
class AlertLine:
    """One safety alert of the week: who, which questionnaire, when; never the answer."""

    participant_id: str
    instrument: str
    timepoint: str
    raised_at: datetime
    emailed: bool


@dataclass(frozen=True, kw_only=True)
class ScheduleLine:
    """One participant's questionnaires due (or missed) at one timepoint, sharing a window."""

    participant_id: str
    timepoint: str
    instruments: tuple[str, ...]
    closes_at: datetime


@dataclass(frozen=True, kw_only=True)
class ResultLine:
    """The group-level pre/post headline of one subscale (no participant-level data)."""

    instrument: str
    subscale: str
    subscale_label: str
    n_pairs: int
    pre_mean: float
    post_mean: float
    low: float
    high: float
    direction: str | None
    improvement: Improvement | None
    p: float | None
    p_method: str | None
    p_holm: float | None
    reason: str | None = None


@dataclass(frozen=True, kw_only=True)
class Results:
    """What the latest published pre/post report says, for the e-mail."""

    generated_at: datetime | None
    pre: str
    post: str
    completers: int | None
    lines: tuple[ResultLine, ...] = ()
    without_result: int = 0


@dataclass(frozen=True, kw_only=True)
class WeeklySummary:
    """What the weekly summary reports, gathered by `services.weekly`.

    ``period_start`` to ``period_end`` (half-open) is the week the counts cover. ``due`` is
    what is open at ``period_end``; ``missed`` what closed unanswered inside the period;
    both come from `domain.schedule` and leave withdrawn participants out (nobody chases
    them). ``untimed`` names scheduled timepoints that have no timing, so their slots
    could not be placed. ``results`` is None when no report has been published.
    """

    trial_id: str
    trial_title: str
    period_start: datetime
    period_end: datetime
    enrolment: Mapping[str, int]
    alerts: Sequence[AlertLine] = ()
    due: Sequence[ScheduleLine] = ()
    missed: Sequence[ScheduleLine] = ()
    untimed: Sequence[str] = ()
    enrolled: Sequence[str] = ()
    withdrew: Sequence[str] = ()
    completed: Sequence[str] = ()
    submissions_by_instrument: Mapping[str, int] = field(default_factory=dict)
    slots_done: int = 0
    slots_missed: int = 0
    results: Results | None = None


# -- dates as people write them ------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def format_day(moment: datetime, *, year: bool = False) -> str:
    """``Mon 30 Nov`` (``Mon 30 Nov 2026`` with `year`), in UTC.

    >>> format_day(datetime(2026, 11, 30, 8, 0, tzinfo=UTC), year=True)
    'Mon 30 Nov 2026'
    """
    day = _utc(moment)
    text = f"{day:%a} {day.day} {day:%b}"
    return f"{text} {day.year}" if year else text


def format_moment(moment: datetime, *, year: bool = False) -> str:
    """``Mon 30 Nov, 08:00`` (UTC, to the minute).

    >>> format_moment(datetime(2026, 12, 3, 9, 30, 12, tzinfo=UTC))
    'Thu 3 Dec, 09:30'
    """
    return f"{format_day(moment, year=year)}, {_utc(moment):%H:%M}"


def format_span(start: datetime, end: datetime) -> str:
    """A half-open period as people write it, naming month and year once where shared.

    Whole days (both ends at midnight UTC) read as the first and the last day; any other
    period gives both moments to the minute.

    >>> format_span(datetime(2026, 11, 23, tzinfo=UTC), datetime(2026, 11, 30, tzinfo=UTC))
    'Mon 23 – Sun 29 Nov 2026'
    >>> format_span(datetime(2026, 11, 30, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC))
    'Mon 30 Nov – Sun 6 Dec 2026'
    >>> format_span(datetime(2026, 12, 28, tzinfo=UTC), datetime(2027, 1, 4, tzinfo=UTC))
    'Mon 28 Dec 2026 – Sun 3 Jan 2027'
    >>> format_span(datetime(2026, 11, 23, 8, tzinfo=UTC), datetime(2026, 11, 30, 8, tzinfo=UTC))
    'Mon 23 Nov, 08:00 – Mon 30 Nov 2026, 08:00'
    """
    first, end = _utc(start), _utc(end)
    midnight = datetime.min.time()
    if first.time() == midnight and end.time() == midnight and end > first:
        last = end - _DAY
        if first.date() == last.date():
            return format_day(first, year=True)
        if first.year != last.year:
            return f"{format_day(first, year=True)} – {format_day(last, year=True)}"
        if first.month != last.month:
            return f"{format_day(first)} – {format_day(last, year=True)}"
        return f"{first:%a} {first.day} – {format_day(last, year=True)}"
    if first.year != end.year:
        return f"{format_moment(first, year=True)} – {format_moment(end, year=True)}"
    return f"{format_moment(first)} – {format_day(end, year=True)}, {end:%H:%M}"


# -- names and numbers ---------------------------------------------------------------------


def short_name(instrument_id: str) -> str:
    """``HADS``; the diary is ``Diary``."""
    return "Diary" if instrument_id == "diary" else instrument_id.upper()


def instrument_title(instrument_id: str) -> str:
    try:
        return CATALOGUE.get(instrument_id).title
    except DomainError:
        return instrument_id


def format_score(value: float) -> str:
    """One decimal: scores are sums of items, often prorated (14.666… reads 14.7)."""
    return f"{value:.1f}"


def format_p(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def bar_percent(value: float, low: float, high: float) -> int:
    """Where `value` lies in ``[low, high]``, as a whole percentage (0 to 100)."""
    if high <= low:
        return 0
    return max(0, min(100, round((value - low) / (high - low) * 100)))


def _subject(text: str) -> str:
    return re.sub(r"\s{2,}", " ", _CONTROL.sub(" ", text)).strip()


# -- schedule lines, grouped for reading --------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ScheduleGroup:
    """Participants with the same timepoint and instruments, closing on the same day.

    A group programme enrols its participants together, so their windows close together:
    one card per group instead of one per participant keeps a phone's screen short.
    """

    timepoint: str
    instruments: tuple[str, ...]
    participants: tuple[str, ...]
    first_close: datetime
    last_close: datetime

    @property
    def closes(self) -> str:
        """``Mon 15 Feb, 09:35``, or ``Mon 15 Feb, 09:35 to 14:10`` when times differ."""
        first = format_moment(self.first_close)
        if f"{_utc(self.first_close):%H:%M}" == f"{_utc(self.last_close):%H:%M}":
            return first
        return f"{first} to {_utc(self.last_close):%H:%M}"


def group_lines(lines: Sequence[ScheduleLine]) -> list[ScheduleGroup]:
    """Group lines by timepoint, instruments and UTC day of closing; earliest closing first.

    >>> from datetime import UTC, datetime
    >>> at = datetime(2027, 2, 15, 9, 35, tzinfo=UTC)
    >>> lines = [ScheduleLine(participant_id=p, timepoint="week-12", instruments=("diary",),
    ...                       closes_at=at) for p in ("P2", "P10", "P1")]
    >>> [(g.participants, g.closes) for g in group_lines(lines)]
    [(('P1', 'P2', 'P10'), 'Mon 15 Feb, 09:35')]
    """
    groups: dict[tuple[str, tuple[str, ...], str], list[ScheduleLine]] = {}
    for line in lines:
        key = (line.timepoint, line.instruments, _utc(line.closes_at).date().isoformat())
        groups.setdefault(key, []).append(line)
    result = [
        ScheduleGroup(
            timepoint=timepoint,
            instruments=instruments,
            participants=tuple(sorted((m.participant_id for m in members), key=natural_key)),
            first_close=min(m.closes_at for m in members),
            last_close=max(m.closes_at for m in members),
        )
        for (timepoint, instruments, _), members in groups.items()
    ]
    return sorted(result, key=lambda g: (g.first_close, natural_key(g.timepoint)))


# -- the pre/post results, from the published report's headline ----------------------------


def _parse_moment(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _scale(instrument: str, subscale: str, *values: float) -> tuple[float, float, str | None]:
    try:
        sub = CATALOGUE.get(instrument).subscale(subscale)
    except (DomainError, KeyError):
        return min(0.0, *values), max(1.0, *values), None
    return float(sub.range[0]), float(sub.range[1]), sub.improvement


def results_from_headline(headline: Headline) -> Results:
    """The mail's results: the headline's subscales with 2+ pairs and both means.

    The headline is read from the published report (`services.prepost.read_headline`),
    which reads reports written before and after the v1.1 statistics fields alike.
    """
    lines: list[ResultLine] = []
    without = 0
    for row in headline.rows:
        pre, post, n_pairs = row.pre_mean, row.post_mean, row.n_pairs
        if pre is None or post is None or n_pairs is None or n_pairs < 2:
            without += 1
            continue
        low, high, improvement = _scale(row.instrument, row.subscale, pre, post)
        lines.append(
            ResultLine(
                instrument=row.instrument,
                subscale=row.subscale,
                subscale_label=row.subscale_label,
                n_pairs=n_pairs,
                pre_mean=pre,
                post_mean=post,
                low=low,
                high=high,
                direction=row.direction,
                improvement=improvement,  # type: ignore[arg-type]
                p=row.p,
                p_method=row.p_method,
                p_holm=row.p_holm,
                reason=row.reason if row.p is None else None,
            )
        )
    return Results(
        generated_at=_parse_moment(headline.generated_at),
        pre=headline.pre,
        post=headline.post,
        completers=headline.completers,
        lines=tuple(lines),
        without_result=without,
    )


def _verdict(line: ResultLine) -> str:
    """Which way the mean moved, against the subscale's direction of improvement."""
    moved = (
        "rose"
        if line.post_mean > line.pre_mean
        else "fell"
        if line.post_mean < line.pre_mean
        else "did not change"
    )
    if line.improvement is None:
        return f"Mean {moved}"
    better = "lower" if line.improvement == "decrease" else "higher"
    if moved == "did not change":
        return f"Mean did not change ({better} is better)"
    good = (moved == "fell") == (line.improvement == "decrease")
    return f"Mean {moved}: {'the better' if good else 'the worse'} direction ({better} is better)"


# -- templates -----------------------------------------------------------------------------

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("services", "templates"),
    autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_ENV.filters.update(
    day=format_day,
    moment=format_moment,
    score=format_score,
    p=format_p,
    short=short_name,
    instrument_title=instrument_title,
    verdict=_verdict,
)
_ENV.globals.update(bar_percent=bar_percent, footer=FOOTER)


def _render(name: str, **context: Any) -> tuple[str, str]:
    html = _ENV.get_template(f"{name}.html").render(**context)
    text = _ENV.get_template(f"{name}.txt").render(**context)
    return text, html


def _counted(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"


def render_weekly_summary(summary: WeeklySummary) -> RenderedMail:
    """The Monday summary: what needs action, then progress, then results."""
    period = format_span(summary.period_start, summary.period_end)
    action = [
        _counted(len(summary.alerts), "safety alert"),
        f"{sum(len(d.instruments) for d in summary.due)} due",
        f"{sum(len(m.instruments) for m in summary.missed)} missed",
    ]
    week_to = format_day(summary.period_end, year=True)
    subject = _subject(f"[{summary.trial_id}] Weekly summary to {week_to}: {', '.join(action)}")
    total = sum(summary.enrolment.values())
    closed = summary.slots_done + summary.slots_missed
    text, html = _render(
        "weekly_summary",
        s=summary,
        subject=subject,
        period=period,
        week_to=week_to,
        total=total,
        due_count=sum(len(d.instruments) for d in summary.due),
        due_people=len({d.participant_id for d in summary.due}),
        due_groups=group_lines(summary.due),
        missed_groups=group_lines(summary.missed),
        missed_count=sum(len(m.instruments) for m in summary.missed),
        submitted=sum(summary.submissions_by_instrument.values()),
        completion=(round(summary.slots_done / closed * 100) if closed else None),
        route=f"GET /v1/trials/{summary.trial_id}/reports/pre-post",
    )
    return RenderedMail(subject=subject, text=text, html=html)


def render_safety_alert(
    *,
    trial_id: str,
    trial_title: str,
    participant_id: str,
    instrument: str,
    timepoint: str,
    item: int,
    at_least: int,
    submission_id: str,
    received_at: str,
) -> RenderedMail:
    """The safety alert: which rule a submission met, never the answer itself.

    The function is not given the response value, so it cannot leak it: the mail says the
    item was answered at or above the rule's threshold, and asks the coordinator to follow
    the trial's safety protocol. The subject is neutral (no participant code, no rule): it
    is what a phone's lock screen shows.
    """
    subject = _subject(f"Safety alert: action needed ({trial_title})")
    received = _parse_moment(received_at)
    text, html = _render(
        "safety_alert",
        subject=subject,
        trial_id=trial_id,
        trial_title=trial_title,
        participant_id=participant_id,
        instrument=instrument,
        timepoint=timepoint,
        rule=f"{short_name(instrument)} item {item} answered at or above {at_least}",
        submission_id=submission_id,
        received=format_moment(received, year=True) if received else received_at,
    )
    return RenderedMail(subject=subject, text=text, html=html)
