"""Checking a submission's responses and notes against its instrument.

Both validators collect every problem before raising, so one `InvalidSubmission` names
every offending field. They accept the JSON-decoded body as it came (``Mapping[str,
object]``) and return plain, typed values for scoring and storage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from domain.errors import InvalidSubmission, Problem
from domain.instruments import Instrument

__all__ = ["validate_notes", "validate_responses"]

# Canonical decimal item keys: no sign, no leading zero, no spaces ("1", "14"; not "01").
_ITEM_KEY = re.compile(r"[1-9][0-9]*")


def _item_number(instrument: Instrument, key: object) -> int | None:
    """The item number a key names, or None when it names no item of the instrument."""
    if not isinstance(key, str) or _ITEM_KEY.fullmatch(key) is None:
        return None
    number = int(key)
    return number if number <= instrument.items else None


def _loc_key(key: object) -> str | int:
    return key if isinstance(key, str | int) and not isinstance(key, bool) else repr(key)


def validate_responses(
    instrument: Instrument, responses: Mapping[str, object]
) -> dict[int, int | None]:
    """Check submitted responses and return one entry per item of the instrument.

    Parameters
    ----------
    instrument : Instrument
        The instrument (and version) the submission names.
    responses : mapping of str to object
        Item number as a canonical decimal string (``"1"`` .. ``"N"``) to the chosen
        integer; an item may be omitted or null when skipped.

    Returns
    -------
    dict of int to int or None
        Every item 1..N, in order, with its value or None when skipped.

    Raises
    ------
    InvalidSubmission
        With every problem found: ``unknown_item`` (a key that is not a canonical item
        number of this instrument, e.g. ``"0"``, ``"01"``, ``"x"``, ``"15"`` for HADS),
        ``not_integer`` (floats even when whole, strings, booleans), ``out_of_range``,
        and ``no_items_answered`` when no known item has a non-null value. A known item
        with an invalid value counts as answered, so it is reported only as invalid.
    """
    if not isinstance(responses, Mapping):
        raise InvalidSubmission(
            [Problem(("responses",), "responses must be an object", "not_object")]
        )
    values: dict[int, int | None] = dict.fromkeys(instrument.item_numbers)
    problems: list[Problem] = []
    answered = False
    low, high = instrument.response_min, instrument.response_max
    for key, value in responses.items():
        loc: tuple[str | int, ...] = ("responses", _loc_key(key))
        number = _item_number(instrument, key)
        if number is None:
            problems.append(
                Problem(
                    loc,
                    f"unknown item {key!s}: {instrument.id} has items 1-{instrument.items}",
                    "unknown_item",
                )
            )
            continue
        if value is None:
            continue
        answered = True
        # bool is a subclass of int; JSON true/false is not an answer on any scale.
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(
                Problem(
                    loc, f"item {number} must be an integer, got {_shown(value)}", "not_integer"
                )
            )
        elif not low <= value <= high:
            problems.append(
                Problem(
                    loc,
                    f"item {number} must be between {low} and {high}, got {value}",
                    "out_of_range",
                )
            )
        else:
            values[number] = value
    if not answered:
        problems.append(Problem(("responses",), "no item was answered", "no_items_answered"))
    if problems:
        raise InvalidSubmission(problems)
    return values


def validate_notes(
    instrument: Instrument, notes: Mapping[str, object] | None
) -> dict[str, str] | None:
    """Check a submission's free-text notes.

    Parameters
    ----------
    instrument : Instrument
        Only an instrument with `free_text` fields (the diary) takes notes.
    notes : mapping of str to object, or None
        Free-text field name to text; a null value means the field was left empty.

    Returns
    -------
    dict of str to str, or None
        The non-null fields as given (never trimmed), or None when there is nothing to
        store.

    Raises
    ------
    InvalidSubmission
        ``notes_not_allowed`` for non-empty notes on an instrument without free text;
        for the diary ``unknown_field``, ``not_string`` and ``too_long`` (more than
        `free_text_max_chars` characters), every one reported.
    """
    if notes is None:
        return None
    if not isinstance(notes, Mapping):
        raise InvalidSubmission([Problem(("notes",), "notes must be an object", "not_object")])
    if not instrument.free_text:
        if notes:
            raise InvalidSubmission(
                [
                    Problem(
                        ("notes",),
                        f"{instrument.id} takes no notes; only the diary has free text",
                        "notes_not_allowed",
                    )
                ]
            )
        return None
    limit = instrument.free_text_max_chars
    kept: dict[str, str] = {}
    problems: list[Problem] = []
    for key, value in notes.items():
        loc: tuple[str | int, ...] = ("notes", _loc_key(key))
        if key not in instrument.free_text:
            allowed = ", ".join(instrument.free_text)
            problems.append(
                Problem(loc, f"unknown field {key!s}: expected one of {allowed}", "unknown_field")
            )
        elif value is None:
            continue
        elif not isinstance(value, str):
            problems.append(Problem(loc, f"{key} must be a string", "not_string"))
        elif limit is not None and len(value) > limit:
            problems.append(
                Problem(loc, f"{key} is {len(value)} characters; at most {limit}", "too_long")
            )
        else:
            kept[key] = value
    if problems:
        raise InvalidSubmission(problems)
    return kept or None


def _shown(value: object, limit: int = 40) -> str:
    """The offending value as typed, shortened: refusals never echo a large body back."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
