"""The files of an export job: the CSV of a layout and, for spss/stata/r, its syntax file.

`csv-long` and `csv-wide` are the synchronous route's exports (``services.export_csv``); `spss`,
`stata` and `r` are the CSV of the requested layout (long unless the request says ``wide``)
plus a syntax file built from the same codebook (``services.export_syntax``).

Deidentified exports
--------------------
``deidentified: true`` changes three things, and only these:

- **free text is dropped**: the diary's free-text columns are not in the CSV or its codebook;
  withdrawal reasons are in no export at all (the status is);
- **dates are shifted per participant**: every date of a participant (``completed_at``,
  ``received_at``) moves by the same whole number of weeks, drawn at random for that
  participant and this export, uniformly from −52…−1 and 1…52 weeks (never 0). Intervals
  between a participant's dates and their weekdays stay exact; calendar dates do not. Each
  export draws anew, and the offsets are not stored anywhere;
- **submission ids are replaced** by codes valid within this export only (``X000001``, …,
  ``supersedes`` mapped alike): the service's ids are ULIDs, which carry the time they were
  received and so would undo the shift.

Participant ids stay (they are pseudonymous codes already), as do instruments, timepoints,
item responses and scores.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from domain.jobs import ExportFormat
from domain.submissions import ScoreRecord, SubmissionRecord
from domain.trial import Participant, StudyProtocol
from services import export_csv, export_syntax
from services.clock import iso

__all__ = [
    "MAX_SHIFT_WEEKS",
    "ExportFile",
    "Layout",
    "build_export",
    "default_layout",
    "deidentify",
]

Layout = str  # "long" | "wide"
MAX_SHIFT_WEEKS = 52
CSV_TYPE = "text/csv; charset=utf-8"


@dataclass(frozen=True, kw_only=True)
class ExportFile:
    """One file to write: its name, media type and content (in chunks)."""

    name: str
    content_type: str
    chunks: Iterable[bytes]


def default_layout(export_format: ExportFormat) -> Layout:
    """csv-wide is wide; every other format is long unless asked otherwise."""
    return "wide" if export_format == "csv-wide" else "long"


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def _shifted(moment: str | None, offset: timedelta) -> str | None:
    return iso(_parse(moment) + offset) if moment else moment


@dataclass(frozen=True, kw_only=True)
class Deidentified:
    participants: list[Participant]
    scores: list[ScoreRecord]
    submissions: list[SubmissionRecord]


def deidentify(
    *,
    participants: Sequence[Participant],
    scores: Sequence[ScoreRecord],
    submissions: Sequence[SubmissionRecord],
    rng: random.Random,
) -> Deidentified:
    """The records with free text and reasons gone, dates shifted per participant and
    submission ids replaced (see the module docstring)."""
    weeks = [w for w in range(-MAX_SHIFT_WEEKS, MAX_SHIFT_WEEKS + 1) if w != 0]
    people = sorted(
        {p.participant_id for p in participants}
        | {s.participant_id for s in scores}
        | {s.participant_id for s in submissions}
    )
    offsets = {pid: timedelta(weeks=rng.choice(weeks)) for pid in people}
    order = sorted(
        {s.submission_id for s in scores}
        | {s.submission_id for s in submissions}
        | {s.supersedes for s in scores if s.supersedes}
        | {s.superseded_by for s in scores if s.superseded_by}
        | {s.supersedes for s in submissions if s.supersedes}
    )
    codes = {sid: f"X{n:06d}" for n, sid in enumerate(order, start=1)}

    def code(sid: str | None) -> str | None:
        return codes[sid] if sid else None

    return Deidentified(
        participants=[
            replace(
                p,
                reason=None,
                enrolled_at=_shifted(p.enrolled_at, offsets[p.participant_id]) or p.enrolled_at,
                status_changed_at=_shifted(p.status_changed_at, offsets[p.participant_id])
                or p.status_changed_at,
            )
            for p in participants
        ],
        scores=[
            replace(
                s,
                submission_id=codes[s.submission_id],
                supersedes=code(s.supersedes),
                superseded_by=code(s.superseded_by),
                completed_at=_shifted(s.completed_at, offsets[s.participant_id]) or "",
                received_at=_shifted(s.received_at, offsets[s.participant_id]) or "",
                scored_at=_shifted(s.scored_at, offsets[s.participant_id]) or "",
            )
            for s in scores
        ],
        submissions=[
            replace(
                s,
                submission_id=codes[s.submission_id],
                supersedes=code(s.supersedes),
                notes=None,
                completed_at=_shifted(s.completed_at, offsets[s.participant_id]) or "",
                received_at=_shifted(s.received_at, offsets[s.participant_id]) or "",
            )
            for s in submissions
        ],
    )


def _text(text: str) -> Iterator[bytes]:
    yield text.encode("utf-8")


def build_export(
    *,
    trial_id: str,
    protocol: StudyProtocol,
    export_format: ExportFormat,
    layout: Layout,
    deidentified: bool,
    participants: Sequence[Participant],
    scores: Sequence[ScoreRecord],
    submissions: Sequence[SubmissionRecord],
    rng: random.Random,
) -> list[ExportFile]:
    """The files of one export, the CSV first (its rows are made as they are written)."""
    if deidentified:
        records = deidentify(
            participants=participants, scores=scores, submissions=submissions, rng=rng
        )
        participants, scores, submissions = (
            records.participants,
            records.scores,
            records.submissions,
        )
    free_text = not deidentified
    stem = f"{trial_id}-{layout}" + ("-deidentified" if deidentified else "")
    if layout == "wide":
        header = export_csv.wide_columns(protocol)
        rows: Iterable[Sequence[object]] = export_csv.wide_rows(
            protocol=protocol, participants=participants, scores=scores
        )
    else:
        header = export_csv.long_columns(free_text=free_text)
        rows = export_csv.long_rows(
            participants=participants,
            scores=scores,
            submissions=submissions,
            protocol=protocol,
            free_text=free_text,
        )
    csv_name = f"{stem}.csv"
    files = [
        ExportFile(name=csv_name, content_type=CSV_TYPE, chunks=export_csv.csv_chunks(header, rows))
    ]
    if export_format in export_syntax.SYNTAX_FILES:
        columns = export_csv.codebook(protocol=protocol, layout=layout, free_text=free_text)
        extension, media_type = export_syntax.SYNTAX_FILES[export_format]
        write = {
            "spss": export_syntax.spss_syntax,
            "stata": export_syntax.stata_do_file,
            "r": export_syntax.r_script,
        }[export_format]
        files.append(
            ExportFile(
                name=f"{stem}.{extension}",
                content_type=f"{media_type}; charset=utf-8",
                chunks=_text(write(columns, csv_name=csv_name, trial_id=trial_id)),
            )
        )
    return files
