"""The pre/post report: paired change per instrument × subscale (API.md, "The pre/post report").

Pure: it takes the trial's protocol, participants and stored scores, and returns the report as
the JSON-ready dict of the contract. The statistics themselves live in `domain.statistics`;
this module decides *who* is compared and says why everyone else is not.

Pairing rule (completers only, both timepoints scored)
------------------------------------------------------
For each participant and subscale the score that counts at a timepoint is the newest one
(highest ``seq``, `records.newest_counting`): a correction replaces what it supersedes. A
participant is paired for a subscale when that score is non-null at both the protocol's
``comparison.pre`` and ``comparison.post`` timepoints, prorated scores included (the
instrument's missing-item rule already decided they are valid scores).

Withdrawn participants are never paired, even when both timepoints happen to be scored: the
study analysed completers only, and a withdrawal is the participant leaving the programme, so
their post score does not measure the programme's end. They are listed in ``excluded`` with
the reason ``"withdrawn"`` and nothing more (the withdrawal reason is free text and never
reaches a report), like everyone else left out, so the denominator is always visible.
Active participants are paired as soon as both timepoints are scored (an interim report).

Only scores of the same instrument version are paired: a participant whose counting pre and
post submissions were scored with different versions is excluded with both versions named,
because a corrected key can move a score without any change in the participant.

Each result's ``sensitivity`` block repeats the statistics over all available pairs, the
withdrawn participants' included (the same rules otherwise), and says how many of its pairs
are withdrawn participants'.

Completers
----------
``participants.completed`` counts the participants who are not withdrawn and who, for at least
one compared instrument (`compared_instruments`), have a counting scored submission at both
comparison timepoints in the same instrument version: the pairable participants. A subscale
score can still be null for too many skipped items, so a completer may be excluded from some
rows (with the reason); status ``"completed"`` alone, without those scores, does not count.

Multiplicity
------------
``p_holm`` adjusts each result's primary p (``wilcoxon.p_method_primary``: the exact p where it
exists, else the normal approximation) by Holm's step-down method across every result of the
report that has one. The other p values in the report, the sensitivity blocks' included, are
unadjusted.

`paired_values` is the single place that builds the pairs; the report and the figures both
call it, so a figure always shows exactly the pairs the statistics used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.instruments import CATALOGUE, Catalogue, Instrument, Subscale
from domain.statistics import (
    RCI_CRITICAL,
    TIE_DECIMALS,
    Pair,
    PairedChange,
    describe,
    holm_adjust,
    paired_change,
    reliable_change_counts,
    reliable_change_index,
)
from domain.submissions import ScoreRecord, newest_counting
from domain.trial import Participant, StudyProtocol, natural_key
from services.export_csv import csv_text

__all__ = [
    "METHOD",
    "TABLE_COLUMNS",
    "Exclusion",
    "Pairing",
    "build_report",
    "compared_instruments",
    "headline_changes",
    "paired_values",
    "pairs_by_subscale",
    "report_table_csv",
]

METHOD = (
    "Wilcoxon signed-rank, zero differences dropped, average ranks for ties, tie-corrected "
    "normal approximation without continuity correction (as SPSS); differences rounded to "
    f"{TIE_DECIMALS} decimals before zeros and ties are decided; exact p from the "
    "conditional distribution of the signed mid-ranks over all 2^n sign assignments (ties "
    "included, n_nonzero <= 50), two-sided as P(|W+ - E W+| >= |w+ - E W+|); the primary p "
    "is the exact one where it exists, else the asymptotic one; p_holm adjusts the primary p "
    "by Holm's step-down method across all results of this report that have a p; every other "
    "p value in the report (p_two_sided, p_exact_two_sided, and all p values of the "
    "sensitivity blocks) is unadjusted"
)

TABLE_COLUMNS: tuple[str, ...] = (
    "instrument",
    "subscale",
    "n_pairs",
    "pre_mean",
    "pre_sd",
    "pre_median",
    "post_mean",
    "post_sd",
    "post_median",
    "t",
    "w_plus",
    "w_minus",
    "z",
    "p_two_sided",
    "p_exact_two_sided",
    "direction",
    "effect_size_r",
    "hodges_lehmann",
    "n_excluded",
    "reason",
    "p_method_primary",
    "p_holm",
    "r_observations",
    "rank_biserial",
    "prorated_pairs",
    "reliable_change_basis",
    "sensitivity_n_pairs",
    "sensitivity_withdrawn_pairs",
    "sensitivity_p_primary",
)

_TOO_MANY_MISSING = "too_many_missing"
#: The whole of a withdrawn participant's exclusion reason: their own words never appear.
WITHDRAWN = "withdrawn"

_Counting = Mapping[tuple[str, str, str], ScoreRecord]


@dataclass(frozen=True)
class Exclusion:
    """A participant left out of one subscale's comparison, and why (actionable wording)."""

    participant_id: str
    reason: str


@dataclass(frozen=True)
class Pairing:
    """Who is compared for one instrument × subscale, in participant order.

    ``prorated`` lists the participants whose pair has a prorated score at either timepoint;
    ``withdrawn`` those among the pairs who withdrew (only a sensitivity pairing has any).
    """

    pairs: tuple[Pair, ...]
    excluded: tuple[Exclusion, ...]
    prorated: tuple[str, ...] = ()
    withdrawn: tuple[str, ...] = ()


def paired_values(
    *,
    protocol: StudyProtocol,
    participants: Sequence[Participant],
    scores: Sequence[ScoreRecord],
    instrument: str,
    subscale: str,
) -> Pairing:
    """The pre/post pairs of one subscale and every enrolled participant not paired.

    Parameters
    ----------
    protocol : Protocol
        Its ``comparison`` names the pre and post timepoints.
    participants : sequence of Participant
        Every enrolled participant of the trial (any status).
    scores : sequence of ScoreRecord
        Every stored score of the trial, superseded ones included.
    instrument, subscale : str
        Which subscale to pair.

    Returns
    -------
    Pairing
        ``pairs`` and ``excluded``, both ordered by participant id (P2 before P10); every
        participant appears in exactly one of them.
    """
    return _pairing(
        protocol=protocol,
        participants=_ordered(participants),
        counting=newest_counting(list(scores)),
        instrument=instrument,
        subscale=subscale,
    )


def pairs_by_subscale(
    *,
    protocol: StudyProtocol,
    participants: Sequence[Participant],
    scores: Sequence[ScoreRecord],
    instrument: Instrument,
) -> dict[str, list[tuple[str, float, float]]]:
    """``subscale id -> [(participant_id, pre, post), ...]`` for `figures.prepost_figure_svg`.

    The same pairs `build_report` analyses (both go through `paired_values`).
    """
    ordered = _ordered(participants)
    counting = newest_counting(list(scores))
    result: dict[str, list[tuple[str, float, float]]] = {}
    for sub in instrument.subscales:
        pairing = _pairing(
            protocol=protocol,
            participants=ordered,
            counting=counting,
            instrument=instrument.id,
            subscale=sub.id,
        )
        result[sub.id] = [(p.participant_id, p.pre, p.post) for p in pairing.pairs]
    return result


def build_report(
    *,
    trial_id: str,
    protocol: StudyProtocol,
    participants: Sequence[Participant],
    scores: Sequence[ScoreRecord],
    generated_at: str,
    software_version: str,
    catalogue: Catalogue = CATALOGUE,
) -> dict[str, Any]:
    """The pre/post report of one trial as the contract's JSON-ready dict.

    One result row per instrument that the protocol schedules at both comparison timepoints,
    times each of its subscales, in catalogue order. Numbers are not rounded. A row whose
    statistics cannot be computed (fewer than 2 pairs, say) is still present, with the
    statistics null and ``reason`` saying why. ``reliable_change`` is null whenever the
    statistics are null, and for subscales with neither a published basis nor an alpha
    (the diary).

    Reliable change (Jacobson & Truax 1991) uses the subscale's published reference SD and
    test-retest reliability from the catalogue when both are known (``"basis":
    "published"``); otherwise it says so in ``basis_note`` and falls back to the trial's
    baseline SD of the pairs and the catalogued Cronbach's alpha (``"basis": "sample"``),
    which needs at least 2 pairs with some spread at baseline.

    `catalogue` is the instrument catalogue to take the instruments and their reference
    values from (the packaged one unless a caller passes another).

    Examples
    --------
    >>> from domain.trial import default_protocol
    >>> report = build_report(trial_id="t-1", protocol=default_protocol(), participants=[],
    ...                       scores=[], generated_at="2026-11-26T02:00:00Z",
    ...                       software_version="0.1.0")
    >>> report["results"][0]["instrument"], report["results"][0]["n_pairs"]
    ('hads', 0)
    """
    ordered = _ordered(participants)
    counting = newest_counting(list(scores))
    instruments = compared_instruments(protocol, catalogue=catalogue)
    results = [
        _result_row(
            instrument=instrument,
            subscale=sub,
            pairing=_pairing(
                protocol=protocol,
                participants=ordered,
                counting=counting,
                instrument=instrument.id,
                subscale=sub.id,
            ),
            sensitivity=_pairing(
                protocol=protocol,
                participants=ordered,
                counting=counting,
                instrument=instrument.id,
                subscale=sub.id,
                include_withdrawn=True,
            ),
        )
        for instrument in instruments
        for sub in instrument.subscales
    ]
    _add_holm(results)
    statuses = [p.status for p in ordered]
    return {
        "trial_id": trial_id,
        "generated_at": generated_at,
        "software_version": software_version,
        "comparison": {"pre": protocol.comparison.pre, "post": protocol.comparison.post},
        "method": METHOD,
        "participants": {
            "enrolled": len(ordered),
            "withdrawn": statuses.count("withdrawn"),
            # completers: not withdrawn, some compared instrument scored at both
            # comparison timepoints in one version (module docstring, "Completers")
            "completed": _completers(ordered, counting, protocol, instruments),
            "active": statuses.count("active"),
        },
        "results": results,
    }


def _completers(
    participants: Sequence[Participant],
    counting: _Counting,
    protocol: StudyProtocol,
    instruments: Sequence[Instrument],
) -> int:
    pre, post = protocol.comparison.pre, protocol.comparison.post

    def pairable(pid: str, instrument: str) -> bool:
        before = counting.get((pid, instrument, pre))
        after = counting.get((pid, instrument, post))
        return (
            before is not None
            and after is not None
            and before.instrument_version == after.instrument_version
        )

    return sum(
        1
        for p in participants
        if p.status != "withdrawn"
        and any(pairable(p.participant_id, instrument.id) for instrument in instruments)
    )


def compared_instruments(
    protocol: StudyProtocol, *, catalogue: Catalogue = CATALOGUE
) -> tuple[Instrument, ...]:
    """Catalogue instruments the protocol schedules at both comparison timepoints."""
    wanted = {protocol.comparison.pre, protocol.comparison.post}
    return tuple(
        instrument
        for instrument in catalogue.instruments()
        if wanted <= set(protocol.schedule.get(instrument.id, ()))
    )


def report_table_csv(report: Mapping[str, Any]) -> str:
    """The report's results as one CSV row per instrument × subscale (`TABLE_COLUMNS`).

    Null statistics are empty cells; floats keep full precision (``repr``). The CSV rules
    are those of the exports (`services.export_csv.csv_text`).
    """
    rows: list[list[object]] = []
    for row in report["results"]:
        pre = row["pre"] or {}
        post = row["post"] or {}
        wilcoxon = row["wilcoxon"] or {}
        rows.append(
            [
                row["instrument"],
                row["subscale"],
                row["n_pairs"],
                pre.get("mean"),
                pre.get("sd"),
                pre.get("median"),
                post.get("mean"),
                post.get("sd"),
                post.get("median"),
                wilcoxon.get("t"),
                wilcoxon.get("w_plus"),
                wilcoxon.get("w_minus"),
                wilcoxon.get("z"),
                wilcoxon.get("p_two_sided"),
                wilcoxon.get("p_exact_two_sided"),
                row["direction"],
                row["effect_size_r"],
                row["hodges_lehmann_median_change"],
                len(row["excluded"]),
                row["reason"],
                wilcoxon.get("p_method_primary"),
                row["p_holm"],
                row["effect_sizes"]["r_observations"],
                row["effect_sizes"]["rank_biserial"],
                row["prorated_pairs"],
                (row["reliable_change"] or {}).get("basis"),
                row["sensitivity"]["n_pairs"],
                row["sensitivity"]["withdrawn_pairs"],
                _primary_p(row["sensitivity"]),
            ]
        )
    return csv_text(TABLE_COLUMNS, rows)


def headline_changes(report: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Compact rows for the weekly e-mail: no participant-level data, in report order."""
    return [
        {
            "instrument": row["instrument"],
            "subscale_label": row["subscale_label"],
            "n_pairs": row["n_pairs"],
            "pre_mean": (row["pre"] or {}).get("mean"),
            "post_mean": (row["post"] or {}).get("mean"),
            "direction": row["direction"],
            "p_two_sided": (row["wilcoxon"] or {}).get("p_two_sided"),
        }
        for row in report["results"]
    ]


# -- pairing -------------------------------------------------------------------------------


def _ordered(participants: Iterable[Participant]) -> list[Participant]:
    unique = {p.participant_id: p for p in participants}
    return sorted(unique.values(), key=lambda p: natural_key(p.participant_id))


def _pairing(
    *,
    protocol: StudyProtocol,
    participants: Sequence[Participant],
    counting: _Counting,
    instrument: str,
    subscale: str,
    include_withdrawn: bool = False,
) -> Pairing:
    pre_tp, post_tp = protocol.comparison.pre, protocol.comparison.post
    pairs: list[Pair] = []
    excluded: list[Exclusion] = []
    prorated: list[str] = []
    withdrawn: list[str] = []
    for participant in participants:
        pid = participant.participant_id
        if participant.status == "withdrawn" and not include_withdrawn:
            # never the withdrawal reason: it is free text
            excluded.append(Exclusion(pid, WITHDRAWN))
            continue
        pre_record = counting.get((pid, instrument, pre_tp))
        post_record = counting.get((pid, instrument, post_tp))
        if pre_record is None and post_record is None:
            excluded.append(Exclusion(pid, f"no scored {pre_tp} or {post_tp} submission"))
            continue
        if (
            pre_record is not None
            and post_record is not None
            and pre_record.instrument_version != post_record.instrument_version
        ):
            excluded.append(
                Exclusion(
                    pid,
                    f"{pre_tp} scored with instrument version {pre_record.instrument_version}, "
                    f"{post_tp} with version {post_record.instrument_version}: scores of "
                    "different versions are not paired",
                )
            )
            continue
        pre, pre_problem = _value(pre_record, timepoint=pre_tp, subscale=subscale)
        post, post_problem = _value(post_record, timepoint=post_tp, subscale=subscale)
        if pre is None or post is None:
            problems = [p for p in (pre_problem, post_problem) if p]
            excluded.append(Exclusion(pid, "; ".join(problems)))
            continue
        assert pre_record is not None
        assert post_record is not None
        pairs.append(Pair(participant_id=pid, pre=pre, post=post))
        if pre_record.subscales[subscale].prorated or post_record.subscales[subscale].prorated:
            prorated.append(pid)
        if participant.status == "withdrawn":
            withdrawn.append(pid)
    return Pairing(
        pairs=tuple(pairs),
        excluded=tuple(excluded),
        prorated=tuple(prorated),
        withdrawn=tuple(withdrawn),
    )


def _value(
    record: ScoreRecord | None, *, timepoint: str, subscale: str
) -> tuple[float | None, str | None]:
    """The subscale score of `record`, or None and the reason in the coordinator's words."""
    if record is None:
        return None, f"no scored {timepoint} submission"
    value = record.subscales.get(subscale)
    if value is None:
        return None, (
            f"{timepoint} submission {record.submission_id} (instrument version "
            f"{record.instrument_version}) has no {subscale} score"
        )
    if value.score is None or not math.isfinite(value.score):
        if value.reason == _TOO_MANY_MISSING or value.reason is None:
            why = (
                f"too many items skipped: {value.missing} of "
                f"{value.answered + value.missing} unanswered"
            )
        else:
            why = value.reason
        return None, f"{timepoint} subscale score missing ({why})"
    return float(value.score), None


# -- statistics ----------------------------------------------------------------------------


def _statistics(change: PairedChange) -> dict[str, Any]:
    """The statistics of one pairing in the contract's field names (shared by the
    result row and its sensitivity block)."""
    wilcoxon = change.wilcoxon
    sizes = change.effect_sizes
    return {
        "n_pairs": change.n_pairs,
        "pre": _descriptives(change.pre),
        "post": _descriptives(change.post),
        "wilcoxon": (
            None
            if wilcoxon is None
            else {
                "n_nonzero": wilcoxon.n_nonzero,
                "t": _number(wilcoxon.t),
                "w_plus": _number(wilcoxon.w_plus),
                "w_minus": _number(wilcoxon.w_minus),
                "z": _number(wilcoxon.z),
                "p_two_sided": _number(wilcoxon.p_two_sided),
                "p_exact_two_sided": _number(wilcoxon.p_exact_two_sided),
                "p_method_primary": (
                    wilcoxon.p_method_primary if wilcoxon.p_primary is not None else None
                ),
            }
        ),
        # With no pair at all there is no direction, not "none" (which would read as no change).
        "direction": change.direction if change.n_pairs else None,
        "effect_size_r": _number(change.effect_size_r),
        "effect_sizes": {
            "r_pairs": _number(sizes.r_pairs) if sizes else None,
            "r_observations": _number(sizes.r_observations) if sizes else None,
            "rank_biserial": _number(sizes.rank_biserial) if sizes else None,
        },
        "hodges_lehmann_median_change": _number(change.hodges_lehmann),
        "reason": change.reason,
    }


def _result_row(
    *, instrument: Instrument, subscale: Subscale, pairing: Pairing, sensitivity: Pairing
) -> dict[str, Any]:
    change = paired_change(pairs=pairing.pairs)
    statistics = _statistics(change)
    again = paired_change(pairs=sensitivity.pairs)
    return {
        "instrument": instrument.id,
        "subscale": subscale.id,
        "subscale_label": subscale.label,
        **{key: statistics[key] for key in ("n_pairs", "pre", "post", "wilcoxon", "direction")},
        "effect_size_r": statistics["effect_size_r"],
        "effect_sizes": statistics["effect_sizes"],
        "p_holm": None,  # set by _add_holm once every row is known
        "hodges_lehmann_median_change": statistics["hodges_lehmann_median_change"],
        "prorated_pairs": len(pairing.prorated),
        "reliable_change": (
            _reliable_change(subscale, pairing.pairs) if change.wilcoxon is not None else None
        ),
        "excluded": [
            {"participant_id": e.participant_id, "reason": e.reason} for e in pairing.excluded
        ],
        "reason": change.reason,
        "sensitivity": {
            "population": "all available pairs, withdrawn participants included",
            "withdrawn_pairs": len(sensitivity.withdrawn),
            **_statistics(again),
            "prorated_pairs": len(sensitivity.prorated),
        },
    }


def _primary_p(row: Mapping[str, Any]) -> float | None:
    wilcoxon = row["wilcoxon"]
    if wilcoxon is None:
        return None
    exact: float | None = wilcoxon["p_exact_two_sided"]
    asymptotic: float | None = wilcoxon["p_two_sided"]
    return exact if exact is not None else asymptotic


def _add_holm(results: list[dict[str, Any]]) -> None:
    """Set ``p_holm`` of every row with a primary p, Holm-adjusted across those rows."""
    tested = [(row, p) for row in results if (p := _primary_p(row)) is not None]
    for (row, _), adjusted in zip(tested, holm_adjust([p for _, p in tested]), strict=True):
        row["p_holm"] = adjusted


_NO_PUBLISHED_BASIS = (
    "no published reference SD and test-retest reliability pair in the catalogue for this "
    "subscale: the trial's baseline SD of the pairs and Cronbach's alpha are used"
)


def _reliable_change(subscale: Subscale, pairs: Sequence[Pair]) -> dict[str, Any] | None:
    published = subscale.published_reliable_change_basis
    basis: dict[str, Any]
    if published is not None:
        reference_sd, reliability = published
        basis = {
            "basis": "published",
            "reference_sd": reference_sd,
            "reference_sd_source": subscale.reference_sd_source,
            "reference_sd_sample": subscale.reference_sd_sample,
            "reliability": reliability,
            "reliability_kind": "test_retest",
            "reliability_interval": subscale.test_retest_interval,
            "reliability_source": subscale.test_retest_source,
            "reliability_sample": subscale.test_retest_sample,
        }
    else:
        alpha = subscale.reliability_alpha
        sd_pre = describe([p.pre for p in pairs]).sd
        if alpha is None or not sd_pre:
            # No alpha (the diary), or a baseline SD of 0 or undefined: no RCI can be
            # formed, and all-zero counts would misreport n.
            return None
        reference_sd, reliability = sd_pre, alpha
        basis = {
            "basis": "sample",
            "basis_note": _NO_PUBLISHED_BASIS,
            "reference_sd": sd_pre,
            "reference_sd_source": f"baseline SD (n - 1) of this result's {len(pairs)} pairs",
            "reference_sd_sample": "this trial's pairs",
            "reliability": alpha,
            "reliability_kind": subscale.reliability_kind or "internal_consistency",
            "reliability_interval": None,
            "reliability_source": subscale.reliability_source,
            "reliability_sample": subscale.reliability_sample,
        }
    changes = reliable_change_index(
        pairs=pairs,
        reference_sd=reference_sd,
        reliability=reliability,
        improvement=subscale.improvement,
    )
    counts = reliable_change_counts(changes)
    return {
        **basis,
        "alpha": subscale.reliability_alpha,
        "s_diff": math.sqrt(2) * reference_sd * math.sqrt(1 - reliability),
        "critical_value": RCI_CRITICAL,
        "improved": counts["improved"],
        "no_reliable_change": counts["no_reliable_change"],
        "deteriorated": counts["deteriorated"],
        "participants": [
            {"participant_id": c.participant_id, "rci": c.rci, "category": c.category}
            for c in changes
        ],
    }


def _descriptives(summary: Any) -> dict[str, float | None]:
    if summary is None:
        return {"mean": None, "sd": None, "median": None}
    return {
        "mean": _number(summary.mean),
        "sd": _number(summary.sd),
        "median": _number(summary.median),
    }


def _number(value: float | None) -> float | None:
    """A JSON-safe float: NaN and infinities (never valid JSON) become null."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
