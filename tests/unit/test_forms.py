"""Every instrument is a form; a trial's licensed wording is checked and merged into it.

Expected orders and wording are typed from the spec (spec/instruments.json `anchors`, the
HADS alternation rule) and the study's appendix 2, never derived from the code under test.
Trial wording in these tests is made up ("Worded item 3"): no scale's text is copied.
"""

from __future__ import annotations

import copy
import json
from importlib import resources
from typing import Any

import pytest

from domain import (
    CATALOGUE,
    Form,
    FormItem,
    Instrument,
    InvalidSubmission,
    Option,
    Problem,
    Subscale,
    UnknownInstrument,
    form_for,
    form_to_dict,
    instrument_texts_to_dict,
    instrument_to_dict,
    load_catalogue,
    parse_instrument_texts,
)
from domain.forms import LABEL_MAX_CHARS, TEXT_MAX_CHARS

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
# spec/instruments.json, hads "anchors": "for items 2, 4, 7, 9, 12 and 14 the first printed
# option scores 0, for the others it scores 3".
HADS_ZERO_FIRST = {2, 4, 7, 9, 12, 14}


def _packaged_data() -> dict[str, Any]:
    text = resources.files("domain").joinpath("data/instruments.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _raw(data: dict[str, Any], instrument_id: str) -> dict[str, Any]:
    raw: dict[str, Any] = next(i for i in data["instruments"] if i["id"] == instrument_id)
    return raw


def _problems(excinfo: pytest.ExceptionInfo[InvalidSubmission]) -> set[tuple[Any, ...]]:
    return {(p.loc, p.type) for p in excinfo.value.problems}


# -- the catalogue as forms -----------------------------------------------------------------


@pytest.mark.parametrize("instrument_id", list(ITEM_COUNTS))
def test_every_item_appears_once_with_options_covering_the_response_range_once(
    instrument_id: str,
) -> None:
    form = CATALOGUE.get(instrument_id).form
    numbers = sorted(int(item.link_id) for item in form.choice_items)
    assert numbers == list(range(1, ITEM_COUNTS[instrument_id] + 1))
    low, high = RESPONSE_RANGES[instrument_id]
    for item in form.choice_items:
        assert item.number == int(item.link_id)
        assert sorted(o.score for o in item.options) == list(range(low, high + 1))
        # the code is the score, whatever the printed position
        assert [o.code for o in item.options] == [str(o.score) for o in item.options]


@pytest.mark.parametrize("number", range(1, 15))
def test_hads_options_are_printed_in_the_published_alternating_order(number: int) -> None:
    item = CATALOGUE.get("hads").form.item(str(number))
    assert item is not None
    expected = [0, 1, 2, 3] if number in HADS_ZERO_FIRST else [3, 2, 1, 0]
    assert [o.score for o in item.options] == expected
    assert [o.label for o in item.options] == [f"Scored {s}" for s in expected]


@pytest.mark.parametrize("instrument_id", ["hads", "fscs", "fscrs", "oas", "scs", "sbs"])
def test_without_trial_wording_each_item_of_a_published_scale_reads_item_n(
    instrument_id: str,
) -> None:
    form = CATALOGUE.get(instrument_id).form
    assert [i.text for i in form.items] == [f"Item {n}" for n in range(1, len(form.items) + 1)]
    assert [i.display_order for i in form.items] == list(range(1, len(form.items) + 1))
    assert form.source == "catalogue"
    assert form.copyright is None


def test_verbal_anchors_label_the_options_in_score_order() -> None:
    item = CATALOGUE.get("sbs").form.item("7")
    assert item is not None
    assert [(o.code, o.label) for o in item.options] == [
        ("0", "never"),
        ("1", "rarely"),
        ("2", "sometimes"),
        ("3", "mostly"),
        ("4", "always"),
    ]


def test_the_scs_names_its_unfavourable_pole_at_1_and_favourable_pole_at_10() -> None:
    item = CATALOGUE.get("scs").form.item("4")
    assert item is not None
    labels = [o.label for o in item.options]
    assert labels[0] == "1 (unfavourable pole)"
    assert labels[-1] == "10 (favourable pole)"
    assert labels[1:-1] == [str(n) for n in range(2, 10)]


def test_fscs_and_fscrs_show_their_probe_as_the_stem() -> None:
    assert CATALOGUE.get("fscs").form.stem == "I get critical and angry with myself:"
    assert CATALOGUE.get("fscrs").form.stem == "When things go wrong for me:"
    assert CATALOGUE.get("hads").form.stem is None


def test_the_diary_form_follows_the_study_appendix_in_order_and_wording() -> None:
    form = CATALOGUE.get("diary").form
    # Appendix 2: two free-text questions, then ratings (a)-(g), for each domain.
    assert [i.link_id for i in form.items] == [
        "critical_situations",
        "critical_thoughts",
        *[str(n) for n in range(1, 8)],
        "soothing_situations",
        "soothing_thoughts",
        *[str(n) for n in range(8, 15)],
    ]
    one, six, fourteen = form.item("1"), form.item("6"), form.item("14")
    assert one is not None
    assert six is not None
    assert fourteen is not None
    assert one.text == "How often did you have self-critical thoughts?"
    assert (one.options[0].label, one.options[-1].label) == (
        "1 (Had none)",
        "10 (A lot of the time)",
    )
    assert six.text == "How angry/hostile were your self-critical thoughts?"
    assert six.options[-1].label == "10 (Very harassing)"  # as printed
    assert fourteen.text == "How easy was it to maintain your self-soothing thoughts?"
    assert (fourteen.options[0].label, fourteen.options[-1].label) == (
        "1 (Not at all easy)",
        "10 (Very easy)",
    )
    assert one.stem is not None
    assert one.stem.startswith("Thinking back over the week")
    assert form.choice_orientation == "horizontal"


def test_the_diary_free_text_fields_are_text_items_of_at_most_4000_characters() -> None:
    form = CATALOGUE.get("diary").form
    texts = {i.field: i for i in form.text_items}
    assert set(texts) == {
        "critical_situations",
        "critical_thoughts",
        "soothing_situations",
        "soothing_thoughts",
    }
    assert all(i.type == "text" and i.max_length == 4000 and not i.options for i in texts.values())
    assert texts["critical_situations"].text == "What situations/events brought them about?"
    assert texts["critical_thoughts"].text == "What were your self-critical thoughts and feelings?"


def test_the_public_form_has_one_shape_for_every_item_of_every_instrument() -> None:
    keys = {
        "link_id",
        "type",
        "display_order",
        "number",
        "field",
        "stem",
        "text",
        "options",
        "max_length",
    }
    for instrument in CATALOGUE.instruments():
        public = instrument_to_dict(instrument)["form"]
        assert isinstance(public, dict)
        assert json.loads(json.dumps(public)) == public
        assert set(public) == {
            "instrument",
            "instrument_version",
            "title",
            "source",
            "stem",
            "choice_orientation",
            "copyright",
            "items",
        }
        for item in public["items"]:
            assert set(item) == keys, instrument.id
            for option in item["options"]:
                assert set(option) == {"code", "label", "score"}


def test_an_instrument_defined_without_form_data_gets_ascending_options_and_item_n() -> None:
    instrument = Instrument(
        id="x",
        version="1",
        title="X",
        citation="-",
        items=2,
        response_min=1,
        response_max=3,
        anchors=("low", "mid", "high"),
        subscales=(
            Subscale(
                id="all",
                label="All",
                items=(1, 2),
                max_missing=0,
                range=(2, 6),
                reliability_alpha=None,
                improvement="decrease",
            ),
        ),
    )
    assert [i.text for i in instrument.form.items] == ["Item 1", "Item 2"]
    assert instrument.form.items[0].options == (
        Option(code="1", label="low", score=1),
        Option(code="2", label="mid", score=2),
        Option(code="3", label="high", score=3),
    )


# -- the loader refuses inconsistent form data ------------------------------------------------


def test_an_item_whose_options_miss_a_score_is_refused_at_load() -> None:
    data = _packaged_data()
    _raw(data, "hads")["form"]["option_orders"]["score_3_first"] = [3, 2, 1]
    with pytest.raises(ValueError, match=r"item 1 options score \[3, 2, 1\], not each of"):
        load_catalogue(data)


def test_an_item_whose_options_repeat_a_score_is_refused_at_load() -> None:
    data = _packaged_data()
    _raw(data, "oas")["form"]["option_orders"]["ascending"] = [0, 1, 2, 3, 3, 4]
    with pytest.raises(ValueError, match="option codes must be distinct"):
        load_catalogue(data)


def test_an_item_left_out_of_the_form_is_refused_at_load() -> None:
    data = _packaged_data()
    del _raw(data, "fscrs")["form"]["items"]["9"]
    with pytest.raises(ValueError, match=r"not items 1\.\.22"):
        load_catalogue(data)


def test_an_item_naming_an_unknown_option_order_is_refused_at_load() -> None:
    data = _packaged_data()
    _raw(data, "sbs")["form"]["items"]["3"]["options"] = "descending"
    with pytest.raises(ValueError, match="names no option order"):
        load_catalogue(data)


def test_a_display_order_that_leaves_out_an_item_is_refused_at_load() -> None:
    data = _packaged_data()
    _raw(data, "diary")["form"]["display_order"].remove("critical_thoughts")
    with pytest.raises(ValueError, match="display_order must list every item once"):
        load_catalogue(data)


def test_a_diary_form_without_text_for_a_free_text_field_is_refused_at_load() -> None:
    data = _packaged_data()
    del _raw(data, "diary")["form"]["text_fields"]["soothing_thoughts"]
    with pytest.raises(ValueError, match="no text for fields"):
        load_catalogue(data)


def test_labels_for_codes_an_item_does_not_have_are_refused_at_load() -> None:
    data = _packaged_data()
    _raw(data, "diary")["form"]["items"]["2"]["option_labels"]["11"] = "beyond"
    with pytest.raises(ValueError, match="labels unknown codes"):
        load_catalogue(data)


def test_unknown_form_fields_are_refused_at_load() -> None:
    data = _packaged_data()
    _raw(data, "scs")["form"]["required"] = ["1"]
    with pytest.raises(ValueError, match=r"unknown fields \['required'\]"):
        load_catalogue(data)


def test_a_form_naming_the_same_link_id_twice_is_refused() -> None:
    item = FormItem(
        link_id="1",
        type="choice",
        display_order=1,
        text="Item 1",
        number=1,
        options=(Option(code="0", label="a", score=0), Option(code="1", label="b", score=1)),
    )
    with pytest.raises(ValueError, match="duplicate link_ids"):
        Form(
            instrument_id="x",
            instrument_version="1",
            title="X",
            stem=None,
            choice_orientation="vertical",
            items=(item, FormItem(**{**item.__dict__, "display_order": 2})),
        )


# -- trial wording ----------------------------------------------------------------------------


def _hads_upload() -> dict[str, Any]:
    """Made-up wording for all 14 HADS items, options labelled in score order."""
    return {
        "instrument_version": "1",
        "copyright": "Wording reproduced under licence no. 123 for this trial only.",
        "items": {
            str(n): {
                "text": f"Worded item {n}",
                "options": {str(s): f"Worded option {n}.{s}" for s in range(4)},
            }
            for n in range(1, 15)
        },
    }


def test_trial_wording_replaces_texts_and_labels_but_keeps_order_codes_and_scores() -> None:
    hads = CATALOGUE.get("hads")
    texts = parse_instrument_texts(_hads_upload(), instrument_id="hads")
    form = form_for(hads, texts)
    assert form.source == "trial"
    assert form.copyright == "Wording reproduced under licence no. 123 for this trial only."
    item = form.item("1")
    assert item is not None
    assert item.text == "Worded item 1"
    # item 1 prints the option scoring 3 first; the label follows the code, not the position
    assert [(o.code, o.label, o.score) for o in item.options] == [
        ("3", "Worded option 1.3", 3),
        ("2", "Worded option 1.2", 2),
        ("1", "Worded option 1.1", 1),
        ("0", "Worded option 1.0", 0),
    ]
    assert [i.link_id for i in form.items] == [i.link_id for i in hads.form.items]
    # the catalogue form is untouched
    assert hads.form.item("1") == CATALOGUE.get("hads").form.item("1")
    assert hads.form.items[0].text == "Item 1"


def test_a_bipolar_scale_may_name_only_its_poles() -> None:
    upload = {
        "stem": "Made-up stem:",
        "items": {
            str(n): {"text": f"Pair {n}", "options": {"1": f"Low pole {n}", "10": f"High pole {n}"}}
            for n in range(1, 12)
        },
    }
    form = form_for(CATALOGUE.get("scs"), parse_instrument_texts(upload, instrument_id="scs"))
    item = form.item("2")
    assert item is not None
    assert [o.label for o in item.options] == ["Low pole 2", *map(str, range(2, 10)), "High pole 2"]
    assert form.stem == "Made-up stem:"


def test_a_stem_in_the_wording_replaces_the_probe() -> None:
    upload = {"stem": "Another probe:", "items": {str(n): {"text": f"T{n}"} for n in range(1, 22)}}
    form = form_for(CATALOGUE.get("fscs"), parse_instrument_texts(upload, instrument_id="fscs"))
    assert form.stem == "Another probe:"
    assert form_to_dict(form)["stem"] == "Another probe:"


def test_wording_round_trips_through_its_stored_json() -> None:
    texts = parse_instrument_texts(_hads_upload(), instrument_id="hads")
    stored = json.loads(json.dumps(instrument_texts_to_dict(texts)))
    assert parse_instrument_texts(stored, instrument_id="hads") == texts
    assert dict(parse_instrument_texts(stored, instrument_id="hads").items) == dict(texts.items)


def test_every_problem_of_an_upload_is_reported_at_once() -> None:
    upload = _hads_upload()
    items = upload["items"]
    del items["14"]  # missing
    items["15"] = {"text": "no such item"}
    items["01"] = {"text": "not canonical"}
    items["2"]["options"]["4"] = "no such code"
    items["3"]["text"] = "x" * (TEXT_MAX_CHARS + 1)
    items["4"]["text"] = "   "
    items["5"]["options"]["0"] = 7
    items["6"]["text"] = "two\nlines"
    items["7"]["options"]["1"] = "y" * (LABEL_MAX_CHARS + 1)
    items["8"]["note"] = "unexpected"
    del items["9"]["text"]
    upload["licence"] = "unexpected"
    with pytest.raises(InvalidSubmission) as excinfo:
        parse_instrument_texts(upload, instrument_id="hads")
    assert _problems(excinfo) == {
        (("items", "14"), "missing_item"),
        (("items", "15"), "unknown_item"),
        (("items", "01"), "unknown_item"),
        (("items", "2", "options", "4"), "unknown_option"),
        (("items", "3", "text"), "too_long"),
        (("items", "4", "text"), "empty"),
        (("items", "5", "options", "0"), "not_string"),
        (("items", "6", "text"), "control"),
        (("items", "7", "options", "1"), "too_long"),
        (("items", "8", "note"), "unknown_field"),
        (("items", "9", "text"), "missing"),
        (("licence",), "unknown_field"),
    }


def test_line_breaks_are_allowed_in_the_stem_and_notice_but_no_other_control_characters() -> None:
    upload = _hads_upload()
    upload["stem"] = "First line\nsecond line"
    upload["copyright"] = "Notice\n(c) someone"
    assert parse_instrument_texts(upload, instrument_id="hads").stem == "First line\nsecond line"
    upload["stem"] = "bell\x07"
    with pytest.raises(InvalidSubmission) as excinfo:
        parse_instrument_texts(upload, instrument_id="hads")
    assert _problems(excinfo) == {(("stem",), "control")}


def test_wording_for_an_unknown_version_names_the_version() -> None:
    upload = _hads_upload()
    upload["instrument_version"] = "9"
    upload["items"]["1"]["text"] = ""
    with pytest.raises(InvalidSubmission) as excinfo:
        parse_instrument_texts(upload, instrument_id="hads")
    # items cannot be checked against a version that does not exist
    assert _problems(excinfo) == {(("instrument_version",), "unknown_version")}


def test_wording_for_an_unknown_instrument_is_refused_by_name() -> None:
    with pytest.raises(UnknownInstrument):
        parse_instrument_texts(_hads_upload(), instrument_id="phq9")


def test_an_upload_without_items_is_refused() -> None:
    with pytest.raises(InvalidSubmission) as excinfo:
        parse_instrument_texts({"stem": "s"}, instrument_id="hads")
    assert excinfo.value.problems == (
        Problem(("items",), "items is required: item number -> wording", "not_object"),
    )


def test_wording_of_one_instrument_cannot_be_merged_into_another() -> None:
    texts = parse_instrument_texts(_hads_upload(), instrument_id="hads")
    with pytest.raises(ValueError, match="given for 'sbs'"):
        form_for(CATALOGUE.get("sbs"), texts)


def test_wording_is_checked_against_the_version_it_names() -> None:
    data = _packaged_data()
    hads_v2 = copy.deepcopy(_raw(data, "hads"))
    hads_v2["version"] = "2"
    data["instruments"].append(hads_v2)
    catalogue = load_catalogue(data)
    texts = parse_instrument_texts(
        {**_hads_upload(), "instrument_version": "2"}, instrument_id="hads", catalogue=catalogue
    )
    assert (texts.instrument_id, texts.instrument_version) == ("hads", "2")
    with pytest.raises(ValueError, match="version '2' given for 'hads' version '1'"):
        form_for(catalogue.get("hads", "1"), texts)
