"""The catalogue holds the published keys, and refuses inconsistent definitions.

Expected item sets are typed from spec/instruments.md (and the published sources it
cites), never derived from the code under test.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest

from domain import (
    CATALOGUE,
    Band,
    Instrument,
    Subscale,
    UnknownInstrument,
    UnknownInstrumentVersion,
    instrument_to_dict,
    load_catalogue,
)

# Typed from spec/instruments.md, table "subscales (items)".
PUBLISHED_KEYS: dict[str, dict[str, list[int]]] = {
    "hads": {
        "anxiety": [1, 3, 5, 7, 9, 11, 13],
        "depression": [2, 4, 6, 8, 10, 12, 14],
    },
    "fscs": {
        "self_correction": [1, 3, 5, 7, 11, 12, 14, 15, 16, 17, 18, 19, 20],
        "self_persecution": [2, 4, 6, 8, 9, 10, 13, 21],
    },
    "fscrs": {
        # Also the key of BioPsyKit's fscrs() (mad-lab-fau/BioPsyKit,
        # src/biopsykit/questionnaires/questionnaires.py).
        "inadequate_self": [1, 2, 4, 6, 7, 14, 17, 18, 20],
        "hated_self": [9, 10, 12, 15, 22],
        "reassured_self": [3, 5, 8, 11, 13, 16, 19, 21],
    },
    "oas": {"total": list(range(1, 19))},
    "scs": {"total": list(range(1, 12))},
    "sbs": {"total": list(range(1, 17))},
    "diary": {
        "self_criticism": [1, 2, 3, 4, 5, 6, 7],
        "self_compassion": [8, 9, 10, 11, 12, 13, 14],
    },
}

ITEM_COUNTS = {"hads": 14, "fscs": 21, "fscrs": 22, "oas": 18, "scs": 11, "sbs": 16, "diary": 14}
RESPONSE_RANGES = {
    "hads": (0, 3),
    "fscs": (0, 4),
    "fscrs": (0, 4),
    "oas": (0, 4),
    "scs": (1, 10),
    "sbs": (0, 4),
    "diary": (1, 10),
}
# HADS: the half rule, 3 of 7 (Bell et al. 2016); elsewhere 20% of the items, rounded
# down, at least 1: 13 -> 2, 8 -> 1, 9 -> 1, 5 -> 1, 18 -> 3, 11 -> 2, 16 -> 3, 7 -> 1.
MAX_MISSING = {
    ("hads", "anxiety"): 3,
    ("hads", "depression"): 3,
    ("fscs", "self_correction"): 2,
    ("fscs", "self_persecution"): 1,
    ("fscrs", "inadequate_self"): 1,
    ("fscrs", "hated_self"): 1,
    ("fscrs", "reassured_self"): 1,
    ("oas", "total"): 3,
    ("scs", "total"): 2,
    ("sbs", "total"): 3,
    ("diary", "self_criticism"): 1,
    ("diary", "self_compassion"): 1,
}
ALPHAS = {
    ("hads", "anxiety"): 0.83,
    ("hads", "depression"): 0.82,
    ("fscs", "self_correction"): 0.92,
    ("fscs", "self_persecution"): 0.92,
    ("fscrs", "inadequate_self"): 0.90,
    ("fscrs", "hated_self"): 0.86,
    ("fscrs", "reassured_self"): 0.86,
    ("oas", "total"): 0.92,
    ("scs", "total"): 0.88,
    ("sbs", "total"): 0.85,
    ("diary", "self_criticism"): None,
    ("diary", "self_compassion"): None,
}
IMPROVEMENT = {
    ("hads", "anxiety"): "decrease",
    ("hads", "depression"): "decrease",
    ("fscs", "self_correction"): "decrease",
    ("fscs", "self_persecution"): "decrease",
    ("fscrs", "inadequate_self"): "decrease",
    ("fscrs", "hated_self"): "decrease",
    ("fscrs", "reassured_self"): "increase",
    ("oas", "total"): "decrease",
    ("scs", "total"): "increase",
    ("sbs", "total"): "decrease",
    ("diary", "self_criticism"): "decrease",
    ("diary", "self_compassion"): "increase",
}


def _packaged_data() -> dict[str, Any]:
    text = resources.files("domain").joinpath("data/instruments.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def test_the_catalogue_lists_the_seven_instruments_in_a_stable_order() -> None:
    assert CATALOGUE.ids() == ("hads", "fscs", "fscrs", "oas", "scs", "sbs", "diary")
    assert [i.id for i in CATALOGUE.instruments()] == list(CATALOGUE.ids())


@pytest.mark.parametrize("instrument_id", list(PUBLISHED_KEYS))
def test_every_subscale_holds_exactly_the_published_items(instrument_id: str) -> None:
    instrument = CATALOGUE.get(instrument_id)
    actual = {s.id: sorted(s.items) for s in instrument.subscales}
    assert actual == PUBLISHED_KEYS[instrument_id]


@pytest.mark.parametrize("instrument_id", list(PUBLISHED_KEYS))
def test_every_item_is_counted_in_exactly_one_subscale(instrument_id: str) -> None:
    instrument = CATALOGUE.get(instrument_id)
    all_items = [item for s in instrument.subscales for item in s.items]
    assert sorted(all_items) == list(range(1, ITEM_COUNTS[instrument_id] + 1))


@pytest.mark.parametrize("instrument_id", list(PUBLISHED_KEYS))
def test_item_count_and_response_range_match_the_spec(instrument_id: str) -> None:
    instrument = CATALOGUE.get(instrument_id)
    assert instrument.items == ITEM_COUNTS[instrument_id]
    assert (instrument.response_min, instrument.response_max) == RESPONSE_RANGES[instrument_id]
    assert list(instrument.item_numbers) == list(range(1, ITEM_COUNTS[instrument_id] + 1))


def test_no_instrument_is_reverse_keyed_in_version_1() -> None:
    assert all(i.reverse_items == () for i in CATALOGUE.instruments())


def test_missing_item_allowances_follow_the_half_rule_for_hads_and_20_percent_elsewhere() -> None:
    actual = {(i.id, s.id): s.max_missing for i in CATALOGUE.instruments() for s in i.subscales}
    assert actual == MAX_MISSING


def test_reliabilities_are_the_published_alphas() -> None:
    actual = {
        (i.id, s.id): s.reliability_alpha for i in CATALOGUE.instruments() for s in i.subscales
    }
    assert actual == ALPHAS


def test_each_subscale_knows_which_direction_is_improvement() -> None:
    actual = {(i.id, s.id): s.improvement for i in CATALOGUE.instruments() for s in i.subscales}
    assert actual == IMPROVEMENT


def test_subscale_ranges_are_item_count_times_the_response_range() -> None:
    # e.g. FSCS self-correction: 13 items x 0..4 = 0..52; SCS: 11 x 1..10 = 11..110.
    assert CATALOGUE.get("fscs").subscale("self_correction").range == (0, 52)
    assert CATALOGUE.get("fscrs").subscale("hated_self").range == (0, 20)
    assert CATALOGUE.get("scs").subscale("total").range == (11, 110)
    assert CATALOGUE.get("diary").subscale("self_compassion").range == (7, 70)


def test_hads_bands_are_normal_borderline_and_case() -> None:
    for sub in CATALOGUE.get("hads").subscales:
        assert sub.bands == (
            Band(min=0, max=7, label="normal"),
            Band(min=8, max=10, label="borderline"),
            Band(min=11, max=21, label="case"),
        )


@pytest.mark.parametrize(
    ("score", "band"),
    [
        (0.0, "normal"),
        (7.0, "normal"),
        (7.49, "normal"),
        (7.5, "borderline"),  # rounded half up to 8 for banding only
        (10.0, "borderline"),
        (10.5, "case"),
        (21.0, "case"),
    ],
)
def test_fractional_scores_are_banded_after_rounding_half_up(score: float, band: str) -> None:
    assert CATALOGUE.get("hads").subscale("anxiety").band_for(score) == band


def test_a_subscale_without_bands_gives_no_band() -> None:
    assert CATALOGUE.get("oas").subscale("total").band_for(40.0) is None


def test_fscrs_item_9_the_self_harm_item_is_in_hated_self() -> None:
    assert 9 in CATALOGUE.get("fscrs").subscale("hated_self").items


def test_an_unknown_instrument_is_refused_by_name() -> None:
    with pytest.raises(UnknownInstrument) as excinfo:
        CATALOGUE.get("phq9")
    assert excinfo.value.instrument_id == "phq9"


def test_an_unknown_version_is_refused_with_id_and_version() -> None:
    with pytest.raises(UnknownInstrumentVersion) as excinfo:
        CATALOGUE.get("hads", "7")
    assert (excinfo.value.instrument_id, excinfo.value.version) == ("hads", "7")


def test_omitting_the_version_gives_the_current_one() -> None:
    assert CATALOGUE.current_version("hads") == "1"
    assert CATALOGUE.get("hads") is CATALOGUE.get("hads", "1")


def test_a_version_2_can_be_added_beside_version_1_without_touching_it() -> None:
    data = _packaged_data()
    hads_v1 = next(i for i in data["instruments"] if i["id"] == "hads")
    hads_v2 = copy.deepcopy(hads_v1)
    hads_v2["version"] = "2"
    hads_v2["subscales"][0]["max_missing"] = 1
    data["instruments"].append(hads_v2)
    data["current_versions"]["hads"] = "2"
    catalogue = load_catalogue(data)
    assert catalogue.get("hads").version == "2"
    assert catalogue.get("hads").subscale("anxiety").max_missing == 1
    assert catalogue.get("hads", "1").subscale("anxiety").max_missing == 3
    assert catalogue.versions("hads") == ("1", "2")


def test_a_data_file_defining_an_instrument_version_twice_is_refused() -> None:
    data = _packaged_data()
    data["instruments"].append(copy.deepcopy(data["instruments"][0]))
    with pytest.raises(ValueError, match="defined twice"):
        load_catalogue(data)


def test_a_data_file_that_leaves_an_item_out_of_every_subscale_is_refused() -> None:
    data = _packaged_data()
    fscrs = next(i for i in data["instruments"] if i["id"] == "fscrs")
    hated_self = fscrs["subscales"][1]
    hated_self["items"].remove(22)
    hated_self["range"] = [0, 16]
    with pytest.raises(ValueError, match=r"items \[22\] are in no subscale"):
        load_catalogue(data)


def test_a_subscale_range_that_does_not_fit_its_items_is_refused() -> None:
    data = _packaged_data()
    data["instruments"][0]["subscales"][0]["range"] = [0, 20]
    with pytest.raises(ValueError, match="range"):
        load_catalogue(data)


def test_a_subscale_without_an_improvement_direction_is_refused() -> None:
    data = _packaged_data()
    del data["instruments"][0]["subscales"][0]["improvement"]
    with pytest.raises(ValueError, match="improvement"):
        load_catalogue(data)


def test_bands_with_a_gap_are_refused() -> None:
    with pytest.raises(ValueError, match="contiguous"):
        Subscale(
            id="s",
            label="S",
            items=(1, 2),
            max_missing=0,
            range=(0, 6),
            reliability_alpha=None,
            bands=(Band(min=0, max=2, label="low"), Band(min=4, max=6, label="high")),
            improvement="decrease",
        )


def test_item_labels_cannot_be_changed_after_loading() -> None:
    diary = CATALOGUE.get("diary")
    assert diary.item_labels["12"] == "self-soothing: how comforting"
    with pytest.raises(TypeError):
        diary.item_labels["12"] = "changed"  # type: ignore[index]


def test_the_public_definition_is_json_ready_and_carries_the_missing_item_rule() -> None:
    public = instrument_to_dict(CATALOGUE.get("fscs"))
    assert set(public) == {
        "id",
        "version",
        "title",
        "citation",
        "items",
        "response_min",
        "response_max",
        "item_count",
        "response_range",
        "anchors",
        "reverse_items",
        "subscales",
        "missing_item_rule",
        "item_labels",
        "free_text",
        "free_text_max_chars",
        "probe",
        "sources",
        "form",
    }
    assert json.loads(json.dumps(public)) == public
    assert public["probe"] == "I get critical and angry with myself:"
    assert (public["item_count"], public["response_range"]) == (21, [0, 4])
    assert str(public["missing_item_rule"]).startswith("A subscale is scored when at most")
    first = public["subscales"][0]  # type: ignore[index]
    assert first == {
        "id": "self_correction",
        "label": "Self-correction",
        "items": [1, 3, 5, 7, 11, 12, 14, 15, 16, 17, 18, 19, 20],
        "max_missing": 2,
        "range": [0, 52],
        "reliability_alpha": 0.92,
        "bands": [],
        "improvement": "decrease",
    }


def test_the_diary_definition_lists_its_free_text_fields_and_labels() -> None:
    public = instrument_to_dict(CATALOGUE.get("diary"))
    assert public["free_text"] == [
        "critical_situations",
        "critical_thoughts",
        "soothing_situations",
        "soothing_thoughts",
    ]
    assert public["free_text_max_chars"] == 4000
    assert len(public["item_labels"]) == 14  # type: ignore[arg-type]


# Typed from spec/instruments.json (FSCS, FSCRS, OAS) and the published scale (SBS: "0 =
# NEVER, 1 = RARELY, 2 = SOMETIMES, 3 = MOSTLY, 4 = ALWAYS", Allan & Gilbert 1997, as
# reproduced at scales.arabpsychology.com/s/the-submissive-behaviour-scale/).
GENERIC_ANCHORS = {
    "fscs": [
        "not at all like me",
        "a little bit like me",
        "moderately like me",
        "quite a bit like me",
        "extremely like me",
    ],
    "fscrs": [
        "not at all like me",
        "a little bit like me",
        "moderately like me",
        "quite a bit like me",
        "extremely like me",
    ],
    "oas": ["never", "seldom", "sometimes", "frequently", "almost always"],
    "sbs": ["never", "rarely", "sometimes", "mostly", "always"],
}


@pytest.mark.parametrize("instrument_id", list(GENERIC_ANCHORS))
def test_generic_anchors_are_the_published_labels_in_score_order(instrument_id: str) -> None:
    assert list(CATALOGUE.get(instrument_id).anchors) == GENERIC_ANCHORS[instrument_id]


def test_anchors_are_a_list_with_one_label_per_score_for_every_instrument() -> None:
    for instrument in CATALOGUE.instruments():
        public = instrument_to_dict(instrument)
        anchors = public["anchors"]
        assert isinstance(anchors, list), instrument.id
        assert len(anchors) == instrument.response_max - instrument.response_min + 1
        assert all(isinstance(a, str) and a for a in anchors)


def test_hads_anchors_state_the_score_and_copy_no_wording() -> None:
    assert list(CATALOGUE.get("hads").anchors) == ["Scored 0", "Scored 1", "Scored 2", "Scored 3"]


def test_a_synthetic_instrument_with_a_reverse_item_outside_its_items_is_refused() -> None:
    with pytest.raises(ValueError, match="reverse_items"):
        Instrument(
            id="x",
            version="1",
            title="X",
            citation="-",
            items=2,
            response_min=0,
            response_max=3,
            reverse_items=(3,),
            subscales=(
                Subscale(
                    id="all",
                    label="All",
                    items=(1, 2),
                    max_missing=0,
                    range=(0, 6),
                    reliability_alpha=None,
                    improvement="decrease",
                ),
            ),
        )


# -- reliable-change reference values (v1.1) ---------------------------------------------------


def test_the_hads_missing_item_rule_cites_bell_fairclough_fiero_and_butow() -> None:
    notes = " ".join(CATALOGUE.get("hads").notes)
    assert "Bell, Fairclough, Fiero & Butow (2016)" in notes
    assert "Butt" not in notes


def test_every_catalogued_alpha_says_it_is_internal_consistency_and_from_which_sample() -> None:
    for instrument in CATALOGUE.instruments():
        for sub in instrument.subscales:
            if sub.reliability_alpha is None:
                assert sub.reliability_kind is None
                continue
            assert sub.reliability_kind == "internal_consistency", (instrument.id, sub.id)
            assert sub.reliability_source, (instrument.id, sub.id)
            assert sub.reliability_sample, (instrument.id, sub.id)


# Test-retest reliabilities as the catalogue quotes them from their sources (Herrmann 1997,
# review of HADS validation data, via ERABI Table 17.27: 0-2 weeks r = .84 anxiety, .85
# depression). A search of the stored public pages, documentation and code for published
# reference SDs (e.g. Crawford, Henry, Crombie & Taylor 2001 for the HADS; Baiao et al. 2015
# for the FSCRS) and for test-retest reliabilities of the FSCS, FSCRS, OAS, SCS and SBS found
# none whose figures could be read and quoted, so no subscale has a published basis and every
# one falls back to the sample.
TEST_RETEST = {("hads", "anxiety"): 0.84, ("hads", "depression"): 0.85}
REFERENCE_SD: dict[tuple[str, str], float] = {}


def _quoted_passages(source: str) -> list[str]:
    """The passages of `source` between single quotes: what was copied from the source read."""
    return source.split("'")[1::2]


def test_published_reference_values_are_the_sourced_ones_and_each_quotes_its_source() -> None:
    test_retest, reference_sd = {}, {}
    for instrument in CATALOGUE.instruments():
        for sub in instrument.subscales:
            where = (instrument.id, sub.id)
            if sub.test_retest is not None:
                test_retest[where] = sub.test_retest
                assert sub.test_retest_source, where
                quoted = _quoted_passages(sub.test_retest_source)
                assert any(str(sub.test_retest) in q for q in quoted), where
                assert sub.test_retest_interval, where
                assert sub.test_retest_sample, where
            if sub.reference_sd is not None:
                reference_sd[where] = sub.reference_sd
                assert sub.reference_sd_source, where
                quoted = _quoted_passages(sub.reference_sd_source)
                assert any(str(sub.reference_sd) in q for q in quoted), where
                assert sub.reference_sd_sample, where
            assert sub.published_reliable_change_basis is None, where
    assert test_retest == TEST_RETEST
    assert reference_sd == REFERENCE_SD


def test_a_reference_value_is_only_taken_as_quoted_when_a_quoted_passage_holds_it() -> None:
    source = "Herrmann (1997), via ERABI: 'at 0-2 weeks (r=0.84)'; elsewhere 0.91"
    assert any("0.84" in q for q in _quoted_passages(source))
    assert not any("0.91" in q for q in _quoted_passages(source))


def _subscale(**fields: Any) -> Subscale:
    base: dict[str, Any] = {
        "id": "all",
        "label": "All",
        "items": (1, 2),
        "max_missing": 0,
        "range": (0, 6),
        "reliability_alpha": 0.8,
        "improvement": "decrease",
    }
    return Subscale(**{**base, **fields})


def test_a_published_basis_needs_both_a_reference_sd_and_a_test_retest_reliability() -> None:
    both = _subscale(
        reference_sd=3.5, reference_sd_source="a", test_retest=0.8, test_retest_source="b"
    )
    assert both.published_reliable_change_basis == (3.5, 0.8)
    assert (
        _subscale(test_retest=0.8, test_retest_source="b").published_reliable_change_basis is None
    )
    assert (
        _subscale(reference_sd=3.5, reference_sd_source="a").published_reliable_change_basis is None
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"reference_sd": 0.0, "reference_sd_source": "a"}, "reference_sd must be positive"),
        ({"reference_sd": 3.0}, "needs its reference_sd_source"),
        ({"test_retest": 1.0, "test_retest_source": "b"}, "test_retest must be in"),
        ({"test_retest": 0.7}, "needs its test_retest_source"),
        ({"reliability_kind": "test_retest"}, "reliability_kind"),
    ],
)
def test_reference_values_without_a_source_or_out_of_range_are_refused(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        _subscale(**fields)


def test_the_loader_reads_the_reference_fields_of_a_subscale() -> None:
    text = resources.files("domain").joinpath("data/instruments.json").read_text("utf-8")
    data = json.loads(text)
    hads = next(i for i in data["instruments"] if i["id"] == "hads")
    hads["subscales"][0].update(
        reference_sd=3.9, reference_sd_source="a source quoting 3.9", reference_sd_sample="s"
    )
    anxiety = load_catalogue(data).get("hads").subscale("anxiety")
    assert anxiety.published_reliable_change_basis == (3.9, 0.84)
    assert anxiety.reference_sd_sample == "s"
    hads["subscales"][0]["reference_sd"] = "3.9"
    with pytest.raises(ValueError, match="wrong type"):
        load_catalogue(data)
