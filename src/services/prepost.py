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
the withdrawal reason, like everyone else left out, so the denominator is always visible.
Active participants are paired as soon as both timepoints are scored (an interim report).

`paired_values` is the single place that builds the pairs; the report and the figures both
call it, so a figure always shows exactly the pairs the statistics used.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from domain.instruments import CATALOGUE, Instrument, Subscale
from domain.statistics import Pair, paired_change, reliable_change, reliable_change_counts
from services.export_csv import csv_text
from services.records import (
    Participant,
    Protocol,
    ScoreRecord,
    natural_key,
    newest_counting,
)

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
    "normal approximation without continuity correction (as SPSS)"
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
)

_TOO_MANY_MISSING = "too_many_missing"

_Counting = Mapping[tuple[str, str, str], ScoreRecord]


@dataclass(frozen=True)
class Exclusion:
    """A participant left out of one subscale's comparison, and why (actionable wording)."""

    participant_id: str
    reason: str


@dataclass(frozen=True)
class Pairing:
    """Who is compared for one instrument × subscale, in participant order."""

    pairs: tuple[Pair, ...]
    excluded: tuple[Exclusion, ...]


def paired_values(
    *,
    protocol: Protocol,
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
    protocol: Protocol,
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
    protocol: Protocol,
    participants: Sequence[Participant],
    scores: Sequence[ScoreRecord],
    generated_at: str,
    software_version: str,
) -> dict[str, Any]:
    """The pre/post report of one trial as the contract's JSON-ready dict.

    One result row per instrument that the protocol schedules at both comparison timepoints,
    times each of its subscales, in catalogue order. Numbers are not rounded. A row whose
    statistics cannot be computed (fewer than 2 pairs, say) is still present, with the
    statistics null and ``reason`` saying why. ``reliable_change`` is null for subscales
    without a reliability alpha (the diary) and whenever the statistics are null.

    Examples
    --------
    >>> from services.records import default_protocol
    >>> report = build_report(trial_id="t-1", protocol=default_protocol(), participants=[],
    ...                       scores=[], generated_at="2026-11-26T02:00:00Z",
    ...                       software_version="0.1.0")
    >>> report["results"][0]["instrument"], report["results"][0]["n_pairs"]
    ('hads', 0)
    """
    ordered = _ordered(participants)
    counting = newest_counting(list(scores))
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
        )
        for instrument in compared_instruments(protocol)
        for sub in instrument.subscales
    ]
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
            # completers: status "completed", or not withdrawn with both comparison
            # timepoints scored (the study's sense of "completed the programme")
            "completed": _completers(ordered, counting, protocol),
            "active": statuses.count("active"),
        },
        "results": results,
    }


def _completers(
    participants: Sequence[Participant],
    counting: Mapping[tuple[str, str, str], ScoreRecord],
    protocol: Protocol,
) -> int:
    pre, post = protocol.comparison.pre, protocol.comparison.post
    scored = {(pid, tp) for (pid, _instrument, tp) in counting}
    return sum(
        1
        for p in participants
        if p.status == "completed"
        or (
            p.status != "withdrawn"
            and (p.participant_id, pre) in scored
            and (p.participant_id, post) in scored
        )
    )


def compared_instruments(protocol: Protocol) -> tuple[Instrument, ...]:
    """Catalogue instruments the protocol schedules at both comparison timepoints."""
    wanted = {protocol.comparison.pre, protocol.comparison.post}
    return tuple(
        instrument
        for instrument in CATALOGUE.instruments()
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
    protocol: Protocol,
    participants: Sequence[Participant],
    counting: _Counting,
    instrument: str,
    subscale: str,
) -> Pairing:
    pre_tp, post_tp = protocol.comparison.pre, protocol.comparison.post
    pairs: list[Pair] = []
    excluded: list[Exclusion] = []
    for participant in participants:
        pid = participant.participant_id
        if participant.status == "withdrawn":
            why = f" ({participant.reason})" if participant.reason else ""
            excluded.append(Exclusion(pid, f"withdrawn{why}"))
            continue
        pre_record = counting.get((pid, instrument, pre_tp))
        post_record = counting.get((pid, instrument, post_tp))
        if pre_record is None and post_record is None:
            excluded.append(Exclusion(pid, f"no scored {pre_tp} or {post_tp} submission"))
            continue
        pre, pre_problem = _value(pre_record, timepoint=pre_tp, subscale=subscale)
        post, post_problem = _value(post_record, timepoint=post_tp, subscale=subscale)
        if pre is None or post is None:
            problems = [p for p in (pre_problem, post_problem) if p]
            excluded.append(Exclusion(pid, "; ".join(problems)))
            continue
        pairs.append(Pair(participant_id=pid, pre=pre, post=post))
    return Pairing(pairs=tuple(pairs), excluded=tuple(excluded))


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


def _result_row(*, instrument: Instrument, subscale: Subscale, pairing: Pairing) -> dict[str, Any]:
    change = paired_change(pairs=pairing.pairs)
    wilcoxon = change.wilcoxon
    statistics_available = wilcoxon is not None
    return {
        "instrument": instrument.id,
        "subscale": subscale.id,
        "subscale_label": subscale.label,
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
            }
        ),
        # With no pair at all there is no direction, not "none" (which would read as no change).
        "direction": change.direction if change.n_pairs else None,
        "effect_size_r": _number(change.effect_size_r),
        "hodges_lehmann_median_change": _number(change.hodges_lehmann),
        "reliable_change": (
            _reliable_change(subscale, pairing.pairs) if statistics_available else None
        ),
        "excluded": [
            {"participant_id": e.participant_id, "reason": e.reason} for e in pairing.excluded
        ],
        "reason": change.reason,
    }


def _reliable_change(subscale: Subscale, pairs: Sequence[Pair]) -> dict[str, Any] | None:
    alpha = subscale.reliability_alpha
    if alpha is None:
        return None
    changes = reliable_change(pairs=pairs, alpha=alpha, improvement=subscale.improvement)
    if not changes:
        # Baseline SD of 0: no RCI can be formed; all-zero counts would misreport n.
        return None
    counts = reliable_change_counts(changes)
    return {
        "alpha": alpha,
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
