"""End to end on moto: API -> submissions stream -> scoring -> summary -> report -> weekly e-mail.

Every expected number is recomputed here from what the test posted, with item lists typed from
/work/shared/spec/instruments.md and the stdlib (statistics, math), never with our own code.
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import json
import math
import random
import re
import statistics
from collections import Counter
from typing import Any

import pytest
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from conftest import NAMES, REGION, make_trial, submission

TRIAL = "cmt-pilot"
MARKER = "zebra-marker-4f1c9a"

# subscale -> items, and the missing-item allowance (instruments.md)
ITEMS: dict[str, dict[str, list[int]]] = {
    "hads": {"anxiety": [1, 3, 5, 7, 9, 11, 13], "depression": [2, 4, 6, 8, 10, 12, 14]},
    "fscrs": {
        "inadequate_self": [1, 2, 4, 6, 7, 14, 17, 18, 20],
        "hated_self": [9, 10, 12, 15, 22],
        "reassured_self": [3, 5, 8, 11, 13, 16, 19, 21],
    },
    "diary": {"self_criticism": list(range(1, 8)), "self_compassion": list(range(8, 15))},
}


def max_missing(instrument: str, items: list[int]) -> int:
    # HADS: 3 of 7 (half rule); elsewhere 20% of the subscale's items, rounded down, at least 1
    return 3 if instrument == "hads" else max(1, len(items) * 20 // 100)


def expected_score(instrument: str, subscale: str, responses: dict[str, Any]) -> float | None:
    items = ITEMS[instrument][subscale]
    answered = [responses[str(i)] for i in items if responses.get(str(i)) is not None]
    if len(items) - len(answered) > max_missing(instrument, items):
        return None
    return sum(answered) / len(answered) * len(items)


def spss_wilcoxon(pre: list[float], post: list[float]) -> dict[str, Any]:
    """Wilcoxon signed-rank as SPSS reports it (instruments.md, Statistics)."""
    d = [b - a for a, b in zip(pre, post, strict=True) if b - a != 0]
    n = len(d)
    ordered = sorted(abs(x) for x in d)

    def rank(value: float) -> float:
        positions = [i + 1 for i, x in enumerate(ordered) if x == value]
        return sum(positions) / len(positions)

    w_plus = sum(rank(abs(x)) for x in d if x > 0)
    w_minus = sum(rank(abs(x)) for x in d if x < 0)
    t = min(w_plus, w_minus)
    tie_sizes = Counter(ordered).values()
    variance = n * (n + 1) * (2 * n + 1) / 24 - sum(c**3 - c for c in tie_sizes) / 48
    z = (t - n * (n + 1) / 4) / math.sqrt(variance)
    # v1.1: exact p with ties too, over all 2**n sign assignments of the mid-ranks
    # (coin's two-sided definition, P(|W+ - E W+| >= |w+ - E W+|))
    exact = None
    if n:  # this trial has seven participants, so 2**n stays small
        ranks = [rank(abs(x)) for x in d]
        centre = sum(ranks) / 2
        sums = [
            sum(r for r, s in zip(ranks, signs, strict=True) if s)
            for signs in itertools.product((0, 1), repeat=n)
        ]
        exact = sum(1 for s in sums if abs(s - centre) >= abs(w_plus - centre)) / len(sums)
    return {
        "n_nonzero": n,
        "t": t,
        "w_plus": w_plus,
        "w_minus": w_minus,
        "z": z,
        "p_two_sided": math.erfc(abs(z) / math.sqrt(2)),
        "p_exact_two_sided": exact,
    }


def test_the_reference_wilcoxon_of_this_test_matches_the_study_checks():
    # instruments.md: n = 6, 5, 4 with every difference of one sign give Z = -2.2014, -2.0226,
    # -1.8257; exact p for n = 6 is 2/64
    for n, z in ((6, -2.2014), (5, -2.0226), (4, -1.8257)):
        result = spss_wilcoxon([10.0 + i for i in range(n)], [0.0] * n)
        assert round(result["z"], 4) == z
    assert spss_wilcoxon([10.0 + i for i in range(6)], [0.0] * 6)["p_exact_two_sided"] == 0.03125


def sent_messages() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


def post(client, keys, body: dict[str, Any]) -> str:
    r = client.post(f"/v1/trials/{TRIAL}/submissions", headers=keys.submitter, json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["submission_id"])


def s3_bytes(aws: dict[str, Any], key: str) -> bytes:
    body: bytes = aws["s3"].get_object(Bucket=NAMES.reports_bucket, Key=key)["Body"].read()
    return body


@pytest.mark.slow
def test_submissions_flow_through_scoring_summary_report_and_weekly_mail(
    aws, client, container, pump
):
    completers = [f"P0{n}" for n in range(1, 7)]
    keys = make_trial(client, container, participants=(*completers, "P07"))
    rng = random.Random(20261126)
    # (participant, instrument, timepoint) -> responses of the submission that counts
    counted: dict[tuple[str, str, str], dict[str, Any]] = {}

    def hads(*, high: bool) -> dict[str, Any]:
        return {str(i): rng.choice((1, 2, 3) if high else (0, 1, 2)) for i in range(1, 15)}

    for pid in completers:
        for timepoint, high in (("week-1", True), ("week-12", False)):
            responses = hads(high=high)
            if (pid, timepoint) == ("P03", "week-12"):
                responses["1"] = None  # two anxiety items skipped: prorated
                del responses["3"]
            if (pid, timepoint) == ("P04", "week-12"):
                for item in ("1", "3", "5", "7"):  # four of seven skipped: not scored
                    del responses[item]
            first = post(client, keys, submission(pid, "hads", timepoint, responses))
            if (pid, timepoint) == ("P02", "week-1"):
                corrected = {k: (3 if int(k) % 2 else 0) for k in responses}
                post(client, keys, submission(pid, "hads", timepoint, corrected, supersedes=first))
                responses = corrected
            counted[(pid, "hads", timepoint)] = responses
    for pid in completers[:4]:
        for timepoint in ("week-1", "week-12"):
            responses = {str(i): rng.randint(0, 4) for i in range(1, 23)}
            if (pid, timepoint) == ("P01", "week-12"):
                del responses["10"]  # one hated_self item of five skipped: prorated
            post(client, keys, submission(pid, "fscrs", timepoint, responses))
            counted[(pid, "fscrs", timepoint)] = responses
    for pid in completers[:5]:  # P06 has not written the week-1 diary
        responses = {str(i): rng.randint(1, 10) for i in range(1, 15)}
        notes = {
            "critical_situations": f"{MARKER} at work, {pid}",
            "soothing_thoughts": f"{MARKER}\nbreathing",
        }
        post(client, keys, submission(pid, "diary", "week-1", responses, notes=notes))
        counted[(pid, "diary", "week-1")] = responses
    dropout = hads(high=True)
    post(client, keys, submission("P07", "hads", "week-1", dropout))
    counted[("P07", "hads", "week-1")] = dropout
    r = client.patch(
        f"/v1/trials/{TRIAL}/participants/P07",
        headers=keys.coordinator,
        json={"status": "withdrawn", "reason": "moved away"},
    )
    assert r.status_code == 200, r.text

    pump.drain()
    assert pump.stats.failures == 0

    # -- stored scores equal the hand computation ---------------------------------------
    stored: dict[tuple[str, str, str], dict[str, float | None]] = {}
    for pid in (*completers, "P07"):
        r = client.get(f"/v1/trials/{TRIAL}/participants/{pid}/scores", headers=keys.coordinator)
        assert r.status_code == 200, r.text
        for timepoint in r.json()["timepoints"]:
            for sub in timepoint["submissions"]:
                if sub["counts"]:
                    stored[(pid, sub["instrument"], sub["timepoint"])] = {
                        name: value["score"] for name, value in sub["scores"].items()
                    }
    expected = {
        slot: {s: expected_score(slot[1], s, responses) for s in ITEMS[slot[1]]}
        for slot, responses in counted.items()
    }
    assert stored.keys() == expected.keys()
    for slot, scores in expected.items():
        assert stored[slot] == pytest.approx(scores), slot
    assert stored[("P03", "hads", "week-12")]["anxiety"] is not None
    assert stored[("P04", "hads", "week-12")]["anxiety"] is None
    assert stored[("P02", "hads", "week-1")]["anxiety"] == 21  # the correction counts

    # -- live summary equals n / mean / SD over the counted scores ----------------------
    groups: dict[tuple[str, str, str], list[float]] = {}
    for (_, instrument, timepoint), scores in expected.items():
        for subscale, value in scores.items():
            if value is not None:
                groups.setdefault((instrument, timepoint, subscale), []).append(value)
    summary = client.get(f"/v1/trials/{TRIAL}/summary", headers=keys.coordinator).json()
    rows = {(a["instrument"], a["timepoint"], a["subscale"]): a for a in summary["aggregates"]}
    assert {k for k, a in rows.items() if a["n"]} == set(groups)
    for key, values in groups.items():
        row = rows[key]
        assert row["n"] == len(values), key
        assert row["mean"] == pytest.approx(statistics.mean(values)), key
        if len(values) > 1:
            assert row["sd"] == pytest.approx(statistics.stdev(values)), key
        else:
            assert row["sd"] is None
    assert summary["enrolment"] == {"active": 6, "withdrawn": 1, "completed": 0, "total": 7}

    # -- the published report equals the statistics recomputed from the stored scores ---
    r = client.post(f"/v1/trials/{TRIAL}/reports/pre-post", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    prefix = f"reports/{TRIAL}/pre-post"
    latest = json.loads(s3_bytes(aws, f"{prefix}/latest.json"))
    day = latest["generated_at"][:10]
    assert json.loads(s3_bytes(aws, f"{prefix}/{day}.json")) == latest
    assert latest["results"] == r.json()["results"]
    assert latest["comparison"] == {"pre": "week-1", "post": "week-12"}
    assert latest["participants"]["enrolled"] == 7
    assert latest["participants"]["withdrawn"] == 1
    assert latest["participants"]["completed"] == 6  # P01-P06 scored at week-1 and week-12
    results = {(row["instrument"], row["subscale"]): row for row in latest["results"]}
    for instrument in ("hads", "fscrs"):
        for subscale in ITEMS[instrument]:
            row = results[(instrument, subscale)]
            pairs = [
                (
                    stored[(pid, instrument, "week-1")][subscale],
                    stored[(pid, instrument, "week-12")][subscale],
                )
                for pid in completers
                if (pid, instrument, "week-1") in stored
                and (pid, instrument, "week-12") in stored
                and None
                not in (
                    stored[(pid, instrument, "week-1")][subscale],
                    stored[(pid, instrument, "week-12")][subscale],
                )
            ]
            pre = [float(a) for a, _ in pairs]
            after = [float(b) for _, b in pairs]
            reference = spss_wilcoxon(pre, after)
            assert row["n_pairs"] == len(pairs)
            assert row["pre"]["mean"] == pytest.approx(statistics.mean(pre))
            assert row["post"]["mean"] == pytest.approx(statistics.mean(after))
            assert row["pre"]["sd"] == pytest.approx(statistics.stdev(pre))
            assert row["post"]["median"] == pytest.approx(statistics.median(after))
            for name, value in reference.items():
                expected_value = None if value is None else pytest.approx(value, rel=1e-9)
                assert row["wilcoxon"][name] == expected_value, (instrument, subscale, name)
            assert row["effect_size_r"] == pytest.approx(reference["z"] / math.sqrt(len(pairs)))
            w_plus, w_minus = reference["w_plus"], reference["w_minus"]
            assert row["direction"] == (
                "increase" if w_plus > w_minus else "decrease" if w_minus > w_plus else "none"
            )
            excluded = {e["participant_id"]: e["reason"] for e in row["excluded"]}
            # v1.1: a withdrawal reason is free text and never reaches the report
            assert excluded["P07"] == "withdrawn"
    assert results[("hads", "anxiety")]["n_pairs"] == 5  # P04's week-12 anxiety not scored
    assert "P04" in {e["participant_id"] for e in results[("hads", "anxiety")]["excluded"]}

    # -- CSV table and SVG figures next to it ------------------------------------------
    table = list(csv.DictReader(io.StringIO(s3_bytes(aws, f"{prefix}/latest.csv").decode())))
    assert [(t["instrument"], t["subscale"]) for t in table] == [
        (row["instrument"], row["subscale"]) for row in latest["results"]
    ]
    assert s3_bytes(aws, f"{prefix}/{day}.csv") == s3_bytes(aws, f"{prefix}/latest.csv")
    listed = aws["s3"].list_objects_v2(Bucket=NAMES.reports_bucket, Prefix=f"{prefix}/figures/")
    figures = {o["Key"] for o in listed.get("Contents", [])}
    assert {f"{prefix}/figures/hads.svg", f"{prefix}/figures/fscrs.svg"} <= figures
    for key in figures:
        assert b"<svg" in s3_bytes(aws, key)

    # -- the weekly summary e-mail: counts, and no free text or answers -----------------
    before = len(sent_messages())
    outcome = container.weekly.run(container.trials.get(TRIAL))
    assert outcome.sent_to == ("coordinator@example.org",)
    mails = sent_messages()[before:]
    assert len(mails) == 1
    mail = mails[0]
    assert mail.destinations["ToAddresses"] == ["coordinator@example.org"]
    posted = Counter(instrument for (_, instrument, _) in counted) + Counter({"hads": 1})
    seen = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", mail.body)))  # HTML part
    assert "Enrolment (7)" in seen
    assert f"Submissions this week ({sum(posted.values())})" in seen
    assert outcome.summary is not None
    assert outcome.summary.submissions_by_instrument == dict(posted)
    assert outcome.summary.enrolment == {"active": 6, "withdrawn": 1, "completed": 0}
    # the week-1 diary is due (its window is open) and only P06 has not written it
    due = outcome.summary.due
    assert {d.participant_id for d in due} == set(completers)  # P07 withdrew: not chased
    assert [d.participant_id for d in due if "diary" in d.instruments] == ["P06"]
    assert "week-1 · FSCS, FSCRS, OAS, SCS, SBS, Diary P06 until" in seen
    for message in sent_messages():
        text = f"{message.subject}\n{message.body}"
        assert MARKER not in text
        assert "breathing" not in text
        assert "responses" not in text.lower()
