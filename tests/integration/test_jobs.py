"""Exports and reports as jobs (API.md v1.1, "Large results") on moto.

A coordinator asks for a job (202 with `Location`); the job queue is run by the same job
handler the job function runs (`world.jobs.drain()`, deterministic: one message at a time);
the job's files are fetched through their presigned URLs as a client would. The synchronous
routes are checked against small configured thresholds, never against large data.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from fastapi.testclient import TestClient

from conftest import (
    NAMES,
    SENDER,
    TrialKeys,
    World,
    assert_problem,
    make_trial,
    settings_for_tests,
    submission,
)
from domain.jobs import EXPORT_FORMATS
from handlers.api_app import create_app
from handlers.wiring import build
from local.cors import behind_http_api
from local.world import create_resources
from services.export_csv import codebook
from services.jobs import SyncLimits

SECRET = "words only the participant wrote"
REASON = "moved to another city"
DIARY = {str(n): 5 for n in range(1, 15)}
NOTES = {"critical_thoughts": SECRET, "soothing_situations": "a walk"}


def fscrs(item_9: int) -> dict[str, int]:
    return {**{str(n): 1 for n in range(1, 23)}, "9": item_9}


@pytest.fixture
def world(module_world: World) -> World:
    """This module's tests share one moto world (trials of their own), except where a test
    asks for `fresh` (it breaks the world on purpose)."""
    return module_world


_numbers = iter(range(1, 1000))


def new_trial(world: World, *, participants: tuple[str, ...] = ("P01", "P02", "P03")) -> TrialKeys:
    return make_trial(
        world.client, world.container, f"jobs-{next(_numbers):03d}", participants=participants
    )


def post(world: World, keys: TrialKeys, body: dict[str, Any]) -> str:
    r = world.client.post(
        f"/v1/trials/{keys.trial_id}/submissions", headers=keys.submitter, json=body
    )
    assert r.status_code == 201, r.text
    return str(r.json()["submission_id"])


def seeded(world: World) -> TrialKeys:
    """Three participants: HADS at two timepoints (one corrected), a diary with free text, a
    withdrawal with a reason, one safety alert; everything scored."""
    keys = new_trial(world)
    first = post(world, keys, submission("P01"))
    post(world, keys, submission("P01", responses={"1": 3, "2": 1}, supersedes=first))
    post(world, keys, submission("P01", timepoint="week-12", completed_at="2026-11-25T08:00:00Z"))
    post(world, keys, submission("P02"))
    post(world, keys, submission("P02", "diary", responses=DIARY, notes=NOTES))
    post(world, keys, submission("P03", "fscrs", responses=fscrs(3)))
    r = world.client.patch(
        f"/v1/trials/{keys.trial_id}/participants/P03",
        headers=keys.coordinator,
        json={"status": "withdrawn", "reason": REASON},
    )
    assert r.status_code == 200, r.text
    world.pump.drain()
    return keys


@pytest.fixture(scope="module")
def trial(module_world: World) -> TrialKeys:
    return seeded(module_world)


def ask(world: World, keys: TrialKeys, body: dict[str, Any]) -> dict[str, Any]:
    r = world.client.post(
        f"/v1/trials/{keys.trial_id}/exports", headers=keys.coordinator, json=body
    )
    assert r.status_code == 202, r.text
    job: dict[str, Any] = r.json()
    assert r.headers["location"] == f"/v1/trials/{keys.trial_id}/exports/{job['export_id']}"
    assert job["status"] == "running"
    return job


def follow(world: World, keys: TrialKeys, location: str) -> dict[str, Any]:
    r = world.client.get(location, headers=keys.coordinator)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def export_location(keys: TrialKeys, job: dict[str, Any]) -> str:
    return f"/v1/trials/{keys.trial_id}/exports/{job['export_id']}"


def finished(world: World, keys: TrialKeys, body: dict[str, Any]) -> dict[str, Any]:
    world.jobs.drain()
    return follow(world, keys, export_location(keys, body))


def fetch(url: str) -> requests.Response:
    """A client's GET of a presigned URL (moto answers it, signature checked)."""
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    return response


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def sync_export(world: World, keys: TrialKeys, layout: str) -> bytes:
    r = world.client.get(
        f"/v1/trials/{keys.trial_id}/export.csv?layout={layout}", headers=keys.coordinator
    )
    assert r.status_code == 200, r.text
    return r.content


# -- exports as jobs ------------------------------------------------------------------------


@pytest.mark.parametrize("export_format", EXPORT_FORMATS)
def test_an_export_job_runs_to_ready_and_each_file_downloads_from_its_presigned_url(
    world: World, trial: TrialKeys, export_format: str
) -> None:
    job = ask(world, trial, {"format": export_format, "deidentified": False})
    assert (job["files"], job["download_url"], job["finished_at"]) == ([], None, None)
    # nothing runs until the job function takes the message
    assert follow(world, trial, export_location(trial, job))["status"] == "running"

    ready = finished(world, trial, job)

    assert ready["status"] == "ready", ready
    assert ready["error"] is None
    layout = "wide" if export_format == "csv-wide" else "long"
    assert (ready["format"], ready["layout"], ready["deidentified"]) == (
        export_format,
        layout,
        False,
    )
    names = [f["name"] for f in ready["files"]]
    extension = {"spss": "sps", "stata": "do", "r": "R"}.get(export_format)
    stem = f"{trial.trial_id}-{layout}"
    assert names == [f"{stem}.csv", *([f"{stem}.{extension}"] if extension else [])]
    assert ready["download_url"] == ready["files"][0]["url"]
    # the job's CSV is the synchronous route's CSV, byte for byte
    data = fetch(ready["files"][0]["url"])
    assert data.content == sync_export(world, trial, layout)
    assert data.headers["content-disposition"] == f'attachment; filename="{stem}.csv"'
    assert ready["files"][0]["size"] == len(data.content)
    assert ready["files"][0]["content_type"] == "text/csv; charset=utf-8"
    if extension:
        syntax = fetch(ready["files"][1]["url"]).content.decode("utf-8")
        assert f"{stem}.csv" in syntax
        for column in codebook(
            protocol=world.container.trials.get(trial.trial_id).protocol, layout=layout
        ):
            assert column["name"] in syntax


def test_download_urls_live_at_most_fifteen_minutes_and_each_read_signs_anew(
    world: World, trial: TrialKeys
) -> None:
    ready = finished(world, trial, ask(world, trial, {"format": "csv-wide"}))
    before = world.clock()
    again = follow(world, trial, export_location(trial, ready))
    for file in ready["files"]:
        query = parse_qs(urlparse(file["url"]).query)
        assert int(query["X-Amz-Expires"][0]) <= 15 * 60
        assert query["X-Amz-SignedHeaders"] == ["host"]
        assert urlparse(file["url"]).path.endswith(
            f"/exports/{trial.trial_id}/{ready['export_id']}/{file['name']}"
        )
    expires = datetime.fromisoformat(again["download_url_expires_at"].replace("Z", "+00:00"))
    after = world.clock()
    # signed between `before` and `after`, for at most 15 minutes
    assert before < expires <= after + timedelta(minutes=15)
    assert again["files"][0]["url_expires_at"] == again["download_url_expires_at"]
    # every handout of a URL is in the audit trail
    events = world.container.audit.events(trial.trial_id, start="0000", end="9999")
    downloads = [e for e in events if e.action == "export.download"]
    assert {e.targets["job_id"] for e in downloads} >= {ready["export_id"]}


def test_a_deidentified_export_drops_free_text_and_reasons_shifts_dates_and_recodes_ids(
    world: World, trial: TrialKeys
) -> None:
    plain = rows(sync_export(world, trial, "long").decode("utf-8"))
    ready = finished(world, trial, ask(world, trial, {"format": "r", "deidentified": True}))
    assert ready["status"] == "ready"
    assert ready["deidentified"] is True
    csv_file, script = ready["files"]
    assert csv_file["name"] == f"{trial.trial_id}-long-deidentified.csv"
    body = fetch(csv_file["url"]).content.decode("utf-8")
    text = body + fetch(script["url"]).content.decode("utf-8")

    for secret in (SECRET, "a walk", REASON):
        assert secret not in text
    shifted = rows(body)
    assert "critical_thoughts" not in shifted[0]
    assert not {"critical_thoughts", "soothing_situations"} & set(text.split('"'))
    # no service id survives (a ULID carries its receipt time)
    original_ids = {r["submission_id"] for r in plain}
    assert not any(sid in text for sid in original_ids)
    assert {r["submission_id"] for r in shifted} <= {f"X{n:06d}" for n in range(1, 100)}

    def key(row: dict[str, str]) -> tuple[str, ...]:
        return (
            row["participant_id"],
            row["instrument"],
            row["timepoint"],
            row["counts"],
            row["subscale"],
        )

    def moment(value: str) -> datetime:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))

    before = {key(r): r for r in plain}
    assert sorted(before) == sorted(key(r) for r in shifted)
    offsets: dict[str, set[timedelta]] = {}
    for row in shifted:
        original = before[key(row)]
        for column in ("completed_at", "received_at"):
            offsets.setdefault(row["participant_id"], set()).add(
                moment(row[column]) - moment(original[column])
            )
        # everything else is as it was, the free text aside
        for column, value in original.items():
            if column not in ("submission_id", "supersedes", "completed_at", "received_at"):
                assert row.get(column, "") == (value if column in row else ""), column
    assert sorted(offsets) == ["P01", "P02", "P03"]
    for participant, found in offsets.items():
        (offset,) = found  # one offset per participant, for every date of theirs
        weeks, rest = divmod(offset, timedelta(weeks=1))
        assert rest == timedelta(0), participant
        assert 1 <= abs(weeks) <= 52, participant
    # the correction still names what it corrects, in the export's own codes
    corrected = {r["supersedes"] for r in shifted if r["supersedes"]}
    superseded = {r["submission_id"] for r in shifted if r["counts"] == "0"}
    assert corrected == superseded
    assert len(corrected) == 1


@pytest.mark.parametrize("layout", ["long", "wide"])
def test_an_export_job_writes_participants_in_their_order_not_the_order_they_are_stored_in(
    world: World, layout: str
) -> None:
    # stored (and read back) in the order of their ids' characters, P1, P10, P2; P3 has
    # nothing scored. Written as the synchronous route writes them: P1, P2, P3, P10.
    keys = new_trial(world, participants=("P10", "P2", "P1", "P3"))
    for pid in ("P10", "P2", "P1"):
        post(world, keys, submission(pid))
    post(world, keys, submission("P10", "diary", responses=DIARY, notes=NOTES))
    world.pump.drain()

    ready = finished(world, keys, ask(world, keys, {"format": f"csv-{layout}"}))

    data = fetch(ready["files"][0]["url"]).content
    assert data == sync_export(world, keys, layout)
    written = list(dict.fromkeys(r["participant_id"] for r in rows(data.decode("utf-8"))))
    assert written == (["P1", "P2", "P10"] if layout == "long" else ["P1", "P2", "P3", "P10"])


def test_a_trials_scores_are_read_one_whole_participant_at_a_time_across_pages(
    world: World,
) -> None:
    keys = new_trial(world, participants=("P1", "P10", "P2"))
    for pid in ("P1", "P10", "P2"):
        post(world, keys, submission(pid))
        post(world, keys, submission(pid, timepoint="week-12"))
        post(world, keys, submission(pid, "diary", responses=DIARY))
    world.pump.drain()
    stored = world.stores.scores.list_scores(keys.trial_id)

    # pages of two items split every participant's three scores
    groups = list(world.stores.scores.scores_by_participant(keys.trial_id, page_items=2))

    assert [[s.participant_id for s in g] for g in groups] == [[p] * 3 for p in ("P1", "P10", "P2")]
    assert [s for g in groups for s in g] == stored


def test_the_exports_of_a_trial_are_listed_newest_first_in_pages(world: World) -> None:
    keys = new_trial(world, participants=())
    made = [ask(world, keys, {"format": f})["export_id"] for f in ("csv-long", "stata", "spss")]
    url = f"/v1/trials/{keys.trial_id}/exports"

    first = world.client.get(f"{url}?limit=2", headers=keys.coordinator).json()
    assert [e["export_id"] for e in first["exports"]] == made[::-1][:2]
    assert first["next_cursor"]
    second = world.client.get(
        f"{url}?limit=2&cursor={first['next_cursor']}", headers=keys.coordinator
    ).json()
    assert [e["export_id"] for e in second["exports"]] == made[:1]
    assert second["next_cursor"] is None
    assert {e["format"] for e in first["exports"] + second["exports"]} == {
        "csv-long",
        "stata",
        "spss",
    }
    assert all(e["files"] == [] for e in first["exports"])  # URLs only on GET by id
    everything = world.client.get(url, headers=keys.coordinator).json()
    assert len(everything["exports"]) == 3
    assert everything["next_cursor"] is None

    for bad in ("nonsense", first["next_cursor"][:-2], "e30"):
        problem = assert_problem(
            world.client.get(f"{url}?cursor={bad}", headers=keys.coordinator), 422
        )
        assert ["query", "cursor"] in [e["loc"] for e in problem["errors"]]
    # a cursor of another trial's listing is refused too
    other = new_trial(world, participants=())
    for _ in range(2):
        ask(world, other, {"format": "csv-wide"})
    foreign = world.client.get(
        f"/v1/trials/{other.trial_id}/exports?limit=1", headers=other.coordinator
    ).json()["next_cursor"]
    assert_problem(world.client.get(f"{url}?cursor={foreign}", headers=keys.coordinator), 422)
    assert_problem(world.client.get(f"{url}?limit=0", headers=keys.coordinator), 422)
    assert_problem(world.client.get(f"{url}?limit=501", headers=keys.coordinator), 422)
    world.jobs.drain()


def test_an_export_request_names_every_bad_field(world: World, trial: TrialKeys) -> None:
    url = f"/v1/trials/{trial.trial_id}/exports"
    problem = assert_problem(
        world.client.post(url, headers=trial.coordinator, json={"format": "xlsx", "extra": 1}), 422
    )
    assert sorted(e["loc"] for e in problem["errors"]) == [["body", "extra"], ["body", "format"]]
    problem = assert_problem(
        world.client.post(
            url, headers=trial.coordinator, json={"format": "csv-long", "layout": "wide"}
        ),
        422,
    )
    assert [e["loc"] for e in problem["errors"]] == [["body"]]
    assert_problem(world.client.post(url, headers=trial.coordinator, json={}), 422)
    missing = f"{url}/01ARZ3NDEKTSV4RRFFQ69G5FAV"
    assert_problem(world.client.get(missing, headers=trial.coordinator), 404)
    assert_problem(world.client.get(f"{url}/not-a-job-id", headers=trial.coordinator), 422)


def test_a_wide_spss_export_labels_the_wide_csv(world: World, trial: TrialKeys) -> None:
    ready = finished(world, trial, ask(world, trial, {"format": "spss", "layout": "wide"}))
    csv_file, syntax = ready["files"]
    assert csv_file["name"].endswith("-wide.csv")
    assert fetch(csv_file["url"]).content == sync_export(world, trial, "wide")
    text = fetch(syntax["url"]).content.decode("utf-8")
    assert "hads_anxiety_week_1" in text
    assert "MISSING VALUES hads_anxiety_week_1 (-9)." in text


# -- failures and deadlines -----------------------------------------------------------------


@contextlib.contextmanager
def without_bucket(world: World) -> Iterator[None]:
    """The shared world without its reports bucket, then with it again as the local stack
    creates it. (Not a second moto world: starting a nested `mock_aws` resets
    every backend, the shared world's included.)"""
    s3, bucket = world.aws["s3"], NAMES.reports_bucket
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for version in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])
    s3.delete_bucket(Bucket=bucket)
    try:
        yield
    finally:
        create_resources(world.aws, names=NAMES, sender=SENDER)


def test_a_job_whose_work_fails_is_marked_failed_with_the_error_class(world: World) -> None:
    keys = seeded(world)
    job = ask(world, keys, {"format": "csv-long"})
    failures = world.jobs.stats.failures
    with without_bucket(world):  # the function cannot write its files
        failed = finished(world, keys, job)

    assert failed["status"] == "failed"
    assert failed["error"] == "NoSuchBucket"
    assert (failed["files"], failed["download_url"]) == ([], None)
    assert failed["finished_at"]
    # the message was handled (the failure is on the job): nothing is retried or parked
    assert world.jobs.stats.failures == failures
    dlq = world.aws["sqs"].get_queue_url(QueueName=NAMES.jobs_dead_letter_queue)["QueueUrl"]
    assert "Messages" not in world.aws["sqs"].receive_message(QueueUrl=dlq)


def test_a_job_not_finished_by_its_deadline_is_failed_and_never_made_ready(
    world: World, trial: TrialKeys
) -> None:
    job = ask(world, trial, {"format": "stata"})
    deadline = datetime.fromisoformat(job["deadline_at"].replace("Z", "+00:00"))
    created = datetime.fromisoformat(job["created_at"].replace("Z", "+00:00"))
    assert deadline - created == timedelta(minutes=30)

    world.clock.advance(timedelta(minutes=31))  # the function never came (killed, throttled)
    failed = follow(world, trial, export_location(trial, job))
    assert (failed["status"], failed["error"]) == ("failed", "timeout")

    world.jobs.drain()  # the message arrives late: the job stays failed, nothing is written
    assert follow(world, trial, export_location(trial, job)) == {**failed}
    listed = world.aws["s3"].list_object_versions(
        Bucket=NAMES.reports_bucket, Prefix=f"exports/{trial.trial_id}/{job['export_id']}/"
    )
    assert "Versions" not in listed


def test_a_message_that_names_no_job_is_retried_then_parked_in_the_dead_letter_queue(
    world: World,
) -> None:
    sqs = world.aws["sqs"]
    queue = sqs.get_queue_url(QueueName=NAMES.jobs_queue)["QueueUrl"]
    dlq = sqs.get_queue_url(QueueName=NAMES.jobs_dead_letter_queue)["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"kind": "export"}))
    before = world.jobs.stats.failures

    world.jobs.drain()

    assert world.jobs.stats.failures - before == 5  # the template's maxReceiveCount
    (parked,) = sqs.receive_message(QueueUrl=dlq)["Messages"]
    assert json.loads(parked["Body"]) == {"kind": "export"}
    sqs.delete_message(QueueUrl=dlq, ReceiptHandle=parked["ReceiptHandle"])
    # a message for a job that is gone is dropped without a retry
    sqs.send_message(
        QueueUrl=queue,
        MessageBody=json.dumps(
            {"trial_id": "gone", "kind": "export", "job_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}
        ),
    )
    failures = world.jobs.stats.failures
    world.jobs.drain()
    assert world.jobs.stats.failures == failures


# -- what fits a synchronous answer ---------------------------------------------------------


def limited(world: World, limits: SyncLimits) -> TestClient:
    """The API of the same world with small synchronous thresholds."""
    container = build(
        settings_for_tests(sync_limits=limits), clock=world.clock, adapters=world.adapters
    )
    app = behind_http_api(create_app(container), allowed_origins="")
    return TestClient(app, raise_server_exceptions=False)


def test_export_csv_answers_413_pointing_to_the_job_route_past_its_threshold(
    world: World, trial: TrialKeys
) -> None:
    scores = len(world.stores.scores.list_scores(trial.trial_id))  # 6 score items
    participants = 3
    base = f"/v1/trials/{trial.trial_id}/export.csv"
    at_limit = limited(
        world,
        SyncLimits(
            long_export_max_scores=scores,
            wide_export_max_scores=scores,
            wide_export_max_participants=participants,
        ),
    )
    for layout in ("long", "wide"):
        r = at_limit.get(f"{base}?layout={layout}", headers=trial.coordinator)
        assert r.status_code == 200, r.text
        assert r.content == sync_export(world, trial, layout)

    over = limited(
        world,
        SyncLimits(
            long_export_max_scores=scores - 1,
            wide_export_max_scores=scores,
            wide_export_max_participants=participants - 1,
        ),
    )
    for layout in ("long", "wide"):
        r = over.get(f"{base}?layout={layout}", headers=trial.coordinator)
        problem = assert_problem(r, 413)
        assert f"POST /v1/trials/{trial.trial_id}/exports" in problem["detail"]
        assert r.headers["link"] == f'</v1/trials/{trial.trial_id}/exports>; rel="alternate"'
        assert SECRET not in r.text

    # the wide export's score bound holds on its own too
    wide_scores = limited(world, SyncLimits(wide_export_max_scores=scores - 1))
    assert_problem(wide_scores.get(f"{base}?layout=wide", headers=trial.coordinator), 413)
    # and the built CSV is measured once more as Lambda would count it (JSON-escaped)
    size = len(
        json.dumps(sync_export(world, trial, "long").decode("utf-8"), ensure_ascii=False).encode()
    )
    assert (
        limited(world, SyncLimits(max_response_bytes=size))
        .get(base, headers=trial.coordinator)
        .status_code
        == 200
    )
    small = limited(world, SyncLimits(max_response_bytes=size - 1))
    assert_problem(small.get(base, headers=trial.coordinator), 413)


def test_the_report_answers_202_with_a_job_past_its_threshold_or_when_asked_to(
    world: World, trial: TrialKeys
) -> None:
    scores = len(world.stores.scores.list_scores(trial.trial_id))
    url = f"/v1/trials/{trial.trial_id}/reports/pre-post"
    fits = limited(world, SyncLimits(report_max_scores=scores, report_max_participants=3))
    r = fits.post(url, headers=trial.coordinator)
    assert r.status_code == 200, r.text
    assert r.json()["trial_id"] == trial.trial_id

    for limits in (
        SyncLimits(report_max_scores=scores - 1),
        SyncLimits(report_max_participants=2),
    ):
        r = limited(world, limits).post(url, headers=trial.coordinator)
        assert r.status_code == 202, r.text
        assert "preference-applied" not in r.headers
        job = r.json()
        assert r.headers["location"] == f"{url}/jobs/{job['job_id']}"
        assert (job["status"], job["report"]) == ("running", url)

    for prefer in ("respond-async", "wait=10, respond-async", "RESPOND-ASYNC;x=1"):
        r = world.client.post(url, headers={**trial.coordinator, "Prefer": prefer})
        assert r.status_code == 202, r.text
        assert r.headers["preference-applied"] == "respond-async"
    assert (
        world.client.post(
            url, headers={**trial.coordinator, "Prefer": "return=minimal"}
        ).status_code
        == 200
    )

    location = r.headers["location"]
    assert follow(world, trial, location)["status"] == "running"
    world.jobs.drain()
    ready = follow(world, trial, location)
    assert ready["status"] == "ready", ready
    names = [f["name"] for f in ready["files"]]
    assert names[0].endswith(".json")
    assert "latest.csv" in names
    assert "hads.svg" in names
    report = fetch(ready["download_url"]).json()
    assert report["trial_id"] == trial.trial_id
    assert report == world.container.reporting.latest(trial.trial_id)
    assert REASON not in json.dumps(report)
    # the report route serves what the job published
    served = world.client.get(url, headers=trial.coordinator).json()
    assert served["generated_at"] == report["generated_at"]
    assert_problem(
        world.client.get(f"{url}/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV", headers=trial.coordinator), 404
    )


def test_the_summary_answers_413_pointing_to_the_paged_participants_when_it_would_not_fit(
    world: World, trial: TrialKeys
) -> None:
    url = f"/v1/trials/{trial.trial_id}/summary"
    served = world.client.get(url, headers=trial.coordinator)
    assert served.status_code == 200, served.text
    fits = limited(world, SyncLimits(max_response_bytes=len(served.content)))
    again = fits.get(url, headers=trial.coordinator)
    assert again.status_code == 200, again.text
    assert again.json()["aggregates"] == served.json()["aggregates"]

    over = limited(world, SyncLimits(max_response_bytes=len(served.content) - 1))
    r = over.get(url, headers=trial.coordinator)
    problem = assert_problem(r, 413)
    participants = f"/v1/trials/{trial.trial_id}/participants"
    assert participants in problem["detail"]
    assert participants in r.headers["link"]


def test_the_published_report_answers_413_pointing_to_its_job_when_it_would_not_fit(
    world: World,
) -> None:
    keys = seeded(world)
    url = f"/v1/trials/{keys.trial_id}/reports/pre-post"
    assert world.client.post(url, headers=keys.coordinator).status_code == 200
    served = world.client.get(url, headers=keys.coordinator)
    assert served.status_code == 200, served.text

    fits = limited(world, SyncLimits(max_response_bytes=len(served.content)))
    assert fits.get(url, headers=keys.coordinator).json() == served.json()
    over = limited(world, SyncLimits(max_response_bytes=len(served.content) // 2))
    r = over.get(url, headers=keys.coordinator)
    problem = assert_problem(r, 413)
    assert "Prefer: respond-async" in problem["detail"]
    assert r.headers["link"] == f'<{url}>; rel="alternate"'
    # and the job it points to hands the same report over as a download
    job = over.post(url, headers={**keys.coordinator, "Prefer": "respond-async"})
    assert job.status_code == 202, job.text
    world.jobs.drain()
    ready = follow(world, keys, job.headers["location"])
    assert fetch(ready["download_url"]).json() == world.container.reporting.latest(keys.trial_id)


# -- paging the alert log -------------------------------------------------------------------


def test_the_alert_log_is_paged_with_a_cursor(world: World) -> None:
    keys = new_trial(world, participants=("P01", "P02", "P03"))
    for pid in ("P01", "P02", "P03"):
        post(world, keys, submission(pid, "fscrs", responses=fscrs(4)))
    world.pump.drain()
    url = f"/v1/trials/{keys.trial_id}/alerts"

    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        query = f"?limit=2&cursor={cursor}" if cursor else "?limit=2"
        page = world.client.get(url + query, headers=keys.coordinator).json()
        assert len(page["alerts"]) <= 2
        seen += [a["participant_id"] for a in page["alerts"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["P01", "P02", "P03"]
    assert pages == 2
    whole = world.client.get(url, headers=keys.coordinator).json()
    assert [a["participant_id"] for a in whole["alerts"]] == seen
    assert whole["next_cursor"] is None
    problem = assert_problem(world.client.get(f"{url}?cursor=abc", headers=keys.coordinator), 422)
    assert problem["errors"][0]["loc"] == ["query", "cursor"]
    exports_cursor = "eyJwayI6IkpPQlMjeCIsInNrIjoiZXhwb3J0IzEifQ"  # another listing's key
    assert_problem(
        world.client.get(f"{url}?cursor={exports_cursor}", headers=keys.coordinator), 422
    )


# -- erasure ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Versions:
    keys: list[str]
    bodies: list[bytes]


def stored(world: World, prefix: str) -> Versions:
    s3 = world.aws["s3"]
    found = s3.list_object_versions(Bucket=NAMES.reports_bucket, Prefix=prefix).get("Versions", [])
    return Versions(
        keys=[v["Key"] for v in found],
        bodies=[
            s3.get_object(Bucket=NAMES.reports_bucket, Key=v["Key"], VersionId=v["VersionId"])[
                "Body"
            ].read()
            for v in found
        ],
    )


def test_erasure_deletes_every_export_file_that_names_the_participant_and_fails_its_export(
    world: World,
) -> None:
    keys = seeded(world)
    other = seeded(world)  # another trial's exports are not touched
    ready = finished(world, keys, ask(world, keys, {"format": "spss"}))
    deidentified = finished(
        world, keys, ask(world, keys, {"format": "csv-wide", "deidentified": True})
    )
    kept = finished(world, other, ask(world, other, {"format": "csv-long"}))
    running = ask(world, keys, {"format": "r"})  # asked for, not yet run
    prefix = f"exports/{keys.trial_id}/"
    assert any(b"P01" in body for body in stored(world, prefix).bodies)

    r = world.client.delete(
        f"/v1/trials/{keys.trial_id}/participants/P01", headers=keys.coordinator
    )
    assert r.status_code == 200, r.text
    # each export's CSV names P01 (the syntax files name nobody)
    assert r.json()["export_files_deleted"] == 2

    world.jobs.drain()  # the export asked for before the erasure runs now
    assert not any(re.search(rb"\bP01\b", body) for body in stored(world, prefix).bodies)
    for job in (ready, deidentified, running):
        after = follow(world, keys, export_location(keys, job))
        assert (after["status"], after["error"]) == ("failed", "participant_erased"), job
        assert after["files"] == []
    assert stored(world, f"{prefix}{running['export_id']}/").keys == []
    untouched = follow(world, other, export_location(other, kept))
    assert untouched["status"] == "ready"
    assert b"P01" in fetch(untouched["download_url"]).content
    # the syntax file of the erased export named no participant and may stay
    assert stored(world, f"{prefix}{ready['export_id']}/").keys == [
        f"{prefix}{ready['export_id']}/{keys.trial_id}-long.sps"
    ]


def test_erasing_from_a_trial_too_large_to_report_synchronously_leaves_the_reports_to_a_job(
    world: World,
) -> None:
    keys = seeded(world)
    report_url = f"/v1/trials/{keys.trial_id}/reports/pre-post"
    assert world.client.post(report_url, headers=keys.coordinator).status_code == 200
    world.clock.advance(timedelta(days=1))  # a second dated copy
    assert world.client.post(report_url, headers=keys.coordinator).status_code == 200
    export = finished(world, keys, ask(world, keys, {"format": "csv-long"}))
    reports, exports = f"reports/{keys.trial_id}/", f"exports/{keys.trial_id}/"
    assert any(re.search(rb"\bP01\b", body) for body in stored(world, reports).bodies)
    scores = len(world.stores.scores.list_scores(keys.trial_id))
    large = limited(world, SyncLimits(report_max_scores=scores - 1))

    r = large.delete(f"/v1/trials/{keys.trial_id}/participants/P01", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    erased = r.json()
    # their data went within the request; the reports and export files wait for the job
    assert erased["submissions_deleted"] == 3
    assert (erased["report_versions_deleted"], erased["export_files_deleted"]) == (None, None)
    assert world.stores.scores.list_scores(keys.trial_id, "P01") == []
    location = f"{report_url}/jobs/{erased['report_job_id']}"
    assert follow(world, keys, location)["status"] == "running"
    assert any(re.search(rb"\bP01\b", body) for body in stored(world, reports).bodies)

    world.jobs.drain()
    assert follow(world, keys, location)["status"] == "ready"
    assert stored(world, reports).bodies, "the republished report is kept"
    for prefix in (reports, exports):
        bodies = stored(world, prefix).bodies
        assert not any(re.search(rb"\bP01\b", body) for body in bodies), prefix
    latest = world.client.get(report_url, headers=keys.coordinator)
    assert latest.status_code == 200
    assert "P01" not in latest.text
    assert "P02" in latest.text
    after = follow(world, keys, export_location(keys, export))
    assert (after["status"], after["error"]) == ("failed", "participant_erased")
    events = world.client.get(f"/v1/trials/{keys.trial_id}/audit", headers=keys.coordinator).json()[
        "events"
    ]
    (done,) = [e for e in events if e["action"] == "participant.erase.reports"]
    assert done["targets"]["participant_id"] == "P01"
    assert done["targets"]["job_id"] == erased["report_job_id"]
    # dated copies (two), latest twice, the CSV and figures named P01; the export's CSV did
    assert int(done["targets"]["report_versions_deleted"]) >= 4
    assert done["targets"]["export_files_deleted"] == "1"


def test_only_a_coordinator_of_the_trial_may_ask_for_or_read_its_jobs(
    world: World, trial: TrialKeys
) -> None:
    job = ask(world, trial, {"format": "csv-long"})
    other = new_trial(world, participants=())
    url = f"/v1/trials/{trial.trial_id}/exports"
    for headers, status in (
        (trial.submitter, 403),
        (trial.admin, 403),
        (other.coordinator, 403),
        ({}, 401),
    ):
        assert_problem(world.client.post(url, headers=headers, json={"format": "csv-long"}), status)
        assert_problem(world.client.get(url, headers=headers), status)
        assert_problem(world.client.get(f"{url}/{job['export_id']}", headers=headers), status)
    # another trial's coordinator cannot reach it through their own trial's path either
    assert_problem(
        world.client.get(
            f"/v1/trials/{other.trial_id}/exports/{job['export_id']}", headers=other.coordinator
        ),
        404,
    )
    world.jobs.drain()
