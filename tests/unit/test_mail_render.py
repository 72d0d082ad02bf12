"""Coordinator e-mails: action first, escaped HTML, neutral alert subjects, never an answer."""

from __future__ import annotations

import dataclasses
import doctest
import inspect
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import pytest

import services.mail_render
from services.mail_render import (
    AlertLine,
    RenderedMail,
    Results,
    ScheduleLine,
    WeeklySummary,
    format_span,
    group_lines,
    render_safety_alert,
    render_weekly_summary,
    results_from_headline,
)
from services.prepost import read_headline

SCRIPT = "<script>alert('x')</script>"


def results_from_report(document: dict[str, Any]) -> Results:
    """The mail's results from a published report document, the way the weekly run reads
    them (`ReportService.latest_headline`)."""
    return results_from_headline(read_headline(document))


NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # a Monday, when the schedule sends
WEEK_AGO = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def report_row(**changes: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "instrument": "hads",
        "subscale": "anxiety",
        "subscale_label": "Anxiety",
        "n_pairs": 6,
        "pre": {"mean": 14.666666666666666, "sd": 3.78, "median": 14.5},
        "post": {"mean": 6.833333333333333, "sd": 2.93, "median": 6.5},
        # the pilot study's Table 1 HADS anxiety row (spec/API.md, "The pre/post report")
        "wilcoxon": {"t": 0.0, "z": -2.2014, "p_two_sided": 0.0277, "p_exact_two_sided": 0.03125},
        "direction": "decrease",
        "reason": None,
    }
    row.update(changes)
    return row


REPORT: dict[str, Any] = {
    "generated_at": "2026-11-26T02:00:00Z",
    "comparison": {"pre": "week-1", "post": "week-12"},
    "participants": {"enrolled": 9, "withdrawn": 3, "completed": 6},
    "results": [
        report_row(),
        report_row(
            instrument="fscrs",
            subscale="reassured_self",
            subscale_label="Reassured self",
            n_pairs=4,
            pre={"mean": 10.0},
            post={"mean": 15.5},
            direction="increase",
            wilcoxon={
                "p_two_sided": 0.068,
                "p_exact_two_sided": 0.125,
                "p_method_primary": "exact",
            },
            p_holm=0.5,
        ),
        report_row(subscale="depression", n_pairs=1, pre={"mean": 9.0}, post={"mean": 8.0}),
    ],
}


def summary(**changes: Any) -> WeeklySummary:
    fields: dict[str, Any] = {
        "trial_id": "cmt-pilot",
        "trial_title": "CMT pilot",
        "period_start": WEEK_AGO,
        "period_end": NOW,
        "enrolment": {"active": 5, "withdrawn": 3, "completed": 1},
        "alerts": [
            AlertLine(
                participant_id="P03",
                instrument="fscrs",
                timepoint="week-5",
                raised_at=datetime(2026, 11, 24, 10, 0, tzinfo=UTC),
                emailed=True,
            )
        ],
        "due": [
            ScheduleLine(
                participant_id="P05",
                timepoint="week-12",
                instruments=("hads", "fscs", "diary"),
                closes_at=datetime(2026, 12, 2, 9, 30, tzinfo=UTC),
            )
        ],
        "missed": [
            ScheduleLine(
                participant_id="P04",
                timepoint="week-4",
                instruments=("diary",),
                closes_at=datetime(2026, 11, 27, 9, 30, tzinfo=UTC),
            )
        ],
        "enrolled": ["P08", "P09"],
        "withdrew": ["P07"],
        "submissions_by_instrument": {"hads": 2, "diary": 4},
        "slots_done": 120,
        "slots_missed": 20,
        "results": results_from_report(REPORT),
    }
    fields.update(changes)
    return WeeklySummary(**fields)


def alert(**changes: object) -> RenderedMail:
    fields: dict[str, object] = {
        "trial_id": "cmt-pilot",
        "trial_title": "CMT pilot",
        "participant_id": "P03",
        "instrument": "fscrs",
        "timepoint": "week-5",
        "item": 9,
        "at_least": 3,
        "submission_id": "sub-123",
        "received_at": "2026-11-20T10:00:01.123Z",
    }
    fields.update(changes)
    return render_safety_alert(**fields)  # type: ignore[arg-type]


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(html)
    return parser.tags


def order_of(text: str, *needles: str) -> list[int]:
    return [text.lower().index(n.lower()) for n in needles]


# -- dates ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (datetime(2026, 11, 23), datetime(2026, 11, 30), "Mon 23 – Sun 29 Nov 2026"),
        (datetime(2026, 11, 30), datetime(2026, 12, 7), "Mon 30 Nov – Sun 6 Dec 2026"),
        (datetime(2026, 12, 28), datetime(2027, 1, 4), "Mon 28 Dec 2026 – Sun 3 Jan 2027"),
        (datetime(2026, 11, 26), datetime(2026, 11, 27), "Thu 26 Nov 2026"),
        (
            datetime(2026, 11, 23, 8),
            datetime(2026, 11, 30, 8),
            "Mon 23 Nov, 08:00 – Mon 30 Nov 2026, 08:00",
        ),
        (
            datetime(2026, 12, 28, 8),
            datetime(2027, 1, 4, 8),
            "Mon 28 Dec 2026, 08:00 – Mon 4 Jan 2027, 08:00",
        ),
    ],
)
def test_periods_read_as_people_write_them(start: datetime, end: datetime, expected: str) -> None:
    assert format_span(start.replace(tzinfo=UTC), end.replace(tzinfo=UTC)) == expected


def test_dates_are_shown_in_utc_whatever_zone_they_come_in() -> None:
    from datetime import timezone

    tokyo = timezone(timedelta(hours=9))
    start = datetime(2026, 11, 23, 9, 0, tzinfo=tokyo)  # 00:00 UTC
    end = datetime(2026, 11, 30, 9, 0, tzinfo=tokyo)

    assert format_span(start, end) == "Mon 23 – Sun 29 Nov 2026"


def test_the_documented_examples_run_as_written() -> None:
    result = doctest.testmod(services.mail_render)

    assert result.attempted > 0
    assert result.failed == 0


# -- the weekly summary --------------------------------------------------------------------


def test_the_weekly_subject_names_the_week_and_what_needs_action() -> None:
    mail = render_weekly_summary(summary())

    assert mail.subject == (
        "[cmt-pilot] Weekly summary to Mon 30 Nov 2026: 1 safety alert, 3 due, 1 missed"
    )


def test_the_summary_leads_with_action_then_progress_then_results() -> None:
    mail = render_weekly_summary(summary())

    for part in (mail.text, mail.html):
        positions = order_of(
            part,
            "Safety alerts this week",
            "Due now",
            "Missed this week",
            "Enrolment",
            "Submissions this week",
            "Pre/post results",
        )
        assert positions == sorted(positions)


def test_each_alert_of_the_week_shows_code_instrument_timepoint_and_day_only() -> None:
    mail = render_weekly_summary(summary())

    assert "Safety alerts this week (1)" in mail.text
    assert "  - P03, FSCRS week-5, Tue 24 Nov\n" in mail.text
    assert "FSCRS week-5 &middot; Tue 24 Nov" in mail.html
    assert "item 9" not in mail.text + mail.html  # the rule's item is the alert mail's job


def test_an_alert_that_could_not_be_emailed_is_flagged() -> None:
    line = dataclasses.replace(summary().alerts[0], emailed=False)

    mail = render_weekly_summary(summary(alerts=[line]))

    assert "(not e-mailed when raised)" in mail.text
    assert "Not e-mailed when raised" in mail.html


def test_due_and_missed_lines_name_the_participant_timepoint_instruments_and_window() -> None:
    mail = render_weekly_summary(summary())

    assert "  - week-12, HADS, FSCS, Diary: P05 (until Wed 2 Dec, 09:30)\n" in mail.text
    assert "  - week-4, Diary: P04 (closed Fri 27 Nov, 09:30)\n" in mail.text
    assert "Due now (3)" in mail.text
    assert "Missed this week (1)" in mail.text
    assert "Open now and not yet submitted: 3 for 1 participant." in mail.html


def line(pid: str, timepoint: str, closes: datetime, *instruments: str) -> ScheduleLine:
    return ScheduleLine(
        participant_id=pid,
        timepoint=timepoint,
        instruments=instruments or ("diary",),
        closes_at=closes,
    )


def test_participants_closing_the_same_day_with_the_same_questionnaires_share_one_card() -> None:
    morning = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)
    afternoon = datetime(2026, 12, 2, 14, 10, tzinfo=UTC)
    due = [
        line("P10", "week-5", afternoon),
        line("P2", "week-5", morning),
        line("P3", "week-5", morning, "hads", "diary"),  # other questionnaires
        line("P4", "week-5", morning + timedelta(days=1)),  # another day
        line("P1", "week-4", morning - timedelta(days=1)),
    ]

    groups = group_lines(due)
    mail = render_weekly_summary(summary(due=due))

    assert [(g.timepoint, g.instruments, g.participants, g.closes) for g in groups] == [
        ("week-4", ("diary",), ("P1",), "Tue 1 Dec, 09:30"),
        ("week-5", ("diary",), ("P2", "P10"), "Wed 2 Dec, 09:30 to 14:10"),
        ("week-5", ("hads", "diary"), ("P3",), "Wed 2 Dec, 09:30"),
        ("week-5", ("diary",), ("P4",), "Thu 3 Dec, 09:30"),
    ]
    assert "  - week-5, Diary: P2, P10 (until Wed 2 Dec, 09:30 to 14:10)\n" in mail.text
    assert "Due now (6)" in mail.text  # six questionnaires and diaries in four cards
    assert mail.html.count("until Wed 2 Dec") == 2


def test_a_quiet_week_says_so_plainly() -> None:
    mail = render_weekly_summary(
        summary(
            alerts=[],
            due=[],
            missed=[],
            enrolled=[],
            withdrew=[],
            submissions_by_instrument={},
            slots_done=0,
            slots_missed=0,
            results=None,
        )
    )

    assert mail.subject.endswith(": 0 safety alerts, 0 due, 0 missed")
    for sentence in (
        "No safety alerts this week.",
        "Nothing is due now.",
        "Nothing was missed this week.",
        "No enrolments or status changes this week.",
        "No submissions this week.",
        "No questionnaire or diary has been due yet.",
        "No pre/post results yet: no report has been published.",
    ):
        assert sentence in mail.html
    assert "None." in mail.text
    assert "No pre/post results yet" in mail.text


def test_early_in_a_trial_there_are_no_rows_of_n_a_only_one_plain_sentence() -> None:
    early = {
        **REPORT,
        "results": [
            report_row(
                n_pairs=0, pre={"mean": None}, post={"mean": None}, wilcoxon=None, direction=None
            )
        ]
        * 12,
    }

    mail = render_weekly_summary(summary(results=results_from_report(early)))

    assert "n/a" not in mail.text + mail.html
    assert (
        "No pre/post results yet: no subscale has two participants with both week-1 and "
        "week-12 scores." in mail.text
    )
    assert "12 subscales have no result yet (fewer than two pairs)." in mail.text


def test_status_changes_are_counts_and_codes_without_timestamps() -> None:
    mail = render_weekly_summary(summary())

    assert "  Enrolled this week: 2 (P08, P09)\n" in mail.text
    assert "  Withdrew this week: 1 (P07)\n" in mail.text
    assert not re.search(r"\d{2}:\d{2}:\d{2}", mail.text + mail.html)


def test_progress_gives_enrolment_submissions_and_completion_to_date() -> None:
    mail = render_weekly_summary(summary())

    assert "Enrolment (9 in total): 5 active, 1 completed, 3 withdrawn" in mail.text
    assert "Submissions this week (6)\n  HADS: 2\n  Diary: 4\n" in mail.text
    assert "Completion to date: 86% (120 done, 20 missed)" in mail.text


def test_results_give_group_means_the_better_direction_and_the_primary_p() -> None:
    mail = render_weekly_summary(summary())

    assert "HADS Anxiety (n = 6, range 0-21): 14.7 -> 6.8" in mail.text
    assert "Mean fell: the better direction (lower is better)." in mail.text
    assert "p = 0.028 (asymptotic, two-sided)" in mail.text  # today's report leads with it
    assert "FSCRS Reassured self (n = 4, range 0-32): 10.0 -> 15.5" in mail.text
    assert "Mean rose: the better direction (higher is better)." in mail.text
    assert "p = 0.125 (exact, two-sided); Holm-adjusted p = 0.500" in mail.text
    assert "1 subscale has no result yet (fewer than two pairs)." in mail.text
    assert "completers only" in mail.text
    assert "completers only" in mail.html


def test_a_change_in_the_worse_direction_is_called_so() -> None:
    worse = {**REPORT, "results": [report_row(pre={"mean": 6.0}, post={"mean": 9.0})]}

    mail = render_weekly_summary(summary(results=results_from_report(worse)))

    assert "Mean rose: the worse direction (lower is better)." in mail.text


def test_the_results_bars_are_table_cells_scaled_to_the_subscale_range() -> None:
    mail = render_weekly_summary(summary())

    widths = [a.get("width") for t, a in tags(mail.html) if t == "td" and a.get("bgcolor")]
    # 14.67 and 6.83 of 0-21 -> 70% and 33%; 10 and 15.5 of 0-32 -> 31% and 48%
    assert {"70%", "33%", "31%", "48%"} <= set(widths)
    assert "<svg" not in mail.html
    assert "<img" not in mail.html


def test_the_html_is_one_column_that_shrinks_to_a_phone() -> None:
    html = render_weekly_summary(summary()).html

    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "max-width:600px;width:100%" in html
    fixed = [int(w) for _, a in tags(html) if (w := a.get("width")) and w.isdigit()]
    assert max(fixed) <= 600  # only the Outlook ghost table is as wide as the column


def test_no_text_in_the_html_is_smaller_than_12_px() -> None:
    html = render_weekly_summary(summary()).html + alert().html

    sizes = [int(s) for s in re.findall(r"font-size:(\d+)px", html)]
    # 1px is only the hidden preview text and the bars' empty cells (&nbsp; for Outlook)
    assert min(s for s in sizes if s != 1) >= 13


def test_the_mails_hold_no_links() -> None:
    for mail in (render_weekly_summary(summary()), alert()):
        assert [t for t, _ in tags(mail.html) if t == "a"] == []
        assert "http://" not in mail.text + mail.html
        assert "https://" not in mail.text + mail.html


def test_the_summary_says_where_the_full_report_is_without_a_host_to_click() -> None:
    mail = render_weekly_summary(summary())

    assert "GET /v1/trials/cmt-pilot/reports/pre-post with a coordinator key" in mail.text
    assert "a mail client cannot send the key" in mail.html


def test_timepoints_without_timing_are_named() -> None:
    mail = render_weekly_summary(summary(untimed=["baseline", "post"]))

    assert "Timepoints without timing, so not listed: baseline, post." in mail.text


def test_the_weekly_summary_escapes_a_hostile_trial_title_in_html() -> None:
    mail = render_weekly_summary(summary(trial_title=SCRIPT, enrolled=["<P&1>"]))

    assert "<script>" not in mail.html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in mail.html
    assert "&lt;P&amp;1&gt;" in mail.html
    assert SCRIPT in mail.text


def test_the_subject_cannot_be_split_into_extra_headers() -> None:
    mail = render_weekly_summary(summary(trial_id="cmt\r\nBcc: someone@example.org"))

    assert "\n" not in mail.subject
    assert "\r" not in mail.subject


def test_results_are_read_from_todays_and_tomorrows_report_alike() -> None:
    tomorrow = report_row(
        wilcoxon={
            "p_two_sided": 0.0277,
            "p_exact_two_sided": 0.03125,
            "p_method_primary": "exact",
        },
        p_holm=0.375,
        effect_sizes={"r_pairs": -0.8987, "rank_biserial": -1.0},
    )

    today = results_from_report({**REPORT, "results": [report_row()]}).lines[0]
    later = results_from_report({**REPORT, "results": [tomorrow]}).lines[0]

    assert (today.p, today.p_method, today.p_holm) == (0.0277, "asymptotic", None)
    assert (later.p, later.p_method, later.p_holm) == (0.03125, "exact", 0.375)


def test_a_sparse_or_odd_report_gives_results_without_raising() -> None:
    results = results_from_report(
        {
            "results": [
                {
                    "instrument": "nope",
                    "subscale": "x",
                    "n_pairs": 3,
                    "pre": {"mean": 4},
                    "post": {"mean": 2},
                    "wilcoxon": {"p_two_sided": float("nan")},
                },
                "not a row",
                {"n_pairs": "many"},
            ]
        }
    )

    assert isinstance(results, Results)
    assert (results.pre, results.post, results.generated_at) == ("pre", "post", None)
    (line,) = results.lines
    assert (line.low, line.high, line.improvement, line.p) == (0.0, 4.0, None, None)
    assert results.without_result == 1
    render_weekly_summary(summary(results=results))  # and it renders


# -- the safety alert ----------------------------------------------------------------------


def test_the_safety_alert_subject_is_neutral_for_a_lock_screen() -> None:
    mail = alert()

    assert mail.subject == "Safety alert: action needed (CMT pilot)"
    assert "P03" not in mail.subject
    assert "item" not in mail.subject


def test_the_safety_alert_names_the_rule_and_asks_for_the_safety_protocol() -> None:
    mail = alert()

    assert "FSCRS item 9 answered at or above 3" in mail.text
    assert "FSCRS item 9 answered at or above 3" in mail.html
    assert "follow the trial's safety protocol" in mail.text
    assert "follow the trial's safety protocol" in mail.html
    assert "P03" in mail.text
    assert "week-5" in mail.text
    assert "sub-123" in mail.text
    assert "Received:     Fri 20 Nov 2026, 10:00 UTC" in mail.text


def test_the_safety_alert_cannot_be_given_the_answer_so_never_contains_it() -> None:
    parameters = set(inspect.signature(render_safety_alert).parameters)

    assert parameters == {
        "trial_id",
        "trial_title",
        "participant_id",
        "instrument",
        "timepoint",
        "item",
        "at_least",
        "submission_id",
        "received_at",
    }


def test_the_safety_alert_mentions_no_value_beyond_the_rules_threshold() -> None:
    mail = alert(at_least=4, item=9)

    # the only "answered" phrases are the rule's (twice) and the note that answers are absent
    assert re.findall(r"answer\w*[^.\n]*", mail.text) == [
        "answered at or above 4",
        "answered at or above 4",
        "answers themselves are not in this message",
        "answers and no diary text",
    ]
    assert "response" not in mail.text.lower()


def test_the_safety_alert_escapes_every_value_in_html() -> None:
    mail = alert(trial_title=SCRIPT, participant_id="<P&1>")

    assert "<script>" not in mail.html
    assert "&lt;P&amp;1&gt;" in mail.html
    assert mail.text
    assert mail.html


def test_an_unparseable_received_time_is_shown_as_given() -> None:
    assert "Received:     sometime UTC" in alert(received_at="sometime").text
