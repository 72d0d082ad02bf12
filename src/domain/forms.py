"""Trial-supplied wording of licensed scales, and merging it into an instrument's form.

The catalogue ships no copyrighted item wording (`domain.instruments`): an item's text is
"Item N" and HADS options read "Scored N". A trial licensed to use a scale uploads the
wording once (``PUT /v1/trials/{trial_id}/instrument-texts/{instrument_id}``); it is
served only to that trial's callers. This module is the pure part of that:

- `parse_instrument_texts` checks an upload against the instrument and returns
  `InstrumentTexts`, or raises `InvalidSubmission` naming every problem at once;
- `instrument_texts_to_dict` gives the JSON to store (an upload body again, so a stored
  copy is parsed back with the same function);
- `form_for` merges the wording into the instrument's `Form` for that trial.

The upload body::

    {
      "instrument_version": "1",            # optional: the current version
      "stem": "...",                        # optional: replaces the instrument's probe
      "copyright": "...",                   # optional: the licence notice to show
      "items": {                            # every item of the instrument, by number
        "1": {"text": "...", "options": {"3": "...", "2": "...", "1": "...", "0": "..."}},
        ...
      }
    }

``options`` (optional per item) relabels options by code; codes not named keep their
catalogue label (so a bipolar scale may name only its poles, ``{"1": ..., "10": ...}``).
Codes are the scores as decimal strings, the same codes the form and FHIR use.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from domain.errors import InvalidSubmission, Problem, UnknownInstrumentVersion
from domain.instruments import CATALOGUE, Catalogue, Form, Instrument, Option, check_form

__all__ = [
    "COPYRIGHT_MAX_CHARS",
    "LABEL_MAX_CHARS",
    "STEM_MAX_CHARS",
    "TEXT_MAX_CHARS",
    "InstrumentTexts",
    "ItemTexts",
    "form_for",
    "instrument_texts_to_dict",
    "parse_instrument_texts",
]

TEXT_MAX_CHARS = 1000
"""Longest item text an upload may give."""
LABEL_MAX_CHARS = 200
"""Longest option label."""
STEM_MAX_CHARS = 1000
"""Longest stem (the instrument's probe)."""
COPYRIGHT_MAX_CHARS = 2000
"""Longest licence notice."""

# Item texts and labels are one line; a stem or notice may have line breaks.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_CONTROL_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\u2028\u2029]")
_TOP_KEYS = ("instrument_version", "stem", "copyright", "items")
_ITEM_KEYS = ("text", "options")
_ITEM_KEY = re.compile(r"[1-9][0-9]*")


def _no_labels() -> Mapping[str, str]:
    return MappingProxyType({})


def _no_items() -> Mapping[int, ItemTexts]:
    return MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class ItemTexts:
    """The licensed wording of one item.

    Attributes
    ----------
    text : str
        The item's question.
    option_labels : mapping of str to str
        Option code -> label, for the options relabelled; read-only.
    """

    text: str
    option_labels: Mapping[str, str] = field(default_factory=_no_labels, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "option_labels", MappingProxyType(dict(self.option_labels)))


@dataclass(frozen=True, kw_only=True)
class InstrumentTexts:
    """A trial's licensed wording of one instrument version.

    Attributes
    ----------
    instrument_id, instrument_version : str
        The instrument version the wording was checked against.
    items : mapping of int to ItemTexts
        Item number -> wording, for every item; read-only.
    stem : str or None
        Replaces the instrument's probe/stem when given.
    copyright : str or None
        The licence notice, carried into the form and the FHIR ``Questionnaire.copyright``.
    """

    instrument_id: str
    instrument_version: str
    items: Mapping[int, ItemTexts] = field(default_factory=_no_items, hash=False)
    stem: str | None = None
    copyright: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", MappingProxyType(dict(self.items)))


def _check_text(
    value: object,
    loc: tuple[str | int, ...],
    *,
    limit: int,
    multiline: bool,
    problems: list[Problem],
) -> str | None:
    """The string at `loc` if it is acceptable wording; otherwise record why and give None."""
    name = ".".join(str(part) for part in loc)
    if not isinstance(value, str):
        problems.append(Problem(loc, f"{name} must be a string", "not_string"))
        return None
    if not value.strip():
        problems.append(Problem(loc, f"{name} must not be empty", "empty"))
        return None
    if len(value) > limit:
        problems.append(
            Problem(loc, f"{name} is {len(value)} characters; at most {limit}", "too_long")
        )
        return None
    control = _CONTROL_BUT_NEWLINE if multiline else _CONTROL
    if control.search(value):
        kind = "control characters other than line breaks" if multiline else "line breaks"
        problems.append(
            Problem(loc, f"{name} must not contain {kind} or control characters", "control")
        )
        return None
    return value


def _resolve(
    body: Mapping[str, object], instrument_id: str, catalogue: Catalogue, problems: list[Problem]
) -> Instrument | None:
    version = body.get("instrument_version")
    if version is None:
        return catalogue.get(instrument_id)
    if not isinstance(version, str):
        problems.append(
            Problem(("instrument_version",), "instrument_version must be a string", "not_string")
        )
        return None
    try:
        return catalogue.get(instrument_id, version)
    except UnknownInstrumentVersion:
        problems.append(
            Problem(
                ("instrument_version",),
                f"{instrument_id} has no version {version!r}; current is "
                f"{catalogue.current_version(instrument_id)}",
                "unknown_version",
            )
        )
        return None


def _item_texts(
    instrument: Instrument, key: str, raw: object, problems: list[Problem]
) -> ItemTexts | None:
    loc: tuple[str | int, ...] = ("items", key)
    if not isinstance(raw, Mapping):
        problems.append(Problem(loc, f"items.{key} must be an object", "not_object"))
        return None
    found = len(problems)
    for unknown in (k for k in raw if k not in _ITEM_KEYS):
        problems.append(
            Problem(
                (*loc, str(unknown)),
                f"unknown field {unknown!s}: an item takes text and options",
                "unknown_field",
            )
        )
    if "text" not in raw:
        problems.append(Problem((*loc, "text"), f"items.{key}.text is required", "missing"))
        text = None
    else:
        text = _check_text(
            raw["text"], (*loc, "text"), limit=TEXT_MAX_CHARS, multiline=False, problems=problems
        )
    labels: dict[str, str] = {}
    options = raw.get("options")
    if options is not None:
        form_item = instrument.form.item(key)
        assert form_item is not None  # key was checked to name an item
        if not isinstance(options, Mapping):
            problems.append(
                Problem((*loc, "options"), f"items.{key}.options must be an object", "not_object")
            )
        else:
            codes = ", ".join(o.code for o in form_item.options)
            for code, label in options.items():
                option_loc = (*loc, "options", str(code))
                if not isinstance(code, str) or form_item.option(code) is None:
                    problems.append(
                        Problem(
                            option_loc,
                            f"item {key} has no option {code!s}: its codes are {codes}",
                            "unknown_option",
                        )
                    )
                    continue
                checked = _check_text(
                    label, option_loc, limit=LABEL_MAX_CHARS, multiline=False, problems=problems
                )
                if checked is not None:
                    labels[code] = checked
    if len(problems) > found or text is None:
        return None
    return ItemTexts(text=text, option_labels=labels)


def parse_instrument_texts(
    body: Mapping[str, object], *, instrument_id: str, catalogue: Catalogue = CATALOGUE
) -> InstrumentTexts:
    """Check an upload of licensed wording against its instrument.

    Parameters
    ----------
    body : mapping of str to object
        The JSON-decoded upload (see the module docstring for its shape).
    instrument_id : str
        The instrument the wording is for (the route's path).
    catalogue : Catalogue
        Where the instrument is looked up; the packaged catalogue by default.

    Returns
    -------
    InstrumentTexts
        The wording, for the version named (or the current one).

    Raises
    ------
    UnknownInstrument
        No instrument has this id (the route answers 404).
    InvalidSubmission
        With every problem found, each located from the top of the body: ``unknown_field``
        (a top-level or item key the upload does not take), ``unknown_version``,
        ``not_object``, ``unknown_item`` (a key that is not a canonical item number of the
        instrument: ``"0"``, ``"01"``, ``"15"`` for HADS), ``missing_item`` (every item
        needs its wording), ``missing`` (an item without ``text``), ``unknown_option`` (a
        code the item does not have), and for each string ``not_string``, ``empty``,
        ``too_long`` (over `TEXT_MAX_CHARS`, `LABEL_MAX_CHARS`, `STEM_MAX_CHARS` or
        `COPYRIGHT_MAX_CHARS`) and ``control`` (control characters; line breaks are allowed
        only in the stem and the notice).
    """
    if not isinstance(body, Mapping):
        raise InvalidSubmission([Problem((), "the body must be an object", "not_object")])
    problems: list[Problem] = []
    catalogue.current_version(instrument_id)  # UnknownInstrument before anything else
    for unknown in (k for k in body if k not in _TOP_KEYS):
        problems.append(
            Problem(
                (str(unknown),),
                f"unknown field {unknown!s}: expected {', '.join(_TOP_KEYS)}",
                "unknown_field",
            )
        )
    instrument = _resolve(body, instrument_id, catalogue, problems)
    stem = None
    if body.get("stem") is not None:
        stem = _check_text(
            body["stem"], ("stem",), limit=STEM_MAX_CHARS, multiline=True, problems=problems
        )
    notice = None
    if body.get("copyright") is not None:
        notice = _check_text(
            body["copyright"],
            ("copyright",),
            limit=COPYRIGHT_MAX_CHARS,
            multiline=True,
            problems=problems,
        )
    raw_items = body.get("items")
    items: dict[int, ItemTexts] = {}
    if not isinstance(raw_items, Mapping):
        state = "is required" if raw_items is None else "must be an object"
        problems.append(Problem(("items",), f"items {state}: item number -> wording", "not_object"))
    elif instrument is not None:
        for key, raw in raw_items.items():
            if (
                not isinstance(key, str)
                or _ITEM_KEY.fullmatch(key) is None
                or int(key) > instrument.items
            ):
                problems.append(
                    Problem(
                        ("items", str(key)),
                        f"unknown item {key!s}: {instrument.id} has items 1-{instrument.items}",
                        "unknown_item",
                    )
                )
                continue
            texts = _item_texts(instrument, key, raw, problems)
            if texts is not None:
                items[int(key)] = texts
        for number in instrument.item_numbers:
            if str(number) not in raw_items:
                problems.append(
                    Problem(
                        ("items", str(number)),
                        f"item {number} has no wording: an upload words every item",
                        "missing_item",
                    )
                )
    if problems:
        raise InvalidSubmission(problems)
    assert instrument is not None
    return InstrumentTexts(
        instrument_id=instrument.id,
        instrument_version=instrument.version,
        items=items,
        stem=stem,
        copyright=notice,
    )


def instrument_texts_to_dict(texts: InstrumentTexts) -> dict[str, object]:
    """The wording as JSON to store: an upload body that parses back to `texts`."""
    return {
        "instrument_version": texts.instrument_version,
        "stem": texts.stem,
        "copyright": texts.copyright,
        "items": {
            str(number): {"text": item.text, "options": dict(item.option_labels)}
            for number, item in sorted(texts.items.items())
        },
    }


def form_for(instrument: Instrument, texts: InstrumentTexts | None = None) -> Form:
    """The instrument's form, with a trial's licensed wording merged in when given.

    Parameters
    ----------
    instrument : Instrument
        The instrument version to present.
    texts : InstrumentTexts or None
        The trial's wording of that version; None gives the catalogue form.

    Returns
    -------
    Form
        Item texts, relabelled options, the stem and the notice from `texts`; everything
        else (order, codes, scores, text fields) as in the catalogue. ``source`` is
        ``"trial"`` when `texts` is given.

    Raises
    ------
    ValueError
        `texts` are for another instrument or version, or name items or codes the
        instrument does not have (they were not made by `parse_instrument_texts`).
    """
    if texts is None:
        return instrument.form
    if (texts.instrument_id, texts.instrument_version) != (instrument.id, instrument.version):
        raise ValueError(
            f"wording of {texts.instrument_id!r} version {texts.instrument_version!r} "
            f"given for {instrument.id!r} version {instrument.version!r}"
        )
    unknown = set(texts.items) - set(instrument.item_numbers)
    if unknown:
        raise ValueError(f"wording names items {sorted(unknown)} that {instrument.id} lacks")
    items = []
    for item in instrument.form.items:
        wording = texts.items.get(item.number) if item.number is not None else None
        if wording is None:
            items.append(item)
            continue
        bad_codes = set(wording.option_labels) - {o.code for o in item.options}
        if bad_codes:
            raise ValueError(f"wording of item {item.number} labels unknown codes {bad_codes}")
        options = tuple(
            Option(code=o.code, label=wording.option_labels.get(o.code, o.label), score=o.score)
            for o in item.options
        )
        items.append(dataclasses.replace(item, text=wording.text, options=options))
    form = dataclasses.replace(
        instrument.form,
        items=tuple(items),
        stem=instrument.form.stem if texts.stem is None else texts.stem,
        source="trial",
        copyright=texts.copyright,
    )
    check_form(instrument, form)
    return form
