"""The coordinators' e-mails, rendered as subject, plain text and HTML (no sending here).

Two mails: the weekly summary and the safety alert. Neither ever carries an item response or
free text: the summary has counts, pseudonymous participant codes and group-level pre/post
headlines; the alert names the rule that was met, not the answer. Every value is
``html.escape``-d in the HTML part, links are only made from http(s) URLs, and line breaks are
removed from the subject (a header cannot be split).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.instruments import CATALOGUE

__all__ = [
    "RenderedMail",
    "WeeklySummary",
    "render_safety_alert",
    "render_weekly_summary",
]

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_STYLE_TABLE = "border-collapse:collapse;margin:4px 0 12px 0"
_STYLE_CELL = "border:1px solid #cccccc;padding:3px 8px;text-align:left"
_FOOTER = (
    "Participants are identified by their pseudonymous codes only. This message contains no "
    "questionnaire answers and no diary text."
)


@dataclass(frozen=True)
class RenderedMail:
    """A mail ready for the mail adapter: one-line subject, text part, HTML part."""

    subject: str
    text: str
    html: str


@dataclass(frozen=True)
class WeeklySummary:
    """What the weekly summary reports, gathered by the weekly-summary service.

    ``status_changes`` holds ``(participant_id, new status, at)``; ``overdue_diary`` the
    codes of participants whose ``diary_week`` diary is due and missing; ``headline`` the
    rows of `services.prepost.headline_changes` (empty when no report exists yet).
    """

    trial_id: str
    trial_title: str
    week_start: str
    week_end: str
    enrolment: Mapping[str, int]
    status_changes: Sequence[tuple[str, str, str]] = ()
    submissions_by_instrument: Mapping[str, int] = field(default_factory=dict)
    overdue_diary: Sequence[str] = ()
    diary_week: str | None = None
    headline: Sequence[Mapping[str, Any]] = ()
    report_url: str | None = None


def _subject(text: str) -> str:
    return _CONTROL.sub(" ", text).strip()


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _instrument_name(instrument_id: str) -> str:
    titles = {i.id: i.title for i in CATALOGUE.instruments()}
    title = titles.get(instrument_id)
    return f"{instrument_id.upper()} ({title})" if title else instrument_id.upper()


def _fmt_number(value: object, places: int = 2) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{places}f}"
    return str(value)


def _fmt_p(value: object) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a"
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _html_document(title: str, body: Sequence[str]) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title></head>"
        '<body style="font-family:Helvetica,Arial,sans-serif;font-size:14px;color:#222222">\n'
        + "\n".join(body)
        + f'\n<p style="color:#666666;font-size:12px">{_e(_FOOTER)}</p>\n</body></html>\n'
    )


def _html_table(header: Sequence[str] | None, rows: Sequence[Sequence[object]]) -> str:
    cells = "".join(f'<th style="{_STYLE_CELL}">{_e(h)}</th>' for h in header or ())
    head = f"<tr>{cells}</tr>" if cells else ""
    body = "".join(
        "<tr>" + "".join(f'<td style="{_STYLE_CELL}">{_e(c)}</td>' for c in row) + "</tr>"
        for row in rows
    )
    return f'<table style="{_STYLE_TABLE}">{head}{body}</table>'


def _safe_url(url: str | None) -> str | None:
    if url and re.match(r"https?://", url, flags=re.IGNORECASE) and not _CONTROL.search(url):
        return url
    return None


def render_weekly_summary(summary: WeeklySummary) -> RenderedMail:
    """The Monday summary: enrolment, status changes, submissions, overdue diaries, headlines."""
    subject = _subject(
        f"[{summary.trial_id}] Weekly summary {summary.week_start} to {summary.week_end}: "
        f"{summary.trial_title}"
    )
    heading = f"{summary.trial_title} ({summary.trial_id})"
    period = f"Week {summary.week_start} to {summary.week_end}"
    text: list[str] = [heading, period, ""]
    body: list[str] = [f"<h2>{_e(heading)}</h2>", f"<p>{_e(period)}</p>"]

    enrolment = [(status, count) for status, count in summary.enrolment.items()]
    total = sum(count for _, count in enrolment)
    text.append(f"Enrolment ({total} in total)")
    text += [f"  {status}: {count}" for status, count in enrolment]
    body.append(f"<h3>Enrolment ({_e(total)} in total)</h3>")
    body.append(_html_table(("status", "participants"), enrolment))

    text += ["", "Status changes this week"]
    body.append("<h3>Status changes this week</h3>")
    if summary.status_changes:
        text += [f"  {pid}: {status} ({at})" for pid, status, at in summary.status_changes]
        body.append(_html_table(("participant", "new status", "at"), summary.status_changes))
    else:
        text.append("  none")
        body.append("<p>None.</p>")

    received = sorted(summary.submissions_by_instrument.items())
    text += ["", f"Submissions received ({sum(n for _, n in received)})"]
    body.append(f"<h3>Submissions received ({_e(sum(n for _, n in received))})</h3>")
    if received:
        text += [f"  {_instrument_name(i)}: {n}" for i, n in received]
        body.append(
            _html_table(
                ("instrument", "submissions"), [(_instrument_name(i), n) for i, n in received]
            )
        )
    else:
        text.append("  none")
        body.append("<p>None.</p>")

    if summary.diary_week is not None:
        title = f"Diary overdue for {summary.diary_week}"
        text += ["", f"{title} ({len(summary.overdue_diary)})"]
        body.append(f"<h3>{_e(title)} ({len(summary.overdue_diary)})</h3>")
        if summary.overdue_diary:
            text.append("  " + ", ".join(summary.overdue_diary))
            body.append(f"<p>{_e(', '.join(summary.overdue_diary))}</p>")
        else:
            text.append("  none: every active participant has submitted it")
            body.append("<p>None: every active participant has submitted it.</p>")

    if summary.headline:
        text += ["", "Pre/post headlines (completers; latest report)"]
        body.append("<h3>Pre/post headlines (completers; latest report)</h3>")
        rows = [
            (
                _instrument_name(str(row.get("instrument"))),
                row.get("subscale_label", ""),
                row.get("n_pairs", ""),
                _fmt_number(row.get("pre_mean")),
                _fmt_number(row.get("post_mean")),
                row.get("direction") or "n/a",
                _fmt_p(row.get("p_two_sided")),
            )
            for row in summary.headline
        ]
        text += [
            f"  {inst} {label}: n = {n}, mean {pre} -> {post} ({direction}), p = {p}"
            for inst, label, n, pre, post, direction, p in rows
        ]
        body.append(
            _html_table(
                ("instrument", "subscale", "pairs", "pre mean", "post mean", "direction", "p"),
                rows,
            )
        )

    url = _safe_url(summary.report_url)
    if url:
        text += ["", f"Full report: {url}"]
        body.append(f'<p><a href="{_e(url)}">Full pre/post report</a></p>')

    text += ["", _FOOTER]
    return RenderedMail(
        subject=subject, text="\n".join(text) + "\n", html=_html_document(subject, body)
    )


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
    the trial's safety protocol.
    """
    name = _instrument_name(instrument)
    rule = f"{instrument.upper()} item {item} answered at or above {at_least}"
    subject = _subject(f"[{trial_id}] Safety alert: participant {participant_id}, {rule}")
    lines = [
        f"Safety alert for {trial_title} ({trial_id})",
        "",
        f"Participant {participant_id} submitted the {name} at {timepoint}, and it met the "
        f"trial's safety rule: {rule}.",
        "",
        "Please follow the trial's safety protocol for this participant now.",
        "",
        f"Participant:  {participant_id}",
        f"Instrument:   {name}",
        f"Timepoint:    {timepoint}",
        f"Rule met:     {rule}",
        f"Submission:   {submission_id}",
        f"Received at:  {received_at}",
        "",
        "This alert is sent once per submission and rule. " + _FOOTER,
    ]
    details = [
        ("Participant", participant_id),
        ("Instrument", name),
        ("Timepoint", timepoint),
        ("Rule met", rule),
        ("Submission", submission_id),
        ("Received at", received_at),
    ]
    body = [
        f"<h2>Safety alert for {_e(trial_title)} ({_e(trial_id)})</h2>",
        f"<p>Participant <strong>{_e(participant_id)}</strong> submitted the {_e(name)} at "
        f"{_e(timepoint)}, and it met the trial's safety rule: <strong>{_e(rule)}</strong>."
        "</p>",
        "<p><strong>Please follow the trial's safety protocol for this participant now."
        "</strong></p>",
        _html_table(None, details),
        "<p>This alert is sent once per submission and rule.</p>",
    ]
    return RenderedMail(
        subject=subject, text="\n".join(lines) + "\n", html=_html_document(subject, body)
    )
