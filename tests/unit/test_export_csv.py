"""CSV exports read back the way R and SPSS would read them."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.instruments import CATALOGUE
from domain.scoring import SubscaleScore
from domain.submissions import ScoreRecord, SubmissionRecord
from domain.trial import Comparison, Participant, StudyProtocol, default_protocol
from services.export_csv import (
    codebook,
    csv_text,
    export_long,
    export_wide,
    long_columns,
    spss_name,
    wide_columns,
)

TRIAL = "cmt-pilot"
FORMULA = "=cmd|' /C calc'!A0"
AWKWARD = 'Él dijo "no", luego,\r\nse fue 😔\nzweite Zeile'
SPSS_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def participant(pid: str, status: str = "active") -> Participant:
    return Participant(
        trial_id=TRIAL,
        participant_id=pid,
        status=status,  # type: ignore[arg-type]
        enrolled_at="2026-09-01T09:00:00Z",
        status_changed_at="2026-09-01T09:00:00Z",
    )


def submission(
    pid: str,
    instrument: str,
    timepoint: str,
    responses: Mapping[int, int | None],
    *,
    seq: int = 0,
    notes: dict[str, str] | None = None,
) -> SubmissionRecord:
    return SubmissionRecord(
        trial_id=TRIAL,
        participant_id=pid,
        submission_id=f"{pid}-{instrument}-{timepoint}-{seq}",
        instrument=instrument,
        instrument_version="1",
        timepoint=timepoint,
        seq=seq,
        completed_at="2026-11-20T10:00:00Z",
        received_at="2026-11-20T10:00:01Z",
        responses=responses,
        notes=notes,
        supersedes=f"{pid}-{instrument}-{timepoint}-{seq - 1}" if seq else None,
    )


def scored(sub: SubmissionRecord, values: dict[str, float | None]) -> ScoreRecord:
    return ScoreRecord(
        trial_id=sub.trial_id,
        participant_id=sub.participant_id,
        submission_id=sub.submission_id,
        instrument=sub.instrument,
        instrument_version=sub.instrument_version,
        timepoint=sub.timepoint,
        seq=sub.seq,
        completed_at=sub.completed_at,
        received_at=sub.received_at,
        scored_at="2026-11-20T10:00:02Z",
        subscales={
            name: SubscaleScore(
                subscale=name,
                score=v,
                prorated=False,
                answered=7 if v is not None else 2,
                missing=0 if v is not None else 5,
                reason=None if v is not None else "too_many_missing",
                band=None,
            )
            for name, v in values.items()
        },
        supersedes=sub.supersedes,
    )


def dataset() -> tuple[list[Participant], list[ScoreRecord], list[SubmissionRecord]]:
    hads: dict[int, int | None] = dict.fromkeys(range(1, 15), 1)
    hads[3] = None  # skipped
    first = submission("P10", "hads", "week-1", hads)
    correction = submission("P10", "hads", "week-1", {**hads, 1: 3}, seq=1)
    p2_end = submission("P2", "hads", "week-12", dict.fromkeys(range(1, 15), 2))
    p2_start = submission("P2", "hads", "week-1", dict.fromkeys(range(1, 15), 3))
    diary = submission(
        "P2",
        "diary",
        "week-10",
        dict.fromkeys(range(1, 15), 5),
        notes={"critical_situations": FORMULA, "soothing_thoughts": AWKWARD},
    )
    diary_early = submission("P2", "diary", "week-2", dict.fromkeys(range(1, 15), 4))
    submissions = [first, correction, p2_end, p2_start, diary, diary_early]
    scores = [
        scored(first, {"anxiety": 7.0, "depression": 7.0}),
        scored(correction, {"anxiety": 9.0, "depression": 7.0}),
        scored(p2_end, {"anxiety": 14.0, "depression": 14.0}),
        scored(p2_start, {"anxiety": 21.0, "depression": None}),
        scored(diary, {"self_criticism": 35.0, "self_compassion": 35.0}),
        scored(diary_early, {"self_criticism": 28.0, "self_compassion": 28.0}),
    ]
    people = [participant("P10"), participant("P2", "withdrawn"), participant("P3")]
    return people, scores, submissions


def read(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def header(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text, newline="")))


def long_rows() -> list[dict[str, str]]:
    people, scores, submissions = dataset()
    return read(export_long(participants=people, scores=scores, submissions=submissions))


def test_long_export_has_a_row_per_scored_submission_and_subscale_superseded_included() -> None:
    rows = long_rows()

    assert len(rows) == 12
    assert list(rows[0]) == long_columns()


def test_long_export_marks_only_the_newest_correction_as_counting() -> None:
    rows = [r for r in long_rows() if r["participant_id"] == "P10"]

    assert [(r["submission_id"], r["counts"]) for r in rows if r["subscale"] == "anxiety"] == [
        ("P10-hads-week-1-0", "0"),
        ("P10-hads-week-1-1", "1"),
    ]
    assert rows[-1]["supersedes"] == "P10-hads-week-1-0"


def test_long_export_orders_participants_instruments_and_timepoints_naturally() -> None:
    keys = [(r["participant_id"], r["instrument"], r["timepoint"]) for r in long_rows()]
    ordered = list(dict.fromkeys(keys))

    assert ordered == [
        ("P2", "hads", "week-1"),
        ("P2", "hads", "week-12"),
        ("P2", "diary", "week-2"),
        ("P2", "diary", "week-10"),
        ("P10", "hads", "week-1"),
    ]


def test_long_export_leaves_skipped_items_and_items_beyond_the_instrument_blank() -> None:
    row = next(r for r in long_rows() if r["submission_id"] == "P10-hads-week-1-1")

    assert row["item_1"] == "3"
    assert row["item_3"] == ""
    assert row["item_14"] == "1"
    assert row["item_15"] == row["item_22"] == ""


def test_long_export_writes_a_missing_score_as_an_empty_field_with_its_reason() -> None:
    row = next(
        r
        for r in long_rows()
        if r["submission_id"] == "P2-hads-week-1-0" and r["subscale"] == "depression"
    )

    assert row["score"] == ""
    assert row["score_missing_reason"] == "too_many_missing"
    assert row["prorated"] == "0"
    assert row["participant_status"] == "withdrawn"


def test_long_export_neutralises_formula_like_free_text() -> None:
    row = next(r for r in long_rows() if r["timepoint"] == "week-10")

    assert row["critical_situations"] == "'" + FORMULA


def test_long_export_keeps_unicode_line_breaks_quotes_and_commas_in_free_text() -> None:
    rows = [r for r in long_rows() if r["timepoint"] == "week-10"]

    assert len(rows) == 2
    assert all(r["soothing_thoughts"] == AWKWARD for r in rows)
    assert all(r["critical_thoughts"] == "" for r in rows)


def test_free_text_appears_on_diary_rows_only() -> None:
    assert all(r["soothing_thoughts"] == "" for r in long_rows() if r["instrument"] == "hads")


def test_exports_use_crlf_records_and_no_byte_order_mark() -> None:
    people, scores, submissions = dataset()
    text = export_long(participants=people, scores=scores, submissions=submissions)

    assert not text.startswith("\ufeff")
    assert text.startswith("trial_id,participant_id,")
    assert text.endswith("\r\n")


def test_a_score_whose_submission_is_missing_still_gets_its_rows() -> None:
    people, scores, _ = dataset()
    rows = read(export_long(participants=people, scores=scores, submissions=[]))

    assert len(rows) == 12
    assert all(r["item_1"] == "" for r in rows)


def test_wide_export_has_one_row_per_participant_with_the_counting_score() -> None:
    people, scores, _ = dataset()
    rows = read(export_wide(protocol=default_protocol(), participants=people, scores=scores))

    assert [r["participant_id"] for r in rows] == ["P2", "P3", "P10"]
    by_id = {r["participant_id"]: r for r in rows}
    assert by_id["P10"]["hads_anxiety_week_1"] == "9.0"
    assert by_id["P2"]["hads_depression_week_1"] == ""
    assert by_id["P2"]["diary_self_criticism_week_10"] == "35.0"
    assert by_id["P2"]["status"] == "withdrawn"
    assert all(v == "" for k, v in by_id["P3"].items() if k not in ("participant_id", "status"))


def test_wide_column_names_are_spss_safe_and_unique() -> None:
    names = wide_columns(default_protocol())

    assert all(SPSS_NAME.match(name) for name in names)
    assert len(set(names)) == len(names)
    assert "hads_anxiety_follow_up" in names
    assert "diary_self_criticism_week_7" in names


def test_timepoints_that_collapse_to_the_same_name_still_get_unique_columns() -> None:
    long_point = "a very long timepoint name " * 4
    protocol = StudyProtocol(
        timepoints=("Week 1", "week_1", "1st", long_point, long_point + "x"),
        schedule={"oas": ("Week 1", "week_1", "1st", long_point, long_point + "x")},
        comparison=Comparison(pre="Week 1", post="week_1"),
    )
    names = wide_columns(protocol)

    assert all(SPSS_NAME.match(name) for name in names)
    assert len(set(names)) == len(names) == 7


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hads anxiety follow-up", "hads_anxiety_follow_up"),
        ("12-week", "v12_week"),
        ("AND", "and_v"),
        ("__x__", "x"),
    ],
)
def test_spss_names_are_lowercase_start_with_a_letter_and_avoid_reserved_words(
    text: str, expected: str
) -> None:
    assert spss_name(text) == expected


# the lowest score of any subscale and the lowest response of any instrument in the catalogue
LOWEST_SCORE = min(
    min(i.response_min, *(s.range[0] for s in i.subscales)) for i in CATALOGUE.instruments()
)


@pytest.mark.parametrize("layout", ["long", "wide"])
def test_the_codebook_describes_exactly_the_header_of_each_layout(layout: str) -> None:
    people, scores, submissions = dataset()
    protocol = default_protocol()
    text = (
        export_long(participants=people, scores=scores, submissions=submissions)
        if layout == "long"
        else export_wide(protocol=protocol, participants=people, scores=scores)
    )
    entries = codebook(protocol=protocol, layout=layout)

    assert [e["name"] for e in entries] == header(text)
    for entry in entries:
        assert set(entry) == {
            "name",
            "label",
            "type",
            "range",
            "instrument",
            "missing",
            "value_labels",
            "missing_code",
        }
        assert entry["type"] in {"string", "integer", "number", "datetime", "boolean"}
        assert entry["label"]
        assert entry["missing"]
        # a missing code only where a numeric field can be empty, outside its range
        if entry["missing_code"] is not None:
            assert entry["type"] in {"integer", "number"}
            assert entry["missing"] != "never blank"
            lowest = entry["range"][0] if entry["range"] else LOWEST_SCORE
            assert entry["missing_code"]["value"] < lowest
        if entry["type"] == "boolean":
            assert [v["value"] for v in entry["value_labels"]] == [0, 1]


def test_the_wide_codebook_gives_each_score_its_subscale_range_and_instrument() -> None:
    entries = {e["name"]: e for e in codebook(protocol=default_protocol(), layout="wide")}

    assert entries["scs_total_week_12"]["range"] == [11, 110]
    assert entries["scs_total_week_12"]["instrument"] == "scs"
    assert entries["hads_anxiety_week_1"]["label"] == (
        f"{CATALOGUE.get('hads').title}: Anxiety, week-1"
    )


def test_an_unknown_layout_is_refused() -> None:
    with pytest.raises(ValueError, match="layout"):
        codebook(protocol=default_protocol(), layout="tall")


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+SUM(A1)", "'+SUM(A1)"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("-P01", "-P01"),
        ("plain = text", "plain = text"),
        (-1.5, "-1.5"),
        (True, "1"),
        (False, "0"),
        (0, "0"),
        (-7, "-7"),
        (10**20, "100000000000000000000"),
        (None, ""),
        (float("nan"), ""),
        (0.1 + 0.2, "0.30000000000000004"),
        ("a\x00b", "a\ufffdb"),
    ],
)
def test_cells_are_written_by_the_csv_rules(cell: object, written: str) -> None:
    rows = list(csv.reader(io.StringIO(csv_text(["c"], [[cell]]), newline="")))

    assert rows == [["c"], [written]]


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\x00")))
def test_any_free_text_survives_the_round_trip_apart_from_the_formula_guard(text: str) -> None:
    (back,) = list(csv.reader(io.StringIO(csv_text(["c"], [[text]]), newline="")))[1:]

    def guard(part: str) -> str:
        risky = part.lstrip(" ").startswith(FORMULA_START)
        return "'" + part if risky and not re.fullmatch(r"[A-Za-z0-9_-]+", part) else part

    # every part between semicolons is guarded, as a spreadsheet splitting on ";" sees it
    assert back == [";".join(guard(part) for part in text.split(";"))]


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("ok;=HYPERLINK(1)", "ok;'=HYPERLINK(1)"),
        ("a; +1;b", "a;' +1;b"),
        (";@SUM(A1)", ";'@SUM(A1)"),
        ("=1;=2", "'=1;'=2"),
        ("P01;-P02", "P01;-P02"),  # identifiers stay as they are
        ("one; two", "one; two"),
    ],
)
def test_a_cell_that_splits_on_semicolons_into_a_formula_is_neutralised(
    cell: str, written: str
) -> None:
    rows = list(csv.reader(io.StringIO(csv_text(["c"], [[cell]]), newline="")))

    assert rows == [["c"], [written]]
