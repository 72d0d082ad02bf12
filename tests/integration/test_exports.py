"""CSV exports, codebook and erasure on moto, read back with the csv module (as R would)."""

from __future__ import annotations

import csv
import io
import statistics
from typing import Any

import pytest

from conftest import make_trial, submission

TRIAL = "cmt-pilot"
FORMULA = "=cmd|' /C calc'!A0"
UNICODE = 'naïve — 日本語 ✓ 🙂\nsecond line, with "quotes" and a comma'
ANXIETY = [1, 3, 5, 7, 9, 11, 13]

# the long layout's documented columns (API.md: one row per scored submission x subscale,
# with item responses) and the diary's free-text fields
LONG_REQUIRED = [
    "trial_id",
    "participant_id",
    "submission_id",
    "instrument",
    "instrument_version",
    "timepoint",
    "subscale",
    "score",
    *(f"item_{n}" for n in range(1, 23)),
    "critical_situations",
    "critical_thoughts",
    "soothing_situations",
    "soothing_thoughts",
]


def hads(values: list[int]) -> dict[str, int]:
    return {str(n): v for n, v in enumerate(values, start=1)}


P01_W1 = hads([3, 0, 2, 1, 3, 1, 2, 0, 1, 2, 2, 1, 0, 3])
P01_W12 = hads([1, 0, 1, 1, 0, 1, 1, 0, 0, 2, 1, 1, 0, 0])
P02_W1 = hads([2] * 14)
P02_W1_CORRECTED = hads([0, 2] * 7)
P03_W1 = hads([3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3])


def anxiety(responses: dict[str, int]) -> int:
    return sum(responses[str(i)] for i in ANXIETY)


def post(client, keys, body: dict[str, Any]) -> str:
    r = client.post(f"/v1/trials/{TRIAL}/submissions", headers=keys.submitter, json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["submission_id"])


def read_csv(client, keys, layout: str) -> tuple[list[str], list[dict[str, str]]]:
    r = client.get(f"/v1/trials/{TRIAL}/export.csv?layout={layout}", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert not r.content.startswith(b"\xef\xbb\xbf")  # no byte-order mark
    reader = csv.reader(io.StringIO(r.content.decode("utf-8"), newline=""))
    header, *rows = list(reader)
    assert all(len(row) == len(header) for row in rows)
    return header, [dict(zip(header, row, strict=True)) for row in rows]


def codebook(client, keys, layout: str) -> list[str]:
    r = client.get(f"/v1/trials/{TRIAL}/codebook?layout={layout}", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    return [c["name"] for c in r.json()["columns"]]


@pytest.fixture
def trial(client, container, pump):
    keys = make_trial(client, container, participants=("P01", "P02", "P03"))
    diary = {str(n): 5 for n in range(1, 15)}
    post(client, keys, submission("P01", "hads", "week-1", P01_W1))
    post(client, keys, submission("P01", "hads", "week-12", P01_W12))
    post(
        client,
        keys,
        submission(
            "P01",
            "diary",
            "week-1",
            diary,
            notes={"critical_situations": FORMULA, "critical_thoughts": UNICODE},
        ),
    )
    first = post(client, keys, submission("P02", "hads", "week-1", P02_W1))
    post(client, keys, submission("P02", "hads", "week-1", P02_W1_CORRECTED, supersedes=first))
    post(
        client,
        keys,
        submission("P02", "diary", "week-1", diary, notes={"soothing_thoughts": "P02 secret"}),
    )
    post(client, keys, submission("P02", "fscrs", "week-1", {str(i): 4 for i in range(1, 23)}))
    post(client, keys, submission("P03", "hads", "week-1", P03_W1))
    post(client, keys, submission("P03", "fscrs", "week-1", {str(i): 1 for i in range(1, 23)}))
    pump.drain()
    assert pump.stats.failures == 0
    return keys


def test_the_long_export_parses_as_csv_with_the_documented_columns_and_safe_text(client, trial):
    header, rows = read_csv(client, trial, "long")

    assert set(LONG_REQUIRED) <= set(header)
    assert header == codebook(client, trial, "long")
    # scored submissions x subscales: P01 hads 2 + 2, diary 2; P02 hads 2 + 2 (original and
    # correction), diary 2, fscrs 3; P03 hads 2, fscrs 3
    assert len(rows) == 20
    assert {r["trial_id"] for r in rows} == {TRIAL}
    p01_anxiety = next(
        r
        for r in rows
        if (r["participant_id"], r["instrument"], r["timepoint"], r["subscale"])
        == ("P01", "hads", "week-1", "anxiety")
    )
    assert float(p01_anxiety["score"]) == anxiety(P01_W1)
    assert [p01_anxiety[f"item_{n}"] for n in range(1, 15)] == [
        str(P01_W1[str(n)]) for n in range(1, 15)
    ]
    assert p01_anxiety["item_15"] == ""  # HADS has 14 items
    p02 = [
        r
        for r in rows
        if (r["participant_id"], r["instrument"], r["subscale"]) == ("P02", "hads", "anxiety")
    ]
    assert sorted((r["counts"], float(r["score"])) for r in p02) == [
        ("0", anxiety(P02_W1)),
        ("1", anxiety(P02_W1_CORRECTED)),
    ]
    corrected = next(r for r in p02 if r["counts"] == "1")
    original = next(r for r in p02 if r["counts"] == "0")
    assert corrected["supersedes"] == original["submission_id"]

    diary = [r for r in rows if (r["participant_id"], r["instrument"]) == ("P01", "diary")]
    assert len(diary) == 2
    for row in diary:
        assert row["critical_situations"] == "'" + FORMULA  # neutralised for spreadsheets
        assert row["critical_thoughts"] == UNICODE  # unicode, quotes and newline survive
        assert row["soothing_situations"] == ""
    # free text is only on diary rows
    assert all(r["critical_situations"] == "" for r in rows if r["instrument"] != "diary")
    # no text cell anywhere starts like a formula
    for row in rows:
        for value in row.values():
            assert not value.startswith(("=", "+", "@")), value


def test_the_wide_export_has_one_row_per_participant_and_the_codebook_columns(client, trial):
    header, rows = read_csv(client, trial, "wide")

    assert header == codebook(client, trial, "wide")
    assert header[:2] == ["participant_id", "status"]
    assert {"hads_anxiety_week_1", "hads_depression_week_12", "diary_self_criticism_week_1"} <= (
        set(header)
    )
    by_pid = {r["participant_id"]: r for r in rows}
    assert sorted(by_pid) == ["P01", "P02", "P03"]
    assert float(by_pid["P01"]["hads_anxiety_week_1"]) == anxiety(P01_W1)
    assert float(by_pid["P01"]["hads_anxiety_week_12"]) == anxiety(P01_W12)
    assert float(by_pid["P02"]["hads_anxiety_week_1"]) == anxiety(P02_W1_CORRECTED)
    assert by_pid["P03"]["hads_anxiety_week_12"] == ""
    assert by_pid["P01"]["status"] == "active"


def test_erasing_a_participant_removes_their_rows_and_corrects_the_summary(client, trial):
    alerts = client.get(f"/v1/trials/{TRIAL}/alerts", headers=trial.coordinator).json()["alerts"]
    assert [a["participant_id"] for a in alerts] == ["P02"]  # FSCRS item 9 at 4

    r = client.delete(f"/v1/trials/{TRIAL}/participants/P02", headers=trial.coordinator)
    assert r.status_code == 200, r.text

    _, long_rows = read_csv(client, trial, "long")
    _, wide_rows = read_csv(client, trial, "wide")
    assert long_rows
    assert "P02" not in {r["participant_id"] for r in long_rows}
    assert sorted(r["participant_id"] for r in wide_rows) == ["P01", "P03"]
    alerts = client.get(f"/v1/trials/{TRIAL}/alerts", headers=trial.coordinator).json()["alerts"]
    assert alerts == []
    scores = client.get(f"/v1/trials/{TRIAL}/participants/P02/scores", headers=trial.coordinator)
    assert scores.status_code == 404

    summary = client.get(f"/v1/trials/{TRIAL}/summary", headers=trial.coordinator).json()
    assert summary["enrolment"]["total"] == 2
    rows = {(a["instrument"], a["timepoint"], a["subscale"]): a for a in summary["aggregates"]}
    remaining = [anxiety(P01_W1), anxiety(P03_W1)]
    week_1 = rows[("hads", "week-1", "anxiety")]
    assert week_1["n"] == 2
    assert week_1["mean"] == pytest.approx(statistics.mean(remaining))
    assert week_1["sd"] == pytest.approx(statistics.stdev(remaining))
    hated = rows[("fscrs", "week-1", "hated_self")]
    assert (hated["n"], hated["mean"], hated["sd"]) == (1, 5, None)  # P03 only: 5 items at 1
    diary = rows[("diary", "week-1", "self_criticism")]
    assert (diary["n"], diary["mean"]) == (1, 35)  # P01 only: 7 items at 5
    assert "P02" not in {a["participant_id"] for a in summary["diary_adherence"]}

    audit = client.get(f"/v1/trials/{TRIAL}/audit", headers=trial.coordinator)
    assert audit.status_code == 200, audit.text
    erased = [e for e in audit.json()["events"] if e["action"] == "participant.erase"]
    assert len(erased) == 1
    assert erased[0]["key_id"] == trial.coordinator_key_id
    assert erased[0]["targets"]["participant_id"] == "P02"
    assert "P02 secret" not in audit.text
