"""Safety alerts on moto: the rule, the e-mail (read back from moto's SES), once per submission."""

from __future__ import annotations

import copy
import dataclasses
import html
import json
import pathlib
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from conftest import NAMES, REGION, bearer, make_trial, submission
from domain.trial import Comparison, StudyProtocol
from handlers.stream_batch import make_handler
from local.pump import StreamPump

TRIAL = "cmt-pilot"
EVENTS = pathlib.Path(__file__).resolve().parents[2] / "events"


def sent_messages() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


DIARY = {str(i): 5 for i in range(1, 15)}
HADS_LOW = {str(i): 0 for i in range(1, 15)}


def visible(body: str) -> str:
    """What a reader sees of an HTML mail body (moto keeps the HTML part): text, spaces folded."""
    without = re.sub(r"<!--.*?-->|<head>.*?</head>", " ", body, flags=re.DOTALL)
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", without))).strip()


def fscrs(item_9: int) -> dict[str, int]:
    return {**{str(i): 1 for i in range(1, 23)}, "9": item_9}


def recording_pump(aws: dict[str, Any], container: Any) -> tuple[StreamPump, list[Any]]:
    """A pump around the real stream handler that keeps every Lambda event it delivered."""
    handler = make_handler(container.scoring)
    events: list[dict[str, Any]] = []

    def recording(event: dict[str, Any], context: Any) -> dict[str, Any]:
        events.append(copy.deepcopy(event))
        return handler(event, context)

    pump = StreamPump(
        streams_client=aws["dynamodbstreams"],
        dynamodb_client=aws["dynamodb"],
        table_name=NAMES.submissions_table,
        handler=recording,
        region=REGION,
    )
    return pump, events


def post(client, keys, body: dict[str, Any], trial_id: str = TRIAL) -> str:
    r = client.post(f"/v1/trials/{trial_id}/submissions", headers=keys.submitter, json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["submission_id"])


def test_fscrs_item_9_at_3_sends_one_alert_and_a_redelivery_sends_none(aws, client, container):
    keys = make_trial(client, container, participants=("P01", "P02"))
    pump, events = recording_pump(aws, container)
    flagged = post(client, keys, submission("P01", "fscrs", "week-1", fscrs(3)))
    post(client, keys, submission("P02", "fscrs", "week-1", fscrs(2)))
    before = len(sent_messages())

    pump.drain()

    mails = sent_messages()[before:]
    assert len(mails) == 1
    mail = mails[0]
    assert mail.destinations["ToAddresses"] == ["coordinator@example.org"]
    # a neutral subject: a phone's lock screen shows it
    assert mail.subject == "Safety alert: action needed (Trial cmt-pilot)"
    assert "P02" not in mail.subject + mail.body
    assert "Participant P01 submitted the FSCRS" in visible(mail.body)
    assert "FSCRS item 9" in mail.body
    assert "week-1" in mail.body
    # the rule is named; no other item and no answer list appears
    assert set(re.findall(r"item (\d+)", mail.body)) == {"9"}
    assert "responses" not in mail.body.lower()

    log = client.get(f"/v1/trials/{TRIAL}/alerts", headers=keys.coordinator)
    assert log.status_code == 200, log.text
    alerts = log.json()["alerts"]
    assert len(alerts) == 1
    assert alerts[0]["participant_id"] == "P01"
    assert alerts[0]["submission_id"] == flagged
    assert (alerts[0]["instrument"], alerts[0]["timepoint"]) == ("fscrs", "week-1")
    assert alerts[0]["rule"] == {"instrument": "fscrs", "item": 9, "at_least": 3}
    assert alerts[0]["sent_to"] == ["coordinator@example.org"]
    assert alerts[0]["sent_at"]

    # Lambda delivers at least once: the very same event again sends nothing
    handler = make_handler(container.scoring)
    assert len(events) >= 1
    for event in events:
        assert handler(copy.deepcopy(event), None) == {"batchItemFailures": []}
    assert len(sent_messages()) == before + 1
    assert client.get(f"/v1/trials/{TRIAL}/alerts", headers=keys.coordinator).json() == log.json()


def test_fscrs_item_9_at_2_sends_no_alert(aws, client, container, pump):
    keys = make_trial(client, container)
    post(client, keys, submission("P01", "fscrs", "week-1", fscrs(2)))
    before = len(sent_messages())

    pump.drain()

    assert pump.stats.records == 1
    assert pump.stats.failures == 0
    assert sent_messages()[before:] == []
    alerts = client.get(f"/v1/trials/{TRIAL}/alerts", headers=keys.coordinator).json()["alerts"]
    assert alerts == []


def test_a_trial_with_its_own_alert_rules_alerts_by_them(aws, client, container, pump):
    admin = container.keys.create(role="admin", trial_id="*", label="test").api_key
    keys = make_trial(
        client,
        container,
        trial_id="cmt-custom",
        participants=("P01", "P02", "P03"),
        admin_key=admin,
    )
    emails = ["lead@example.org", "nurse@example.org"]
    rules = [
        {"instrument": "hads", "item": 9, "at_least": 2},
        {"instrument": "fscrs", "item": 9, "at_least": 4},
    ]
    r = client.patch(
        "/v1/trials/cmt-custom",
        headers=bearer(admin),
        json={"title": "Custom rules", "coordinator_emails": emails, "alert_rules": rules},
    )
    assert r.status_code == 200, r.text
    hads = {str(i): 0 for i in range(1, 15)}
    post(client, keys, submission("P01", "hads", "week-1", {**hads, "9": 2}), "cmt-custom")
    post(client, keys, submission("P02", "fscrs", "week-1", fscrs(3)), "cmt-custom")
    post(client, keys, submission("P03", "fscrs", "week-1", fscrs(4)), "cmt-custom")
    post(client, keys, submission("P03", "hads", "week-1", {**hads, "9": 1}), "cmt-custom")
    before = len(sent_messages())

    pump.drain()

    mails = sent_messages()[before:]
    assert len(mails) == 2
    assert all(m.destinations["ToAddresses"] == emails for m in mails)
    assert {m.subject for m in mails} == {"Safety alert: action needed (Custom rules)"}
    seen = [visible(m.body) for m in mails]
    assert any("Participant P01" in t and "HADS item 9 answered at or above 2" in t for t in seen)
    assert any("Participant P03" in t and "FSCRS item 9 answered at or above 4" in t for t in seen)
    alerts = client.get("/v1/trials/cmt-custom/alerts", headers=keys.coordinator).json()["alerts"]
    assert sorted(
        (a["participant_id"], a["instrument"], a["rule"]["at_least"]) for a in alerts
    ) == [
        ("P01", "hads", 2),
        ("P03", "fscrs", 4),
    ]
    assert all(a["sent_to"] == emails for a in alerts)


def test_the_weekly_schedule_event_mails_each_trial_with_coordinators_and_skips_the_rest(
    aws, client, container
):
    from handlers import weekly_summary  # the deployed module (a cold start on moto)

    admin = container.keys.create(role="admin", trial_id="*", label="test").api_key
    keys = make_trial(client, container, participants=("P01", "P02"), admin_key=admin)
    make_trial(client, container, trial_id="cmt-quiet", emails=(), admin_key=admin)
    event = json.loads((EVENTS / "weekly_summary_schedule.json").read_text())
    before = len(sent_messages())

    # the module's handler, wrapped around this world's container (and its test clock)
    result = weekly_summary.make_handler(container)(event, None)

    assert sorted(result["summaries"], key=lambda s: s["trial_id"]) == [
        {"trial_id": "cmt-pilot", "sent_to": 1, "skipped": None},
        {"trial_id": "cmt-quiet", "sent_to": 0, "skipped": "no coordinator_emails"},
    ]
    mails = sent_messages()[before:]
    assert len(mails) == 1
    assert mails[0].destinations["ToAddresses"] == ["coordinator@example.org"]
    # the handler's container runs on the wall clock, so only what no date changes is checked
    # here; the schedule-driven parts are checked on the test clock below
    assert mails[0].subject.startswith("[cmt-pilot] Weekly summary to ")
    assert "Enrolment (2) active 2 completed 0 withdrawn 0" in visible(mails[0].body)
    assert keys.trial_id == TRIAL


def test_the_weekly_summary_leads_with_the_weeks_alerts_and_the_schedules_due_and_missed(
    world,
):
    client, container, pump, clock = world.client, world.container, world.pump, world.clock
    # enrolled on Thu 26 Nov 2026, 09:35 UTC (the test clock's start)
    keys = make_trial(client, container, participants=("P01", "P02", "P03"))
    clock.advance(timedelta(days=3))  # Sun 29 Nov: inside the summary's week
    post(client, keys, submission("P01", "fscrs", "week-1", fscrs(3)))  # a safety alert
    post(client, keys, submission("P01", "hads", "week-1"))
    post(client, keys, submission("P01", "diary", "week-1", DIARY))
    post(client, keys, submission("P03", "diary", "week-1", DIARY))
    pump.drain()
    clock.advance(timedelta(days=2))  # Tue 1 Dec: P03 withdraws
    r = client.patch(
        f"/v1/trials/{TRIAL}/participants/P03",
        headers=keys.coordinator,
        json={"status": "withdrawn", "reason": "free text that must not be mailed"},
    )
    assert r.status_code == 200, r.text
    clock.advance(timedelta(days=3))  # Fri 4 Dec 09:35: the week is 27 Nov to 4 Dec
    before = len(sent_messages())

    outcome = container.weekly.run(container.trials.get(TRIAL))

    summary = outcome.summary
    assert summary is not None
    assert [(a.participant_id, a.instrument, a.timepoint) for a in summary.alerts] == [
        ("P01", "fscrs", "week-1")
    ]
    # week-1 closed on Mon 30 Nov 09:35 (day 0 + 3 days, inclusive); week-2 is open now
    assert [(m.participant_id, m.timepoint, m.instruments) for m in summary.missed] == [
        ("P01", "week-1", ("fscs", "oas", "scs", "sbs")),
        ("P02", "week-1", ("hads", "fscs", "fscrs", "oas", "scs", "sbs", "diary")),
    ]
    assert [(d.participant_id, d.timepoint, d.instruments) for d in summary.due] == [
        ("P01", "week-2", ("diary",)),
        ("P02", "week-2", ("diary",)),
    ]  # P03 has withdrawn: never chased
    # the test clock moves a millisecond per reading: compare to the second
    assert summary.due[0].closes_at.replace(microsecond=0) == datetime(
        2026, 12, 7, 9, 35, tzinfo=UTC
    )
    assert summary.withdrew == ["P03"]
    assert summary.enrolled == []
    assert summary.enrolment == {"active": 2, "withdrawn": 1, "completed": 0}
    assert summary.submissions_by_instrument == {"fscrs": 1, "hads": 1, "diary": 2}
    # missed to date: P01 4 and P02 7 of week-1; P03 the six questionnaires of week-1 and
    # the week-2 diary, whose window opened before the withdrawal
    assert (summary.slots_done, summary.slots_missed) == (4, 4 + 7 + 7)
    assert summary.results is None

    (mail,) = sent_messages()[before:]
    assert mail.subject == (
        "[cmt-pilot] Weekly summary to Fri 4 Dec 2026: 1 safety alert, 2 due, 11 missed"
    )
    seen = visible(mail.body)
    assert "Safety alerts this week (1) P01 · FSCRS week-1 · Sun 29 Nov" in seen
    assert "week-2 · Diary P01, P02 until Mon 7 Dec, 09:35" in seen  # one card for both
    assert "Fri 27 Nov, 09:35 – Fri 4 Dec 2026, 09:35 UTC" in seen
    assert "Withdrew 1 (P03)" in seen
    assert "No pre/post results yet: no report has been published." in seen
    assert "free text" not in mail.body
    assert "responses" not in mail.body.lower()


def test_a_window_that_closes_at_the_moment_of_sending_is_missed_in_the_next_summary(world):
    client, container = world.client, world.container
    make_trial(client, container, participants=("P01",))
    trial = container.trials.get(TRIAL)
    (participant,) = world.stores.participants.list_participants(TRIAL)
    closes = datetime.fromisoformat(participant.enrolled_at) + timedelta(days=4)  # week-1

    just_before = container.weekly.build(trial, closes - timedelta(milliseconds=1))
    at_close = container.weekly.build(trial, closes)
    next_week = container.weekly.build(trial, closes + timedelta(days=7))

    assert [d.timepoint for d in just_before.due] == ["week-1"]
    assert [d.timepoint for d in at_close.due] == ["week-2"]
    assert at_close.missed == []  # it closed at the end of this week, not inside it
    assert [m.timepoint for m in next_week.missed] == ["week-1"]  # so the next one has it
    assert next_week.period_start == closes


def test_the_weekly_summary_headlines_the_published_report(world):
    client, container, clock = world.client, world.container, world.clock
    keys = make_trial(client, container, participants=("P01", "P02", "P03"))
    for n, pid in enumerate(("P01", "P02", "P03")):
        post(client, keys, submission(pid, "hads", "week-1", {**HADS_LOW, "1": 3, "3": 3}))
        post(client, keys, submission(pid, "hads", "week-12", {**HADS_LOW, "1": n % 2}))
    world.pump.drain()
    r = client.post(f"/v1/trials/{TRIAL}/reports/pre-post", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    clock.advance(timedelta(hours=1))

    outcome = container.weekly.run(container.trials.get(TRIAL))

    assert outcome.summary is not None
    assert outcome.summary.results is not None
    lines = {(x.instrument, x.subscale): x for x in outcome.summary.results.lines}
    anxiety = lines[("hads", "anxiety")]
    assert anxiety.n_pairs == 3
    assert anxiety.pre_mean == pytest.approx(6.0)
    assert anxiety.post_mean == pytest.approx(1 / 3)
    seen = visible(sent_messages()[-1].body)
    assert "HADS · Anxiety n = 3, range 0–21 week-1 6.0 week-12 0.3" in seen
    assert "Mean fell: the better direction (lower is better)." in seen
    assert "completers only (both week-1 and week-12 scored)" in seen


def test_a_protocol_stored_without_timing_for_its_own_timepoints_still_gets_its_summary(world):
    """A trial stored before protocols had timing: its untimed timepoints are named apart.

    (A new protocol with such timepoints is refused without timing: that trial can only have
    been stored earlier, so it is written to the store as it was.)
    """
    client, container = world.client, world.container
    admin = container.keys.create(role="admin", trial_id="*", label="test").api_key
    make_trial(client, container, participants=("P01",), admin_key=admin)
    trial = container.trials.get(TRIAL)
    world.stores.trials.put_trial(
        dataclasses.replace(
            trial,
            title="Custom timepoints",
            protocol=StudyProtocol(
                timepoints=("baseline", "week-2", "post"),
                schedule={"hads": ("baseline", "post"), "diary": ("week-2",)},
                comparison=Comparison(pre="baseline", post="post"),
            ),
            alert_rules=(),
        )
    )
    world.clock.advance(timedelta(days=5))  # inside week-2's window (days 4 to 10)

    outcome = container.weekly.run(container.trials.get(TRIAL))

    assert outcome.summary is not None
    assert list(outcome.summary.untimed) == ["baseline", "post"]
    assert [(d.timepoint, d.instruments) for d in outcome.summary.due] == [("week-2", ("diary",))]
    seen = visible(sent_messages()[-1].body)
    assert "Timepoints without timing, so not listed above: baseline, post." in seen


def test_the_weekly_summary_reads_due_and_missed_from_the_protocols_own_timing(world):
    client, container = world.client, world.container
    admin = container.keys.create(role="admin", trial_id="*", label="test").api_key
    make_trial(client, container, participants=("P01",), admin_key=admin)
    protocol = {
        "timepoints": ["baseline", "week-2", "post"],
        "schedule": {"hads": ["baseline", "post"], "diary": ["week-2"]},
        "comparison": {"pre": "baseline", "post": "post"},
        # baseline on the day of enrolment +/- 1 day; week-2 moved from day 7 to day 10
        "timing": {
            "baseline": {"offset_days": 0, "window_days": 1},
            "week-2": {"offset_days": 10, "window_days": 2},
            "post": {"offset_days": 60, "window_days": 7},
        },
    }
    r = client.patch(
        f"/v1/trials/{TRIAL}",
        headers=bearer(admin),
        json={"title": "Own timing", "protocol": protocol, "alert_rules": []},
    )
    assert r.status_code == 200, r.text
    world.clock.advance(timedelta(days=8))  # week-2 opened on day 8; baseline closed on day 2

    outcome = container.weekly.run(container.trials.get(TRIAL))

    assert outcome.summary is not None
    assert list(outcome.summary.untimed) == []
    assert [(d.timepoint, d.instruments) for d in outcome.summary.due] == [("week-2", ("diary",))]
    assert [(m.timepoint, m.instruments) for m in outcome.summary.missed] == [
        ("baseline", ("hads",))
    ]
