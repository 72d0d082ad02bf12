"""Safety alerts on moto: the rule, the e-mail (read back from moto's SES), once per submission."""

from __future__ import annotations

import copy
import json
import pathlib
import re
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from conftest import NAMES, REGION, bearer, make_trial, submission
from handlers.stream_batch import make_handler
from local.pump import StreamPump

TRIAL = "cmt-pilot"
EVENTS = pathlib.Path(__file__).resolve().parents[2] / "events"


def sent_messages() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


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
    assert "Safety alert" in mail.subject and "P01" in mail.subject
    assert "P02" not in mail.subject + mail.body
    assert "FSCRS item 9" in mail.body and "week-1" in mail.body
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

    assert pump.stats.records == 1 and pump.stats.failures == 0
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
    subjects = sorted(m.subject for m in mails)
    assert "P01" in subjects[0] and "HADS item 9 answered at or above 2" in subjects[0]
    assert "P03" in subjects[1] and "FSCRS item 9 answered at or above 4" in subjects[1]
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
    assert "[cmt-pilot] Weekly summary" in mails[0].subject
    assert "Enrolment (2 in total)" in mails[0].body
    # both enrolled this week and neither has written the week-1 diary
    assert "Diary overdue for week-1 (2)" in mails[0].body
    assert "P01, P02" in mails[0].body
    assert keys.trial_id == TRIAL
