"""Coordinator e-mails: escaped HTML, one-line subjects, and never an answer in an alert."""

from __future__ import annotations

import inspect

from services.mail_render import (
    RenderedMail,
    WeeklySummary,
    render_safety_alert,
    render_weekly_summary,
)

SCRIPT = "<script>alert('x')</script>"


def summary(**changes: object) -> WeeklySummary:
    fields: dict[str, object] = {
        "trial_id": "cmt-pilot",
        "trial_title": "CMT pilot",
        "week_start": "2026-11-16",
        "week_end": "2026-11-22",
        "enrolment": {"active": 5, "withdrawn": 3, "completed": 1},
        "status_changes": [("P07", "withdrawn", "2026-11-18T10:00:00Z")],
        "submissions_by_instrument": {"diary": 4, "hads": 2},
        "overdue_diary": ["P03", "P05"],
        "diary_week": "week-5",
        "headline": [
            {
                "instrument": "hads",
                "subscale_label": "Anxiety",
                "n_pairs": 6,
                "pre_mean": 14.666666666666666,
                "post_mean": 6.833333333333333,
                "direction": "decrease",
                "p_two_sided": 0.027707849358079864,
            }
        ],
        "report_url": "https://reports.example.org/cmt-pilot/latest.json",
    }
    fields.update(changes)
    return WeeklySummary(**fields)  # type: ignore[arg-type]


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
        "received_at": "2026-11-20T10:00:01Z",
    }
    fields.update(changes)
    return render_safety_alert(**fields)  # type: ignore[arg-type]


def test_the_weekly_summary_has_a_subject_a_text_and_an_html_part() -> None:
    mail = render_weekly_summary(summary())

    assert mail.subject.startswith("[cmt-pilot] Weekly summary 2026-11-16 to 2026-11-22")
    assert "P07: withdrawn" in mail.text
    assert "P03, P05" in mail.text
    assert "Diary overdue for week-5 (2)" in mail.text
    assert "mean 14.67 -> 6.83 (decrease), p = 0.028" in mail.text
    assert mail.html.startswith("<!DOCTYPE html>")
    assert "P03, P05" in mail.html


def test_the_weekly_summary_escapes_a_hostile_trial_title_in_html() -> None:
    mail = render_weekly_summary(summary(trial_title=SCRIPT))

    assert "<script>" not in mail.html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in mail.html
    assert SCRIPT in mail.text


def test_the_subject_cannot_be_split_into_extra_headers() -> None:
    mail = render_weekly_summary(summary(trial_title="Pilot\r\nBcc: someone@example.org"))

    assert "\n" not in mail.subject and "\r" not in mail.subject


def test_only_http_report_urls_become_links() -> None:
    linked = render_weekly_summary(summary())
    hostile = render_weekly_summary(summary(report_url="javascript:alert(1)"))

    assert 'href="https://reports.example.org/cmt-pilot/latest.json"' in linked.html
    assert "javascript:" not in hostile.html
    assert "javascript:" not in hostile.text


def test_a_summary_without_a_report_or_diary_week_omits_those_sections() -> None:
    mail = render_weekly_summary(summary(headline=[], diary_week=None, report_url=None))

    assert "Pre/post" not in mail.text
    assert "Diary overdue" not in mail.text
    assert "Full report" not in mail.text


def test_the_safety_alert_names_the_rule_and_asks_for_the_safety_protocol() -> None:
    mail = alert()

    assert "FSCRS item 9 answered at or above 3" in mail.subject
    assert "FSCRS item 9 answered at or above 3" in mail.text
    assert "follow the trial's safety protocol" in mail.text
    assert "follow the trial's safety protocol" in mail.html
    assert "P03" in mail.text and "week-5" in mail.text and "sub-123" in mail.text


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
    mail = alert(at_least=4, item=9, received_at="2026-11-20T10:00:01Z")

    # The only "answered" phrase is the rule; no "answered 4" or "response 4" wording.
    assert mail.text.count("answered") == 2
    assert "answered at or above 4" in mail.text
    assert "response" not in mail.text.lower()


def test_the_safety_alert_escapes_every_value_in_html() -> None:
    mail = alert(trial_title=SCRIPT, participant_id="<P&1>")

    assert "<script>" not in mail.html
    assert "&lt;P&amp;1&gt;" in mail.html
    assert mail.text and mail.html
