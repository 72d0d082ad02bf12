"""Submitting: idempotent replays, concurrent duplicates, corrections, the recorded version.

What is stored is read back from the submissions table itself (a Query on the participant's
partition), so "stored once" means one item, not one 201. Building the moto world is most of
a test's cost, so this module builds one and gives every test a trial of its own (`tid`).
"""

from __future__ import annotations

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from conftest import (
    HADS_EXAMPLE,
    NAMES,
    World,
    assert_problem,
    make_trial,
    submission,
)


@pytest.fixture
def world(module_world: World) -> World:
    """This module's tests share one moto world; each uses trial ids of its own."""
    return module_world


_trial_numbers = itertools.count(1)


@pytest.fixture
def tid() -> str:
    """A trial id of this test's own."""
    return f"trial-{next(_trial_numbers):03d}"


def stored_submissions(
    aws: dict[str, Any], trial_id: str, participant_id: str = "P01"
) -> list[dict[str, Any]]:
    """Every submission item of one participant, oldest slot number first."""
    items = aws["dynamodb"].query(
        TableName=NAMES.submissions_table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"T#{trial_id}#P#{participant_id}"}},
        ConsistentRead=True,
    )["Items"]
    return [
        {
            "sk": i["sk"]["S"],
            "submission_id": i["submission_id"]["S"],
            "supersedes": i.get("supersedes", {}).get("S"),
            "instrument_version": i["instrument_version"]["S"],
        }
        for i in items
    ]


def idempotency_records(aws: dict[str, Any]) -> list[Any]:
    # the test may Scan; the idempotency record's key is a hash only the service knows
    return [
        i
        for i in aws["dynamodb"].scan(TableName=NAMES.main_table, ConsistentRead=True)["Items"]
        if i["pk"]["S"].startswith("IDEM#")
    ]


def post_concurrently(
    client: Any, url: str, headers: dict[str, str], body: Any, n: int = 20
) -> list[Any]:
    barrier = threading.Barrier(n)

    def post(_: int) -> Any:
        barrier.wait()
        return client.post(url, headers=headers, json=body)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(post, range(n)))


def counting_score(scores: dict[str, Any], timepoint: str = "week-1") -> dict[str, Any]:
    [entry] = [t for t in scores["timepoints"] if t["timepoint"] == timepoint]
    [counting] = [s for s in entry["submissions"] if s["counts"]]
    return counting


def hads_week_1(summary: dict[str, Any], subscale: str) -> dict[str, Any]:
    return next(
        a
        for a in summary["aggregates"]
        if (a["instrument"], a["timepoint"], a["subscale"]) == ("hads", "week-1", subscale)
    )


# -- idempotency --------------------------------------------------------------------------


def test_replaying_an_idempotency_key_with_the_same_body_returns_the_first_answer_and_stores_once(
    client, container, aws, tid
):
    keys = make_trial(client, container, tid)
    claimed_before = len(idempotency_records(aws))
    headers = {**keys.submitter, "Idempotency-Key": "6f1c2a7e-replay"}
    first = client.post(f"/v1/trials/{tid}/submissions", headers=headers, json=submission())
    assert first.status_code == 201, first.text
    again = client.post(f"/v1/trials/{tid}/submissions", headers=headers, json=submission())
    assert again.status_code in (200, 201), again.text
    assert again.json() == first.json()
    assert [s["submission_id"] for s in stored_submissions(aws, tid)] == [
        first.json()["submission_id"]
    ]
    assert len(idempotency_records(aws)) == claimed_before + 1


def test_the_same_body_under_another_idempotency_key_is_a_duplicate(client, container, aws, tid):
    keys = make_trial(client, container, tid)
    first = client.post(
        f"/v1/trials/{tid}/submissions",
        headers={**keys.submitter, "Idempotency-Key": "a"},
        json=submission(),
    )
    assert first.status_code == 201, first.text
    other = client.post(
        f"/v1/trials/{tid}/submissions",
        headers={**keys.submitter, "Idempotency-Key": "b"},
        json=submission(),
    )
    body = assert_problem(other, 409)
    assert first.json()["submission_id"] in body["detail"]
    assert len(stored_submissions(aws, tid)) == 1


def test_reusing_an_idempotency_key_with_another_body_is_a_conflict_and_stores_nothing(
    client, container, aws, tid
):
    keys = make_trial(client, container, tid)
    headers = {**keys.submitter, "Idempotency-Key": "reused"}
    first = client.post(f"/v1/trials/{tid}/submissions", headers=headers, json=submission())
    assert first.status_code == 201, first.text
    changed = submission(responses={**HADS_EXAMPLE, "1": 0})
    assert_problem(client.post(f"/v1/trials/{tid}/submissions", headers=headers, json=changed), 409)
    elsewhere = submission(timepoint="week-12")
    assert_problem(
        client.post(f"/v1/trials/{tid}/submissions", headers=headers, json=elsewhere), 409
    )
    assert [s["submission_id"] for s in stored_submissions(aws, tid)] == [
        first.json()["submission_id"]
    ]


def test_twenty_concurrent_posts_with_one_idempotency_key_store_one_submission(
    client, container, aws, tid
):
    keys = make_trial(client, container, tid)
    headers = {**keys.submitter, "Idempotency-Key": "concurrent-1"}
    responses = post_concurrently(client, f"/v1/trials/{tid}/submissions", headers, submission())
    assert all(r.status_code in (200, 201) for r in responses), [r.text for r in responses]
    assert any(r.status_code == 201 for r in responses)
    ids = {r.json()["submission_id"] for r in responses}
    assert len(ids) == 1
    assert [s["submission_id"] for s in stored_submissions(aws, tid)] == list(ids)


def test_twenty_concurrent_identical_posts_without_a_key_store_one_and_refuse_nineteen(
    client, container, aws, tid
):
    keys = make_trial(client, container, tid)
    responses = post_concurrently(
        client, f"/v1/trials/{tid}/submissions", keys.submitter, submission()
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * 19, [r.text for r in responses]
    [accepted] = [r for r in responses if r.status_code == 201]
    for refused in (r for r in responses if r.status_code == 409):
        assert_problem(refused, 409)
    assert [s["submission_id"] for s in stored_submissions(aws, tid)] == [
        accepted.json()["submission_id"]
    ]


# -- corrections --------------------------------------------------------------------------


def test_a_correction_keeps_both_submissions_and_only_the_newer_counts(
    client, container, aws, pump, tid
):
    keys = make_trial(client, container, tid)
    original = client.post(
        f"/v1/trials/{tid}/submissions", headers=keys.submitter, json=submission()
    )
    assert original.status_code == 201, original.text
    original_id = original.json()["submission_id"]
    pump.drain()
    before = client.get(f"/v1/trials/{tid}/summary", headers=keys.coordinator).json()
    assert (hads_week_1(before, "anxiety")["n"], hads_week_1(before, "anxiety")["mean"]) == (1, 12)

    # item 1 (anxiety) 2 -> 0 and item 2 (depression) 0 -> 3: anxiety 10, depression 11
    corrected = submission(responses={**HADS_EXAMPLE, "1": 0, "2": 3}, supersedes=original_id)
    r = client.post(f"/v1/trials/{tid}/submissions", headers=keys.submitter, json=corrected)
    assert r.status_code == 201, r.text
    correction_id = r.json()["submission_id"]
    assert correction_id != original_id
    pump.drain()

    stored = stored_submissions(aws, tid)
    assert [(s["submission_id"], s["supersedes"]) for s in stored] == [
        (original_id, None),
        (correction_id, original_id),
    ]
    scores = client.get(
        f"/v1/trials/{tid}/participants/P01/scores", headers=keys.coordinator
    ).json()
    [week_1] = [t for t in scores["timepoints"] if t["timepoint"] == "week-1"]
    by_id = {s["submission_id"]: s for s in week_1["submissions"]}
    assert set(by_id) == {original_id, correction_id}
    assert by_id[original_id]["counts"] is False
    assert by_id[original_id]["superseded_by"] == correction_id
    assert by_id[original_id]["scores"]["anxiety"]["score"] == 12
    assert by_id[correction_id]["counts"] is True
    assert by_id[correction_id]["supersedes"] == original_id
    assert counting_score(scores)["scores"]["anxiety"]["score"] == 10
    assert counting_score(scores)["scores"]["depression"]["score"] == 11

    summary = client.get(f"/v1/trials/{tid}/summary", headers=keys.coordinator).json()
    assert (hads_week_1(summary, "anxiety")["n"], hads_week_1(summary, "anxiety")["mean"]) == (
        1,
        10,
    )
    assert hads_week_1(summary, "depression")["mean"] == 11


def test_a_correction_of_a_correction_counts_the_newest(client, container, aws, pump, tid):
    keys = make_trial(client, container, tid)
    first = client.post(
        f"/v1/trials/{tid}/submissions", headers=keys.submitter, json=submission()
    ).json()
    second = client.post(
        f"/v1/trials/{tid}/submissions",
        headers=keys.submitter,
        json=submission(responses={**HADS_EXAMPLE, "1": 0}, supersedes=first["submission_id"]),
    ).json()
    third = client.post(
        f"/v1/trials/{tid}/submissions",
        headers=keys.submitter,
        json=submission(responses={**HADS_EXAMPLE, "1": 3}, supersedes=second["submission_id"]),
    )
    assert third.status_code == 201, third.text
    pump.drain()
    assert len(stored_submissions(aws, tid)) == 3
    summary = client.get(f"/v1/trials/{tid}/summary", headers=keys.coordinator).json()
    assert (hads_week_1(summary, "anxiety")["n"], hads_week_1(summary, "anxiety")["mean"]) == (
        1,
        13,
    )


def test_superseding_a_submission_that_is_not_the_newest_is_a_conflict(client, container, aws, tid):
    keys = make_trial(client, container, tid)
    first = client.post(
        f"/v1/trials/{tid}/submissions", headers=keys.submitter, json=submission()
    ).json()
    second = client.post(
        f"/v1/trials/{tid}/submissions",
        headers=keys.submitter,
        json=submission(responses={**HADS_EXAMPLE, "1": 0}, supersedes=first["submission_id"]),
    )
    assert second.status_code == 201, second.text
    late = submission(responses={**HADS_EXAMPLE, "1": 1}, supersedes=first["submission_id"])
    body = assert_problem(
        client.post(f"/v1/trials/{tid}/submissions", headers=keys.submitter, json=late), 409
    )
    assert second.json()["submission_id"] in body["detail"]
    assert len(stored_submissions(aws, tid)) == 2


@pytest.mark.parametrize("slot_taken", [False, True], ids=["empty slot", "taken slot"])
def test_superseding_a_submission_that_does_not_exist_is_a_validation_failure(
    client, container, aws, slot_taken, tid
):
    keys = make_trial(client, container, tid)
    if slot_taken:
        assert (
            client.post(
                f"/v1/trials/{tid}/submissions", headers=keys.submitter, json=submission()
            ).status_code
            == 201
        )
    before = stored_submissions(aws, tid)
    body = submission(supersedes="01ZZZZZZZZZZZZZZZZZZZZZZZZ")
    problem = assert_problem(
        client.post(f"/v1/trials/{tid}/submissions", headers=keys.submitter, json=body), 422
    )
    assert [e["loc"] for e in problem["errors"]] == [["body", "supersedes"]]
    assert stored_submissions(aws, tid) == before


def test_a_correction_may_not_name_a_submission_of_another_slot(client, container, aws, tid):
    keys = make_trial(client, container, tid)
    week_12 = client.post(
        f"/v1/trials/{tid}/submissions",
        headers=keys.submitter,
        json=submission(timepoint="week-12"),
    ).json()
    client.post(f"/v1/trials/{tid}/submissions", headers=keys.submitter, json=submission())
    body = submission(responses={**HADS_EXAMPLE, "1": 0}, supersedes=week_12["submission_id"])
    problem = assert_problem(
        client.post(f"/v1/trials/{tid}/submissions", headers=keys.submitter, json=body), 422
    )
    assert [e["loc"] for e in problem["errors"]] == [["body", "supersedes"]]
    assert len(stored_submissions(aws, tid)) == 2


def test_a_replayed_correction_returns_the_first_answer(client, container, aws, tid):
    keys = make_trial(client, container, tid)
    first = client.post(
        f"/v1/trials/{tid}/submissions", headers=keys.submitter, json=submission()
    ).json()
    headers = {**keys.submitter, "Idempotency-Key": "fix-1"}
    body = submission(responses={**HADS_EXAMPLE, "1": 0}, supersedes=first["submission_id"])
    correction = client.post(f"/v1/trials/{tid}/submissions", headers=headers, json=body)
    assert correction.status_code == 201, correction.text
    again = client.post(f"/v1/trials/{tid}/submissions", headers=headers, json=body)
    assert again.status_code in (200, 201), again.text
    assert again.json()["submission_id"] == correction.json()["submission_id"]
    assert len(stored_submissions(aws, tid)) == 2


def test_a_correction_replayed_after_a_newer_correction_returns_its_first_answer(
    client, container, aws, tid
):
    keys = make_trial(client, container, tid)
    first = client.post(
        f"/v1/trials/{tid}/submissions", headers=keys.submitter, json=submission()
    ).json()
    fix = {**keys.submitter, "Idempotency-Key": "fix-1"}
    body = submission(responses={**HADS_EXAMPLE, "1": 0}, supersedes=first["submission_id"])
    correction = client.post(f"/v1/trials/{tid}/submissions", headers=fix, json=body)
    assert correction.status_code == 201, correction.text
    newer = submission(
        responses={**HADS_EXAMPLE, "1": 1}, supersedes=correction.json()["submission_id"]
    )
    r = client.post(f"/v1/trials/{tid}/submissions", headers=keys.submitter, json=newer)
    assert r.status_code == 201, r.text
    # a client retrying its first correction (same key and body) gets its own answer back
    again = client.post(f"/v1/trials/{tid}/submissions", headers=fix, json=body)
    assert again.status_code in (200, 201), again.text
    assert again.json() == correction.json()
    assert len(stored_submissions(aws, tid)) == 3
    # the same key with another body is still a conflict
    other = {**body, "responses": {**HADS_EXAMPLE, "1": 3}}
    r = client.post(f"/v1/trials/{tid}/submissions", headers=fix, json=other)
    assert r.status_code == 409, r.text


# -- versions -----------------------------------------------------------------------------


def test_an_omitted_instrument_version_records_the_current_version(
    client, container, aws, pump, tid
):
    keys = make_trial(client, container, tid)
    body = submission()
    del body["instrument_version"]
    r = client.post(f"/v1/trials/{tid}/submissions", headers=keys.submitter, json=body)
    assert r.status_code == 201, r.text
    current = client.get("/v1/instruments/hads").json()["version"]
    assert [s["instrument_version"] for s in stored_submissions(aws, tid)] == [current]
    pump.drain()
    scores = client.get(
        f"/v1/trials/{tid}/participants/P01/scores", headers=keys.coordinator
    ).json()
    assert counting_score(scores)["instrument_version"] == current


def test_a_coordinator_may_submit_on_behalf_of_a_participant(client, container, aws, tid):
    keys = make_trial(client, container, tid)
    r = client.post(f"/v1/trials/{tid}/submissions", headers=keys.coordinator, json=submission())
    assert r.status_code == 201, r.text
    assert len(stored_submissions(aws, tid)) == 1


def test_a_completed_participant_may_still_send_a_follow_up(client, container, aws, tid):
    keys = make_trial(client, container, tid)
    r = client.patch(
        f"/v1/trials/{tid}/participants/P01",
        headers=keys.coordinator,
        json={"status": "completed"},
    )
    assert r.status_code == 200, r.text
    r = client.post(
        f"/v1/trials/{tid}/submissions",
        headers=keys.submitter,
        json=submission(timepoint="follow-up"),
    )
    assert r.status_code == 201, r.text
    assert len(stored_submissions(aws, tid)) == 1
