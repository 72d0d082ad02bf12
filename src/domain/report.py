"""The pre/post report as a typed value: paired change per instrument × subscale.

Pure: `build_report` takes the trial's protocol, participants and stored scores and returns a
`PrePostReport`, frozen dataclasses throughout, in the contract's field names (API.md, "The
pre/post report" and its v1.1 fields). The statistics themselves live in `domain.statistics`;
this module decides *who* is compared and says why everyone else is not. Each consumer renders
the same value once: `services.prepost.to_json` (the published document and the API's answer),
`services.prepost.report_table_csv`, `services.figures.prepost_figures`; the weekly e-mail
reads the published document back (`services.prepost.read_headline`).

Every number of the report is finite or None: a NaN or an infinity (never valid JSON) is
stored as None when the report is built, so any rendering can take the values as they are.
Numbers are not rounded.

Pairing rule (completers only, both timepoints scored)
------------------------------------------------------
For each participant and subscale the score that counts at a timepoint is the newest one
(highest ``seq``, `domain.submissions.newest_counting`): a correction replaces what it
supersedes. A participant is paired for a subscale when that score is non-null at both the
protocol's ``comparison.pre`` and ``comparison.post`` timepoints, prorated scores included
(the instrument's missing-item rule already decided they are valid scores).

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

What the report carries beyond the contract
-------------------------------------------
Each `ResultRow` keeps the pairs its statistics used (``pairs``) and the report keeps the
catalogue instruments it compared (``instruments``), so a figure draws exactly the analysed
pairs on the catalogue's axes without pairing again. Neither is part of the published JSON.

References
----------
.. [1] Jacobson, N. S., & Truax, P. (1991). Clinical significance: a statistical approach to
   defining meaningful change in psychotherapy research. Journal of Consulting and Clinical
   Psychology, 59(1), 12-19. https://doi.org/10.1037/0022-006X.59.1.12
.. [2] Holm, S. (1979). A simple sequentially rejective multiple test procedure.
   Scandinavian Journal of Statistics, 6(2), 65-70.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, TypedDict

from domain import statistics as stats
from domain.instruments import CATALOGUE, Catalogue, Instrument, Subscale
from domain.statistics import (
    RCI_CRITICAL,
    TIE_DECIMALS,
    Direction,
    Pair,
    PairedChange,
    PMethod,
    holm_adjust,
    paired_change,
    reliable_change_counts,
    reliable_change_index,
)
from domain.submissions import ScoreRecord, by_participant, newest_counting
from domain.trial import Comparison, Participant, StudyProtocol, natural_key

__all__ = [
    "METHOD",
    "SENSITIVITY_POPULATION",
    "WITHDRAWN",
    "Descriptives",
    "EffectSizes",
    "Exclusion",
    "PairedStatistics",
    "Pairing",
    "ParticipantCounts",
    "PrePostReport",
    "ReliableChangeSummary",
    "ResultRow",
    "Sensitivity",
    "WilcoxonStats",
    "build_report",
    "build_report_from_groups",
    "compared_instruments",
    "group_by_participant",
    "paired_values",
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

#: The whole of a withdrawn participant's exclusion reason: their own words never appear.
WITHDRAWN = "withdrawn"
#: Who a sensitivity block's statistics are over.
SENSITIVITY_POPULATION = "all available pairs, withdrawn participants included"

_TOO_MANY_MISSING = "too_many_missing"
_NO_PUBLISHED_BASIS = (
    "no published reference SD and test-retest reliability pair in the catalogue for this "
    "subscale: the trial's baseline SD of the pairs and Cronbach's alpha are used"
)

_Counting = Mapping[tuple[str, str, str], ScoreRecord]


# -- the report's nouns -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Exclusion:
    """A participant left out of one subscale's comparison, and why (actionable wording)."""

    participant_id: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Pairing:
    """Who is compared for one instrument × subscale, in participant order.

    ``prorated`` lists the participants whose pair has a prorated score at either timepoint;
    ``withdrawn`` those among the pairs who withdrew (only a sensitivity pairing has any).
    """

    pairs: tuple[Pair, ...]
    excluded: tuple[Exclusion, ...]
    prorated: tuple[str, ...] = ()
    withdrawn: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Descriptives:
    """Mean, sample SD (n - 1) and median of one timepoint's paired scores; None if undefined."""

    mean: float | None
    sd: float | None
    median: float | None


@dataclass(frozen=True, kw_only=True)
class WilcoxonStats:
    """The Wilcoxon signed-rank test of one pairing (`domain.statistics.WilcoxonResult`).

    ``t`` is the smaller rank sum; ``z`` its tie-corrected normal deviate (never positive,
    None without a non-zero difference); ``p_two_sided`` the normal approximation and
    ``p_exact_two_sided`` the exact conditional p (ties too, ``n_nonzero`` <= 50), both
    unadjusted.
    """

    n_nonzero: int
    t: float | None
    w_plus: float | None
    w_minus: float | None
    z: float | None
    p_two_sided: float | None
    p_exact_two_sided: float | None

    @property
    def p_primary(self) -> float | None:
        """The p the report leads with: the exact one where it exists, else the normal one."""
        return self.p_exact_two_sided if self.p_exact_two_sided is not None else self.p_two_sided

    @property
    def p_method_primary(self) -> PMethod | None:
        """Which p `p_primary` is (``"exact"`` or ``"asymptotic"``); None without a p."""
        if self.p_exact_two_sided is not None:
            return "exact"
        return "asymptotic" if self.p_two_sided is not None else None


@dataclass(frozen=True, kw_only=True)
class EffectSizes:
    """``r_pairs = z / sqrt(n_pairs)``, ``r_observations = z / sqrt(2 n_pairs)`` and the
    matched-pairs rank-biserial correlation ``(w_plus - w_minus) / (w_plus + w_minus)``."""

    r_pairs: float | None
    r_observations: float | None
    rank_biserial: float | None


@dataclass(frozen=True, kw_only=True)
class ReliableChangeSummary:
    """Jacobson & Truax's reliable change of one result, with the basis it was computed on.

    ``basis`` is ``"published"`` (the catalogue's reference SD and test-retest reliability)
    or ``"sample"`` (the pairs' baseline SD and the catalogued alpha); ``basis_note`` says
    why the sample was used, and is None on a published basis.
    """

    basis: Literal["published", "sample"]
    basis_note: str | None
    reference_sd: float
    reference_sd_source: str | None
    reference_sd_sample: str | None
    reliability: float
    reliability_kind: str
    reliability_interval: str | None
    reliability_source: str | None
    reliability_sample: str | None
    alpha: float | None
    s_diff: float
    critical_value: float
    improved: int
    no_reliable_change: int
    deteriorated: int
    participants: tuple[stats.ReliableChange, ...]


@dataclass(frozen=True, kw_only=True)
class PairedStatistics:
    """The statistics of one pairing: shared by a result and its sensitivity block.

    ``direction`` compares W+ with W- and is None without any pair (not ``"none"``, which
    would read as no change); ``effect_size_r`` equals ``effect_sizes.r_pairs``; ``reason``
    says why the test is missing (fewer than 2 pairs, no non-zero difference), else None.
    """

    n_pairs: int
    pre: Descriptives
    post: Descriptives
    wilcoxon: WilcoxonStats | None
    direction: Direction | None
    effect_size_r: float | None
    effect_sizes: EffectSizes
    hodges_lehmann_median_change: float | None
    reason: str | None
    prorated_pairs: int


@dataclass(frozen=True, kw_only=True)
class Sensitivity(PairedStatistics):
    """The same statistics over all available pairs, withdrawn participants included."""

    population: str
    withdrawn_pairs: int


@dataclass(frozen=True, kw_only=True)
class ResultRow(PairedStatistics):
    """One instrument × subscale of the report.

    ``pairs`` are the pairs the statistics used, in participant order: carried for the
    figures, never published.
    """

    instrument: str
    subscale: str
    subscale_label: str
    p_holm: float | None
    reliable_change: ReliableChangeSummary | None
    excluded: tuple[Exclusion, ...]
    sensitivity: Sensitivity
    pairs: tuple[Pair, ...] = field(default=(), repr=False)


@dataclass(frozen=True, kw_only=True)
class ParticipantCounts:
    """Enrolment by status, and the completers (module docstring, "Completers")."""

    enrolled: int
    withdrawn: int
    completed: int
    active: int


@dataclass(frozen=True, kw_only=True)
class PrePostReport:
    """The pre/post report of one trial.

    ``results`` has one row per subscale of each of ``instruments`` (the catalogue
    instruments the protocol schedules at both comparison timepoints), in catalogue order.
    ``instruments`` is carried for the figures and is not part of the published JSON.
    """

    trial_id: str
    generated_at: str
    software_version: str
    comparison: Comparison
    method: str
    participants: ParticipantCounts
    results: tuple[ResultRow, ...]
    instruments: tuple[Instrument, ...] = field(default=(), repr=False)


# -- who is compared -----------------------------------------------------------------------


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
    protocol : StudyProtocol
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
    counting = newest_counting(list(scores))
    builder = _PairingBuilder()
    for participant in _ordered(participants):
        builder.add(
            participant,
            _verdict(
                participant,
                counting,
                protocol=protocol,
                instrument=instrument,
                subscale=subscale,
                include_withdrawn=False,
            ),
        )
    return builder.build()


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


def build_report(
    *,
    trial_id: str,
    protocol: StudyProtocol,
    participants: Sequence[Participant],
    scores: Sequence[ScoreRecord],
    generated_at: str,
    software_version: str,
    catalogue: Catalogue = CATALOGUE,
) -> PrePostReport:
    """The pre/post report of one trial.

    Parameters
    ----------
    trial_id : str
        The trial reported on.
    protocol : StudyProtocol
        Its ``comparison`` names the timepoints compared; its ``schedule`` which instruments
        are compared (`compared_instruments`).
    participants : sequence of Participant
        Every enrolled participant of the trial (any status).
    scores : sequence of ScoreRecord
        Every stored score of the trial, superseded ones included.
    generated_at, software_version : str
        When and by which version the report is computed (carried as given).
    catalogue : Catalogue, optional
        The instrument catalogue to take the instruments and their reference values from
        (the packaged one unless a caller passes another).

    Returns
    -------
    PrePostReport
        One result row per instrument that the protocol schedules at both comparison
        timepoints, times each of its subscales, in catalogue order. A row whose statistics
        cannot be computed (fewer than 2 pairs, say) is still present, with the statistics
        None and ``reason`` saying why. ``reliable_change`` is None whenever the test is,
        and for subscales with neither a published basis nor an alpha (the diary).

    Notes
    -----
    Reliable change (Jacobson & Truax 1991) uses the subscale's published reference SD and
    test-retest reliability from the catalogue when both are known (``basis="published"``);
    otherwise it says so in ``basis_note`` and falls back to the trial's baseline SD of the
    pairs and the catalogued Cronbach's alpha (``basis="sample"``), which needs at least 2
    pairs with some spread at baseline.

    References
    ----------
    .. [1] Jacobson, N. S., & Truax, P. (1991). https://doi.org/10.1037/0022-006X.59.1.12
    .. [2] Holm, S. (1979). Scandinavian Journal of Statistics, 6(2), 65-70.

    Examples
    --------
    >>> from domain.trial import default_protocol
    >>> report = build_report(trial_id="t-1", protocol=default_protocol(), participants=[],
    ...                       scores=[], generated_at="2026-11-26T02:00:00Z",
    ...                       software_version="0.1.0")
    >>> report.results[0].instrument, report.results[0].n_pairs, report.results[0].reason
    ('hads', 0, 'fewer than 2 pairs')
    """
    return build_report_from_groups(
        trial_id=trial_id,
        protocol=protocol,
        participants=participants,
        score_groups=group_by_participant(scores),
        generated_at=generated_at,
        software_version=software_version,
        catalogue=catalogue,
    )


def group_by_participant(scores: Iterable[ScoreRecord]) -> list[list[ScoreRecord]]:
    """`scores` as one list per participant (in order of first appearance)."""
    groups: dict[str, list[ScoreRecord]] = {}
    for record in scores:
        groups.setdefault(record.participant_id, []).append(record)
    return list(groups.values())


def build_report_from_groups(
    *,
    trial_id: str,
    protocol: StudyProtocol,
    participants: Sequence[Participant],
    score_groups: Iterable[Sequence[ScoreRecord]],
    generated_at: str,
    software_version: str,
    catalogue: Catalogue = CATALOGUE,
) -> PrePostReport:
    """`build_report`, reading the scores one participant at a time.

    `score_groups` yields every stored score of one participant at a time, in any participant
    order (a trial's scores as they are stored, page by page), each participant in one group
    only. Of each group only the verdicts are kept, a pair or an exclusion per subscale, so
    the memory the report needs grows with its results, not with the stored scores (a trial of
    the default protocol stores 30 or more scores per participant; the report pairs 12).
    Scores of a participant who is not in `participants` are not reported, as in
    `build_report`.

    Raises
    ------
    ValueError
        When a participant's scores come in more than one group.
    """
    ordered = _ordered(participants)
    by_id = {p.participant_id: p for p in ordered}
    instruments = compared_instruments(protocol, catalogue=catalogue)
    subscales = [(instrument, sub) for instrument in instruments for sub in instrument.subscales]
    instrument_ids = [instrument.id for instrument in instruments]
    judged: dict[str, _Judged] = {}
    for pid, group in by_participant(score_groups):
        participant = by_id.get(pid)
        if participant is not None:
            judged[pid] = _judge(
                participant, newest_counting(group), protocol, subscales, instrument_ids
            )
    main = [_PairingBuilder() for _ in subscales]
    sensitivity = [_PairingBuilder() for _ in subscales]
    completed = 0
    for participant in ordered:
        verdicts = judged.pop(participant.participant_id, None) or _judge(
            participant, {}, protocol, subscales, instrument_ids
        )
        completed += verdicts.completer
        for builder, verdict in zip(main, verdicts.main, strict=True):
            builder.add(participant, verdict)
        for builder, verdict in zip(sensitivity, verdicts.sensitivity, strict=True):
            builder.add(participant, verdict)
    rows = [
        _result_row(
            instrument=instrument,
            subscale=sub,
            pairing=main_pairing.build(),
            sensitivity=sensitivity_pairing.build(),
        )
        for (instrument, sub), main_pairing, sensitivity_pairing in zip(
            subscales, main, sensitivity, strict=True
        )
    ]
    statuses = [p.status for p in ordered]
    return PrePostReport(
        trial_id=trial_id,
        generated_at=generated_at,
        software_version=software_version,
        comparison=Comparison(pre=protocol.comparison.pre, post=protocol.comparison.post),
        method=METHOD,
        participants=ParticipantCounts(
            enrolled=len(ordered),
            withdrawn=statuses.count("withdrawn"),
            completed=completed,
            active=statuses.count("active"),
        ),
        results=_with_holm(rows),
        instruments=instruments,
    )


#: one participant's verdict on one subscale: their pair, or why they are not paired; and
#: whether the pair has a prorated score
_Verdict = tuple["Pair | Exclusion", bool]


@dataclass(frozen=True, slots=True)
class _Judged:
    """One participant's verdicts on every compared subscale, and whether they complete."""

    main: tuple[_Verdict, ...]
    sensitivity: tuple[_Verdict, ...]
    completer: bool


def _judge(
    participant: Participant,
    counting: _Counting,
    protocol: StudyProtocol,
    subscales: Sequence[tuple[Instrument, Subscale]],
    instrument_ids: Sequence[str],
) -> _Judged:
    def verdicts(*, include_withdrawn: bool) -> tuple[_Verdict, ...]:
        return tuple(
            _verdict(
                participant,
                counting,
                protocol=protocol,
                instrument=instrument.id,
                subscale=sub.id,
                include_withdrawn=include_withdrawn,
            )
            for instrument, sub in subscales
        )

    sensitivity = verdicts(include_withdrawn=True)
    withdrawn = participant.status == "withdrawn"
    return _Judged(
        main=verdicts(include_withdrawn=False) if withdrawn else sensitivity,
        sensitivity=sensitivity,
        completer=not withdrawn
        and _pairable(participant.participant_id, counting, protocol, instrument_ids),
    )


def _pairable(
    pid: str, counting: _Counting, protocol: StudyProtocol, instruments: Iterable[str]
) -> bool:
    """Whether `pid` has a counting score at both comparison timepoints, in the same
    instrument version, for any of `instruments`."""
    pre, post = protocol.comparison.pre, protocol.comparison.post
    for instrument in instruments:
        before = counting.get((pid, instrument, pre))
        after = counting.get((pid, instrument, post))
        if (
            before is not None
            and after is not None
            and before.instrument_version == after.instrument_version
        ):
            return True
    return False


def _ordered(participants: Iterable[Participant]) -> list[Participant]:
    unique = {p.participant_id: p for p in participants}
    return sorted(unique.values(), key=lambda p: natural_key(p.participant_id))


class _PairingBuilder:
    """A `Pairing` put together participant by participant, in participant order."""

    def __init__(self) -> None:
        self.pairs: list[Pair] = []
        self.excluded: list[Exclusion] = []
        self.prorated: list[str] = []
        self.withdrawn: list[str] = []

    def add(self, participant: Participant, verdict: _Verdict) -> None:
        found, prorated = verdict
        if isinstance(found, Exclusion):
            self.excluded.append(found)
            return
        self.pairs.append(found)
        if prorated:
            self.prorated.append(participant.participant_id)
        if participant.status == "withdrawn":
            self.withdrawn.append(participant.participant_id)

    def build(self) -> Pairing:
        return Pairing(
            pairs=tuple(self.pairs),
            excluded=tuple(self.excluded),
            prorated=tuple(self.prorated),
            withdrawn=tuple(self.withdrawn),
        )


def _verdict(
    participant: Participant,
    counting: _Counting,
    *,
    protocol: StudyProtocol,
    instrument: str,
    subscale: str,
    include_withdrawn: bool,
) -> _Verdict:
    pre_tp, post_tp = protocol.comparison.pre, protocol.comparison.post
    pid = participant.participant_id
    if participant.status == "withdrawn" and not include_withdrawn:
        # never the withdrawal reason: it is free text
        return Exclusion(participant_id=pid, reason=WITHDRAWN), False
    pre_record = counting.get((pid, instrument, pre_tp))
    post_record = counting.get((pid, instrument, post_tp))
    if pre_record is None and post_record is None:
        reason = f"no scored {pre_tp} or {post_tp} submission"
        return Exclusion(participant_id=pid, reason=reason), False
    if (
        pre_record is not None
        and post_record is not None
        and pre_record.instrument_version != post_record.instrument_version
    ):
        reason = (
            f"{pre_tp} scored with instrument version {pre_record.instrument_version}, "
            f"{post_tp} with version {post_record.instrument_version}: scores of different "
            "versions are not paired"
        )
        return Exclusion(participant_id=pid, reason=reason), False
    pre, pre_problem = _value(pre_record, timepoint=pre_tp, subscale=subscale)
    post, post_problem = _value(post_record, timepoint=post_tp, subscale=subscale)
    if pre is None or post is None:
        problems = [p for p in (pre_problem, post_problem) if p]
        return Exclusion(participant_id=pid, reason="; ".join(problems)), False
    assert pre_record is not None
    assert post_record is not None
    prorated = pre_record.subscales[subscale].prorated or post_record.subscales[subscale].prorated
    return Pair(participant_id=pid, pre=pre, post=post), prorated


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


class _Statistics(TypedDict):
    """`PairedStatistics`' fields, to build a `ResultRow` or a `Sensitivity` from."""

    n_pairs: int
    pre: Descriptives
    post: Descriptives
    wilcoxon: WilcoxonStats | None
    direction: Direction | None
    effect_size_r: float | None
    effect_sizes: EffectSizes
    hodges_lehmann_median_change: float | None
    reason: str | None
    prorated_pairs: int


def _statistics(change: PairedChange, *, prorated_pairs: int) -> _Statistics:
    """The statistics of one pairing, every number finite or None."""
    wilcoxon = change.wilcoxon
    sizes = change.effect_sizes
    return _Statistics(
        n_pairs=change.n_pairs,
        pre=_descriptives(change.pre),
        post=_descriptives(change.post),
        wilcoxon=(
            None
            if wilcoxon is None
            else WilcoxonStats(
                n_nonzero=wilcoxon.n_nonzero,
                t=_number(wilcoxon.t),
                w_plus=_number(wilcoxon.w_plus),
                w_minus=_number(wilcoxon.w_minus),
                z=_number(wilcoxon.z),
                p_two_sided=_number(wilcoxon.p_two_sided),
                p_exact_two_sided=_number(wilcoxon.p_exact_two_sided),
            )
        ),
        # With no pair at all there is no direction, not "none" (which would read as no change).
        direction=change.direction if change.n_pairs else None,
        effect_size_r=_number(change.effect_size_r),
        effect_sizes=EffectSizes(
            r_pairs=_number(sizes.r_pairs) if sizes else None,
            r_observations=_number(sizes.r_observations) if sizes else None,
            rank_biserial=_number(sizes.rank_biserial) if sizes else None,
        ),
        hodges_lehmann_median_change=_number(change.hodges_lehmann),
        reason=change.reason,
        prorated_pairs=prorated_pairs,
    )


def _result_row(
    *, instrument: Instrument, subscale: Subscale, pairing: Pairing, sensitivity: Pairing
) -> ResultRow:
    change = paired_change(pairs=pairing.pairs)
    return ResultRow(
        instrument=instrument.id,
        subscale=subscale.id,
        subscale_label=subscale.label,
        **_statistics(change, prorated_pairs=len(pairing.prorated)),
        p_holm=None,  # set by _with_holm once every row is known
        reliable_change=(
            _reliable_change(subscale, pairing.pairs) if change.wilcoxon is not None else None
        ),
        excluded=pairing.excluded,
        sensitivity=Sensitivity(
            population=SENSITIVITY_POPULATION,
            withdrawn_pairs=len(sensitivity.withdrawn),
            **_statistics(
                paired_change(pairs=sensitivity.pairs), prorated_pairs=len(sensitivity.prorated)
            ),
        ),
        pairs=pairing.pairs,
    )


def _with_holm(rows: Sequence[ResultRow]) -> tuple[ResultRow, ...]:
    """Every row, with ``p_holm`` set where it has a primary p (Holm across those rows)."""
    primary = {
        n: p
        for n, row in enumerate(rows)
        if row.wilcoxon is not None and (p := row.wilcoxon.p_primary) is not None
    }
    adjusted = dict(zip(primary, holm_adjust(list(primary.values())), strict=True))
    return tuple(
        dataclasses.replace(row, p_holm=adjusted[n]) if n in adjusted else row
        for n, row in enumerate(rows)
    )


def _reliable_change(subscale: Subscale, pairs: Sequence[Pair]) -> ReliableChangeSummary | None:
    published = subscale.published_reliable_change_basis
    if published is not None:
        reference_sd, reliability = published
        basis: Literal["published", "sample"] = "published"
        note = None
        sd_source = subscale.reference_sd_source
        sd_sample = subscale.reference_sd_sample
        kind = "test_retest"
        interval = subscale.test_retest_interval
        source = subscale.test_retest_source
        sample = subscale.test_retest_sample
    else:
        alpha = subscale.reliability_alpha
        sd_pre = stats.describe([p.pre for p in pairs]).sd
        if alpha is None or not sd_pre:
            # No alpha (the diary), or a baseline SD of 0 or undefined: no RCI can be
            # formed, and all-zero counts would misreport n.
            return None
        reference_sd, reliability = sd_pre, alpha
        basis = "sample"
        note = _NO_PUBLISHED_BASIS
        sd_source = f"baseline SD (n - 1) of this result's {len(pairs)} pairs"
        sd_sample = "this trial's pairs"
        kind = subscale.reliability_kind or "internal_consistency"
        interval = None
        source = subscale.reliability_source
        sample = subscale.reliability_sample
    changes = reliable_change_index(
        pairs=pairs,
        reference_sd=reference_sd,
        reliability=reliability,
        improvement=subscale.improvement,
    )
    counts = reliable_change_counts(changes)
    return ReliableChangeSummary(
        basis=basis,
        basis_note=note,
        reference_sd=reference_sd,
        reference_sd_source=sd_source,
        reference_sd_sample=sd_sample,
        reliability=reliability,
        reliability_kind=kind,
        reliability_interval=interval,
        reliability_source=source,
        reliability_sample=sample,
        alpha=subscale.reliability_alpha,
        s_diff=math.sqrt(2) * reference_sd * math.sqrt(1 - reliability),
        critical_value=RCI_CRITICAL,
        improved=counts["improved"],
        no_reliable_change=counts["no_reliable_change"],
        deteriorated=counts["deteriorated"],
        participants=changes,
    )


def _descriptives(summary: stats.Descriptives) -> Descriptives:
    return Descriptives(
        mean=_number(summary.mean), sd=_number(summary.sd), median=_number(summary.median)
    )


def _number(value: float | None) -> float | None:
    """A JSON-safe float: NaN and infinities (never valid JSON) become None."""
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
