"""Every route of the HTTP contract (shared/spec/API.md): status codes and body shapes.

The app runs against moto through the real adapters; scoring happens when the test drains
the submissions stream with the `pump` fixture, as the stream function would on AWS.
Building the moto world is most of a test's cost, so this module builds one and gives every
test a trial of its own (`tid`): the fixtures below stand in for conftest's per-test ones.
"""

from __future__ import annotations

import base64
import csv
import io
import itertools
import json
import math
from datetime import datetime
from typing import Any

import pytest

from conftest import (
    HADS_EXAMPLE,
    NAMES,
    World,
    assert_problem,
    bearer,
    make_trial,
    submission,
)
from services.audit import Actor

WEEKS = [f"week-{n}" for n in range(1, 13)]
PILOT_INSTRUMENTS = ["hads", "fscs", "fscrs", "oas", "scs", "sbs"]
ALL_HADS_ONE = {str(n): 1 for n in range(1, 15)}  # anxiety 7, depression 7


@pytest.fixture
def world(module_world: World) -> World:
    """This module's tests share one moto world; each uses trial ids of its own."""
    return module_world


_trial_numbers = itertools.count(1)


@pytest.fixture
def tid() -> str:
    """A trial id of this test's own."""
    return f"trial-{next(_trial_numbers):03d}"


def submit(client: Any, keys: Any, body: dict[str, Any]) -> str:
    r = client.post(f"/v1/trials/{keys.trial_id}/submissions", headers=keys.submitter, json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["submission_id"])


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def query(aws: dict[str, Any], table: str, pk: str, prefix: str | None = None) -> list[Any]:
    values = {":pk": {"S": pk}}
    condition = "pk = :pk"
    if prefix is not None:
        values[":p"] = {"S": prefix}
        condition += " AND begins_with(sk, :p)"
    return aws["dynamodb"].query(
        TableName=table,
        KeyConditionExpression=condition,
        ExpressionAttributeValues=values,
        ConsistentRead=True,
    )["Items"]


# -- public routes ------------------------------------------------------------------------


def test_health_answers_ok_without_a_key(client):
    r = client.get("/v1/health")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"status": "ok"}


def test_the_catalogue_describes_every_instrument_of_the_pilot(client):
    r = client.get("/v1/instruments")
    assert r.status_code == 200, r.text
    instruments = {i["id"]: i for i in r.json()["instruments"]}
    assert sorted(instruments) == sorted([*PILOT_INSTRUMENTS, "diary"])
    for entry in instruments.values():
        assert entry["version"] == "1"
        assert isinstance(entry["title"], str)
        assert entry["title"]
        assert entry["response_min"] < entry["response_max"]
        assert entry["anchors"]
        assert "max_missing" in entry["missing_item_rule"]
        covered = sorted({n for s in entry["subscales"] for n in s["items"]})
        assert covered == list(range(1, entry["items"] + 1))
        for sub in entry["subscales"]:
            assert {"id", "label", "items", "max_missing", "range"} <= sub.keys()
    hads = instruments["hads"]
    assert hads["title"] == "Hospital Anxiety and Depression Scale"
    assert (hads["items"], hads["response_min"], hads["response_max"]) == (14, 0, 3)
    subscales = {s["id"]: s for s in hads["subscales"]}
    assert subscales["anxiety"]["items"] == [1, 3, 5, 7, 9, 11, 13]
    assert subscales["depression"]["items"] == [2, 4, 6, 8, 10, 12, 14]
    assert subscales["anxiety"]["max_missing"] == 3
    assert subscales["anxiety"]["range"] == [0, 21]
    assert (instruments["scs"]["response_min"], instruments["scs"]["response_max"]) == (1, 10)
    assert len(instruments["sbs"]["anchors"]) == 5
    assert instruments["diary"]["free_text"] == [
        "critical_situations",
        "critical_thoughts",
        "soothing_situations",
        "soothing_thoughts",
    ]
    assert instruments["diary"]["free_text_max_chars"] == 4000


def test_one_instrument_is_served_as_listed_in_the_catalogue(client):
    listed = {i["id"]: i for i in client.get("/v1/instruments").json()["instruments"]}
    for instrument_id in listed:
        r = client.get(f"/v1/instruments/{instrument_id}")
        assert r.status_code == 200, r.text
        assert r.json() == listed[instrument_id]
    assert client.get("/v1/instruments/fscrs?version=1").json() == listed["fscrs"]
    assert_problem(client.get("/v1/instruments/fscrs?version=9"), 404)
    assert_problem(client.get("/v1/instruments/bdi"), 404)


def test_the_openapi_document_lists_every_route_of_the_contract(client):
    r = client.get("/openapi.json")
    assert r.status_code == 200
    paths = r.json()["paths"]
    expected = {
        "/v1/health": {"get"},
        "/v1/instruments": {"get"},
        "/v1/instruments/{instrument_id}": {"get"},
        "/v1/trials/{trial_id}": {"put", "patch", "get"},
        "/v1/trials/{trial_id}/api-keys": {"post", "get"},
        "/v1/trials/{trial_id}/api-keys/{key_id}": {"delete"},
        "/v1/trials/{trial_id}/participants": {"post", "get"},
        "/v1/trials/{trial_id}/participants/{participant_id}": {"patch", "delete"},
        "/v1/trials/{trial_id}/submissions": {"post"},
        "/v1/trials/{trial_id}/participants/{participant_id}/scores": {"get"},
        "/v1/trials/{trial_id}/summary": {"get"},
        "/v1/trials/{trial_id}/reports/pre-post": {"post", "get"},
        "/v1/trials/{trial_id}/reports/pre-post/jobs/{job_id}": {"get"},
        "/v1/trials/{trial_id}/export.csv": {"get"},
        "/v1/trials/{trial_id}/exports": {"post", "get"},
        "/v1/trials/{trial_id}/exports/{export_id}": {"get"},
        "/v1/trials/{trial_id}/codebook": {"get"},
        "/v1/trials/{trial_id}/alerts": {"get"},
        "/v1/trials/{trial_id}/audit": {"get"},
        # v1.1: participant access, forms and FHIR
        "/v1/trials/{trial_id}/participants/{participant_id}/access-codes": {"post"},
        "/v1/trials/{trial_id}/participants/{participant_id}/tokens": {"delete"},
        "/v1/access/exchange": {"post"},
        "/v1/me": {"get"},
        "/v1/me/token": {"delete"},
        "/v1/me/questionnaires/{instrument_id}": {"get"},
        "/v1/trials/{trial_id}/instrument-texts/{instrument_id}": {"put"},
        "/v1/trials/{trial_id}/questionnaires/{instrument_id}": {"get"},
        "/v1/trials/{trial_id}/fhir/QuestionnaireResponse": {"post"},
    }
    assert {p: set(ops) for p, ops in paths.items()} == expected


# -- trials and keys ----------------------------------------------------------------------


def test_putting_a_new_trial_creates_it_with_the_default_protocol_then_updates_it(
    client, container, tid
):
    admin = bearer(container.keys.create(role="admin", trial_id="*", label="t").api_key)
    r = client.put(
        f"/v1/trials/{tid}",
        headers=admin,
        json={"title": "CMT pilot", "coordinator_emails": ["coordinator@example.org"]},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["trial_id"] == tid
    assert created["title"] == "CMT pilot"
    assert created["coordinator_emails"] == ["coordinator@example.org"]
    protocol = created["protocol"]
    assert protocol["timepoints"] == [*WEEKS, "follow-up"]
    assert protocol["schedule"] == {
        **{i: ["week-1", "week-12", "follow-up"] for i in PILOT_INSTRUMENTS},
        "diary": WEEKS,
    }
    assert protocol["comparison"] == {"pre": "week-1", "post": "week-12"}
    # v1.1: every timepoint's timing, the defaults shown (week-N at 7 (N - 1) days +/- 3,
    # follow-up at 26 weeks +/- 14)
    assert protocol["timing"] == {
        **{f"week-{n}": {"offset_days": 7 * (n - 1), "window_days": 3} for n in range(1, 13)},
        "follow-up": {"offset_days": 182, "window_days": 14},
    }
    assert created["alert_rules"] == [{"instrument": "fscrs", "item": 9, "at_least": 3}]
    datetime.fromisoformat(created["created_at"].replace("Z", "+00:00"))

    replacement = {
        "title": "CMT pilot (renamed)",
        "coordinator_emails": ["lead@example.org"],
        "protocol": created["protocol"],
        "alert_rules": created["alert_rules"],
    }
    r = client.put(f"/v1/trials/{tid}", headers=admin, json=replacement)
    assert r.status_code == 200, r.text
    updated = r.json()
    assert updated["title"] == "CMT pilot (renamed)"
    assert updated["coordinator_emails"] == ["lead@example.org"]
    assert updated["created_at"] == created["created_at"]
    assert updated["updated_at"] >= created["updated_at"]
    assert updated["protocol"] == created["protocol"]
    assert updated["alert_rules"] == created["alert_rules"]

    r = client.get(f"/v1/trials/{tid}", headers=admin)
    assert r.status_code == 200
    assert r.json() == updated


def test_a_trial_may_define_its_own_protocol_and_alert_rules(client, container):
    admin = bearer(container.keys.create(role="admin", trial_id="*", label="t").api_key)
    protocol = {
        "timepoints": ["baseline", "post", "month-3"],
        "schedule": {"hads": ["baseline", "post", "month-3"], "fscrs": ["baseline", "post"]},
        "comparison": {"pre": "baseline", "post": "post"},
        # timepoints without a default timing (not week-N, not follow-up) must be given one
        "timing": {
            "baseline": {"offset_days": 0, "window_days": 7},
            "post": {"offset_days": 84, "window_days": 7},
            "month-3": {"offset_days": 175, "window_days": 14},
        },
    }
    rules = [{"instrument": "fscrs", "item": 9, "at_least": 2}]
    r = client.put(
        "/v1/trials/own-protocol",
        headers=admin,
        json={
            "title": "Own",
            "coordinator_emails": ["lead@example.org"],
            "protocol": protocol,
            "alert_rules": rules,
        },
    )
    assert r.status_code == 201, r.text
    assert r.json()["protocol"] == protocol
    assert r.json()["alert_rules"] == rules
    r = client.put(
        "/v1/trials/no-alerts", headers=admin, json={"title": "No alerts", "alert_rules": []}
    )
    assert r.status_code == 201, r.text
    assert r.json()["alert_rules"] == []


def test_getting_a_trial_that_does_not_exist_is_a_404_problem(client, container):
    admin = bearer(container.keys.create(role="admin", trial_id="*", label="t").api_key)
    assert_problem(client.get("/v1/trials/no-such-trial", headers=admin), 404)
    r = client.post(
        "/v1/trials/no-such-trial/api-keys", headers=admin, json={"role": "submitter", "label": "x"}
    )
    assert_problem(r, 404)


def test_the_coordinator_reads_its_trial_and_protocol(client, container, tid):
    keys = make_trial(client, container, tid)
    r = client.get(f"/v1/trials/{tid}", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    assert r.json()["trial_id"] == tid
    assert r.json()["protocol"]["comparison"] == {"pre": "week-1", "post": "week-12"}


def test_a_new_api_key_is_shown_once_works_at_once_and_only_its_hash_is_stored(
    client, container, aws, tid
):
    keys = make_trial(client, container, tid, participants=())
    r = client.post(
        f"/v1/trials/{tid}/api-keys",
        headers=keys.admin,
        json={"role": "coordinator", "label": "second coordinator"},
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert {"api_key", "key_id"} <= body.keys()
    assert body["api_key"]
    assert body["key_id"]
    assert body["api_key"] != body["key_id"]
    assert client.get(f"/v1/trials/{tid}", headers=bearer(body["api_key"])).status_code == 200
    stored = json.dumps(aws["dynamodb"].scan(TableName=NAMES.main_table)["Items"])
    assert body["api_key"] not in stored
    assert body["key_id"] in stored
    r = client.post(
        f"/v1/trials/{tid}/api-keys", headers=keys.admin, json={"role": "admin", "label": "x"}
    )
    assert_problem(r, 422)


# -- participants -------------------------------------------------------------------------


def test_enrolling_a_participant_is_201_and_enrolling_again_is_409(client, container, tid):
    keys = make_trial(client, container, tid, participants=())
    r = client.post(
        f"/v1/trials/{tid}/participants",
        headers=keys.coordinator,
        json={"participant_id": "P01"},
    )
    assert r.status_code == 201, r.text
    assert r.json()["participant_id"] == "P01"
    assert r.json()["status"] == "active"
    r = client.post(
        f"/v1/trials/{tid}/participants",
        headers=keys.coordinator,
        json={"participant_id": "P01"},
    )
    assert_problem(r, 409)


def test_patching_a_participant_changes_status_and_keeps_the_reason(client, container, tid):
    keys = make_trial(client, container, tid, participants=("P01", "P02"))
    r = client.patch(
        f"/v1/trials/{tid}/participants/P01",
        headers=keys.coordinator,
        json={"status": "withdrawn", "reason": "moved away"},
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["reason"]) == ("withdrawn", "moved away")
    r = client.patch(
        f"/v1/trials/{tid}/participants/P02",
        headers=keys.coordinator,
        json={"status": "completed"},
    )
    assert r.status_code == 200, r.text
    listed = client.get(f"/v1/trials/{tid}/participants", headers=keys.coordinator).json()
    status = {p["participant_id"]: (p["status"], p["reason"]) for p in listed["participants"]}
    assert status == {"P01": ("withdrawn", "moved away"), "P02": ("completed", None)}
    r = client.patch(
        f"/v1/trials/{tid}/participants/P99", headers=keys.coordinator, json={"status": "active"}
    )
    assert_problem(r, 404)
    r = client.patch(
        f"/v1/trials/{tid}/participants/P01",
        headers=keys.coordinator,
        json={"status": "paused", "reason": "x" * 501},
    )
    errors = assert_problem(r, 422)["errors"]
    assert sorted(e["loc"] for e in errors) == [["body", "reason"], ["body", "status"]]


def test_the_participant_list_says_which_scheduled_submissions_are_done_and_missing(
    client, container, pump, tid
):
    keys = make_trial(client, container, tid, participants=("P01", "P02"))
    submit(client, keys, submission())
    pump.drain()
    r = client.get(f"/v1/trials/{tid}/participants", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    rows = {p["participant_id"]: p for p in r.json()["participants"]}
    assert sorted(rows) == ["P01", "P02"]
    scheduled = {f"{i}#{t}" for i in PILOT_INSTRUMENTS for t in ("week-1", "week-12", "follow-up")}
    scheduled |= {f"diary#{w}" for w in WEEKS}
    assert rows["P01"]["done"] == ["hads#week-1"]
    assert set(rows["P01"]["missing"]) == scheduled - {"hads#week-1"}
    assert rows["P02"]["done"] == []
    assert set(rows["P02"]["missing"]) == scheduled
    assert rows["P01"]["status"] == "active"


# -- submissions and results --------------------------------------------------------------


def test_a_submission_is_stored_and_answered_with_an_id_and_receipt_time(
    client, container, aws, tid
):
    keys = make_trial(client, container, tid)
    r = client.post(f"/v1/trials/{tid}/submissions", headers=keys.submitter, json=submission())
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"submission_id", "received_at", "status"}
    assert body["status"] == "accepted"
    received = datetime.fromisoformat(body["received_at"].replace("Z", "+00:00"))
    assert received.utcoffset() is not None
    items = query(aws, NAMES.submissions_table, f"T#{tid}#P#P01")
    assert [i["submission_id"]["S"] for i in items] == [body["submission_id"]]
    assert items[0]["instrument_version"]["S"] == "1"
    assert {k: int(v["N"]) for k, v in items[0]["responses"]["M"].items()} == HADS_EXAMPLE


def test_participant_scores_list_every_scored_submission_by_timepoint(client, container, pump, tid):
    keys = make_trial(client, container, tid)
    week_1 = submit(client, keys, submission())
    week_12 = submit(client, keys, submission(timepoint="week-12", responses=ALL_HADS_ONE))
    pump.drain()
    r = client.get(f"/v1/trials/{tid}/participants/P01/scores", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["participant_id"] == "P01"
    assert [t["timepoint"] for t in body["timepoints"]] == ["week-1", "week-12"]
    first, last = (t["submissions"] for t in body["timepoints"])
    assert [s["submission_id"] for s in first] == [week_1]
    assert [s["submission_id"] for s in last] == [week_12]
    assert first[0]["scores"]["anxiety"]["score"] == 12
    assert first[0]["scores"]["anxiety"]["band"] == "case"
    assert first[0]["scores"]["depression"]["score"] == 8
    assert last[0]["scores"]["anxiety"]["score"] == 7
    assert last[0]["scores"]["anxiety"]["band"] == "normal"
    assert first[0]["counts"] is True
    assert_problem(
        client.get(f"/v1/trials/{tid}/participants/P99/scores", headers=keys.coordinator), 404
    )


def test_the_summary_gives_enrolment_and_n_mean_sd_per_instrument_timepoint_subscale(
    client, container, pump, tid
):
    keys = make_trial(client, container, tid, participants=("P01", "P02", "P03"))
    submit(client, keys, submission("P01"))
    submit(client, keys, submission("P02", responses=ALL_HADS_ONE))
    client.patch(
        f"/v1/trials/{tid}/participants/P03",
        headers=keys.coordinator,
        json={"status": "withdrawn"},
    )
    pump.drain()
    r = client.get(f"/v1/trials/{tid}/summary", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["enrolment"] == {"active": 2, "withdrawn": 1, "completed": 0, "total": 3}
    rows = {(a["instrument"], a["timepoint"], a["subscale"]): a for a in body["aggregates"]}
    anxiety = rows[("hads", "week-1", "anxiety")]
    depression = rows[("hads", "week-1", "depression")]
    # anxiety 12 and 7: mean 9.5, sd sqrt(12.5); depression 8 and 7: mean 7.5, sd sqrt(0.5)
    assert anxiety["n"] == 2
    assert anxiety["mean"] == pytest.approx(9.5)
    assert anxiety["sd"] == pytest.approx(math.sqrt(12.5))
    assert depression["n"] == 2
    assert depression["mean"] == pytest.approx(7.5)
    assert depression["sd"] == pytest.approx(math.sqrt(0.5))
    adherence = {a["participant_id"]: a for a in body["diary_adherence"]}
    assert sorted(adherence) == ["P01", "P02", "P03"]
    assert adherence["P01"]["weeks_submitted"] == 0


def test_the_pre_post_report_is_a_404_problem_until_one_is_published(
    client, container, pump, aws, tid
):
    keys = make_trial(client, container, tid, participants=("P01", "P02"))
    assert_problem(client.get(f"/v1/trials/{tid}/reports/pre-post", headers=keys.coordinator), 404)
    for pid, pre, post in (
        ("P01", HADS_EXAMPLE, ALL_HADS_ONE),
        ("P02", ALL_HADS_ONE, HADS_EXAMPLE),
    ):
        submit(client, keys, submission(pid, responses=pre))
        submit(client, keys, submission(pid, timepoint="week-12", responses=post))
    pump.drain()
    r = client.post(f"/v1/trials/{tid}/reports/pre-post", headers=keys.coordinator)
    assert r.status_code in (200, 201), r.text
    report = r.json()
    assert report["trial_id"] == tid
    assert report["software_version"] == "0.1.0"
    assert report["comparison"] == {"pre": "week-1", "post": "week-12"}
    assert "Wilcoxon" in report["method"]
    assert report["participants"]["enrolled"] == 2
    anxiety = next(
        row
        for row in report["results"]
        if (row["instrument"], row["subscale"]) == ("hads", "anxiety")
    )
    assert anxiety["n_pairs"] == 2
    assert anxiety["pre"]["mean"] == pytest.approx(9.5)
    assert {"wilcoxon", "direction", "effect_size_r", "excluded"} <= anxiety.keys()

    day = report["generated_at"][:10]
    listed = aws["s3"].list_objects_v2(Bucket=NAMES.reports_bucket, Prefix=f"reports/{tid}/")
    names = {o["Key"] for o in listed.get("Contents", [])}
    assert {
        f"reports/{tid}/pre-post/latest.json",
        f"reports/{tid}/pre-post/{day}.json",
    } <= names
    r = client.get(f"/v1/trials/{tid}/reports/pre-post", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    assert r.json()["generated_at"] == report["generated_at"]
    assert r.json()["results"] == report["results"]


def test_the_long_export_has_a_row_per_scored_submission_and_subscale_with_items(
    client, container, pump, tid
):
    keys = make_trial(client, container, tid, participants=("P01", "P02"))
    week_1 = submit(client, keys, submission())
    pump.drain()
    for url in (f"/v1/trials/{tid}/export.csv", f"/v1/trials/{tid}/export.csv?layout=long"):
        r = client.get(url, headers=keys.coordinator)
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        rows = parse_csv(r.text)
        assert [(row["participant_id"], row["subscale"]) for row in rows] == [
            ("P01", "anxiety"),
            ("P01", "depression"),
        ]
        for row in rows:
            assert row["submission_id"] == week_1
            assert (row["instrument"], row["timepoint"]) == ("hads", "week-1")
            assert {n: int(row[f"item_{n}"]) for n in range(1, 15)} == {
                int(k): v for k, v in HADS_EXAMPLE.items()
            }
            assert row["item_15"] == ""
        assert [float(row["score"]) for row in rows] == [12, 8]


def test_the_wide_export_has_a_row_per_participant_and_a_column_per_scored_slot(
    client, container, pump, tid
):
    keys = make_trial(client, container, tid, participants=("P01", "P02"))
    submit(client, keys, submission())
    pump.drain()
    r = client.get(f"/v1/trials/{tid}/export.csv?layout=wide", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = {row["participant_id"]: row for row in parse_csv(r.text)}
    assert sorted(rows) == ["P01", "P02"]
    assert float(rows["P01"]["hads_anxiety_week_1"]) == 12
    assert float(rows["P01"]["hads_depression_week_1"]) == 8
    assert rows["P01"]["hads_anxiety_week_12"] == ""
    assert rows["P02"]["hads_anxiety_week_1"] == ""
    assert_problem(
        client.get(f"/v1/trials/{tid}/export.csv?layout=tall", headers=keys.coordinator), 422
    )


def test_the_codebook_describes_every_export_column(client, container, tid):
    keys = make_trial(client, container, tid)
    for layout in ("long", "wide"):
        r = client.get(f"/v1/trials/{tid}/codebook?layout={layout}", headers=keys.coordinator)
        assert r.status_code == 200, r.text
        columns = r.json()["columns"]
        for column in columns:
            assert {"name", "label", "type", "range", "instrument", "missing"} <= column.keys()
        export = client.get(
            f"/v1/trials/{tid}/export.csv?layout={layout}", headers=keys.coordinator
        )
        header = next(csv.reader(io.StringIO(export.text)))
        assert [c["name"] for c in columns] == header
    default = client.get(f"/v1/trials/{tid}/codebook", headers=keys.coordinator).json()
    assert (
        default["columns"]
        == (
            client.get(f"/v1/trials/{tid}/codebook?layout=long", headers=keys.coordinator).json()[
                "columns"
            ]
        )
    )


def test_the_alert_log_lists_a_met_safety_rule_with_its_recipients(client, container, pump, tid):
    keys = make_trial(client, container, tid)
    assert client.get(f"/v1/trials/{tid}/alerts", headers=keys.coordinator).json()["alerts"] == []
    responses = {str(n): 1 for n in range(1, 23)} | {"9": 3}
    sid = submit(client, keys, submission(instrument="fscrs", responses=responses))
    pump.drain()
    r = client.get(f"/v1/trials/{tid}/alerts", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    [alert] = r.json()["alerts"]
    assert alert["participant_id"] == "P01"
    assert alert["submission_id"] == sid
    assert (alert["instrument"], alert["timepoint"]) == ("fscrs", "week-1")
    assert alert["rule"] == {"instrument": "fscrs", "item": 9, "at_least": 3}
    assert alert["sent_to"] == ["coordinator@example.org"]
    assert alert["created_at"]
    assert alert["sent_at"]


# -- audit --------------------------------------------------------------------------------


def seed_audit(container: Any, trial_id: str, days: range) -> list[str]:
    """One audit event at noon UTC on each October day; returns their actions."""
    actor = Actor(key_id="k_seed", role="coordinator")
    actions = []
    for day in days:
        action = f"seeded.{day:02d}"
        container.audit.record(
            actor,
            trial_id=trial_id,
            action=action,
            targets={"n": str(day)},
            at=f"2026-10-{day:02d}T12:00:00.000Z",
        )
        actions.append(action)
    return actions


def test_the_audit_trail_is_filtered_by_from_and_to(client, container, tid):
    keys = make_trial(client, container, tid)
    seed_audit(container, tid, range(1, 8))
    r = client.get(
        f"/v1/trials/{tid}/audit",
        params={"from": "2026-10-03T00:00:00Z", "to": "2026-10-05T23:59:59Z"},
        headers=keys.coordinator,
    )
    assert r.status_code == 200, r.text
    assert [e["action"] for e in r.json()["events"]] == ["seeded.03", "seeded.04", "seeded.05"]
    assert r.json()["next_cursor"] is None
    event = r.json()["events"][0]
    assert set(event) == {"at", "event_id", "key_id", "role", "action", "targets"}
    assert (event["key_id"], event["at"]) == ("k_seed", "2026-10-03T12:00:00.000Z")
    # the same instants written with another offset
    r = client.get(
        f"/v1/trials/{tid}/audit",
        params={"from": "2026-10-03T14:00:00+01:00", "to": "2026-10-04T13:00:00+01:00"},
        headers=keys.coordinator,
    )
    assert [e["action"] for e in r.json()["events"]] == ["seeded.04"]
    r = client.get(
        f"/v1/trials/{tid}/audit",
        params={"to": "2026-10-02T12:00:00Z"},
        headers=keys.coordinator,
    )
    assert [e["action"] for e in r.json()["events"]] == ["seeded.01", "seeded.02"]
    r = client.get(
        f"/v1/trials/{tid}/audit",
        params={"from": "2026-11-01T00:00:00Z"},
        headers=keys.coordinator,
    )
    actions = [e["action"] for e in r.json()["events"]]
    assert "trial.create" in actions
    assert "participant.enrol" in actions
    assert not any(a.startswith("seeded.") for a in actions)
    # a time without an offset names no instant
    r = client.get(
        f"/v1/trials/{tid}/audit",
        params={"from": "2026-10-03T00:00:00", "to": "yesterday"},
        headers=keys.coordinator,
    )
    assert sorted(e["loc"] for e in assert_problem(r, 422)["errors"]) == [
        ["query", "from"],
        ["query", "to"],
    ]


def test_the_audit_trail_pages_with_a_cursor_over_more_events_than_the_limit(
    client, container, tid
):
    keys = make_trial(client, container, tid)
    seed_audit(container, tid, range(1, 11))
    everything = client.get(f"/v1/trials/{tid}/audit?limit=500", headers=keys.coordinator).json()[
        "events"
    ]
    assert len(everything) > 10
    assert [e["at"] for e in everything] == sorted(e["at"] for e in everything)
    pages, cursor, seen = 0, None, []
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        r = client.get(f"/v1/trials/{tid}/audit", params=params, headers=keys.coordinator)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["events"]) <= 3
        seen += page["events"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 20
    assert pages >= 4
    # the listing itself is read-only: paging did not add events to what it pages over
    assert [e["event_id"] for e in seen] == [e["event_id"] for e in everything]


def test_an_audit_cursor_that_is_not_from_this_listing_is_a_422_problem(client, container, tid):
    keys = make_trial(client, container, tid)
    make_trial(
        client, container, trial_id=f"{tid}-other", admin_key=keys.admin["Authorization"][7:]
    )
    other = bearer(
        client.post(
            f"/v1/trials/{tid}-other/api-keys",
            headers=keys.admin,
            json={"role": "coordinator", "label": "o"},
        ).json()["api_key"]
    )
    foreign = client.get(f"/v1/trials/{tid}-other/audit?limit=1", headers=other).json()
    assert foreign["next_cursor"]
    forged = base64.urlsafe_b64encode(json.dumps({"pk": "TRIALS", "sk": "x"}).encode()).decode()
    for cursor in ("garbage", "!!!", foreign["next_cursor"], forged):
        r = client.get(
            f"/v1/trials/{tid}/audit", params={"cursor": cursor}, headers=keys.coordinator
        )
        body = assert_problem(r, 422)
        assert [e["loc"] for e in body["errors"]] == [["query", "cursor"]]
    assert_problem(client.get(f"/v1/trials/{tid}/audit?limit=0", headers=keys.coordinator), 422)


# -- erasure ------------------------------------------------------------------------------


def test_erasing_a_participant_removes_their_data_and_leaves_an_audit_record(
    client, container, pump, aws, tid
):
    keys = make_trial(client, container, tid, participants=("P01", "P02"))
    submit(client, keys, submission("P01"))
    submit(client, keys, submission("P02", responses=ALL_HADS_ONE))
    fscrs = {str(n): 1 for n in range(1, 23)} | {"9": 4}
    submit(client, keys, submission("P01", instrument="fscrs", responses=fscrs))
    pump.drain()
    assert (
        len(client.get(f"/v1/trials/{tid}/alerts", headers=keys.coordinator).json()["alerts"]) == 1
    )

    r = client.delete(f"/v1/trials/{tid}/participants/P01", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "trial_id": tid,
        "participant_id": "P01",
        "submissions_deleted": 2,
        "scores_deleted": 2,
        "alerts_deleted": 1,
        "report_versions_deleted": 0,
        "export_files_deleted": 0,
        "report_job_id": None,  # done within the request
    }
    assert query(aws, NAMES.submissions_table, f"T#{tid}#P#P01") == []
    for prefix in ("P#P01", "SC#P01#", "AL#P01#"):
        assert query(aws, NAMES.main_table, f"T#{tid}", prefix) == []
    assert len(query(aws, NAMES.submissions_table, f"T#{tid}#P#P02")) == 1
    assert len(query(aws, NAMES.main_table, f"T#{tid}", "SC#P02#")) == 1

    summary = client.get(f"/v1/trials/{tid}/summary", headers=keys.coordinator).json()
    anxiety = next(
        a
        for a in summary["aggregates"]
        if (a["instrument"], a["timepoint"], a["subscale"]) == ("hads", "week-1", "anxiety")
    )
    assert (anxiety["n"], anxiety["mean"]) == (1, 7)
    assert summary["enrolment"]["total"] == 1
    assert client.get(f"/v1/trials/{tid}/alerts", headers=keys.coordinator).json()["alerts"] == []
    assert_problem(
        client.get(f"/v1/trials/{tid}/participants/P01/scores", headers=keys.coordinator), 404
    )
    audit = client.get(f"/v1/trials/{tid}/audit?limit=500", headers=keys.coordinator).json()
    [erasure] = [e for e in audit["events"] if e["action"] == "participant.erase"]
    assert erasure["targets"]["participant_id"] == "P01"
    assert erasure["key_id"] == keys.coordinator_key_id
    assert any(e["action"] == "participant.enrol" for e in audit["events"])
    # the record says who and what, never a response value
    assert "responses" not in json.dumps(erasure)
    assert_problem(
        client.delete(f"/v1/trials/{tid}/participants/P01", headers=keys.coordinator), 404
    )
