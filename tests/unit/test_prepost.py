"""The pre/post report: who is paired, statistics that match an independent recomputation,
and each rendering (JSON, CSV, the headline read back) saying what the typed report says."""

from __future__ import annotations

import csv
import dataclasses
import doctest
import io
import itertools
import json
import math
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import domain.report
import services.prepost
from domain.instruments import CATALOGUE, load_catalogue
from domain.report import (
    METHOD,
    PrePostReport,
    build_report,
    build_report_from_groups,
    paired_values,
)
from domain.scoring import SubscaleScore
from domain.statistics import Pair
from domain.submissions import ScoreRecord
from domain.trial import Comparison, Participant, StudyProtocol, default_protocol
from services.figures import prepost_figures
from services.prepost import (
    TABLE_COLUMNS,
    Headline,
    HeadlineRow,
    primary_p,
    read_headline,
    report_table_csv,
    to_json,
)

TRIAL = "cmt-pilot"


def participant(pid: str, status: str = "completed", reason: str | None = None) -> Participant:
    return Participant(
        trial_id=TRIAL,
        participant_id=pid,
        status=status,  # type: ignore[arg-type]
        enrolled_at="2026-09-01T09:00:00Z",
        status_changed_at="2026-11-20T09:00:00Z",
        reason=reason,
    )


def value(
    subscale: str, score: float | None, *, prorated: bool = False, missing: int = 0
) -> SubscaleScore:
    if score is None and not missing:
        missing = 4
    return SubscaleScore(
        subscale=subscale,
        score=score,
        prorated=prorated,
        answered=7 - missing,
        missing=missing,
        reason="too_many_missing" if score is None else None,
        band=None,
    )


def score(
    pid: str,
    timepoint: str,
    values: Mapping[str, float | None] | Sequence[SubscaleScore],
    *,
    instrument: str = "hads",
    seq: int = 0,
    version: str = "1",
) -> ScoreRecord:
    if isinstance(values, Mapping):
        subscales = {name: value(name, v) for name, v in values.items()}
    else:
        subscales = {v.subscale: v for v in values}
    return ScoreRecord(
        trial_id=TRIAL,
        participant_id=pid,
        submission_id=f"{pid}-{instrument}-{timepoint}-{seq}",
        instrument=instrument,
        instrument_version=version,
        timepoint=timepoint,
        seq=seq,
        completed_at="2026-11-20T10:00:00Z",
        received_at="2026-11-20T10:00:01Z",
        scored_at="2026-11-20T10:00:02Z",
        subscales=subscales,
        supersedes=f"{pid}-{instrument}-{timepoint}-{seq - 1}" if seq else None,
    )


# HADS anxiety of the six completers: every one decreases, by 1, 2.5, 3, 4, 5 and 6.
ANXIETY_PRE = {"P01": 10.0, "P02": 13.0, "P03": 15.0, "P04": 17.0, "P05": 14.0, "P06": 20.0}
ANXIETY_POST = {"P01": 9.0, "P02": 10.5, "P03": 12.0, "P04": 13.0, "P05": 9.0, "P06": 14.0}


def pilot_trial() -> tuple[list[Participant], list[ScoreRecord]]:
    """9 enrolled: P01-P06 completed, P07-P09 withdrawn (P07 even has both timepoints)."""
    people = [participant(f"P0{n}") for n in range(1, 7)]
    people += [
        participant("P07", "withdrawn", "moved away"),
        participant("P08", "withdrawn", None),
        participant("P09", "withdrawn", "unwell"),
    ]
    scores: list[ScoreRecord] = []
    for pid in ANXIETY_PRE:
        scores.append(score(pid, "week-1", {"anxiety": ANXIETY_PRE[pid], "depression": 12.0}))
    for pid in ("P03", "P04", "P05", "P06"):
        post = {"anxiety": ANXIETY_POST[pid], "depression": 9.0 if pid != "P03" else None}
        scores.append(score(pid, "week-12", post))
    # P01 corrected their week-12 HADS: the first entry (an increase) is superseded.
    scores.append(score("P01", "week-12", {"anxiety": 19.0, "depression": 15.0}, seq=0))
    scores.append(score("P01", "week-12", {"anxiety": 9.0, "depression": 8.0}, seq=1))
    # P02's week-12 anxiety is prorated from 4 of 7 items (6 answered as 1.5 each on average).
    scores.append(
        score(
            "P02",
            "week-12",
            [value("anxiety", 10.5, prorated=True, missing=3), value("depression", 10.0)],
        )
    )
    # The withdrawn P07 has both timepoints; P08 only week-1; P09 nothing.
    scores.append(score("P07", "week-1", {"anxiety": 16.0, "depression": 11.0}))
    scores.append(score("P07", "week-12", {"anxiety": 17.0, "depression": 12.0}))
    scores.append(score("P08", "week-1", {"anxiety": 12.0, "depression": 11.0}))
    # FSCS: only P01 has both timepoints, so its rows have 1 pair.
    fscs = {"self_correction": 30.0, "self_persecution": 12.0}
    scores.append(score("P01", "week-1", fscs, instrument="fscs"))
    scores.append(score("P01", "week-12", fscs, instrument="fscs"))
    scores.append(score("P02", "week-1", fscs, instrument="fscs"))
    scores.append(score("P03", "week-12", fscs, instrument="fscs"))
    return people, scores


def typed_report_of(
    people: Sequence[Participant],
    scores: Sequence[ScoreRecord],
    protocol: StudyProtocol | None = None,
) -> PrePostReport:
    return build_report(
        trial_id=TRIAL,
        protocol=protocol or default_protocol(),
        participants=people,
        scores=scores,
        generated_at="2026-11-26T02:00:00Z",
        software_version="0.1.0",
    )


def report_of(
    people: Sequence[Participant],
    scores: Sequence[ScoreRecord],
    protocol: StudyProtocol | None = None,
) -> dict[str, Any]:
    """The report as published (`to_json`): the contract's field names are the assertions'."""
    return to_json(typed_report_of(people, scores, protocol))


def row(report: Mapping[str, Any], instrument: str, subscale: str) -> dict[str, Any]:
    found: dict[str, Any]
    (found,) = [
        r for r in report["results"] if r["instrument"] == instrument and r["subscale"] == subscale
    ]
    return found


def spss_z(differences: Sequence[float]) -> tuple[float, float]:
    """T and Z the way SPSS computes them (instruments.md, "Statistics"), written out anew."""
    nonzero = [d for d in differences if d != 0]
    n = len(nonzero)
    magnitudes = sorted(abs(d) for d in nonzero)
    rank_of: dict[float, float] = {}
    ties = 0.0
    i = 0
    while i < n:
        j = i
        while j + 1 < n and magnitudes[j + 1] == magnitudes[i]:
            j += 1
        rank_of[magnitudes[i]] = (i + j + 2) / 2
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    w_plus = sum(rank_of[abs(d)] for d in nonzero if d > 0)
    w_minus = sum(rank_of[abs(d)] for d in nonzero if d < 0)
    t_stat = min(w_plus, w_minus)
    z = (t_stat - n * (n + 1) / 4) / math.sqrt(n * (n + 1) * (2 * n + 1) / 24 - ties / 48)
    return t_stat, z


def test_the_report_has_the_contracts_shape() -> None:
    report = report_of(*pilot_trial())

    assert set(report) == {
        "trial_id",
        "generated_at",
        "software_version",
        "comparison",
        "method",
        "participants",
        "results",
    }
    assert report["comparison"] == {"pre": "week-1", "post": "week-12"}
    assert report["method"] == METHOD
    assert report["participants"] == {"enrolled": 9, "withdrawn": 3, "completed": 6, "active": 0}
    assert set(row(report, "hads", "anxiety")) == {
        "instrument",
        "subscale",
        "subscale_label",
        "n_pairs",
        "pre",
        "post",
        "wilcoxon",
        "direction",
        "effect_size_r",
        "hodges_lehmann_median_change",
        "reliable_change",
        "excluded",
        "reason",
        # v1.1
        "effect_sizes",
        "p_holm",
        "prorated_pairs",
        "sensitivity",
    }


def test_hads_anxiety_of_six_completers_who_all_improved_matches_table_1() -> None:
    anxiety = row(report_of(*pilot_trial()), "hads", "anxiety")

    assert anxiety["n_pairs"] == 6
    assert anxiety["wilcoxon"]["t"] == 0.0
    assert anxiety["wilcoxon"]["w_minus"] == 21.0
    assert anxiety["wilcoxon"]["z"] == pytest.approx(-2.2014, abs=1e-4)
    assert anxiety["wilcoxon"]["p_exact_two_sided"] == pytest.approx(0.03125)
    assert anxiety["direction"] == "decrease"
    assert anxiety["reason"] is None


def test_hads_anxiety_statistics_match_an_independent_recomputation() -> None:
    anxiety = row(report_of(*pilot_trial()), "hads", "anxiety")
    pre = list(ANXIETY_PRE.values())
    post = list(ANXIETY_POST.values())
    t_stat, z = spss_z([b - a for a, b in zip(pre, post, strict=True)])

    assert anxiety["pre"] == pytest.approx(
        {
            "mean": statistics.mean(pre),
            "sd": statistics.stdev(pre),
            "median": statistics.median(pre),
        }
    )
    assert anxiety["post"] == pytest.approx(
        {
            "mean": statistics.mean(post),
            "sd": statistics.stdev(post),
            "median": statistics.median(post),
        }
    )
    assert anxiety["wilcoxon"]["t"] == t_stat
    assert anxiety["wilcoxon"]["z"] == pytest.approx(z, rel=1e-12)
    assert anxiety["wilcoxon"]["p_two_sided"] == pytest.approx(math.erfc(abs(z) / math.sqrt(2)))
    assert anxiety["effect_size_r"] == pytest.approx(z / math.sqrt(6))


def test_the_report_read_one_participant_at_a_time_is_the_report_read_at_once() -> None:
    people, scores = pilot_trial()
    # scores of someone not enrolled (an erasure half done, say) are in neither report
    stray = score("P99", "week-1", {"anxiety": 1.0, "depression": 1.0})
    at_once = typed_report_of(people, [*scores, stray])
    # as a store hands them out: each participant's scores together, in the order of their
    # ids' characters, which need not be the participants' order
    order = sorted({s.participant_id for s in scores} | {"P99"}, reverse=True)
    groups = [[s for s in [*scores, stray] if s.participant_id == pid] for pid in order]

    by_participant = build_report_from_groups(
        trial_id=TRIAL,
        protocol=default_protocol(),
        participants=people,
        score_groups=iter(groups),
        generated_at="2026-11-26T02:00:00Z",
        software_version="0.1.0",
    )

    assert by_participant == at_once
    assert to_json(by_participant) == to_json(at_once)
    assert [p.participant_id for p in at_once.results[0].pairs][:2] == ["P01", "P02"]


def test_a_participant_whose_scores_come_in_two_groups_is_refused() -> None:
    people, scores = pilot_trial()
    p01 = [s for s in scores if s.participant_id == "P01"]
    with pytest.raises(ValueError, match="P01"):
        build_report_from_groups(
            trial_id=TRIAL,
            protocol=default_protocol(),
            participants=people,
            score_groups=[p01[:1], p01[1:]],
            generated_at="2026-11-26T02:00:00Z",
            software_version="0.1.0",
        )


def test_withdrawn_participants_are_excluded_as_withdrawn_even_with_both_scores() -> None:
    anxiety = row(report_of(*pilot_trial()), "hads", "anxiety")

    # v1.1 privacy: the withdrawal reason is free text and never reaches the report
    assert anxiety["excluded"] == [
        {"participant_id": "P07", "reason": "withdrawn"},
        {"participant_id": "P08", "reason": "withdrawn"},
        {"participant_id": "P09", "reason": "withdrawn"},
    ]


def test_no_withdrawal_reason_appears_anywhere_in_the_report_its_table_or_figures() -> None:
    people, scores = pilot_trial()
    people.append(participant("P10", "withdrawn", "my father died; I cannot face the group"))
    report = typed_report_of(people, scores)
    published = (
        json.dumps(to_json(report))
        + report_table_csv(report)
        + "".join(prepost_figures(report).values())
    )

    for reason in ("moved away", "unwell", "father", "cannot face"):
        assert reason not in published


def test_the_newest_correction_counts_and_the_superseded_score_does_not() -> None:
    people, scores = pilot_trial()
    pairing = paired_values(
        protocol=default_protocol(),
        participants=people,
        scores=scores,
        instrument="hads",
        subscale="anxiety",
    )

    p01 = next(p for p in pairing.pairs if p.participant_id == "P01")
    assert p01.post == 9.0


def test_a_prorated_score_is_paired_like_any_other() -> None:
    people, scores = pilot_trial()
    pairing = paired_values(
        protocol=default_protocol(),
        participants=people,
        scores=scores,
        instrument="hads",
        subscale="anxiety",
    )

    assert [(p.participant_id, p.post) for p in pairing.pairs][1] == ("P02", 10.5)


def test_a_subscale_not_scored_for_too_many_missing_items_excludes_that_participant() -> None:
    depression = row(report_of(*pilot_trial()), "hads", "depression")

    assert depression["n_pairs"] == 5
    assert {
        "participant_id": "P03",
        "reason": "week-12 subscale score missing (too many items skipped: 4 of 7 unanswered)",
    } in depression["excluded"]


def test_a_subscale_with_fewer_than_two_pairs_keeps_its_row_with_null_statistics() -> None:
    correction = row(report_of(*pilot_trial()), "fscs", "self_correction")

    assert correction["n_pairs"] == 1
    assert correction["wilcoxon"] is None
    assert correction["effect_size_r"] is None
    assert correction["hodges_lehmann_median_change"] is None
    assert correction["reliable_change"] is None
    assert correction["reason"] == "fewer than 2 pairs"


def test_each_missing_timepoint_gets_its_own_actionable_reason() -> None:
    correction = row(report_of(*pilot_trial()), "fscs", "self_correction")
    reasons = {e["participant_id"]: e["reason"] for e in correction["excluded"]}

    assert reasons["P02"] == "no scored week-12 submission"
    assert reasons["P03"] == "no scored week-1 submission"
    assert reasons["P04"] == "no scored week-1 or week-12 submission"


def test_every_enrolled_participant_is_either_paired_or_excluded_in_every_row() -> None:
    people, scores = pilot_trial()
    report = report_of(people, scores)

    for result in report["results"]:
        excluded = [e["participant_id"] for e in result["excluded"]]
        assert result["n_pairs"] + len(excluded) == 9
        assert len(set(excluded)) == len(excluded)


def test_an_instrument_not_scheduled_at_both_comparison_timepoints_has_no_rows() -> None:
    protocol = StudyProtocol(
        timepoints=("baseline", "end"),
        schedule={"hads": ("baseline", "end"), "fscs": ("baseline",)},
        comparison=Comparison(pre="baseline", post="end"),
    )
    report = report_of(*pilot_trial(), protocol=protocol)

    assert [(r["instrument"], r["subscale"]) for r in report["results"]] == [
        ("hads", "anxiety"),
        ("hads", "depression"),
    ]
    assert row(report, "hads", "anxiety")["excluded"][0]["reason"] == (
        "no scored baseline or end submission"
    )


def test_results_follow_catalogue_order_of_instruments_and_subscales() -> None:
    report = report_of(*pilot_trial())
    expected = [(i.id, s.id) for i in CATALOGUE.instruments() for s in i.subscales]

    assert [(r["instrument"], r["subscale"]) for r in report["results"]] == expected


def test_an_active_participant_with_both_timepoints_is_paired_in_an_interim_report() -> None:
    people = [participant("A1", "active"), participant("A2", "active")]
    scores = [
        score("A1", "week-1", {"anxiety": 10.0, "depression": 10.0}),
        score("A1", "week-12", {"anxiety": 8.0, "depression": 10.0}),
        score("A2", "week-1", {"anxiety": 12.0, "depression": 10.0}),
        score("A2", "week-12", {"anxiety": 11.0, "depression": 10.0}),
    ]
    report = report_of(people, scores)

    assert report["participants"]["active"] == 2
    assert row(report, "hads", "anxiety")["n_pairs"] == 2
    assert row(report, "hads", "depression")["reason"] == "no non-zero differences"


def test_reliable_change_counts_every_pair_and_is_null_without_an_alpha() -> None:
    report = report_of(*pilot_trial())
    anxiety = row(report, "hads", "anxiety")

    assert anxiety["reliable_change"]["alpha"] == 0.83
    counts = anxiety["reliable_change"]
    assert counts["improved"] + counts["no_reliable_change"] + counts["deteriorated"] == 6
    assert row(report, "diary", "self_criticism")["reliable_change"] is None


def test_the_table_csv_has_one_row_per_result_with_blank_nulls_and_full_precision() -> None:
    typed = typed_report_of(*pilot_trial())
    report = to_json(typed)
    rows = list(csv.reader(io.StringIO(report_table_csv(typed), newline="")))

    assert tuple(rows[0]) == TABLE_COLUMNS
    assert len(rows) == 1 + len(report["results"])
    by_key = {(r[0], r[1]): dict(zip(rows[0], r, strict=True)) for r in rows[1:]}
    anxiety = by_key["hads", "anxiety"]
    assert float(anxiety["z"]) == row(report, "hads", "anxiety")["wilcoxon"]["z"]
    assert float(anxiety["pre_sd"]) == row(report, "hads", "anxiety")["pre"]["sd"]
    assert anxiety["n_excluded"] == "3"
    assert by_key["fscs", "self_correction"]["z"] == ""
    assert by_key["fscs", "self_correction"]["reason"] == "fewer than 2 pairs"


def test_the_headline_read_back_carries_only_group_level_numbers() -> None:
    report = report_of(*pilot_trial())
    headline = read_headline(report)

    assert len(headline.rows) == len(report["results"])
    assert headline.rows[0] == HeadlineRow(
        instrument="hads",
        subscale="anxiety",
        subscale_label="Anxiety",
        n_pairs=6,
        pre_mean=statistics.mean(ANXIETY_PRE.values()),
        post_mean=statistics.mean(ANXIETY_POST.values()),
        direction="decrease",
        # the primary p, as the e-mail leads with it: the exact p (no ties, R coin 0.03125)
        p=row(report, "hads", "anxiety")["wilcoxon"]["p_exact_two_sided"],
        p_method="exact",
        p_holm=row(report, "hads", "anxiety")["p_holm"],
        reason=None,
    )
    assert (headline.pre, headline.post, headline.completers) == ("week-1", "week-12", 6)
    assert headline.generated_at == "2026-11-26T02:00:00Z"
    assert "P0" not in repr(headline)  # no participant code


def test_the_headline_read_back_from_the_json_is_the_typed_reports_own() -> None:
    people, scores = pilot_trial()
    people.append(participant("A1", "active"))
    report = typed_report_of(people, scores)

    headline = read_headline(json.loads(json.dumps(to_json(report))))

    assert headline == Headline(
        generated_at=report.generated_at,
        pre=report.comparison.pre,
        post=report.comparison.post,
        completers=report.participants.completed,
        rows=tuple(
            HeadlineRow(
                instrument=r.instrument,
                subscale=r.subscale,
                subscale_label=r.subscale_label,
                n_pairs=r.n_pairs,
                pre_mean=r.pre.mean,
                post_mean=r.post.mean,
                direction=r.direction,
                p=r.wilcoxon.p_primary if r.wilcoxon else None,
                p_method=r.wilcoxon.p_method_primary if r.wilcoxon else None,
                p_holm=r.p_holm,
                reason=r.reason,
            )
            for r in report.results
        ),
    )


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"wilcoxon": {"p_two_sided": 0.043, "p_exact_two_sided": 0.0625}}, (0.043, "asymptotic")),
        (
            {
                "wilcoxon": {
                    "p_two_sided": 0.043,
                    "p_exact_two_sided": 0.0625,
                    "p_method_primary": "exact",
                }
            },
            (0.0625, "exact"),
        ),
        (
            {
                "wilcoxon": {
                    "p_two_sided": 0.2,
                    "p_exact_two_sided": None,
                    "p_method_primary": "asymptotic",
                }
            },
            (0.2, "asymptotic"),
        ),
        ({"wilcoxon": {"p_two_sided": None}}, (None, None)),
        ({"wilcoxon": None}, (None, None)),
        ({}, (None, None)),
    ],
)
def test_the_primary_p_follows_the_published_reports_own_lead(
    result: dict[str, Any], expected: tuple[float | None, str | None]
) -> None:
    assert primary_p(result) == expected


def test_figure_pairs_are_the_pairs_the_statistics_used() -> None:
    people, scores = pilot_trial()
    report = typed_report_of(people, scores)
    by_subscale = {(r.instrument, r.subscale): r for r in report.results}
    anxiety = by_subscale["hads", "anxiety"]

    assert (
        anxiety.pairs
        == paired_values(
            protocol=default_protocol(),
            participants=people,
            scores=scores,
            instrument="hads",
            subscale="anxiety",
        ).pairs
    )
    assert all(len(r.pairs) == r.n_pairs for r in report.results)
    assert anxiety.pairs[0] == Pair(participant_id="P01", pre=10.0, post=9.0)


def test_the_json_holds_neither_the_pairs_nor_the_catalogue_the_report_carries() -> None:
    report = typed_report_of(*pilot_trial())
    document = json.dumps(to_json(report))

    assert report.instruments
    assert "pairs" not in json.loads(document)["results"][0]
    assert '"instruments"' not in document
    assert [i.id for i in report.instruments] == list(prepost_figures(report))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 21), st.integers(0, 21)), min_size=2, max_size=15).filter(
        lambda pairs: any(a != b for a, b in pairs)
    )
)
def test_z_matches_the_spss_formula_for_any_completers_scores(
    pairs: list[tuple[int, int]],
) -> None:
    people = [participant(f"P{n}") for n in range(len(pairs))]
    scores = [
        record
        for n, (pre, post) in enumerate(pairs)
        for record in (
            score(f"P{n}", "week-1", {"anxiety": float(pre), "depression": 5.0}),
            score(f"P{n}", "week-12", {"anxiety": float(post), "depression": 5.0}),
        )
    ]
    anxiety = row(report_of(people, scores), "hads", "anxiety")
    t_stat, z = spss_z([b - a for a, b in pairs])

    assert anxiety["n_pairs"] == len(pairs)
    assert anxiety["wilcoxon"]["t"] == t_stat
    assert anxiety["wilcoxon"]["z"] == pytest.approx(z, rel=1e-9, abs=1e-12)
    assert anxiety["pre"]["mean"] == pytest.approx(statistics.mean(a for a, _ in pairs))
    assert anxiety["wilcoxon"]["z"] <= 0


def test_reliable_change_is_reported_per_participant_with_jacobson_truax_by_hand() -> None:
    people, scores = pilot_trial()
    change = row(report_of(people, scores), "hads", "anxiety")["reliable_change"]
    # Jacobson & Truax, written out: SE = SD_pre * sqrt(1 - .83), S_diff = sqrt(2) * SE
    sd_pre = statistics.stdev(ANXIETY_PRE[p] for p in sorted(ANXIETY_PRE))
    s_diff = math.sqrt(2) * sd_pre * math.sqrt(1 - 0.83)
    expected = {}
    for pid in sorted(ANXIETY_PRE):
        rci = (ANXIETY_POST[pid] - ANXIETY_PRE[pid]) / s_diff
        # HADS anxiety improves downwards
        expected[pid] = (
            "improved" if rci < -1.96 else "deteriorated" if rci > 1.96 else ("no_reliable_change")
        )
        got = next(p for p in change["participants"] if p["participant_id"] == pid)
        assert got["rci"] == pytest.approx(rci, abs=1e-12)
        assert got["category"] == expected[pid]
    categories = list(expected.values())
    assert change["improved"] == categories.count("improved")
    assert change["deteriorated"] == categories.count("deteriorated")
    assert change["no_reliable_change"] == categories.count("no_reliable_change")


# -- v1.1 fields ------------------------------------------------------------------------------


def enumerated_exact_p(differences: Sequence[float]) -> float:
    """Two-sided exact p over all 2**n sign assignments of the mid-ranks (coin's definition:
    P(|W+ - E W+| >= |w+ - E W+|)), written out anew for this test."""
    nonzero = [d for d in differences if d != 0]
    magnitudes = sorted(abs(d) for d in nonzero)
    ranks = [
        sum(i + 1 for i, m in enumerate(magnitudes) if m == abs(d)) / magnitudes.count(abs(d))
        for d in nonzero
    ]
    observed = sum(r for r, d in zip(ranks, nonzero, strict=True) if d > 0)
    centre = sum(ranks) / 2
    hits = sum(
        1
        for signs in itertools.product((0, 1), repeat=len(ranks))
        if abs(sum(r * s for r, s in zip(ranks, signs, strict=True)) - centre)
        >= abs(observed - centre) - 1e-9
    )
    return hits / 2 ** len(ranks)


def holm_by_definition(ps: Sequence[float]) -> list[float]:
    """Holm (1979): the i-th smallest p becomes max_{j <= i} min(1, (m - j + 1) p_(j))."""
    m = len(ps)
    order = sorted(range(m), key=lambda k: ps[k])
    out = [0.0] * m
    for i, k in enumerate(order):
        out[k] = max(min(1.0, (m - j) * ps[order[j]]) for j in range(i + 1))
    return out


def test_the_exact_p_is_given_with_ties_and_leads_the_row() -> None:
    report = report_of(*pilot_trial())
    anxiety = row(report, "hads", "anxiety")
    depression = row(report, "hads", "depression")
    # depression d = -4, -2, -3, -3, -3 (P03's week-12 not scored): three tied
    assert depression["wilcoxon"]["p_exact_two_sided"] == pytest.approx(
        enumerated_exact_p([-4, -2, -3, -3, -3]), rel=1e-12
    )
    assert depression["wilcoxon"]["p_method_primary"] == "exact"
    # anxiety: no ties, the same value as v1 (R coin 1.4.2 gives 0.03125 for these pairs)
    assert anxiety["wilcoxon"]["p_exact_two_sided"] == 0.03125
    assert anxiety["wilcoxon"]["p_method_primary"] == "exact"


def test_p_holm_adjusts_the_primary_p_across_every_result_that_has_one() -> None:
    people = [participant(f"P{n:02d}") for n in range(1, 56)]
    scores = []
    for n, p in enumerate(people, start=1):
        # anxiety falls for all (55 > 50 non-zero: asymptotic p); depression mixed with ties
        scores.append(score(p.participant_id, "week-1", {"anxiety": 20.0, "depression": 10.0}))
        after = {"anxiety": 20.0 - (n % 9 + 1), "depression": 10.0 + (n % 5) - 2}
        scores.append(score(p.participant_id, "week-12", after))
    report = report_of(people, scores)
    tested = [r for r in report["results"] if r["wilcoxon"] and r["wilcoxon"]["p_method_primary"]]
    assert [(r["instrument"], r["subscale"]) for r in tested] == [
        ("hads", "anxiety"),
        ("hads", "depression"),
    ]
    anxiety, depression = tested
    assert anxiety["wilcoxon"]["p_method_primary"] == "asymptotic"
    assert anxiety["wilcoxon"]["p_exact_two_sided"] is None
    primary = [anxiety["wilcoxon"]["p_two_sided"], depression["wilcoxon"]["p_exact_two_sided"]]
    assert [anxiety["p_holm"], depression["p_holm"]] == pytest.approx(
        holm_by_definition(primary), rel=1e-12
    )
    assert all(r["p_holm"] is None for r in report["results"] if r not in tested)
    assert "Holm" in report["method"]
    assert "unadjusted" in report["method"]


def test_p_holm_of_the_pilot_is_the_two_primary_p_values_adjusted_together() -> None:
    report = report_of(*pilot_trial())
    anxiety = row(report, "hads", "anxiety")
    depression = row(report, "hads", "depression")
    ps = [anxiety["wilcoxon"]["p_exact_two_sided"], depression["wilcoxon"]["p_exact_two_sided"]]
    assert [anxiety["p_holm"], depression["p_holm"]] == pytest.approx(holm_by_definition(ps))
    assert row(report, "fscs", "self_correction")["p_holm"] is None  # one pair: no p


def test_effect_sizes_match_their_definitions() -> None:
    anxiety = row(report_of(*pilot_trial()), "hads", "anxiety")
    _, z = spss_z([b - a for a, b in zip(ANXIETY_PRE.values(), ANXIETY_POST.values(), strict=True)])
    w_plus, w_minus = anxiety["wilcoxon"]["w_plus"], anxiety["wilcoxon"]["w_minus"]

    assert anxiety["effect_sizes"] == pytest.approx(
        {
            "r_pairs": z / math.sqrt(6),
            "r_observations": z / math.sqrt(12),
            "rank_biserial": (w_plus - w_minus) / (w_plus + w_minus),
        }
    )
    assert anxiety["effect_sizes"]["rank_biserial"] == -1.0  # every score fell
    assert anxiety["effect_size_r"] == anxiety["effect_sizes"]["r_pairs"]
    one_pair = row(report_of(*pilot_trial()), "fscs", "self_correction")
    assert one_pair["effect_sizes"] == {
        "r_pairs": None,
        "r_observations": None,
        "rank_biserial": None,
    }


def test_prorated_pairs_counts_the_pairs_with_a_prorated_score() -> None:
    people, scores = pilot_trial()
    # P04's week-1 depression becomes prorated too: depression then has one prorated pair
    scores = [
        dataclasses.replace(
            s, subscales={**s.subscales, "depression": value("depression", 12.0, prorated=True)}
        )
        if (s.participant_id, s.timepoint, s.instrument) == ("P04", "week-1", "hads")
        else s
        for s in scores
    ]
    report = report_of(people, scores)
    assert row(report, "hads", "anxiety")["prorated_pairs"] == 1  # P02's week-12 anxiety
    assert row(report, "hads", "depression")["prorated_pairs"] == 1  # P04's week-1
    assert row(report, "fscs", "self_correction")["prorated_pairs"] == 0


def test_sensitivity_repeats_the_statistics_with_the_withdrawn_pairs_included() -> None:
    anxiety = row(report_of(*pilot_trial()), "hads", "anxiety")
    sensitivity = anxiety["sensitivity"]
    # P07 withdrew with both timepoints scored: 16 -> 17
    pre = [*ANXIETY_PRE.values(), 16.0]
    post = [*ANXIETY_POST.values(), 17.0]
    differences = [b - a for a, b in zip(pre, post, strict=True)]
    t_stat, z = spss_z(differences)

    assert (sensitivity["n_pairs"], sensitivity["withdrawn_pairs"]) == (7, 1)
    assert sensitivity["pre"]["mean"] == pytest.approx(statistics.mean(pre))
    assert sensitivity["post"]["sd"] == pytest.approx(statistics.stdev(post))
    assert sensitivity["wilcoxon"]["t"] == t_stat
    assert sensitivity["wilcoxon"]["z"] == pytest.approx(z, rel=1e-12)
    assert sensitivity["wilcoxon"]["p_exact_two_sided"] == pytest.approx(
        enumerated_exact_p(differences), rel=1e-12
    )
    assert sensitivity["effect_sizes"]["r_pairs"] == pytest.approx(z / math.sqrt(7))
    assert sensitivity["prorated_pairs"] == 1
    assert sensitivity["direction"] == "decrease"
    # the primary statistics stay those of the completers
    assert anxiety["n_pairs"] == 6
    assert "p_holm" not in sensitivity


def test_only_scores_of_the_same_instrument_version_are_paired() -> None:
    people = [participant("A1", "active"), participant("A2", "active"), participant("A3", "active")]
    scores = [
        score("A1", "week-1", {"anxiety": 10.0, "depression": 9.0}),
        score("A1", "week-12", {"anxiety": 6.0, "depression": 9.0}, version="2"),
        score("A2", "week-1", {"anxiety": 12.0, "depression": 8.0}),
        score("A2", "week-12", {"anxiety": 7.0, "depression": 5.0}),
        score("A3", "week-1", {"anxiety": 14.0, "depression": 8.0}),
        score("A3", "week-12", {"anxiety": 9.0, "depression": 6.0}),
    ]
    anxiety = row(report_of(people, scores), "hads", "anxiety")

    assert anxiety["n_pairs"] == 2
    assert anxiety["excluded"] == [
        {
            "participant_id": "A1",
            "reason": "week-1 scored with instrument version 1, week-12 with version 2: "
            "scores of different versions are not paired",
        }
    ]


def test_completers_have_a_compared_instrument_scored_at_both_timepoints_in_one_version() -> None:
    people = [
        participant("A1", "active"),  # HADS before, FSCS after: not a completer
        participant("A2", "completed"),  # status completed, nothing scored
        participant("A3", "active"),  # HADS version 1 before, version 2 after
        participant("A4", "active"),  # HADS at both: the one completer
        participant("A5", "withdrawn"),  # both scored, but withdrawn
    ]
    hads_values = {"anxiety": 10.0, "depression": 9.0}
    scores = [
        score("A1", "week-1", hads_values),
        score(
            "A1", "week-12", {"self_correction": 3.0, "self_persecution": 2.0}, instrument="fscs"
        ),
        score("A3", "week-1", hads_values),
        score("A3", "week-12", hads_values, version="2"),
        score("A4", "week-1", hads_values),
        score("A4", "week-12", hads_values),
        score("A5", "week-1", hads_values),
        score("A5", "week-12", hads_values),
        # scores at a timepoint outside the comparison do not make anyone a completer
        score("A2", "follow-up", hads_values),
    ]
    assert report_of(people, scores)["participants"]["completed"] == 1


def test_reliable_change_falls_back_to_the_sample_and_says_why() -> None:
    change = row(report_of(*pilot_trial()), "hads", "anxiety")["reliable_change"]
    sd_pre = statistics.stdev(ANXIETY_PRE.values())

    assert change["basis"] == "sample"
    assert "no published reference SD" in change["basis_note"]
    assert change["reference_sd"] == pytest.approx(sd_pre)
    assert (change["reliability"], change["reliability_kind"]) == (0.83, "internal_consistency")
    assert change["s_diff"] == pytest.approx(math.sqrt(2) * sd_pre * math.sqrt(1 - 0.83))


def test_reliable_change_uses_a_published_reference_sd_and_test_retest_when_catalogued() -> None:
    text = (
        Path(__file__).resolve().parents[2] / "src" / "domain" / "data" / "instruments.json"
    ).read_text("utf-8")
    data = json.loads(text)
    hads = next(i for i in data["instruments"] if i["id"] == "hads")
    # a test catalogue: the packaged HADS anxiety test-retest .84 plus a made-up SD of 4
    hads["subscales"][0].update(reference_sd=4.0, reference_sd_source="test fixture: 4.0")
    catalogue = load_catalogue(data)
    people, scores = pilot_trial()
    report = to_json(
        build_report(
            trial_id=TRIAL,
            protocol=default_protocol(),
            participants=people,
            scores=scores,
            generated_at="2026-11-26T02:00:00Z",
            software_version="0.1.0",
            catalogue=catalogue,
        )
    )
    change = row(report, "hads", "anxiety")["reliable_change"]
    # Jacobson & Truax by hand: S_diff = sqrt(2) * 4 * sqrt(1 - .84) = 2.2627; d = -1, -2.5,
    # -3, -4, -5, -6 -> RCI -0.44, -1.10, -1.33, -1.77, -2.21, -2.65
    s_diff = math.sqrt(2) * 4.0 * 0.4
    assert change["basis"] == "published"
    assert (change["reference_sd"], change["reliability"]) == (4.0, 0.84)
    assert change["reliability_kind"] == "test_retest"
    assert "Herrmann (1997)" in change["reliability_source"]
    assert change["s_diff"] == pytest.approx(s_diff)
    assert [p["rci"] for p in change["participants"]] == pytest.approx(
        [-1 / s_diff, -2.5 / s_diff, -3 / s_diff, -4 / s_diff, -5 / s_diff, -6 / s_diff]
    )
    assert (change["improved"], change["no_reliable_change"], change["deteriorated"]) == (2, 4, 0)
    # depression has no published SD and no baseline spread (every pre score is 12): no RCI
    assert row(report, "hads", "depression")["reliable_change"] is None


def test_mathematically_equal_prorated_differences_tie_in_the_report() -> None:
    people = [participant(f"P{n}") for n in range(1, 5)]
    first_way, second_way = 10 / 6 * 7, 70 / 6  # 35/3 prorated two ways, unequal floats
    pre_post = [(20.0, first_way), (20.0, second_way), (5.0, 6.0), (30.0, 18.0)]
    scores = [
        record
        for n, (a, b) in enumerate(pre_post, start=1)
        for record in (
            score(f"P{n}", "week-1", {"anxiety": a, "depression": 5.0}),
            score(f"P{n}", "week-12", {"anxiety": b, "depression": 5.0}),
        )
    ]
    wilcoxon = row(report_of(people, scores), "hads", "anxiety")["wilcoxon"]
    # |d| 8.33 and 8.33 share rank 2.5; the tie-corrected variance is 7.5 - 6/48
    assert (wilcoxon["w_plus"], wilcoxon["w_minus"]) == (1.0, 9.0)
    assert wilcoxon["z"] == pytest.approx((1 - 5) / math.sqrt(7.375), rel=1e-12)


def test_the_table_csv_carries_the_v11_columns() -> None:
    typed = typed_report_of(*pilot_trial())
    report = to_json(typed)
    rows = list(csv.DictReader(io.StringIO(report_table_csv(typed), newline="")))
    anxiety = next(r for r in rows if (r["instrument"], r["subscale"]) == ("hads", "anxiety"))
    expected = row(report, "hads", "anxiety")

    assert anxiety["p_method_primary"] == "exact"
    assert float(anxiety["p_holm"]) == expected["p_holm"]
    assert float(anxiety["rank_biserial"]) == -1.0
    assert (anxiety["prorated_pairs"], anxiety["reliable_change_basis"]) == ("1", "sample")
    assert (anxiety["sensitivity_n_pairs"], anxiety["sensitivity_withdrawn_pairs"]) == ("7", "1")


def test_the_documented_examples_run_as_written() -> None:
    for module in (domain.report, services.prepost):
        result = doctest.testmod(module)
        assert result.attempted > 0
        assert result.failed == 0
