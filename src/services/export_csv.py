"""CSV exports of a trial's data, ready for R's ``read.csv`` and SPSS as they are.

Two layouts (API.md, ``GET /v1/trials/{trial_id}/export.csv?layout=long|wide``) and the
codebook that describes every column of each.

CSV rules (RFC 4180, one dialect for every CSV this service writes)
-------------------------------------------------------------------
- A header row; fields separated by commas; records end in ``\\r\\n``; a field is quoted only
  when it must be (comma, quote, CR or LF inside), quotes doubled. R's ``read.csv`` and SPSS's
  ``GET DATA /TYPE=TXT /QUALIFIER='"'`` both read quoted fields with embedded line breaks.
- UTF-8 **without** a byte-order mark: R reads a BOM into the first column's name
  (``X.U.FEFF.trial_id``) unless told ``fileEncoding = "UTF-8-BOM"``, and SPSS takes
  ``/ENCODING='UTF8'``; so the text returned here has none and the route must not add one.
- A missing value is an empty field, never ``NA`` or ``.`` (both programs read an empty
  numeric field as missing). Booleans are ``1`` / ``0``. Floats are written with ``repr``
  (shortest round-trip form, full precision); NaN and infinities are written as missing.
- Spreadsheet formula injection (OWASP "CSV Injection"): a text cell that starts with ``=``,
  ``+``, ``-``, ``@``, a tab or a carriage return (after any spaces) gets a single quote in
  front, so a spreadsheet shows it as text instead of evaluating it; so does every part of a
  cell after a ``;``, because a spreadsheet that splits on semicolons makes each part a cell.
  Cells made only of letters, digits, ``_`` and ``-`` (identifiers such as a participant code
  ``-P01``) are left as they are: they cannot form a formula that calls anything, and
  changing them would break joins in R.
  Numbers are never prefixed.
- Free text is otherwise kept as given: commas, quotes, line breaks and any Unicode survive.
  The only changes are the two that would make the file unreadable: NUL becomes U+FFFD and
  unpaired surrogates (not encodable as UTF-8) become ``?``. No row is ever dropped because of
  its text.
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from domain.errors import DomainError
from domain.instruments import CATALOGUE, Instrument
from domain.submissions import ScoreRecord, SubmissionRecord, newest_counting
from domain.trial import Participant, StudyProtocol, default_protocol, natural_key

__all__ = [
    "LAYOUTS",
    "MISSING_CODE",
    "Answered",
    "codebook",
    "csv_rows_text",
    "csv_text",
    "export_long",
    "export_wide",
    "long_columns",
    "long_rows",
    "spss_name",
    "wide_columns",
    "wide_rows",
]

LAYOUTS = ("long", "wide")

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_HARMLESS = re.compile(r"[A-Za-z0-9_-]+")
_SPSS_MAX = 64
# SPSS reserved keywords cannot be variable names.
_SPSS_RESERVED = frozenset(
    {"all", "and", "by", "eq", "ge", "gt", "le", "lt", "ne", "not", "or", "to", "with"}
)

_LONG_FIXED: tuple[tuple[str, str, str, str], ...] = (
    # name, label, type, what a blank means
    ("trial_id", "Trial identifier", "string", "never blank"),
    ("participant_id", "Pseudonymous participant code", "string", "never blank"),
    (
        "participant_status",
        "Participant status at export time (active, withdrawn, completed)",
        "string",
        "participant record no longer held (erased on request)",
    ),
    ("submission_id", "Submission identifier", "string", "never blank"),
    ("instrument", "Instrument id (see /v1/instruments)", "string", "never blank"),
    (
        "instrument_version",
        "Instrument version the submission was scored with",
        "string",
        "never blank",
    ),
    ("timepoint", "Protocol timepoint of the submission", "string", "never blank"),
    ("completed_at", "When the respondent completed it (ISO 8601)", "datetime", "never blank"),
    ("received_at", "When the service received it (ISO 8601)", "datetime", "never blank"),
    (
        "supersedes",
        "Submission id this submission corrects",
        "string",
        "not a correction",
    ),
    (
        "counts",
        "1 = the submission that counts for this participant, instrument and timepoint "
        "(the newest correction); 0 = superseded",
        "boolean",
        "never blank",
    ),
    ("subscale", "Subscale id", "string", "never blank"),
    (
        "score",
        "Subscale score (range depends on instrument and subscale: see the wide codebook "
        "or /v1/instruments)",
        "number",
        "subscale not scored: too many items missing (see score_missing_reason)",
    ),
    (
        "prorated",
        "1 = score prorated from the answered items (mean x item count)",
        "boolean",
        "never blank",
    ),
    ("items_answered", "Items of this subscale answered", "integer", "never blank"),
    ("items_missing", "Items of this subscale skipped", "integer", "never blank"),
    (
        "score_missing_reason",
        "Why the subscale score is missing (too_many_missing)",
        "string",
        "score present",
    ),
    (
        "band",
        "Interpretive band of the score (e.g. HADS normal, borderline, case)",
        "string",
        "instrument has no bands, or subscale not scored",
    ),
)
_LONG_FIXED_RANGES: Mapping[str, list[int]] = {
    "counts": [0, 1],
    "prorated": [0, 1],
}


def csv_text(header: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """`rows` under `header` as CSV text by the module's rules (see the module docstring)."""
    return csv_rows_text(itertools.chain([header], rows))


def csv_rows_text(rows: Iterable[Sequence[object]]) -> str:
    """`rows` as CSV text by the module's rules, without a header (so the text of
    consecutive runs of rows, joined, is the CSV of all of them)."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, dialect="excel", lineterminator="\r\n")
    for row in rows:
        # ints (not bools) and None, most of a long row's cells, are written by the csv
        # module as `_cell` would write them
        writer.writerow([v if v is None or type(v) is int else _cell(v) for v in row])
    return buffer.getvalue()


class Answered(Protocol):
    """What the long layout shows of a submission besides its score: its item responses and
    its notes (a `SubmissionRecord`, or less)."""

    @property
    def submission_id(self) -> str: ...

    @property
    def responses(self) -> Mapping[int, int | None]: ...

    @property
    def notes(self) -> Mapping[str, str] | None: ...


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else ""
    text = str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    text = text.encode("utf-8", "replace").decode("utf-8")
    if ";" in text:
        # a spreadsheet that splits on ";" (the default separator where "," is the decimal
        # mark) reads every part as a cell of its own: each is guarded like a whole cell
        return ";".join(_guarded(part) for part in text.split(";"))
    return _guarded(text)


def _guarded(text: str) -> str:
    """A text cell that cannot start a formula (a leading quote where it could)."""
    if text.lstrip(" ").startswith(_FORMULA_START) and not _HARMLESS.fullmatch(text):
        return "'" + text
    return text


# -- catalogue-wide shapes -------------------------------------------------------------------


def _all_versions() -> list[Instrument]:
    return [CATALOGUE.get(i, v) for i in CATALOGUE.ids() for v in CATALOGUE.versions(i)]


def _max_items() -> int:
    return max(instrument.items for instrument in _all_versions())


def _free_text_fields() -> list[tuple[str, str]]:
    """(field, instrument id) of every free-text field in the catalogue, first seen first."""
    seen: dict[str, str] = {}
    for instrument in _all_versions():
        for name in instrument.free_text:
            seen.setdefault(name, instrument.id)
    return list(seen.items())


def long_columns(*, free_text: bool = True) -> list[str]:
    """The header of the long layout (without the free-text columns when `free_text` is
    False: a deidentified export)."""
    return [
        *(name for name, _, _, _ in _LONG_FIXED),
        *(f"item_{n}" for n in range(1, _max_items() + 1)),
        *(name for name, _ in (_free_text_fields() if free_text else ())),
    ]


# -- long layout -----------------------------------------------------------------------------


def export_long(
    *,
    participants: Sequence[Participant],
    scores: Sequence[ScoreRecord],
    submissions: Sequence[SubmissionRecord],
    protocol: StudyProtocol | None = None,
) -> str:
    """One row per scored submission × subscale, superseded submissions included.

    ``counts`` is 1 on the rows of the submission that counts (highest ``seq`` of its
    participant, instrument and timepoint) and 0 on superseded ones, so
    ``subset(d, counts == 1)`` in R is the analysed data. Item responses (``item_1`` ..
    ``item_N``, N the longest instrument) repeat on every subscale row of a submission and
    are blank where skipped or beyond the instrument's length; the diary's free-text columns
    are filled on diary rows only. A score without its submission (not expected) still gets
    its rows, with blank items. A submission not yet scored has no row.

    Rows are ordered by participant (P2 before P10), instrument (catalogue order), timepoint
    (`protocol` order, the default protocol when None; unknown timepoints last), seq, then
    subscale (catalogue order).
    """
    return csv_text(
        long_columns(),
        long_rows(
            participants=participants, scores=scores, submissions=submissions, protocol=protocol
        ),
    )


def long_rows(
    *,
    participants: Sequence[Participant],
    scores: Sequence[ScoreRecord],
    submissions: Iterable[Answered],
    protocol: StudyProtocol | None = None,
    free_text: bool = True,
) -> Iterator[list[object]]:
    """The rows of `export_long`, one at a time (`long_columns(free_text=...)` heads them)."""
    protocol = protocol or default_protocol()
    status = {p.participant_id: p.status for p in participants}
    by_submission = {s.submission_id: s for s in submissions}
    counting_ids = {r.submission_id for r in newest_counting(list(scores)).values()}
    n_items = _max_items()
    free_text_fields = _free_text_fields() if free_text else []

    for record in sorted(scores, key=lambda r: _long_order(r, protocol)):
        submission = by_submission.get(record.submission_id)
        responses: Mapping[int, int | None] = submission.responses if submission else {}
        items = [responses.get(n) for n in range(1, n_items + 1)]
        notes = _notes(record, submission) if free_text else {}
        texts = [notes.get(name) for name, _ in free_text_fields]
        common: list[object] = [
            record.trial_id,
            record.participant_id,
            status.get(record.participant_id),
            record.submission_id,
            record.instrument,
            record.instrument_version,
            record.timepoint,
            record.completed_at,
            record.received_at,
            record.supersedes,
            record.submission_id in counting_ids,
        ]
        subscales = sorted(record.subscales.values(), key=_subscale_order(record))
        if not subscales:
            yield [*common, None, None, None, None, None, None, None, *items, *texts]
        for value in subscales:
            yield [
                *common,
                value.subscale,
                value.score,
                value.prorated,
                value.answered,
                value.missing,
                value.reason,
                value.band,
                *items,
                *texts,
            ]


def _instrument_for(instrument_id: str, version: str | None = None) -> Instrument | None:
    try:
        return CATALOGUE.get(instrument_id, version)
    except DomainError:
        return None


def _notes(record: ScoreRecord, submission: Answered | None) -> Mapping[str, str]:
    if submission is None or not submission.notes:
        return {}
    instrument = _instrument_for(record.instrument, record.instrument_version)
    if instrument is None or not instrument.free_text:
        return {}
    return {k: v for k, v in submission.notes.items() if k in instrument.free_text}


def _long_order(record: ScoreRecord, protocol: StudyProtocol) -> tuple[Any, ...]:
    ids = CATALOGUE.ids()
    instrument_rank = ids.index(record.instrument) if record.instrument in ids else len(ids)
    timepoints = protocol.timepoints
    if record.timepoint in timepoints:
        timepoint_rank: tuple[Any, ...] = (0, timepoints.index(record.timepoint))
    else:
        timepoint_rank = (1, natural_key(record.timepoint))
    return (
        natural_key(record.participant_id),
        record.participant_id,
        instrument_rank,
        record.instrument,
        timepoint_rank,
        record.seq,
        record.submission_id,
    )


def _subscale_order(record: ScoreRecord) -> Any:
    instrument = _instrument_for(record.instrument, record.instrument_version)
    known = [s.id for s in instrument.subscales] if instrument else []

    def key(value: Any) -> tuple[int, str]:
        name = value.subscale
        return (known.index(name), "") if name in known else (len(known), name)

    return key


# -- wide layout -----------------------------------------------------------------------------


def spss_name(text: str) -> str:
    """`text` as an SPSS- and R-safe variable name.

    Lowercase ASCII letters, digits and ``_``; starts with a letter; no trailing ``_``;
    at most 64 characters (a longer name keeps its start and gets a short hash of the whole,
    so different long names stay different); never an SPSS reserved word.

    >>> spss_name("hads anxiety follow-up")
    'hads_anxiety_follow_up'
    >>> spss_name("12-week")
    'v12_week'
    """
    name = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if not name or not name[0].isalpha():
        name = "v" + name
    if len(name) > _SPSS_MAX:
        digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:8]  # noqa: S324 - a label
        name = f"{name[: _SPSS_MAX - 9].rstrip('_')}_{digest}"
    if name in _SPSS_RESERVED:
        name += "_v"
    return name


def _unique(name: str, taken: set[str]) -> str:
    candidate, n = name, 2
    while candidate in taken:
        suffix = f"_{n}"
        candidate = name[: _SPSS_MAX - len(suffix)].rstrip("_") + suffix
        n += 1
    taken.add(candidate)
    return candidate


def _wide_layout(protocol: StudyProtocol) -> list[tuple[str, Instrument, str, str]]:
    """(column name, instrument, subscale id, timepoint) of every wide score column."""
    taken = {"participant_id", "status"}
    columns: list[tuple[str, Instrument, str, str]] = []
    for instrument in CATALOGUE.instruments():
        scheduled = set(protocol.schedule.get(instrument.id, ()))
        for timepoint in (t for t in protocol.timepoints if t in scheduled):
            for sub in instrument.subscales:
                name = _unique(spss_name(f"{instrument.id}_{sub.id}_{timepoint}"), taken)
                columns.append((name, instrument, sub.id, timepoint))
    return columns


def wide_columns(protocol: StudyProtocol) -> list[str]:
    """The header of the wide layout for this protocol."""
    return ["participant_id", "status", *(name for name, _, _, _ in _wide_layout(protocol))]


def export_wide(
    *,
    protocol: StudyProtocol,
    participants: Sequence[Participant],
    scores: Sequence[ScoreRecord],
) -> str:
    """One row per participant, one column per instrument × scheduled timepoint × subscale.

    Columns follow the catalogue's instrument order, the protocol's timepoint order and the
    catalogue's subscale order, named ``<instrument>_<subscale>_<timepoint>`` made SPSS-safe
    (`spss_name`), e.g. ``hads_anxiety_week_1``. A value is the score that counts (the newest
    correction); blank when not submitted or not scorable. Every participant is a row,
    withdrawn ones included (``status`` says so); scores at timepoints the protocol does not
    schedule are only in the long layout.
    """
    return csv_text(
        wide_columns(protocol),
        wide_rows(protocol=protocol, participants=participants, scores=scores),
    )


def wide_rows(
    *,
    protocol: StudyProtocol,
    participants: Sequence[Participant],
    scores: Sequence[ScoreRecord],
) -> Iterator[list[object]]:
    """The rows of `export_wide`, one at a time (`wide_columns` heads them)."""
    layout = _wide_layout(protocol)
    counting = newest_counting(list(scores))
    status: dict[str, str | None] = {p.participant_id: p.status for p in participants}
    for score in scores:
        # A score whose participant record is gone still gets its row (status blank).
        status.setdefault(score.participant_id, None)
    for pid in sorted(status, key=lambda p: (natural_key(p), p)):
        row: list[object] = [pid, status[pid]]
        for _, instrument, subscale, timepoint in layout:
            record = counting.get((pid, instrument.id, timepoint))
            value = record.subscales.get(subscale) if record else None
            row.append(value.score if value else None)
        yield row


# -- codebook --------------------------------------------------------------------------------

#: The code the SPSS, Stata and R syntax files give an empty numeric field (the CSV itself
#: leaves it empty): below every response and score range of the catalogue, so it can never
#: be a real value. Declared missing (SPSS ``MISSING VALUES``, Stata ``.a``, R ``NA``).
MISSING_CODE = -9

_STATUS_LABELS = (
    ("active", "Active (taking part)"),
    ("withdrawn", "Withdrawn"),
    ("completed", "Completed the programme"),
)
_BOOLEAN_LABELS: Mapping[str, tuple[tuple[int, str], ...]] = {
    "counts": ((0, "superseded by a correction"), (1, "counts (newest correction)")),
    "prorated": ((0, "not prorated"), (1, "prorated from the answered items")),
}


def codebook(
    *, protocol: StudyProtocol, layout: str, free_text: bool = True
) -> list[dict[str, Any]]:
    """Every column of `layout` ("long" or "wide"), in header order.

    Each entry: ``name``, ``label``, ``type`` (string, integer, number, datetime, boolean),
    ``range`` (``[min, max]`` or None), ``instrument`` (id or None), ``missing`` (what an
    empty field means), ``value_labels`` (``[{"value", "label"}]`` for coded columns: the
    0/1 booleans and the categorical text columns; None otherwise) and ``missing_code``
    (``{"value": MISSING_CODE, "label"}`` for a numeric column that can be empty: the code
    the syntax files give an empty field, declared missing; None otherwise). Without
    `free_text` the long layout's free-text columns are left out (a deidentified export).

    Raises
    ------
    ValueError
        `layout` is neither "long" nor "wide".
    """
    if layout == "long":
        return _long_codebook(free_text=free_text)
    if layout == "wide":
        return _wide_codebook(protocol)
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def _entry(
    name: str,
    label: str,
    kind: str,
    missing: str,
    *,
    value_range: list[int] | None = None,
    instrument: str | None = None,
    value_labels: Iterable[tuple[int | str, str]] | None = None,
) -> dict[str, Any]:
    blankable = kind in ("integer", "number") and missing != "never blank"
    return {
        "name": name,
        "label": label,
        "type": kind,
        "range": value_range,
        "instrument": instrument,
        "missing": missing,
        "value_labels": (
            [{"value": v, "label": text} for v, text in value_labels]
            if value_labels is not None
            else None
        ),
        "missing_code": {"value": MISSING_CODE, "label": missing} if blankable else None,
    }


def _long_value_labels() -> dict[str, tuple[tuple[int | str, str], ...]]:
    bands: dict[str, None] = {}
    for instrument in _all_versions():
        for sub in instrument.subscales:
            bands.update(dict.fromkeys(b.label for b in sub.bands))
    return {
        **_BOOLEAN_LABELS,
        "participant_status": _STATUS_LABELS,
        "instrument": tuple((i.id, i.title) for i in CATALOGUE.instruments()),
        "score_missing_reason": (("too_many_missing", "too many items missing to score"),),
        "band": tuple((band, band) for band in bands),
    }


def _long_codebook(*, free_text: bool = True) -> list[dict[str, Any]]:
    versions = _all_versions()
    n_items = _max_items()
    coded = _long_value_labels()
    entries = [
        _entry(
            name,
            label,
            kind,
            missing,
            value_range=_LONG_FIXED_RANGES.get(name),
            value_labels=coded.get(name),
        )
        for name, label, kind, missing in _LONG_FIXED
    ]
    entries[[e["name"] for e in entries].index("items_answered")]["range"] = [0, n_items]
    entries[[e["name"] for e in entries].index("items_missing")]["range"] = [0, n_items]
    response_range = [
        min(i.response_min for i in versions),
        max(i.response_max for i in versions),
    ]
    for n in range(1, n_items + 1):
        having = [i.id for i in CATALOGUE.instruments() if i.items >= n]
        entries.append(
            _entry(
                f"item_{n}",
                f"Response to item {n} in printed order (scale depends on the instrument: "
                f"see /v1/instruments)",
                "integer",
                "item skipped by the respondent, or the instrument has fewer items",
                value_range=response_range,
                instrument=having[0] if len(having) == 1 else None,
            )
        )
    for name, instrument_id in _free_text_fields() if free_text else ():
        entries.append(
            _entry(
                name,
                f"Free text of the {instrument_id} ({name.replace('_', ' ')}), as written; "
                "a leading ' was added where the text starts like a spreadsheet formula",
                "string",
                f"not a {instrument_id} row, or left empty by the respondent",
                instrument=instrument_id,
            )
        )
    return entries


def _wide_codebook(protocol: StudyProtocol) -> list[dict[str, Any]]:
    entries = [
        _entry("participant_id", "Pseudonymous participant code", "string", "never blank"),
        _entry(
            "status",
            "Participant status at export time (active, withdrawn, completed)",
            "string",
            "participant record no longer held (erased on request)",
            value_labels=_STATUS_LABELS,
        ),
    ]
    for name, instrument, subscale_id, timepoint in _wide_layout(protocol):
        sub = instrument.subscale(subscale_id)
        entries.append(
            _entry(
                name,
                f"{instrument.title}: {sub.label}, {timepoint}",
                "number",
                "subscale not scored: too many items missing or not submitted",
                value_range=list(sub.range),
                instrument=instrument.id,
            )
        )
    return entries
