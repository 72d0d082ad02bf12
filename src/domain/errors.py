"""Errors raised by the domain, mapped to HTTP statuses once at the edge.

The exception tree::

    Exception
     └── DomainError                   base of everything the domain refuses
          ├── UnknownInstrument         no instrument with that id        (.instrument_id)
          ├── UnknownInstrumentVersion  the id exists, that version not   (.instrument_id, .version)
          └── InvalidSubmission         responses or notes refused        (.problems)

`InvalidSubmission` always carries every `Problem` found, never only the first, so a
client can fix a submission in one round trip.

A malformed catalogue data file or an inconsistent synthetic `Instrument` raises
`ValueError` instead: that is a programming error, not something a client did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "DomainError",
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
