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

import contextlib
import json
import random
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from domain.jobs import ExportFormat
from domain.submissions import ScoreRecord, SubmissionRecord, by_participant
from domain.trial import Participant, StudyProtocol, natural_key
from services import export_csv, export_syntax
from services.clock import iso

if TYPE_CHECKING:
    import sqlite3

__all__ = [
    "MAX_SHIFT_WEEKS",
    "Answers",
    "Deidentifier",
    "ExportFile",
    "Layout",
    "Participation",
    "build_export",
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


def _parse(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00"))


def _shifted(moment: str | None, offset: timedelta) -> str | None:
    return iso(_parse(moment) + offset) if moment else moment


@dataclass(frozen=True, slots=True)
class Answers:
    """What the long layout shows of a submission (`export_csv.Answered`)."""

    submission_id: str
    responses: Mapping[int, int | None]
    notes: Mapping[str, str] | None


@dataclass(frozen=True, kw_only=True)
class Participation:
    """One participant's part of an export: their record (None when it is gone), their
    scores and the answers of their submissions."""

    participant: Participant | None
    scores: Sequence[ScoreRecord]
    answers: Sequence[Answers]


class Deidentifier:
    """Deidentifies an export participant by participant (see the module docstring).

    Each participant draws their own shift; submission ids get the next codes of the export,
    in sorted order within the participant (a correction and what it supersedes are always
    the same participant's), so no code table outlives the participant.
    """

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.weeks = [w for w in range(-MAX_SHIFT_WEEKS, MAX_SHIFT_WEEKS + 1) if w != 0]
        self.issued = 0

    def __call__(self, part: Participation) -> Participation:
        offset = timedelta(weeks=self.rng.choice(self.weeks))
        ids = {s.submission_id for s in part.scores} | {a.submission_id for a in part.answers}
        ids |= {s.supersedes for s in part.scores if s.supersedes}
        ids |= {s.superseded_by for s in part.scores if s.superseded_by}
        codes: dict[str, str] = {}
        for sid in sorted(ids):
            self.issued += 1
            codes[sid] = f"X{self.issued:06d}"

        def code(sid: str | None) -> str | None:
            return codes[sid] if sid else None

        person = part.participant
        return Participation(
            participant=None
            if person is None
            else replace(
                person,
                reason=None,
                enrolled_at=_shifted(person.enrolled_at, offset) or person.enrolled_at,
                status_changed_at=_shifted(person.status_changed_at, offset)
                or person.status_changed_at,
            ),
            scores=[
                replace(
                    s,
                    submission_id=codes[s.submission_id],
                    supersedes=code(s.supersedes),
                    superseded_by=code(s.superseded_by),
                    completed_at=_shifted(s.completed_at, offset) or "",
                    received_at=_shifted(s.received_at, offset) or "",
                    scored_at=_shifted(s.scored_at, offset) or "",
                )
                for s in part.scores
            ],
            answers=[
                Answers(submission_id=codes[a.submission_id], responses=a.responses, notes=None)
                for a in part.answers
            ],
        )


def _packed(responses: Mapping[int, int | None]) -> str:
    """Item responses as a JSON list, item 1 first (a skipped item is null)."""
    return json.dumps([responses.get(n) for n in range(1, max(responses, default=0) + 1)])


class _AnswerSpool:
    """The answers of a trial's submissions, kept on local disk (a private temporary SQLite
    database, deleted when closed) and read back one participant at a time.

    The submissions come in arrival order and the scores in participant order, so the long
    layout needs every answer at hand; on disk, the job's memory does not grow with the trial.
    Notes are kept only when the export shows free text.
    """

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.execute(
            "CREATE TABLE answers (participant TEXT, submission TEXT, responses TEXT, notes TEXT)"
        )

    def fill(self, submissions: Iterable[SubmissionRecord], *, free_text: bool) -> None:
        self.db.executemany(
            "INSERT INTO answers VALUES (?, ?, ?, ?)",
            (
                (
                    s.participant_id,
                    s.submission_id,
                    json.dumps(
                        [s.responses.get(n) for n in range(1, max(s.responses, default=0) + 1)]
                    ),
                    json.dumps(s.notes) if free_text and s.notes else None,
                )
                for s in submissions
            ),
        )
        self.db.execute("CREATE INDEX answers_by_participant ON answers (participant)")

    def of(self, participant_id: str) -> list[Answers]:
        found = self.db.execute(
            "SELECT submission, responses, notes FROM answers WHERE participant = ?",
            (participant_id,),
        )
        return [
            Answers(
                submission_id=sid,
                responses=dict(enumerate(json.loads(responses), start=1)),
                notes=json.loads(notes) if notes else None,
            )
            for sid, responses, notes in found
        ]


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
    score_groups: Iterable[Sequence[ScoreRecord]],
    submissions: Iterable[SubmissionRecord],
    rng: random.Random,
) -> list[ExportFile]:
    """The files of one export, the CSV first; its rows are made as they are written.

    `score_groups` yields every score of one participant at a time (any participant order,
    each participant once), `submissions` the trial's submissions in any order (read only for
    the long layout). The CSV is the synchronous route's, byte for byte (`export_csv`): each
    participant's rows are made from their own records and set aside on local disk,
    compressed, then written in participant order (P2 before P10). So the job holds one
    participant's records at a time, never the trial's.
    """
    free_text = not deidentified
    stem = f"{trial_id}-{layout}" + ("-deidentified" if deidentified else "")
    header = (
        export_csv.wide_columns(protocol)
        if layout == "wide"
        else export_csv.long_columns(free_text=free_text)
    )
    csv_name = f"{stem}.csv"
    chunks = _csv_by_participant(
        header,
        layout=layout,
        protocol=protocol,
        participants=participants,
        score_groups=score_groups,
        submissions=submissions,
        free_text=free_text,
        deidentify=Deidentifier(rng) if deidentified else None,
    )
    files = [ExportFile(name=csv_name, content_type=CSV_TYPE, chunks=chunks)]
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


def _csv_by_participant(
    header: Sequence[str],
    *,
    layout: Layout,
    protocol: StudyProtocol,
    participants: Sequence[Participant],
    score_groups: Iterable[Sequence[ScoreRecord]],
    submissions: Iterable[SubmissionRecord],
    free_text: bool,
    deidentify: Callable[[Participation], Participation] | None,
) -> Iterator[bytes]:
    import sqlite3  # the job function's only (the API's cold start does without it)

    by_id = {p.participant_id: p for p in participants}
    with contextlib.closing(sqlite3.connect("")) as db:
        db.execute("CREATE TABLE parts (participant TEXT PRIMARY KEY, csv BLOB)")
        spool = _AnswerSpool(db)
        if layout == "long":
            spool.fill(submissions, free_text=free_text)

        def rows_of(part: Participation) -> str:
            if deidentify is not None:
                part = deidentify(part)
            people = [part.participant] if part.participant else []
            if layout == "wide":
                return export_csv.csv_rows_text(
                    export_csv.wide_rows(protocol=protocol, participants=people, scores=part.scores)
                )
            return export_csv.csv_rows_text(
                export_csv.long_rows(
                    participants=people,
                    scores=part.scores,
                    submissions=part.answers,
                    protocol=protocol,
                    free_text=free_text,
                )
            )

        seen: set[str] = set()
        for pid, group in by_participant(score_groups):
            seen.add(pid)
            part = Participation(
                participant=by_id.get(pid),
                scores=group,
                answers=spool.of(pid) if layout == "long" else [],
            )
            db.execute(
                "INSERT INTO parts VALUES (?, ?)",
                (pid, zlib.compress(rows_of(part).encode("utf-8"), 1)),
            )
        yield export_csv.csv_rows_text([header]).encode("utf-8")
        for pid in sorted(seen | set(by_id), key=lambda p: (natural_key(p), p)):
            if pid in seen:
                (stored,) = db.execute(
                    "SELECT csv FROM parts WHERE participant = ?", (pid,)
                ).fetchone()
                yield zlib.decompress(stored)
            elif layout == "wide":  # enrolled, nothing scored yet: a row of blanks
                blank = Participation(participant=by_id[pid], scores=(), answers=())
                yield rows_of(blank).encode("utf-8")
