"""The pre/post report rendered: its JSON document, its CSV table, and its headline read back.

`domain.report.build_report` computes the report as a typed value; this module renders it,
once per form:

* `to_json`: the contract's document (API.md, "The pre/post report" and its v1.1 fields),
  the body published to S3 and answered by ``POST .../reports/pre-post``. Keys come in the
  contract's order; numbers are the report's own (finite or null, not rounded); the pairs
  and instruments the report carries for the figures are left out.
* `report_table_csv`: one CSV row per instrument × subscale (`TABLE_COLUMNS`).
* The figures are `services.figures.prepost_figures`.

The weekly e-mail says what the *published* report says, so it reads the stored document
back: `read_headline` is the one place that does, and it reads documents written before and
after the v1.1 fields alike (`primary_p`), taking every field with care so that an odd
document gives a sparser headline, never an error. Reading back what `to_json` wrote gives
exactly the report's own numbers (the unit tests hold the two together).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, get_args

from domain.report import (
    Descriptives,
    PairedStatistics,
    PrePostReport,
    ReliableChangeSummary,
    ResultRow,
    Sensitivity,
    WilcoxonStats,
)
from domain.statistics import Direction, PMethod
from services.export_csv import csv_text

__all__ = [
    "TABLE_COLUMNS",
    "Headline",
    "HeadlineRow",
    "primary_p",
    "read_headline",
    "report_table_csv",
    "to_json",
]

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

_DIRECTIONS: tuple[str, ...] = get_args(Direction)


# -- JSON ----------------------------------------------------------------------------------


def to_json(report: PrePostReport) -> dict[str, Any]:
    """The report as the contract's JSON-ready dict (without ``artifacts``, added on publish).

    Examples
    --------
    >>> from domain.report import build_report
    >>> from domain.trial import default_protocol
    >>> report = build_report(trial_id="t-1", protocol=default_protocol(), participants=[],
    ...                       scores=[], generated_at="2026-11-26T02:00:00Z",
    ...                       software_version="0.1.0")
    >>> document = to_json(report)
    >>> list(document)[:4], document["results"][0]["wilcoxon"]
    (['trial_id', 'generated_at', 'software_version', 'comparison'], None)
    """
    counts = report.participants
    return {
        "trial_id": report.trial_id,
        "generated_at": report.generated_at,
        "software_version": report.software_version,
        "comparison": {"pre": report.comparison.pre, "post": report.comparison.post},
        "method": report.method,
        "participants": {
            "enrolled": counts.enrolled,
            "withdrawn": counts.withdrawn,
            "completed": counts.completed,
            "active": counts.active,
        },
        "results": [_row_json(row) for row in report.results],
    }


def _row_json(row: ResultRow) -> dict[str, Any]:
    return {
        "instrument": row.instrument,
        "subscale": row.subscale,
        "subscale_label": row.subscale_label,
        "n_pairs": row.n_pairs,
        "pre": _descriptives_json(row.pre),
        "post": _descriptives_json(row.post),
        "wilcoxon": _wilcoxon_json(row.wilcoxon),
        "direction": row.direction,
        "effect_size_r": row.effect_size_r,
        "effect_sizes": _effect_sizes_json(row),
        "p_holm": row.p_holm,
        "hodges_lehmann_median_change": row.hodges_lehmann_median_change,
        "prorated_pairs": row.prorated_pairs,
        "reliable_change": _reliable_change_json(row.reliable_change),
        "excluded": [
            {"participant_id": e.participant_id, "reason": e.reason} for e in row.excluded
        ],
        "reason": row.reason,
        "sensitivity": _sensitivity_json(row.sensitivity),
    }


def _sensitivity_json(block: Sensitivity) -> dict[str, Any]:
    return {
        "population": block.population,
        "withdrawn_pairs": block.withdrawn_pairs,
        "n_pairs": block.n_pairs,
        "pre": _descriptives_json(block.pre),
        "post": _descriptives_json(block.post),
        "wilcoxon": _wilcoxon_json(block.wilcoxon),
        "direction": block.direction,
        "effect_size_r": block.effect_size_r,
        "effect_sizes": _effect_sizes_json(block),
        "hodges_lehmann_median_change": block.hodges_lehmann_median_change,
        "reason": block.reason,
        "prorated_pairs": block.prorated_pairs,
    }


def _descriptives_json(summary: Descriptives) -> dict[str, float | None]:
    return {"mean": summary.mean, "sd": summary.sd, "median": summary.median}


def _wilcoxon_json(wilcoxon: WilcoxonStats | None) -> dict[str, Any] | None:
    if wilcoxon is None:
        return None
    return {
        "n_nonzero": wilcoxon.n_nonzero,
        "t": wilcoxon.t,
        "w_plus": wilcoxon.w_plus,
        "w_minus": wilcoxon.w_minus,
        "z": wilcoxon.z,
        "p_two_sided": wilcoxon.p_two_sided,
        "p_exact_two_sided": wilcoxon.p_exact_two_sided,
        "p_method_primary": wilcoxon.p_method_primary,
    }


def _effect_sizes_json(stats: PairedStatistics) -> dict[str, float | None]:
    sizes = stats.effect_sizes
    return {
        "r_pairs": sizes.r_pairs,
        "r_observations": sizes.r_observations,
        "rank_biserial": sizes.rank_biserial,
    }


def _reliable_change_json(change: ReliableChangeSummary | None) -> dict[str, Any] | None:
    if change is None:
        return None
    # `basis_note` is a key of a sample basis only (the contract's response model leaves it
    # unset on a published one)
    note = {} if change.basis_note is None else {"basis_note": change.basis_note}
    return {
        "basis": change.basis,
        **note,
        "reference_sd": change.reference_sd,
        "reference_sd_source": change.reference_sd_source,
        "reference_sd_sample": change.reference_sd_sample,
        "reliability": change.reliability,
        "reliability_kind": change.reliability_kind,
        "reliability_interval": change.reliability_interval,
        "reliability_source": change.reliability_source,
        "reliability_sample": change.reliability_sample,
        "alpha": change.alpha,
        "s_diff": change.s_diff,
        "critical_value": change.critical_value,
        "improved": change.improved,
        "no_reliable_change": change.no_reliable_change,
        "deteriorated": change.deteriorated,
        "participants": [
            {"participant_id": c.participant_id, "rci": c.rci, "category": c.category}
            for c in change.participants
        ],
    }


# -- CSV -----------------------------------------------------------------------------------


def report_table_csv(report: PrePostReport) -> str:
    """The report's results as one CSV row per instrument × subscale (`TABLE_COLUMNS`).

    Null statistics are empty cells; floats keep full precision (``repr``). The CSV rules
    are those of the exports (`services.export_csv.csv_text`).
    """
    rows: list[list[object]] = []
    for row in report.results:
        # `x and x.field`: None where the block is None (a present block is always true)
        wilcoxon = row.wilcoxon
        sensitivity = row.sensitivity.wilcoxon
        rows.append(
            [
                row.instrument,
                row.subscale,
                row.n_pairs,
                row.pre.mean,
                row.pre.sd,
                row.pre.median,
                row.post.mean,
                row.post.sd,
                row.post.median,
                wilcoxon and wilcoxon.t,
                wilcoxon and wilcoxon.w_plus,
                wilcoxon and wilcoxon.w_minus,
                wilcoxon and wilcoxon.z,
                wilcoxon and wilcoxon.p_two_sided,
                wilcoxon and wilcoxon.p_exact_two_sided,
                row.direction,
                row.effect_size_r,
                row.hodges_lehmann_median_change,
                len(row.excluded),
                row.reason,
                wilcoxon and wilcoxon.p_method_primary,
                row.p_holm,
                row.effect_sizes.r_observations,
                row.effect_sizes.rank_biserial,
                row.prorated_pairs,
                row.reliable_change and row.reliable_change.basis,
                row.sensitivity.n_pairs,
                row.sensitivity.withdrawn_pairs,
                sensitivity and sensitivity.p_primary,
            ]
        )
    return csv_text(TABLE_COLUMNS, rows)


# -- the headline, read back from a published document -------------------------------------


@dataclass(frozen=True, kw_only=True)
class HeadlineRow:
    """The group-level numbers of one result (no participant-level data).

    ``p`` is the primary p and ``p_method`` which one it is (`primary_p`); ``n_pairs`` is
    None when the document does not give a count.
    """

    instrument: str
    subscale: str
    subscale_label: str
    n_pairs: int | None
    pre_mean: float | None
    post_mean: float | None
    direction: Direction | None
    p: float | None
    p_method: PMethod | None
    p_holm: float | None
    reason: str | None


@dataclass(frozen=True, kw_only=True)
class Headline:
    """What a published report says at a glance, for the weekly e-mail.

    ``pre`` and ``post`` name the compared timepoints (``"pre"`` and ``"post"`` when the
    document does not); ``completers`` is ``participants.completed``.
    """

    generated_at: str | None
    pre: str
    post: str
    completers: int | None
    rows: tuple[HeadlineRow, ...] = ()


def read_headline(document: Mapping[str, Any]) -> Headline:
    """The headline of a published report document, read with care.

    Rows that are not objects are skipped; a field that is missing or of the wrong type
    reads as None (labels as the subscale id, timepoints as ``"pre"``/``"post"``), so any
    document, from any version, gives a headline.

    Examples
    --------
    >>> headline = read_headline({"comparison": {"pre": "week-1", "post": "week-12"},
    ...     "results": [{"instrument": "hads", "subscale": "anxiety", "n_pairs": 6,
    ...                  "wilcoxon": {"p_two_sided": 0.0277, "p_exact_two_sided": 0.03125,
    ...                               "p_method_primary": "exact"}}]})
    >>> headline.pre, headline.rows[0].p, headline.rows[0].p_method
    ('week-1', 0.03125, 'exact')
    """
    comparison = _mapping(document.get("comparison"))
    participants = _mapping(document.get("participants"))
    completers = participants.get("completed")
    generated_at = document.get("generated_at")
    results = document.get("results")
    return Headline(
        generated_at=generated_at if isinstance(generated_at, str) else None,
        pre=str(comparison.get("pre", "pre")),
        post=str(comparison.get("post", "post")),
        completers=completers if _is_int(completers) else None,
        rows=tuple(
            _headline_row(row)
            for row in (results if isinstance(results, list | tuple) else ())
            if isinstance(row, Mapping)
        ),
    )


def _headline_row(row: Mapping[str, Any]) -> HeadlineRow:
    subscale = str(row.get("subscale", ""))
    n_pairs = row.get("n_pairs")
    direction = row.get("direction")
    reason = row.get("reason")
    p, method = primary_p(row)
    return HeadlineRow(
        instrument=str(row.get("instrument", "")),
        subscale=subscale,
        subscale_label=str(row.get("subscale_label") or subscale),
        n_pairs=n_pairs if _is_int(n_pairs) else None,
        pre_mean=_finite(_mapping(row.get("pre")).get("mean")),
        post_mean=_finite(_mapping(row.get("post")).get("mean")),
        direction=direction if direction in _DIRECTIONS else None,
        p=p,
        p_method=method,
        p_holm=_finite(row.get("p_holm")),
        reason=reason if isinstance(reason, str) else None,
    )


def primary_p(row: Mapping[str, Any]) -> tuple[float | None, PMethod | None]:
    """The p a published result row leads with, and its method.

    v1.1 documents name it in ``wilcoxon.p_method_primary``; older ones lead with the
    asymptotic p (their ``method`` says so), even where an exact p is given too.

    >>> primary_p({"wilcoxon": {"p_two_sided": 0.043, "p_exact_two_sided": 0.0625,
    ...                         "p_method_primary": "exact"}})
    (0.0625, 'exact')
    >>> primary_p({"wilcoxon": {"p_two_sided": 0.043, "p_exact_two_sided": 0.0625}})
    (0.043, 'asymptotic')
    >>> primary_p({"wilcoxon": None})
    (None, None)
    """
    wilcoxon = row.get("wilcoxon")
    if not isinstance(wilcoxon, Mapping):
        return None, None
    exact = _finite(wilcoxon.get("p_exact_two_sided"))
    if wilcoxon.get("p_method_primary") == "exact" and exact is not None:
        return exact, "exact"
    asymptotic = _finite(wilcoxon.get("p_two_sided"))
    return (asymptotic, "asymptotic") if asymptotic is not None else (None, None)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None
