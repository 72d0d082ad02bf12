"""The pre/post report on moto: who is compared, who is not and why, and what it costs to read.

Expected values are worked out by hand from the posted answers (HADS anxiety = items 1, 3, 5,
7, 9, 11, 13; depression = the even items; up to 3 of 7 missing are prorated).
"""

from __future__ import annotations

import json
import math
import pathlib
from typing import Any

import pytest

from conftest import NAMES, bearer, make_trial, submission

TRIAL = "cmt-pilot"
EVENTS = pathlib.Path(__file__).resolve().parents[2] / "events"


def hads(anxiety: list[int | None], depression: list[int | None]) -> dict[str, int | None]:
    """HADS responses from the seven anxiety (odd) and seven depression (even) items."""
    responses: dict[str, int | None] = {}
    for n, value in enumerate(anxiety):
        responses[str(2 * n + 1)] = value
    for n, value in enumerate(depression):
        responses[str(2 * n + 2)] = value
    return responses


FLAT = [1] * 7  # depression never changes: every difference is zero


def post(client, keys, body: dict[str, Any]) -> str:
    r = client.post(f"/v1/trials/{TRIAL}/submissions", headers=keys.submitter, json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["submission_id"])


def set_status(client, keys, pid: str, status: str, reason: str | None = None) -> None:
    r = client.patch(
        f"/v1/trials/{TRIAL}/participants/{pid}",
        headers=keys.coordinator,
        json={"status": status, "reason": reason},
    )
    assert r.status_code == 200, r.text


@pytest.fixture
def trial(client, container, pump):
    keys = make_trial(client, container, participants=("P01", "P02", "P03", "P04", "P05", "P06"))
    # P01 21 -> 7, and the only one with FSCRS at both timepoints
    post(client, keys, submission("P01", "hads", "week-1", hads([3] * 7, FLAT)))
    post(client, keys, submission("P01", "hads", "week-12", hads([1] * 7, FLAT)))
    fscrs = {str(i): 2 for i in range(1, 23)}
    post(client, keys, submission("P01", "fscrs", "week-1", fscrs))
    post(client, keys, submission("P01", "fscrs", "week-12", {**fscrs, "9": 1}))
    # P02 14 -> 14, corrected to 14 -> 0: the correction counts
    post(client, keys, submission("P02", "hads", "week-1", hads([2] * 7, FLAT)))
    first = post(client, keys, submission("P02", "hads", "week-12", hads([2] * 7, FLAT)))
    post(
        client,
        keys,
        submission("P02", "hads", "week-12", hads([0] * 7, FLAT), supersedes=first),
    )
    # P03 18 -> two items skipped, 5 answered summing to 5: prorated 5 / 5 * 7 = 7
    post(client, keys, submission("P03", "hads", "week-1", hads([3, 3, 3, 3, 3, 3, 0], FLAT)))
    post(
        client,
        keys,
        submission("P03", "hads", "week-12", hads([1, 1, 1, None, None, 1, 1], FLAT)),
    )
    # P04 10 -> four of seven anxiety items skipped: not scorable
    post(client, keys, submission("P04", "hads", "week-1", hads([2, 2, 2, 2, 2, 0, 0], FLAT)))
    post(
        client,
        keys,
        submission("P04", "hads", "week-12", hads([None, None, None, None, 1, 1, 1], FLAT)),
    )
    # P05 never came back
    post(client, keys, submission("P05", "hads", "week-1", hads([2] * 7, FLAT)))
    # P06 answered both, then withdrew
    post(client, keys, submission("P06", "hads", "week-1", hads([3] * 7, FLAT)))
    post(client, keys, submission("P06", "hads", "week-12", hads([3] * 7, FLAT)))
    pump.drain()
    assert pump.stats.failures == 0
    set_status(client, keys, "P06", "withdrawn", "moved away")
    set_status(client, keys, "P01", "completed")
    return keys


def row_of(report: dict[str, Any], instrument: str, subscale: str) -> dict[str, Any]:
    return next(
        r for r in report["results"] if (r["instrument"], r["subscale"]) == (instrument, subscale)
    )


def test_the_report_compares_completers_and_says_why_everyone_else_is_left_out(aws, client, trial):
    r = client.post(f"/v1/trials/{TRIAL}/reports/pre-post", headers=trial.coordinator)
    assert r.status_code == 200, r.text
    report = r.json()

    assert report["participants"]["enrolled"] == 6
    assert report["participants"]["withdrawn"] == 1
    # completers: P01 (status completed) and P02-P04 (both comparison timepoints scored);
    # not P05 (no week-12) nor the withdrawn P06
    assert report["participants"]["completed"] == 4
    anxiety = row_of(report, "hads", "anxiety")
    # pairs P01 21 -> 7, P02 14 -> 0 (the correction), P03 18 -> 7 (prorated)
    assert anxiety["n_pairs"] == 3
    assert anxiety["pre"]["mean"] == pytest.approx((21 + 14 + 18) / 3)
    assert anxiety["post"]["mean"] == pytest.approx((7 + 0 + 7) / 3)
    assert anxiety["post"]["median"] == 7
    # d = -14, -14, -11: ranks 2.5, 2.5, 1; one tie of two
    z = (0 - 3 * 4 / 4) / math.sqrt(3 * 4 * 7 / 24 - (2**3 - 2) / 48)
    assert anxiety["wilcoxon"]["t"] == 0
    assert anxiety["wilcoxon"]["w_minus"] == 6
    assert anxiety["wilcoxon"]["z"] == pytest.approx(z)
    assert anxiety["wilcoxon"]["p_two_sided"] == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))
    # v1.1: the exact p is given with ties too; only the all-negative and all-positive of
    # the 8 sign patterns are as extreme as T = 0 (R coin 1.4.2: 0.25, see the unit tests)
    assert anxiety["wilcoxon"]["p_exact_two_sided"] == 0.25
    assert anxiety["wilcoxon"]["p_method_primary"] == "exact"
    assert anxiety["direction"] == "decrease"
    excluded = {e["participant_id"]: e["reason"] for e in anxiety["excluded"]}
    assert set(excluded) == {"P04", "P05", "P06"}
    # the withdrawal reason is free text: the report says "withdrawn" and nothing more
    assert excluded["P06"] == "withdrawn"
    assert "moved away" not in json.dumps(report)
    # P03's week-12 anxiety was prorated; P06 (withdrawn, 21 -> 21) joins the sensitivity pairs
    assert anxiety["prorated_pairs"] == 1
    assert (anxiety["sensitivity"]["n_pairs"], anxiety["sensitivity"]["withdrawn_pairs"]) == (4, 1)
    assert anxiety["reliable_change"]["basis"] == "sample"  # no published reference SD
    # HADS anxiety has the report's only p (depression has no non-zero difference, the
    # FSCRS rows one pair each), so Holm's adjustment leaves it as it is
    assert anxiety["p_holm"] == 0.25
    assert "too many items skipped" in excluded["P04"]
    assert "4 of 7" in excluded["P04"]
    assert "no scored week-12 submission" in excluded["P05"]

    # depression never moved: every difference is zero, so no Z, with the reason
    depression = row_of(report, "hads", "depression")
    assert depression["n_pairs"] == 4  # P04's depression items were answered
    assert depression["wilcoxon"]["n_nonzero"] == 0
    assert depression["wilcoxon"]["z"] is None
    assert depression["direction"] == "none"
    assert depression["reason"] == "no non-zero differences"

    # one FSCRS pair: the row is there, its statistics are null, and it says why
    hated = row_of(report, "fscrs", "hated_self")
    assert hated["n_pairs"] == 1
    assert hated["wilcoxon"] is None
    assert hated["effect_size_r"] is None
    assert hated["reason"] == "fewer than 2 pairs"
    assert hated["pre"]["mean"] == 10
    assert hated["post"]["mean"] == 9
    assert "P06" in {e["participant_id"] for e in hated["excluded"]}

    # an instrument nobody answered still has its rows
    oas = row_of(report, "oas", "total")
    assert oas["n_pairs"] == 0
    assert oas["wilcoxon"] is None
    assert oas["reason"]
    assert len(oas["excluded"]) == 6

    published = json.loads(
        aws["s3"]
        .get_object(Bucket=NAMES.reports_bucket, Key=f"reports/{TRIAL}/pre-post/latest.json")[
            "Body"
        ]
        .read()
    )
    assert published == report
    again = client.get(f"/v1/trials/{TRIAL}/reports/pre-post", headers=trial.coordinator)
    assert again.status_code == 200
    assert again.json() == report


def test_the_report_reads_the_trial_with_two_queries_and_never_a_scan(world, container, trial):
    calls: list[str] = []

    def count(event_name: str, **_: Any) -> None:
        calls.append(event_name.rsplit(".", 1)[-1])

    target = container.trials.get(TRIAL)
    world.adapters.dynamodb.meta.events.register("before-call.dynamodb.*", count)
    try:
        container.reporting.publish(target)
    finally:
        world.adapters.dynamodb.meta.events.unregister("before-call.dynamodb.*", count)

    assert "Scan" not in calls
    # one page of participants (P#) and one page of scores (SC#) for a small trial
    assert calls.count("Query") == 2
    assert calls.count("GetItem") == 0
    assert set(calls) <= {"Query", "PutItem"}  # the PutItem is the audit record


def test_there_is_no_report_before_one_is_published(client, trial):
    r = client.get(f"/v1/trials/{TRIAL}/reports/pre-post", headers=trial.coordinator)
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")


def test_the_nightly_schedule_event_publishes_every_trials_report(aws, client, container, trial):
    from handlers import prepost_report  # the deployed module (a cold start on moto)

    admin = container.keys.create(role="admin", trial_id="*", label="test").api_key
    make_trial(client, container, trial_id="cmt-second", admin_key=admin)
    event = json.loads((EVENTS / "prepost_report_schedule.json").read_text())

    result = prepost_report.make_handler(container)(event, None)

    published = {p["trial_id"]: p["json"] for p in result["published"]}
    assert published == {
        t: f"s3://{NAMES.reports_bucket}/reports/{t}/pre-post/latest.json"
        for t in (TRIAL, "cmt-second")
    }
    for trial_id in published:
        body = (
            aws["s3"]
            .get_object(
                Bucket=NAMES.reports_bucket, Key=f"reports/{trial_id}/pre-post/latest.json"
            )["Body"]
            .read()
        )
        assert json.loads(body)["trial_id"] == trial_id
    nightly = json.loads(
        aws["s3"]
        .get_object(Bucket=NAMES.reports_bucket, Key=f"reports/{TRIAL}/pre-post/latest.json")[
            "Body"
        ]
        .read()
    )
    assert row_of(nightly, "hads", "anxiety")["n_pairs"] == 3


def test_a_trial_with_its_own_protocol_compares_its_own_timepoints(client, container, pump):
    admin = container.keys.create(role="admin", trial_id="*", label="test").api_key
    keys = make_trial(
        client, container, trial_id="cmt-short", participants=("A1", "A2"), admin_key=admin
    )
    protocol = {
        "timepoints": ["baseline", "end"],
        "schedule": {"hads": ["baseline", "end"], "oas": ["baseline"]},
        "comparison": {"pre": "baseline", "post": "end"},
        "timing": {
            "baseline": {"offset_days": 0, "window_days": 3},
            "end": {"offset_days": 56, "window_days": 7},
        },
    }
    r = client.patch(
        "/v1/trials/cmt-short",
        headers=bearer(admin),
        json={
            "title": "Short",
            "protocol": protocol,
            # the default FSCRS rule would name an instrument this protocol never schedules
            "alert_rules": [{"instrument": "hads", "item": 9, "at_least": 3}],
        },
    )
    assert r.status_code == 200, r.text
    for pid, pre, after in (("A1", [3] * 7, [1] * 7), ("A2", [2] * 7, [1] * 7)):
        for timepoint, anxiety in (("baseline", pre), ("end", after)):
            body = submission(pid, "hads", timepoint, hads(anxiety, FLAT))
            r = client.post("/v1/trials/cmt-short/submissions", headers=keys.submitter, json=body)
            assert r.status_code == 201, r.text
    pump.drain()

    r = client.post("/v1/trials/cmt-short/reports/pre-post", headers=keys.coordinator)

    assert r.status_code == 200, r.text
    report = r.json()
    assert report["comparison"] == {"pre": "baseline", "post": "end"}
    # only HADS is scheduled at both timepoints
    assert {row["instrument"] for row in report["results"]} == {"hads"}
    anxiety = row_of(report, "hads", "anxiety")
    assert anxiety["n_pairs"] == 2
    assert (anxiety["pre"]["mean"], anxiety["post"]["mean"]) == (17.5, 7)
    # d = -14, -7: W- = 3, T = 0; no ties, so the exact p is 2 * 1/4
    assert anxiety["wilcoxon"]["w_minus"] == 3
    assert anxiety["wilcoxon"]["p_exact_two_sided"] == 0.5
