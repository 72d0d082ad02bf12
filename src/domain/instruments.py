"""The instrument catalogue: the scales of the pilot study as data.

The facts (items, response ranges, subscale keys, missing-item allowances, reliabilities,
bands) live in ``domain/data/instruments.json``, a copy of ``spec/instruments.json`` plus
two fields of ours: each subscale's ``improvement`` direction and the top-level
``current_versions``. The file lists instruments keyed by ``(id, version)``; a corrected
key becomes a new version beside the old one, so old submissions keep scoring as they did.

`CATALOGUE` is read once, at import, with `importlib.resources`; every `Instrument` checks
its own consistency when built, so a bad data file fails at import, not at scoring time.
Item wording of the published scales is copyrighted: only item numbers, keys and generic
anchors are held here (the diary's wording and short labels come from the study's appendix).

Each instrument is also a `Form`: its answerable items in display order, each choice item
with its response options (code, label, scored value) in printed order, the text fields of
the diary, and the stems. The data file holds the form compactly (named option orders,
per-item overrides); `Instrument` expands and checks it when built. Without trial-supplied
wording (see `domain.forms`) an item's text is ``"Item N"``; options take the instrument's
generic `anchors` as labels. Option codes are the scores as decimal strings (``"0"`` ..
``"3"`` for HADS), so a code names the same score whatever the printed position.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import InitVar, dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal, cast

from domain.errors import UnknownInstrument, UnknownInstrumentVersion

__all__ = [
    "CATALOGUE",
    "Band",
    "Catalogue",
    "ChoiceOrientation",
    "Form",
    "FormItem",
    "FormSource",
    "Improvement",
    "Instrument",
    "Option",
    "ReliabilityKind",
    "Subscale",
    "check_form",
    "form_to_dict",
    "instrument_to_dict",
    "load_catalogue",
]

Improvement = Literal["decrease", "increase"]
ChoiceOrientation = Literal["vertical", "horizontal"]
FormSource = Literal["catalogue", "trial"]
ReliabilityKind = Literal["internal_consistency"]


def _no_labels() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class Band:
    """An interpretive band of subscale scores, inclusive at both ends."""

    min: int
    max: int
    label: str

    def __post_init__(self) -> None:
        if self.min > self.max:
            raise ValueError(f"band {self.label!r}: min {self.min} > max {self.max}")

    def contains(self, value: int) -> bool:
        """Whether the integer `value` lies in this band."""
        return self.min <= value <= self.max


@dataclass(frozen=True, kw_only=True)
class Subscale:
    """A scored part of an instrument: which items it sums and how it is read.

    Attributes
    ----------
    items : tuple of int
        1-based item numbers summed by this subscale.
    max_missing : int
        How many of those items may be unanswered for the subscale still to be scored
        (prorated); with more missing the score is null.
    range : (int, int)
        Lowest and highest possible score.
    reliability_alpha : float or None
        Cronbach's alpha, the reliability of the sample-basis reliable change index;
        None means no sample-basis RCI.
    reliability_source, reliability_sample : str or None
        Where `reliability_alpha` was published, and in which sample.
    reliability_kind : {"internal_consistency"} or None
        What `reliability_alpha` measures: internal consistency (Cronbach's alpha), not
        stability over time.
    reference_sd : float or None
        A published reference SD of the subscale (normative or clinical), the SD of the
        published-basis reliable change index; with `reference_sd_source` and
        `reference_sd_sample`.
    test_retest : float or None
        A published test-retest reliability, the reliability of the published-basis
        reliable change index; with `test_retest_interval`, `test_retest_source` and
        `test_retest_sample`. Only when both `reference_sd` and `test_retest` are known
        is the published basis used (`published_reliable_change_basis`).
    bands : tuple of Band
        Contiguous interpretive bands covering `range`, or empty.
    improvement : {"decrease", "increase"}
        Which direction of change is clinical improvement (our addition to the spec).
    """

    id: str
    label: str
    items: tuple[int, ...]
    max_missing: int
    range: tuple[int, int]
    reliability_alpha: float | None
    reliability_source: str | None = None
    reliability_kind: ReliabilityKind | None = None
    reliability_sample: str | None = None
    reference_sd: float | None = None
    reference_sd_source: str | None = None
    reference_sd_sample: str | None = None
    test_retest: float | None = None
    test_retest_interval: str | None = None
    test_retest_source: str | None = None
    test_retest_sample: str | None = None
    bands: tuple[Band, ...] = ()
    improvement: Improvement

    def __post_init__(self) -> None:
        where = f"subscale {self.id!r}"
        if not self.items:
            raise ValueError(f"{where} has no items")
        if len(set(self.items)) != len(self.items):
            raise ValueError(f"{where} lists an item twice: {self.items}")
        if not 0 <= self.max_missing < len(self.items):
            raise ValueError(
                f"{where}: max_missing {self.max_missing} must be in 0..{len(self.items) - 1}"
            )
        low, high = self.range
        if low > high:
            raise ValueError(f"{where}: range {self.range} is reversed")
        if self.improvement not in ("decrease", "increase"):
            raise ValueError(f"{where}: improvement must be 'decrease' or 'increase'")
        if self.reliability_alpha is not None and not 0.0 < self.reliability_alpha < 1.0:
            raise ValueError(f"{where}: reliability_alpha must be in (0, 1)")
        if self.reliability_kind not in (None, "internal_consistency"):
            raise ValueError(f"{where}: reliability_kind must be 'internal_consistency'")
        if self.reference_sd is not None:
            if not (math.isfinite(self.reference_sd) and self.reference_sd > 0):
                raise ValueError(f"{where}: reference_sd must be positive")
            if not self.reference_sd_source:
                raise ValueError(f"{where}: a reference_sd needs its reference_sd_source")
        if self.test_retest is not None:
            if not 0.0 < self.test_retest < 1.0:
                raise ValueError(f"{where}: test_retest must be in (0, 1)")
            if not self.test_retest_source:
                raise ValueError(f"{where}: a test_retest needs its test_retest_source")
        if self.bands:
            if self.bands[0].min != low or self.bands[-1].max != high:
                raise ValueError(f"{where}: bands must cover the range {self.range}")
            for before, after in zip(self.bands, self.bands[1:], strict=False):
                if after.min != before.max + 1:
                    raise ValueError(f"{where}: bands must be contiguous and ordered")

    @property
    def published_reliable_change_basis(self) -> tuple[float, float] | None:
        """``(reference_sd, test_retest)`` when both were published, else None."""
        if self.reference_sd is None or self.test_retest is None:
            return None
        return self.reference_sd, self.test_retest

    def band_for(self, score: float) -> str | None:
        """The label of the band `score` falls in, or None when there are no bands.

        Prorated scores can be fractional (e.g. 10.5) and fall between integer bands, so
        for banding only the score is rounded half up to the nearest integer (10.5 -> 11);
        the score itself is never rounded. A score outside every band gives None.
        """
        if not self.bands:
            return None
        rounded = math.floor(score + 0.5)
        for band in self.bands:
            if band.contains(rounded):
                return band.label
        return None


@dataclass(frozen=True, kw_only=True)
class Option:
    """One response option of a choice item.

    Attributes
    ----------
    code : str
        What a front end submits for this option (the FHIR ``valueCoding.code``): the
        score as a decimal string, so it does not depend on the printed position.
    label : str
        What is shown: trial-supplied wording, else the instrument's generic anchor (for
        HADS the neutral ``"Scored N"``).
    score : int
        The value scored, within the instrument's response range.
    """

    code: str
    label: str
    score: int


@dataclass(frozen=True, kw_only=True)
class FormItem:
    """One answerable entry of a form: a scored choice item or a free-text field.

    Attributes
    ----------
    link_id : str
        Stable identifier, the FHIR ``linkId``: the item number as a decimal string for a
        choice item (``"1"`` .. ``"N"``), the field name for a text field
        (``"critical_situations"``).
    type : {"choice", "text"}
        A scored item with `options`, or a free-text field with `max_length`.
    display_order : int
        1-based position in the form; equals the item's position in `Form.items`.
    text : str
        The question; ``"Item N"`` where the wording is not shipped.
    stem : str or None
        An instruction shown immediately before this item (e.g. the diary's "Thinking
        back over the week ..."), or None.
    number : int or None
        The 1-based item number of a choice item (None for text fields).
    field : str or None
        The notes field of a text item (None for choice items).
    options : tuple of Option
        The response options in printed order (empty for text fields).
    max_length : int or None
        Longest text a text field takes (None for choice items).
    """

    link_id: str
    type: Literal["choice", "text"]
    display_order: int
    text: str
    stem: str | None = None
    number: int | None = None
    field: str | None = None
    options: tuple[Option, ...] = ()
    max_length: int | None = None

    def __post_init__(self) -> None:
        where = f"form item {self.link_id!r}"
        if not self.text.strip():
            raise ValueError(f"{where} has no text")
        if self.type == "choice":
            if self.number is None or self.field is not None or self.max_length is not None:
                raise ValueError(f"{where}: a choice item has a number, no field, no max_length")
            if self.link_id != str(self.number):
                raise ValueError(f"{where}: a choice item's link_id is its number")
            if not self.options:
                raise ValueError(f"{where} has no options")
            codes = [o.code for o in self.options]
            if len(set(codes)) != len(codes) or not all(codes):
                raise ValueError(f"{where}: option codes must be distinct and non-empty")
            if not all(o.label.strip() for o in self.options):
                raise ValueError(f"{where}: every option needs a label")
        elif self.type == "text":
            if self.field is None or self.number is not None or self.options:
                raise ValueError(f"{where}: a text item has a field, no number, no options")
            if self.link_id != self.field:
                raise ValueError(f"{where}: a text item's link_id is its field name")
            if self.max_length is None or self.max_length < 1:
                raise ValueError(f"{where}: a text item needs a positive max_length")
        else:
            raise ValueError(f"{where}: type must be 'choice' or 'text'")

    def option(self, code: str) -> Option | None:
        """The option with this code, or None."""
        return next((o for o in self.options if o.code == code), None)


@dataclass(frozen=True, kw_only=True)
class Form:
    """An instrument as a form: what to show, in which order, and what each answer scores.

    Attributes
    ----------
    instrument_id, instrument_version : str
        The instrument (and version) the form presents.
    title : str
        The instrument's title.
    stem : str or None
        The instrument's probe, shown once above the items (e.g. FSCS "I get critical and
        angry with myself:"), or None.
    choice_orientation : {"vertical", "horizontal"}
        How options are best laid out: a list of verbal anchors, or a 1-10 rating row.
    items : tuple of FormItem
        Every answerable entry in display order.
    source : {"catalogue", "trial"}
        ``"catalogue"`` for the public form; ``"trial"`` once a trial's licensed wording
        has been merged in (`domain.forms.form_for`); such a form is served only to that
        trial's callers.
    copyright : str or None
        The notice that comes with trial-supplied wording, if any.
    """

    instrument_id: str
    instrument_version: str
    title: str
    stem: str | None
    choice_orientation: ChoiceOrientation
    items: tuple[FormItem, ...]
    source: FormSource = "catalogue"
    copyright: str | None = None

    def __post_init__(self) -> None:
        where = f"form of {self.instrument_id!r} version {self.instrument_version!r}"
        if self.choice_orientation not in ("vertical", "horizontal"):
            raise ValueError(f"{where}: choice_orientation must be 'vertical' or 'horizontal'")
        if self.source not in ("catalogue", "trial"):
            raise ValueError(f"{where}: source must be 'catalogue' or 'trial'")
        link_ids = [i.link_id for i in self.items]
        if len(set(link_ids)) != len(link_ids):
            raise ValueError(f"{where}: duplicate link_ids {link_ids}")
        if [i.display_order for i in self.items] != list(range(1, len(self.items) + 1)):
            raise ValueError(f"{where}: display_order must be 1..n in item order")

    def item(self, link_id: str) -> FormItem | None:
        """The item with this link_id, or None."""
        return next((i for i in self.items if i.link_id == link_id), None)

    @property
    def choice_items(self) -> tuple[FormItem, ...]:
        """The scored items, in display order."""
        return tuple(i for i in self.items if i.type == "choice")

    @property
    def text_items(self) -> tuple[FormItem, ...]:
        """The free-text fields, in display order."""
        return tuple(i for i in self.items if i.type == "text")


def _default_form(instrument: Instrument) -> Form:
    """The form of an instrument defined without form data: ascending options, "Item N"."""
    scores = range(instrument.response_min, instrument.response_max + 1)
    labels = instrument.anchors or tuple(str(s) for s in scores)
    items: list[FormItem] = [
        FormItem(
            link_id=str(number),
            type="choice",
            display_order=number,
            text=f"Item {number}",
            number=number,
            options=tuple(
                Option(code=str(s), label=label, score=s)
                for s, label in zip(scores, labels, strict=True)
            ),
        )
        for number in instrument.item_numbers
    ]
    for name in instrument.free_text:
        items.append(
            FormItem(
                link_id=name,
                type="text",
                display_order=len(items) + 1,
                text=name.replace("_", " ").capitalize(),
                field=name,
                max_length=instrument.free_text_max_chars,
            )
        )
    return Form(
        instrument_id=instrument.id,
        instrument_version=instrument.version,
        title=instrument.title,
        stem=instrument.probe,
        choice_orientation="vertical",
        items=tuple(items),
    )


def check_form(instrument: Instrument, form: Form) -> None:
    """Check that `form` presents `instrument`: every item once, options covering the range.

    Raises
    ------
    ValueError
        The form names another instrument or version; a choice item is missing, repeated
        or unknown; an item's option scores do not cover the response range exactly once;
        the text fields are not exactly the instrument's `free_text` fields, or take a
        different length than `free_text_max_chars`.
    """
    where = f"form of instrument {instrument.id!r} version {instrument.version!r}"
    if (form.instrument_id, form.instrument_version) != (instrument.id, instrument.version):
        raise ValueError(
            f"{where} names {form.instrument_id!r} version {form.instrument_version!r}"
        )
    numbers = [i.number for i in form.choice_items]
    if sorted(n for n in numbers if n is not None) != list(instrument.item_numbers):
        raise ValueError(f"{where}: choice items {numbers} are not items 1..{instrument.items}")
    scores = list(range(instrument.response_min, instrument.response_max + 1))
    for item in form.choice_items:
        if sorted(o.score for o in item.options) != scores:
            raise ValueError(
                f"{where}: item {item.number} options score "
                f"{[o.score for o in item.options]}, not each of {scores} once"
            )
    fields = [i.field for i in form.text_items]
    if sorted(f for f in fields if f is not None) != sorted(instrument.free_text):
        raise ValueError(f"{where}: text fields {fields} are not {list(instrument.free_text)}")
    if any(i.max_length != instrument.free_text_max_chars for i in form.text_items):
        raise ValueError(f"{where}: text fields take {instrument.free_text_max_chars} chars")


@dataclass(frozen=True, kw_only=True)
class Instrument:
    """One version of a questionnaire: items, response range, subscales and provenance.

    Built instruments are consistent: every item belongs to at least one subscale, each
    subscale's range equals its item count times the response range, and reverse-keyed
    items exist. `item_labels` is read-only (empty except for the diary).

    `anchors` are the generic option labels in score order (``anchors[k]`` labels score
    ``response_min + k``), one per score, or empty. `form` is the instrument as a form
    (see `Form`); pass `form_definition` to give it, or leave it out for the plain form
    (options in ascending score order labelled by `anchors`, texts "Item N"). Either way
    it is checked against the instrument (`check_form`). `dataclasses.replace` rebuilds
    the plain form unless it is given `form_definition=instrument.form` too.
    """

    id: str
    version: str
    title: str
    citation: str
    items: int
    response_min: int
    response_max: int
    anchors: tuple[str, ...] = ()
    reverse_items: tuple[int, ...] = ()
    subscales: tuple[Subscale, ...]
    item_labels: Mapping[str, str] = field(default_factory=_no_labels, hash=False)
    free_text: tuple[str, ...] = ()
    free_text_max_chars: int | None = None
    probe: str | None = None
    notes: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    missing_item_rule: str = ""
    form_definition: InitVar[Form | None] = None
    _form: Form = field(init=False, repr=False)

    def __post_init__(self, form_definition: Form | None) -> None:
        # Freeze the labels whatever mapping the caller passed.
        object.__setattr__(self, "item_labels", MappingProxyType(dict(self.item_labels)))
        where = f"instrument {self.id!r} version {self.version!r}"
        if self.items < 1:
            raise ValueError(f"{where}: needs at least one item")
        if self.response_min >= self.response_max:
            raise ValueError(f"{where}: response_min must be below response_max")
        if self.anchors:
            expected = self.response_max - self.response_min + 1
            if len(self.anchors) != expected:
                raise ValueError(f"{where}: {len(self.anchors)} anchors for {expected} options")
        numbers = set(self.item_numbers)
        if len(set(self.reverse_items)) != len(self.reverse_items) or not set(
            self.reverse_items
        ) <= set(numbers):
            raise ValueError(f"{where}: reverse_items must be distinct item numbers")
        if not self.subscales:
            raise ValueError(f"{where}: needs at least one subscale")
        ids = [s.id for s in self.subscales]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{where}: duplicate subscale ids {ids}")
        covered: set[int] = set()
        for sub in self.subscales:
            if not set(sub.items) <= numbers:
                raise ValueError(f"{where}: subscale {sub.id!r} has items outside 1..{self.items}")
            expected_range = (
                len(sub.items) * self.response_min,
                len(sub.items) * self.response_max,
            )
            if tuple(sub.range) != expected_range:
                raise ValueError(
                    f"{where}: subscale {sub.id!r} range {sub.range} != {expected_range}"
                )
            covered.update(sub.items)
        if covered != numbers:
            raise ValueError(f"{where}: items {sorted(numbers - covered)} are in no subscale")
        if not set(self.item_labels) <= {str(n) for n in numbers}:
            raise ValueError(f"{where}: item_labels has keys that are not item numbers")
        if self.free_text and (self.free_text_max_chars is None or self.free_text_max_chars < 1):
            raise ValueError(f"{where}: free_text needs a positive free_text_max_chars")
        form = _default_form(self) if form_definition is None else form_definition
        check_form(self, form)
        if form.source != "catalogue" or form.stem != self.probe or form.title != self.title:
            raise ValueError(f"{where}: its form must be the catalogue form, stem = probe")
        object.__setattr__(self, "_form", form)

    @property
    def form(self) -> Form:
        """The instrument as a form, without trial-supplied wording."""
        return self._form

    @property
    def item_numbers(self) -> range:
        """The item numbers 1..items in printed order."""
        return range(1, self.items + 1)

    def subscale(self, subscale_id: str) -> Subscale:
        """The subscale with this id; KeyError if there is none."""
        for sub in self.subscales:
            if sub.id == subscale_id:
                return sub
        raise KeyError(f"instrument {self.id!r} has no subscale {subscale_id!r}")


class Catalogue:
    """Every known version of every instrument, and which version is current.

    Parameters
    ----------
    instruments : iterable of Instrument
        All versions; ``(id, version)`` must be unique.
    current_versions : mapping of str to str
        Instrument id -> current version; its order is the order of `instruments()`.
    """

    def __init__(
        self, instruments: Iterable[Instrument], *, current_versions: Mapping[str, str]
    ) -> None:
        by_key: dict[tuple[str, str], Instrument] = {}
        for instrument in instruments:
            key = (instrument.id, instrument.version)
            if key in by_key:
                raise ValueError(f"instrument {key} is defined twice")
            by_key[key] = instrument
        for instrument_id, version in current_versions.items():
            if (instrument_id, version) not in by_key:
                raise ValueError(f"current version {instrument_id!r} {version!r} is not defined")
        missing = {i for i, _ in by_key} - set(current_versions)
        if missing:
            raise ValueError(f"no current version for {sorted(missing)}")
        self._by_key = by_key
        self._current = dict(current_versions)

    def get(self, instrument_id: str, version: str | None = None) -> Instrument:
        """The instrument in `version`, or its current version when `version` is None.

        Raises
        ------
        UnknownInstrument
            No instrument has this id.
        UnknownInstrumentVersion
            The instrument exists but not in this version.
        """
        current = self.current_version(instrument_id)
        key = (instrument_id, current if version is None else version)
        try:
            return self._by_key[key]
        except KeyError:
            raise UnknownInstrumentVersion(instrument_id, key[1]) from None

    def current_version(self, instrument_id: str) -> str:
        """The version new submissions get when they name none."""
        try:
            return self._current[instrument_id]
        except KeyError:
            raise UnknownInstrument(instrument_id) from None

    def instruments(self) -> tuple[Instrument, ...]:
        """The current version of every instrument, in catalogue order."""
        return tuple(self._by_key[item] for item in self._current.items())

    def ids(self) -> tuple[str, ...]:
        """Every instrument id, in catalogue order."""
        return tuple(self._current)

    def versions(self, instrument_id: str) -> tuple[str, ...]:
        """Every version held for this instrument, in data-file order."""
        self.current_version(instrument_id)
        return tuple(v for i, v in self._by_key if i == instrument_id)


# -- reading the data file ---------------------------------------------------------------


def _req(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in obj:
        raise ValueError(f"catalogue data: missing field {key!r} in {obj.get('id', obj)!r}")
    value = obj[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"catalogue data: field {key!r} has the wrong type: {value!r}")
    return value


def _opt(obj: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if obj.get(key) is None:
        return None
    return _req(obj, key, kind)


def _int_tuple(values: Any, what: str) -> tuple[int, ...]:
    if not isinstance(values, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in values
    ):
        raise ValueError(f"catalogue data: {what} must be a list of integers")
    return tuple(values)


def _str_tuple(values: Any, what: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"catalogue data: {what} must be a list of strings")
    return tuple(values)


def _subscale_from_data(raw: Mapping[str, Any]) -> Subscale:
    low, high = _int_tuple(_req(raw, "range", list), "range")
    alpha = _opt(raw, "reliability_alpha", (int, float))
    reference_sd = _opt(raw, "reference_sd", (int, float))
    test_retest = _opt(raw, "test_retest", (int, float))
    return Subscale(
        id=_req(raw, "id", str),
        label=_req(raw, "label", str),
        items=_int_tuple(_req(raw, "items", list), "subscale items"),
        max_missing=_req(raw, "max_missing", int),
        range=(low, high),
        reliability_alpha=None if alpha is None else float(alpha),
        reliability_source=_opt(raw, "reliability_source", str),
        reliability_kind=cast(ReliabilityKind | None, _opt(raw, "reliability_kind", str)),
        reliability_sample=_opt(raw, "reliability_sample", str),
        reference_sd=None if reference_sd is None else float(reference_sd),
        reference_sd_source=_opt(raw, "reference_sd_source", str),
        reference_sd_sample=_opt(raw, "reference_sd_sample", str),
        test_retest=None if test_retest is None else float(test_retest),
        test_retest_interval=_opt(raw, "test_retest_interval", str),
        test_retest_source=_opt(raw, "test_retest_source", str),
        test_retest_sample=_opt(raw, "test_retest_sample", str),
        bands=tuple(
            Band(min=_req(b, "min", int), max=_req(b, "max", int), label=_req(b, "label", str))
            for b in (_opt(raw, "bands", list) or [])
        ),
        improvement=cast(Improvement, _req(raw, "improvement", str)),
    )


_FORM_KEYS = {
    "choice_orientation",
    "option_orders",
    "items",
    "text_fields",
    "display_order",
    "notes",
}
_FORM_ITEM_KEYS = {"options", "text", "stem", "option_labels"}
_FORM_FIELD_KEYS = {"text", "stem"}


def _str_map(values: Any, what: str) -> dict[str, str]:
    if not isinstance(values, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in values.items()
    ):
        raise ValueError(f"catalogue data: {what} must map strings to strings")
    return dict(values)


def _only(raw: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValueError(f"catalogue data: {what} has unknown fields {unknown}")


def _form_from_data(
    raw: Mapping[str, Any],
    *,
    instrument_id: str,
    version: str,
    title: str,
    probe: str | None,
    anchors: tuple[str, ...],
    response_min: int,
    free_text: tuple[str, ...],
    free_text_max_chars: int | None,
) -> Form:
    """Expand an instrument's ``form`` data: named option orders, per-item overrides.

    ``option_orders`` names lists of scores in printed order; each entry of ``items``
    (keyed by item number) picks one by name and may give ``text``, ``stem`` and
    ``option_labels`` (code -> label, overriding the generic anchor). ``text_fields`` gives
    the diary fields' ``text`` and ``stem``; ``display_order`` lists every link_id when the
    order is not item numbers then text fields. ``notes`` documents the data only.
    """
    what = f"form of {instrument_id!r}"
    _only(raw, _FORM_KEYS, what)
    orders_raw = _req(raw, "option_orders", dict)
    orders = {
        name: _int_tuple(scores, f"{what} option order {name!r}")
        for name, scores in orders_raw.items()
    }
    raw_items = _req(raw, "items", dict)
    raw_fields = _opt(raw, "text_fields", dict) or {}
    _str_tuple(raw.get("notes"), f"{what} notes")

    def label(code: str, score: int, overrides: Mapping[str, str]) -> str:
        if code in overrides:
            return overrides[code]
        return anchors[score - response_min] if anchors else code

    built: dict[str, dict[str, Any]] = {}
    for key, entry in raw_items.items():
        if not isinstance(entry, dict):
            raise ValueError(f"catalogue data: {what} item {key!r} must be an object")
        _only(entry, _FORM_ITEM_KEYS, f"{what} item {key!r}")
        order_name = _req(entry, "options", str)
        if order_name not in orders:
            raise ValueError(f"catalogue data: {what} item {key!r} names no option order")
        overrides = _str_map(entry.get("option_labels", {}), f"{what} item {key!r} labels")
        scores = orders[order_name]
        if not set(overrides) <= {str(score) for score in scores}:
            raise ValueError(f"catalogue data: {what} item {key!r} labels unknown codes")
        if not key.isdigit():
            raise ValueError(f"catalogue data: {what} item key {key!r} is not an item number")
        built[key] = {
            "type": "choice",
            "number": int(key),
            "text": _opt(entry, "text", str) or f"Item {key}",
            "stem": _opt(entry, "stem", str),
            "options": tuple(
                Option(code=str(score), label=label(str(score), score, overrides), score=score)
                for score in scores
            ),
        }
    for name, entry in raw_fields.items():
        if not isinstance(entry, dict):
            raise ValueError(f"catalogue data: {what} text field {name!r} must be an object")
        _only(entry, _FORM_FIELD_KEYS, f"{what} text field {name!r}")
        built[name] = {
            "type": "text",
            "field": name,
            "text": _req(entry, "text", str),
            "stem": _opt(entry, "stem", str),
            "max_length": free_text_max_chars,
        }
    missing_fields = [name for name in free_text if name not in built]
    if missing_fields:
        raise ValueError(f"catalogue data: {what} has no text for fields {missing_fields}")
    default_order = sorted((k for k in built if k.isdigit()), key=int) + list(free_text)
    order = _str_tuple(raw.get("display_order"), f"{what} display_order") or tuple(default_order)
    if sorted(order) != sorted(built):
        raise ValueError(f"catalogue data: {what} display_order must list every item once")
    return Form(
        instrument_id=instrument_id,
        instrument_version=version,
        title=title,
        stem=probe,
        choice_orientation=cast(ChoiceOrientation, _req(raw, "choice_orientation", str)),
        items=tuple(
            FormItem(link_id=link_id, display_order=position, **built[link_id])
            for position, link_id in enumerate(order, start=1)
        ),
    )


def _instrument_from_data(raw: Mapping[str, Any], *, missing_item_rule: str) -> Instrument:
    labels = _opt(raw, "item_labels", dict) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise ValueError("catalogue data: item_labels must map strings to strings")
    instrument_id = _req(raw, "id", str)
    version = _req(raw, "version", str)
    title = _req(raw, "title", str)
    response_min = _req(raw, "response_min", int)
    anchors = _str_tuple(raw.get("anchors"), "anchors")
    free_text = _str_tuple(raw.get("free_text"), "free_text")
    free_text_max_chars = _opt(raw, "free_text_max_chars", int)
    probe = _opt(raw, "probe", str)
    raw_form = _opt(raw, "form", dict)
    form = (
        None
        if raw_form is None
        else _form_from_data(
            raw_form,
            instrument_id=instrument_id,
            version=version,
            title=title,
            probe=probe,
            anchors=anchors,
            response_min=response_min,
            free_text=free_text,
            free_text_max_chars=free_text_max_chars,
        )
    )
    return Instrument(
        id=instrument_id,
        version=version,
        title=title,
        citation=_req(raw, "citation", str),
        items=_req(raw, "items", int),
        response_min=response_min,
        response_max=_req(raw, "response_max", int),
        anchors=anchors,
        reverse_items=_int_tuple(_req(raw, "reverse_items", list), "reverse_items"),
        subscales=tuple(_subscale_from_data(s) for s in _req(raw, "subscales", list)),
        item_labels=labels,
        free_text=free_text,
        free_text_max_chars=free_text_max_chars,
        probe=probe,
        notes=_str_tuple(raw.get("notes"), "notes"),
        sources=_str_tuple(raw.get("sources"), "sources"),
        missing_item_rule=missing_item_rule,
        form_definition=form,
    )


def load_catalogue(data: Mapping[str, Any]) -> Catalogue:
    """Build a `Catalogue` from the parsed JSON of an instruments data file.

    Raises
    ------
    ValueError
        The data are malformed or an instrument is inconsistent.
    """
    rule = _req(data, "missing_item_rule", str)
    instruments = [
        _instrument_from_data(raw, missing_item_rule=rule)
        for raw in _req(data, "instruments", list)
    ]
    current = _req(data, "current_versions", dict)
    return Catalogue(instruments, current_versions=current)


def _load_packaged_catalogue() -> Catalogue:
    text = resources.files("domain").joinpath("data/instruments.json").read_text("utf-8")
    return load_catalogue(json.loads(text))


CATALOGUE: Catalogue = _load_packaged_catalogue()


def instrument_to_dict(instrument: Instrument) -> dict[str, object]:
    """The public, JSON-ready definition of an instrument (no licensed wording, no notes).

    `anchors` is always a list of generic labels in score order; `form` is the catalogue
    form (`form_to_dict`), the data a front end renders from.
    """
    return {
        "id": instrument.id,
        "version": instrument.version,
        "title": instrument.title,
        "citation": instrument.citation,
        "items": instrument.items,
        "response_min": instrument.response_min,
        "response_max": instrument.response_max,
        "item_count": instrument.items,
        "response_range": [instrument.response_min, instrument.response_max],
        "anchors": list(instrument.anchors),
        "reverse_items": list(instrument.reverse_items),
        "subscales": [
            {
                "id": sub.id,
                "label": sub.label,
                "items": list(sub.items),
                "max_missing": sub.max_missing,
                "range": list(sub.range),
                "reliability_alpha": sub.reliability_alpha,
                "bands": [{"min": b.min, "max": b.max, "label": b.label} for b in sub.bands],
                "improvement": sub.improvement,
            }
            for sub in instrument.subscales
        ],
        "missing_item_rule": instrument.missing_item_rule,
        "item_labels": dict(instrument.item_labels),
        "free_text": list(instrument.free_text),
        "free_text_max_chars": instrument.free_text_max_chars,
        "probe": instrument.probe,
        "sources": list(instrument.sources),
        "form": form_to_dict(instrument.form),
    }


def form_to_dict(form: Form) -> dict[str, object]:
    """A form as JSON: every answerable item in display order, options in printed order.

    Every item has the same keys; those that do not apply to its type are null (or an
    empty list for `options`).
    """
    return {
        "instrument": form.instrument_id,
        "instrument_version": form.instrument_version,
        "title": form.title,
        "source": form.source,
        "stem": form.stem,
        "choice_orientation": form.choice_orientation,
        "copyright": form.copyright,
        "items": [
            {
                "link_id": item.link_id,
                "type": item.type,
                "display_order": item.display_order,
                "number": item.number,
                "field": item.field,
                "stem": item.stem,
                "text": item.text,
                "options": [
                    {"code": o.code, "label": o.label, "score": o.score} for o in item.options
                ],
                "max_length": item.max_length,
            }
            for item in form.items
        ],
    }
