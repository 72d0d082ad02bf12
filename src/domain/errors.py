"""Errors raised by the domain, mapped to HTTP statuses once at the edge.

The exception tree::

    Exception
     └── DomainError                   base of everything the domain refuses
          ├── UnknownInstrument         no instrument with that id        (.instrument_id)
          ├── UnknownInstrumentVersion  the id exists, that version not   (.instrument_id, .version)
          ├── InvalidSubmission         responses, notes, wording or a FHIR answer refused
          │                                                                (.problems)
          ├── AlreadyExists             a record that must be new exists  (.what)
          ├── DuplicateSubmission       the slot's submission is stored   (.existing)
          └── BadCursor                 a page cursor this listing never issued

The last three are what the stores (adapters) report: a conditional write that found the item,
a client's cursor that is not a key of the listing. They never carry table items, only records.

`InvalidSubmission` always carries every `Problem` found, never only the first, so a
client can fix a submission in one round trip.

A malformed catalogue data file or an inconsistent synthetic `Instrument` raises
`ValueError` instead: that is a programming error, not something a client did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from domain.submissions import SubmissionRecord

__all__ = [
    "AlreadyExists",
    "BadCursor",
    "DomainError",
    "DuplicateSubmission",
    "InvalidSubmission",
    "Problem",
    "UnknownInstrument",
    "UnknownInstrumentVersion",
]


class DomainError(Exception):
    """Base class of every error the domain raises on purpose."""


class UnknownInstrument(DomainError):
    """No instrument with this id is in the catalogue."""

    def __init__(self, instrument_id: str) -> None:
        self.instrument_id = instrument_id
        super().__init__(f"unknown instrument {instrument_id!r}")


class UnknownInstrumentVersion(DomainError):
    """The instrument exists, but not in this version."""

    def __init__(self, instrument_id: str, version: str) -> None:
        self.instrument_id = instrument_id
        self.version = version
        super().__init__(f"instrument {instrument_id!r} has no version {version!r}")


@dataclass(frozen=True)
class Problem:
    """One offending field of a submission.

    Attributes
    ----------
    loc : tuple of str or int
        Where the problem is, from the top of the submission body,
        e.g. ``("responses", "15")``.
    msg : str
        A sentence for a human.
    type : str
        A stable machine-readable code, e.g. ``"unknown_item"``.
    """

    loc: tuple[str | int, ...]
    msg: str
    type: str


class InvalidSubmission(DomainError):
    """A submission was refused; `problems` lists every reason at once."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        if not self.problems:
            raise ValueError("InvalidSubmission needs at least one problem")
        summary = "; ".join(f"{'.'.join(map(str, p.loc))}: {p.msg}" for p in self.problems)
        super().__init__(f"invalid submission ({len(self.problems)} problem(s)): {summary}")


class AlreadyExists(DomainError):
    """A record that must be new exists already (an enrolled participant, a key hash)."""

    def __init__(self, what: str) -> None:
        self.what = what
        super().__init__(f"{what} exists already")


class DuplicateSubmission(DomainError):
    """The submission's slot (and correction number) holds a stored submission: `existing`."""

    def __init__(self, existing: SubmissionRecord) -> None:
        self.existing = existing
        super().__init__(f"slot already holds submission {existing.submission_id}")


class BadCursor(DomainError, ValueError):
    """A page cursor that is malformed, forged, of another listing or outside its range."""
