"""The instrument catalogue: the scales of the pilot study as data.

The facts (items, response ranges, subscale keys, missing-item allowances, reliabilities,
bands) live in ``domain/data/instruments.json``, a copy of ``spec/instruments.json`` plus
two fields of ours: each subscale's ``improvement`` direction and the top-level
``current_versions``. The file lists instruments keyed by ``(id, version)``; a corrected
key becomes a new version beside the old one, so old submissions keep scoring as they did.

`CATALOGUE` is read once, at import, with `importlib.resources`; every `Instrument` checks
its own consistency when built, so a bad data file fails at import, not at scoring time.
Item wording of the published scales is copyrighted: only item numbers, keys and anchors
are held here (the diary's short labels come from the study's appendix).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Any, Literal, cast

from domain.errors import UnknownInstrument, UnknownInstrumentVersion

__all__ = [
    "CATALOGUE",
    "Band",
    "Catalogue",
    "Improvement",
    "Instrument",
    "ReliabilityKind",
    "Subscale",
    "instrument_to_dict",
    "load_catalogue",
]

Improvement = Literal["decrease", "increase"]
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
class Instrument:
    """One version of a questionnaire: items, response range, subscales and provenance.

    Built instruments are consistent: every item belongs to at least one subscale, each
    subscale's range equals its item count times the response range, and reverse-keyed
    items exist. `item_labels` is read-only (empty except for the diary).
    """

    id: str
    version: str
    title: str
    citation: str
    items: int
    response_min: int
    response_max: int
    anchors: tuple[str, ...] | str = ()
    reverse_items: tuple[int, ...] = ()
    subscales: tuple[Subscale, ...]
    item_labels: Mapping[str, str] = field(default_factory=_no_labels, hash=False)
    free_text: tuple[str, ...] = ()
    free_text_max_chars: int | None = None
    probe: str | None = None
    notes: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    missing_item_rule: str = ""

    def __post_init__(self) -> None:
        # Freeze the labels whatever mapping the caller passed.
        object.__setattr__(self, "item_labels", MappingProxyType(dict(self.item_labels)))
        where = f"instrument {self.id!r} version {self.version!r}"
        if self.items < 1:
            raise ValueError(f"{where}: needs at least one item")
        if self.response_min >= self.response_max:
            raise ValueError(f"{where}: response_min must be below response_max")
        if isinstance(self.anchors, tuple) and self.anchors:
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


def _instrument_from_data(raw: Mapping[str, Any], *, missing_item_rule: str) -> Instrument:
    anchors = _opt(raw, "anchors", (str, list))
    labels = _opt(raw, "item_labels", dict) or {}
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise ValueError("catalogue data: item_labels must map strings to strings")
    return Instrument(
        id=_req(raw, "id", str),
        version=_req(raw, "version", str),
        title=_req(raw, "title", str),
        citation=_req(raw, "citation", str),
        items=_req(raw, "items", int),
        response_min=_req(raw, "response_min", int),
        response_max=_req(raw, "response_max", int),
        anchors=anchors if isinstance(anchors, str) else _str_tuple(anchors, "anchors"),
        reverse_items=_int_tuple(_req(raw, "reverse_items", list), "reverse_items"),
        subscales=tuple(_subscale_from_data(s) for s in _req(raw, "subscales", list)),
        item_labels=labels,
        free_text=_str_tuple(raw.get("free_text"), "free_text"),
        free_text_max_chars=_opt(raw, "free_text_max_chars", int),
        probe=_opt(raw, "probe", str),
        notes=_str_tuple(raw.get("notes"), "notes"),
        sources=_str_tuple(raw.get("sources"), "sources"),
        missing_item_rule=missing_item_rule,
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
    """The public, JSON-ready definition of an instrument (no item wording, no notes)."""
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
        "anchors": (
            instrument.anchors if isinstance(instrument.anchors, str) else list(instrument.anchors)
        ),
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
    }
