"""FHIR R4: every Questionnaire is valid and renderable, responses round-trip, refusals
are OperationOutcomes naming each bad item.

Resources are validated with fhir.resources' R4B models (R4B's Questionnaire,
QuestionnaireResponse and OperationOutcome differ from R4 only in value-set versions:
hl7.org/fhir/R4B/questionnaire.diff.xml and questionnaireresponse.diff.json). The models
do not check required code bindings or invariants, so the R4 value sets and the
invariants that apply are checked here, typed from the R4 specification (4.0.1). The
LHC-Forms feature list is typed from lforms' r4-support.md.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from domain import (
    CATALOGUE,
    InvalidSubmission,
    Problem,
    QuestionnaireCanonical,
    answer_system,
    fhir_expression,
    form_for,
    operation_outcome,
    operation_outcome_for_status,
    parse_instrument_texts,
    parse_questionnaire_canonical,
    parse_questionnaire_response,
    questionnaire,
    questionnaire_url,
    validate_notes,
    validate_responses,
)

BASE = "https://api.example.org/fhir"
TRIAL = "cmt-pilot"
INSTRUMENTS = ["hads", "fscs", "fscrs", "oas", "scs", "sbs", "diary"]
ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"

# R4 value sets (hl7.org/fhir/R4/valueset-*.html).
R4_ITEM_TYPES = {
    "group",
    "display",
    "boolean",
    "decimal",
    "integer",
    "date",
    "dateTime",
    "time",
    "string",
    "text",
    "url",
    "choice",
    "open-choice",
    "attachment",
    "reference",
    "quantity",
}
R4_PUBLICATION_STATUS = {"draft", "active", "retired", "unknown"}
R4_QR_STATUS = {"in-progress", "completed", "amended", "entered-in-error", "stopped"}
R4_ISSUE_SEVERITY = {"fatal", "error", "warning", "information"}
R4_ISSUE_TYPE = {
    "invalid",
    "structure",
    "required",
    "value",
    "invariant",
    "security",
    "login",
    "unknown",
    "expired",
    "forbidden",
    "suppressed",
    "processing",
    "not-supported",
    "duplicate",
    "multiple-matches",
    "not-found",
    "deleted",
    "too-long",
    "code-invalid",
    "extension",
    "too-costly",
    "business-rule",
    "conflict",
    "transient",
    "lock-error",
    "no-store",
    "exception",
    "timeout",
    "incomplete",
    "throttled",
    "informational",
}
# lforms r4-support.md, "Supported": item-level fields and extensions we may use.
LFORMS_ITEM_FIELDS = {
    "linkId",
    "code",
    "prefix",
    "text",
    "type",
    "enableWhen",
    "enableWhenBehavior",
    "required",
    "repeats",
    "readOnly",
    "maxLength",
    "answerValueSet",
    "answerOption",
    "initial",
    "extension",
}
LFORMS_EXTENSIONS = {
    ORDINAL,
    "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl",
    "http://hl7.org/fhir/StructureDefinition/questionnaire-choiceOrientation",
}
LFORMS_ITEM_CONTROLS = {
    "gtable",
    "table",
    "drop-down",
    "autocomplete",
    "radio-button",
    "check-box",
    "help",
}
# R4 que-10: maxLength only on these types.
R4_MAX_LENGTH_TYPES = {"boolean", "decimal", "integer", "open-choice", "string", "text", "url"}


def assert_r4_questionnaire(resource: dict[str, Any]) -> None:
    """Valid R4, within what LHC-Forms renders."""
    Questionnaire.model_validate(resource)
    assert json.loads(json.dumps(resource)) == resource
    assert resource["status"] in R4_PUBLICATION_STATUS
    assert re.fullmatch(r"[A-Z]([A-Za-z0-9_]){0,254}", resource["name"])  # que-0
    link_ids = [item["linkId"] for item in resource["item"]]
    assert len(set(link_ids)) == len(link_ids)  # que-2
    for item in resource["item"]:
        assert item["type"] in R4_ITEM_TYPES
        assert "item" not in item  # a flat form: no groups
        assert set(item) <= LFORMS_ITEM_FIELDS, set(item) - LFORMS_ITEM_FIELDS
        for extension in item.get("extension", []):
            assert extension["url"] in LFORMS_EXTENSIONS
            if extension["url"].endswith("itemControl"):
                codes = {c["code"] for c in extension["valueCodeableConcept"]["coding"]}
                assert codes <= LFORMS_ITEM_CONTROLS
        if "answerOption" in item:
            assert item["type"] in {"choice", "open-choice"}  # que-4
            for option in item["answerOption"]:
                urls = [e["url"] for e in option["extension"]]
                assert urls == [ORDINAL]
        if item["type"] == "display":
            assert not {"required", "repeats", "answerOption"} & set(item)  # que-6, que-4
        if "maxLength" in item:
            assert item["type"] in R4_MAX_LENGTH_TYPES  # que-10
        # none of the seven instruments requires an item or makes one conditional
        assert "required" not in item
        assert "enableWhen" not in item


def assert_r4_operation_outcome(resource: dict[str, Any]) -> None:
    OperationOutcome.model_validate(resource)
    assert json.loads(json.dumps(resource)) == resource
    assert resource["issue"]
    for issue in resource["issue"]:
        assert issue["severity"] in R4_ISSUE_SEVERITY
        assert issue["code"] in R4_ISSUE_TYPE


def made_up_texts(instrument_id: str) -> dict[str, Any]:
    """Wording for every item and option of an instrument; no scale's text."""
    instrument = CATALOGUE.get(instrument_id)
    return {
        "stem": f"Made-up stem of {instrument_id}:",
        "copyright": "Used under licence for this trial only.",
        "items": {
            item.link_id: {
                "text": f"Worded {instrument_id} item {item.link_id}",
                "options": {o.code: f"Worded option {o.code}" for o in item.options},
            }
            for item in instrument.form.choice_items
        },
    }


def trial_questionnaire(instrument_id: str, *, timepoint: str | None = "week-1") -> dict[str, Any]:
    instrument = CATALOGUE.get(instrument_id)
    texts = parse_instrument_texts(made_up_texts(instrument_id), instrument_id=instrument_id)
    return questionnaire(
        form_for(instrument, texts), base=BASE, trial_id=TRIAL, timepoint=timepoint
    )


def response_from(
    resource: dict[str, Any],
    answers: dict[str, Any],
    *,
    subject: str | None = None,
    authored: str = "2026-11-20T10:15:00.000Z",
) -> dict[str, Any]:
    """A QuestionnaireResponse as LHC-Forms exports one (lforms sdc-export).

    `answers` maps a linkId to a code (choice items: the chosen answerOption's coding,
    with its ordinalValue copied onto the coding) or to text (text items).
    """
    items = []
    for item in resource["item"]:
        if item["linkId"] not in answers:
            continue
        value = answers[item["linkId"]]
        if item["type"] == "choice":
            option = next(o for o in item["answerOption"] if o["valueCoding"]["code"] == value)
            coding = dict(option["valueCoding"])
            coding["extension"] = [
                {"url": ORDINAL, "valueDecimal": option["extension"][0]["valueDecimal"]}
            ]
            answer: dict[str, Any] = {"valueCoding": coding}
        else:
            answer = {"valueString": value}
        items.append({"linkId": item["linkId"], "answer": [answer]})
    qr: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "meta": {"profile": ["http://hl7.org/fhir/4.0/StructureDefinition/QuestionnaireResponse"]},
        "questionnaire": f"{resource['url']}|{resource['version']}",
        "status": "completed",
        "authored": authored,
        "item": items,
    }
    if subject is not None:
        qr["subject"] = {"identifier": {"value": subject}}
    QuestionnaireResponse.model_validate(qr)
    assert qr["status"] in R4_QR_STATUS
    return qr


def hads_response(**answers: Any) -> dict[str, Any]:
    resource = questionnaire(CATALOGUE.get("hads").form, base=BASE, trial_id=TRIAL)
    return response_from(resource, {k.lstrip("_"): v for k, v in answers.items()})


def refusal(qr: object, **kwargs: Any) -> tuple[list[Problem], dict[str, Any]]:
    """The problems and the OperationOutcome of a refused response."""
    with pytest.raises(InvalidSubmission) as excinfo:
        parse_questionnaire_response(qr, base=BASE, trial_id=TRIAL, **kwargs)
    outcome = operation_outcome(excinfo.value.problems)
    assert_r4_operation_outcome(outcome)
    return list(excinfo.value.problems), outcome


def issues_by_expression(outcome: dict[str, Any]) -> dict[str | None, set[str]]:
    found: dict[str | None, set[str]] = {}
    for issue in outcome["issue"]:
        for expression in issue.get("expression", [None]):
            found.setdefault(expression, set()).add(issue["details"]["coding"][0]["code"])
    return found


def item_path(link_id: str) -> str:
    return f"QuestionnaireResponse.item.where(linkId='{link_id}')"


# -- canonical URLs ---------------------------------------------------------------------------


def test_canonical_urls_say_what_the_questionnaire_was_issued_for() -> None:
    assert questionnaire_url(base=BASE, instrument_id="hads") == f"{BASE}/Questionnaire/hads"
    assert (
        questionnaire_url(base=BASE, instrument_id="hads", trial_id=TRIAL)
        == f"{BASE}/trials/cmt-pilot/Questionnaire/hads"
    )
    assert (
        questionnaire_url(base=BASE, instrument_id="hads", trial_id=TRIAL, timepoint="follow-up")
        == f"{BASE}/trials/cmt-pilot/timepoints/follow-up/Questionnaire/hads"
    )


def test_a_canonical_with_version_names_instrument_version_trial_and_timepoint() -> None:
    value = f"{BASE}/trials/cmt-pilot/timepoints/week-12/Questionnaire/sbs|1"
    assert parse_questionnaire_canonical(value, base=BASE) == QuestionnaireCanonical(
        instrument_id="sbs", instrument_version="1", trial_id="cmt-pilot", timepoint="week-12"
    )
    assert parse_questionnaire_canonical(
        f"{BASE}/Questionnaire/sbs", base=BASE
    ) == QuestionnaireCanonical(instrument_id="sbs", instrument_version=None)


@pytest.mark.parametrize(
    "value",
    [
        "http://loinc.org/q/hads|1",
        f"{BASE}x/Questionnaire/hads|1",
        f"{BASE}/Questionnaire/hads/extra|1",
        f"{BASE}/timepoints/week-1/Questionnaire/hads|1",
        f"{BASE}/trials/X/Questionnaire/hads|1",
        f"{BASE}/Questionnaire/hads|1|2",
        f"{BASE}/Questionnaire/hads|",
    ],
)
def test_canonicals_this_deployment_does_not_issue_name_nothing(value: str) -> None:
    assert parse_questionnaire_canonical(value, base=BASE) is None


def test_a_timepoint_is_issued_only_within_a_trial_and_ids_must_fit_the_contract() -> None:
    with pytest.raises(ValueError, match="only within a trial"):
        questionnaire_url(base=BASE, instrument_id="hads", timepoint="week-1")
    with pytest.raises(ValueError, match="trial id"):
        questionnaire_url(base=BASE, instrument_id="hads", trial_id="Pilot Trial")
    with pytest.raises(ValueError, match="canonical base"):
        questionnaire_url(base=BASE + "/", instrument_id="hads")


# -- Questionnaire ------------------------------------------------------------------------------


@pytest.mark.parametrize("instrument_id", INSTRUMENTS)
@pytest.mark.parametrize(
    ("trial_id", "timepoint"), [(None, None), (TRIAL, None), (TRIAL, "week-1")]
)
def test_every_catalogue_questionnaire_is_valid_r4_within_lhc_forms(
    instrument_id: str, trial_id: str | None, timepoint: str | None
) -> None:
    resource = questionnaire(
        CATALOGUE.get(instrument_id).form, base=BASE, trial_id=trial_id, timepoint=timepoint
    )
    assert_r4_questionnaire(resource)
    assert resource["version"] == "1"
    assert "copyright" not in resource


@pytest.mark.parametrize("instrument_id", INSTRUMENTS)
def test_every_questionnaire_with_trial_wording_is_valid_r4_within_lhc_forms(
    instrument_id: str,
) -> None:
    resource = trial_questionnaire(instrument_id)
    assert_r4_questionnaire(resource)
    assert resource["copyright"] == "Used under licence for this trial only."
    assert resource["item"][0] == {
        "linkId": "stem",
        "text": f"Made-up stem of {instrument_id}:",
        "type": "display",
    }
    worded = [i for i in resource["item"] if i["type"] == "choice"]
    assert all(i["text"] == f"Worded {instrument_id} item {i['linkId']}" for i in worded)


def test_a_choice_item_carries_code_label_and_score_of_each_option_in_printed_order() -> None:
    resource = questionnaire(CATALOGUE.get("hads").form, base=BASE)
    item = next(i for i in resource["item"] if i["linkId"] == "1")
    system = f"{BASE}/CodeSystem/hads"
    assert system == answer_system(base=BASE, instrument_id="hads")
    assert item["type"] == "choice"
    assert item["text"] == "Item 1"
    assert item["answerOption"] == [
        {
            "valueCoding": {"system": system, "code": str(s), "display": f"Scored {s}"},
            "extension": [{"url": ORDINAL, "valueDecimal": s}],
        }
        for s in (3, 2, 1, 0)
    ]
    linked = [i["linkId"] for i in resource["item"]]
    assert linked == [str(n) for n in range(1, 15)]


def test_the_diary_questionnaire_has_its_stems_text_items_and_ratings_in_appendix_order() -> None:
    resource = questionnaire(CATALOGUE.get("diary").form, base=BASE)
    assert [(i["linkId"], i["type"]) for i in resource["item"][:5]] == [
        ("stem-critical_situations", "display"),
        ("critical_situations", "text"),
        ("critical_thoughts", "text"),
        ("stem-1", "display"),
        ("1", "choice"),
    ]
    texts = [i for i in resource["item"] if i["type"] == "text"]
    assert [i["maxLength"] for i in texts] == [4000] * 4
    choice = [i for i in resource["item"] if i["type"] == "choice"]
    assert [i["linkId"] for i in choice] == [str(n) for n in range(1, 15)]
    orientation = choice[0]["extension"][1]
    assert orientation["valueCode"] == "horizontal"


def test_trial_wording_is_never_issued_under_the_public_canonical() -> None:
    texts = parse_instrument_texts(made_up_texts("hads"), instrument_id="hads")
    with pytest.raises(ValueError, match="only for its trial"):
        questionnaire(form_for(CATALOGUE.get("hads"), texts), base=BASE)


# -- QuestionnaireResponse -> submission --------------------------------------------------------


@pytest.mark.parametrize("instrument_id", INSTRUMENTS)
def test_a_response_built_from_each_questionnaire_parses_back_to_the_same_responses(
    instrument_id: str,
) -> None:
    instrument = CATALOGUE.get(instrument_id)
    resource = trial_questionnaire(instrument_id)
    low, high = instrument.response_min, instrument.response_max
    chosen = {n: low + (n * 7) % (high - low + 1) for n in instrument.item_numbers}
    skipped = {2, 5}
    answers: dict[str, Any] = {
        str(n): str(score) for n, score in chosen.items() if n not in skipped
    }
    notes = {name: f"note for {name}" for name in instrument.free_text}
    answers.update(notes)
    qr = response_from(resource, answers, subject="P01")
    parsed = parse_questionnaire_response(qr, base=BASE, trial_id=TRIAL, require_subject=True)
    assert dict(parsed.responses) == {
        str(n): None if n in skipped else score for n, score in chosen.items()
    }
    assert (parsed.notes and dict(parsed.notes)) == (notes or None)
    assert (parsed.instrument_id, parsed.instrument_version) == (instrument_id, "1")
    assert (parsed.trial_id, parsed.timepoint) == (TRIAL, "week-1")
    assert parsed.participant_id == "P01"
    assert parsed.completed_at.isoformat() == "2026-11-20T10:15:00+00:00"
    # the same values a native submission would be stored with
    assert validate_responses(instrument, parsed.responses) == {
        n: None if n in skipped else score for n, score in chosen.items()
    }


def test_a_score_may_be_answered_as_value_integer() -> None:
    qr = hads_response(**{"_1": "2"})
    qr["item"].append({"linkId": "2", "answer": [{"valueInteger": 3}]})
    parsed = parse_questionnaire_response(qr, base=BASE, trial_id=TRIAL)
    assert (parsed.responses["1"], parsed.responses["2"], parsed.responses["3"]) == (2, 3, None)


def test_a_response_to_the_catalogue_questionnaire_leaves_trial_and_timepoint_to_the_caller() -> (
    None
):
    resource = questionnaire(CATALOGUE.get("oas").form, base=BASE)
    parsed = parse_questionnaire_response(
        response_from(resource, {"1": "4"}), base=BASE, trial_id=TRIAL
    )
    assert (parsed.trial_id, parsed.timepoint, parsed.participant_id) == (None, None, None)
    assert parsed.responses["1"] == 4


def test_unanswered_stems_and_items_without_answers_are_skipped() -> None:
    qr = hads_response(**{"_1": "1"})
    qr["item"] += [{"linkId": "stem"}, {"linkId": "stem-4", "answer": []}, {"linkId": "2"}]
    parsed = parse_questionnaire_response(qr, base=BASE, trial_id=TRIAL)
    assert parsed.responses["2"] is None


def test_a_canonical_without_version_means_the_current_version_as_natively() -> None:
    qr = hads_response(**{"_1": "1"})
    qr["questionnaire"] = qr["questionnaire"].split("|")[0]
    assert parse_questionnaire_response(qr, base=BASE, trial_id=TRIAL).instrument_version == "1"


def test_authored_with_an_offset_is_kept_with_that_offset() -> None:
    resource = questionnaire(CATALOGUE.get("sbs").form, base=BASE)
    qr = response_from(resource, {"1": "0"}, authored="2026-11-20T10:15:00.1234567+01:00")
    parsed = parse_questionnaire_response(qr, base=BASE, trial_id=TRIAL)
    assert parsed.completed_at.isoformat() == "2026-11-20T10:15:00.123456+01:00"


def test_the_repr_of_a_parsed_diary_never_shows_its_free_text() -> None:
    resource = questionnaire(CATALOGUE.get("diary").form, base=BASE)
    qr = response_from(resource, {"1": "5", "critical_thoughts": "very private words"})
    parsed = parse_questionnaire_response(qr, base=BASE, trial_id=TRIAL)
    assert parsed.notes == {"critical_thoughts": "very private words"}
    assert "very private" not in repr(parsed)


# -- refusals -------------------------------------------------------------------------------------


def test_an_unknown_link_id_is_named_by_its_link_id() -> None:
    qr = hads_response(**{"_1": "1"})
    qr["item"].append({"linkId": "15", "answer": [{"valueInteger": 1}]})
    problems, outcome = refusal(qr)
    assert problems == [
        Problem(("responses", "15"), "unknown item 15: hads has items 1-14", "unknown_item")
    ]
    assert outcome["issue"] == [
        {
            "severity": "error",
            "code": "structure",
            "details": {
                "coding": [{"system": "urn:cmt-collect:problem-type", "code": "unknown_item"}],
                "text": "unknown item 15: hads has items 1-14",
            },
            "expression": [item_path("15")],
        }
    ]


def test_an_out_of_range_code_is_refused_as_out_of_range() -> None:
    qr = hads_response(**{"_3": "2"})
    qr["item"][0]["answer"][0]["valueCoding"] = {"code": "4"}
    _, outcome = refusal(qr)
    assert issues_by_expression(outcome) == {item_path("3"): {"out_of_range"}}


@pytest.mark.parametrize(
    "answer",
    [
        {"valueCoding": {"code": "two"}},
        {"valueCoding": {"code": "2.0"}},
        {"valueInteger": 2.5},
        {"valueInteger": True},
        {"valueString": "2"},
        {"valueDecimal": 2},
        {"valueBoolean": True},
    ],
)
def test_a_non_integer_answer_is_refused_as_not_integer(answer: dict[str, Any]) -> None:
    qr = hads_response(**{"_1": "1"})
    qr["item"].append({"linkId": "5", "answer": [answer]})
    _, outcome = refusal(qr)
    assert issues_by_expression(outcome) == {item_path("5"): {"not_integer"}}


def test_a_wrongly_typed_answer_alone_is_not_also_reported_as_nothing_answered() -> None:
    qr = hads_response()
    qr["item"] = [{"linkId": "5", "answer": [{"valueDecimal": 2}]}]
    _, outcome = refusal(qr)
    assert issues_by_expression(outcome) == {item_path("5"): {"not_integer"}}


@pytest.mark.parametrize(
    ("authored", "problem_type"),
    [
        ("2026-11-20T10:15:00", "timezone_aware"),
        ("2026-11-20T10:15:00.250", "timezone_aware"),
        ("2026-11-20", "datetime_parsing"),
        ("2026-11-20T10:15Z", "datetime_parsing"),
        ("2026-13-20T10:15:00Z", "datetime_parsing"),
        (None, "missing"),
        (20261120, "datetime_type"),
    ],
)
def test_authored_without_time_and_offset_is_refused_at_authored(
    authored: object, problem_type: str
) -> None:
    qr = hads_response(**{"_1": "1"})
    if authored is None:
        del qr["authored"]
    else:
        qr["authored"] = authored
    _, outcome = refusal(qr)
    assert issues_by_expression(outcome) == {"QuestionnaireResponse.authored": {problem_type}}


@pytest.mark.parametrize(
    ("canonical", "problem_type"),
    [
        ("http://loinc.org/Questionnaire/hads|1", "unknown_questionnaire"),
        (f"{BASE}/Questionnaire/phq9|1", "unknown_instrument"),
        (f"{BASE}/Questionnaire/hads|7", "unknown_version"),
        (f"{BASE}/trials/other-trial/Questionnaire/hads|1", "wrong_trial"),
        (None, "missing"),
        ({"reference": "Questionnaire/1"}, "not_string"),
    ],
)
def test_an_unknown_canonical_is_refused_at_questionnaire(
    canonical: object, problem_type: str
) -> None:
    qr = hads_response(**{"_1": "1"})
    if canonical is None:
        del qr["questionnaire"]
    else:
        qr["questionnaire"] = canonical
    _, outcome = refusal(qr)
    assert issues_by_expression(outcome) == {"QuestionnaireResponse.questionnaire": {problem_type}}


def test_every_problem_of_a_response_is_reported_at_once() -> None:
    qr = hads_response(**{"_1": "1", "_2": "2", "_3": "3"})
    qr["status"] = "in-progress"
    qr["authored"] = "2026-11-20T10:15:00"
    qr["subject"] = {"identifier": {"value": "jane@example.org"}}
    qr["item"][0]["answer"][0]["valueCoding"]["code"] = "9"
    qr["item"][1]["answer"][0]["valueCoding"]["extension"][0]["valueDecimal"] = 3
    qr["item"][2]["answer"][0]["valueCoding"]["system"] = "http://loinc.org"
    qr["item"] += [
        {"linkId": "15", "answer": [{"valueInteger": 1}]},
        {"linkId": "4", "answer": [{"valueInteger": 1}, {"valueInteger": 2}]},
        {"linkId": "6", "answer": [{"valueInteger": 1, "valueString": "1"}]},
        {"linkId": "7", "answer": [{}]},
        {"linkId": "8", "item": [{"linkId": "8.1"}]},
        {"linkId": "4", "answer": [{"valueInteger": 1}]},
        {"answer": [{"valueInteger": 1}]},
        {"linkId": "x" * 65},
        {"linkId": "critical_thoughts", "answer": [{"valueString": "hads takes no notes"}]},
    ]
    problems, outcome = refusal(qr)
    assert len(outcome["issue"]) == len(problems) == 15  # item 4 twice
    assert issues_by_expression(outcome) == {
        "QuestionnaireResponse.status": {"not_completed"},
        "QuestionnaireResponse.authored": {"timezone_aware"},
        "QuestionnaireResponse.subject.identifier.value": {"string_pattern_mismatch"},
        item_path("1"): {"out_of_range"},
        item_path("2"): {"score_mismatch"},
        item_path("3"): {"unknown_system"},
        item_path("15"): {"unknown_item"},
        item_path("4"): {"too_many_answers", "duplicate_item"},
        "QuestionnaireResponse.item.where(linkId='6').answer[0]": {"too_many_values"},
        "QuestionnaireResponse.item.where(linkId='7').answer[0]": {"no_value"},
        item_path("8"): {"nested_items"},
        "QuestionnaireResponse.item[9]": {"missing"},
        "QuestionnaireResponse.item[10]": {"unknown_item"},
        item_path("critical_thoughts"): {"unknown_item"},
    }


def test_a_response_answering_nothing_is_refused_at_item() -> None:
    qr = hads_response()
    _, outcome = refusal(qr)
    assert issues_by_expression(outcome) == {"QuestionnaireResponse.item": {"no_items_answered"}}


def test_diary_notes_are_checked_as_natively() -> None:
    resource = questionnaire(CATALOGUE.get("diary").form, base=BASE)
    qr = response_from(resource, {"1": "5", "critical_thoughts": "x" * 4001})
    qr["item"].append({"linkId": "soothing_thoughts", "answer": [{"valueInteger": 3}]})
    problems, outcome = refusal(qr)
    assert issues_by_expression(outcome) == {
        item_path("critical_thoughts"): {"too_long"},
        item_path("soothing_thoughts"): {"not_string"},
    }
    too_long = next(p for p in problems if p.type == "too_long")
    # the same sentence as the native route's
    with pytest.raises(InvalidSubmission) as native:
        validate_notes(CATALOGUE.get("diary"), {"critical_thoughts": "x" * 4001})
    assert too_long == native.value.problems[0]


def test_the_refusals_of_the_native_validation_keep_their_meaning() -> None:
    native = {"3": 4, "15": 1, "5": "x", "1": 2}
    with pytest.raises(InvalidSubmission) as expected:
        validate_responses(CATALOGUE.get("hads"), native)
    qr = hads_response(**{"_1": "2"})
    qr["item"] += [
        {"linkId": "3", "answer": [{"valueCoding": {"code": "4"}}]},
        {"linkId": "15", "answer": [{"valueInteger": 1}]},
        {"linkId": "5", "answer": [{"valueCoding": {"code": "x"}}]},
    ]
    problems, _ = refusal(qr)
    assert sorted(problems, key=str) == sorted(expected.value.problems, key=str)


def test_a_subject_is_required_only_when_asked_for() -> None:
    qr = hads_response(**{"_1": "1"})
    assert parse_questionnaire_response(qr, base=BASE, trial_id=TRIAL).participant_id is None
    _, outcome = refusal(qr, require_subject=True)
    assert issues_by_expression(outcome) == {
        "QuestionnaireResponse.subject.identifier.value": {"missing"}
    }


def test_a_resource_that_is_not_a_questionnaire_response_is_refused_alone() -> None:
    problems, outcome = refusal({"resourceType": "Observation", "status": "final"})
    assert [p.type for p in problems] == ["wrong_resource_type"]
    assert "expression" not in outcome["issue"][0]
    problems, _ = refusal(["not", "an", "object"])
    assert [p.type for p in problems] == ["not_object"]


# -- OperationOutcome --------------------------------------------------------------------------


def test_problems_of_the_submission_service_name_the_element_that_carries_the_field() -> None:
    outcome = operation_outcome(
        [
            Problem(("body", "completed_at"), "completed_at is in the future", "in_future"),
            Problem(("body", "participant_id"), "participant P09 is withdrawn", "withdrawn"),
            Problem(("body", "timepoint"), "not scheduled at week-2", "not_scheduled"),
            Problem(("body", "responses", "3"), "item 3 must be ...", "out_of_range"),
            Problem(("body", "notes", "critical_thoughts"), "too long", "too_long"),
            Problem(("body", "supersedes"), "nothing to correct", "nothing_to_supersede"),
        ]
    )
    assert_r4_operation_outcome(outcome)
    assert [i.get("expression") for i in outcome["issue"]] == [
        ["QuestionnaireResponse.authored"],
        ["QuestionnaireResponse.subject.identifier.value"],
        ["QuestionnaireResponse.questionnaire"],
        [item_path("3")],
        [item_path("critical_thoughts")],
        None,
    ]
    assert [i["code"] for i in outcome["issue"]] == [
        "business-rule",
        "business-rule",
        "business-rule",
        "value",
        "too-long",
        "business-rule",
    ]


def test_fhirpath_string_literals_escape_quotes_and_control_characters() -> None:
    assert fhir_expression(("item", "a'b\\c\n")) == (
        "QuestionnaireResponse.item.where(linkId='a\\'b\\\\c\\u000a')"
    )
    assert fhir_expression(("item", 3, "answer", 0)) == "QuestionnaireResponse.item[3].answer[0]"
    assert fhir_expression(()) is None
    assert fhir_expression(("resourceType",)) is None


@pytest.mark.parametrize(
    ("status", "code"),
    [(401, "login"), (403, "forbidden"), (404, "not-found"), (409, "conflict"), (429, "throttled")],
)
def test_refusals_without_a_field_are_operation_outcomes_by_status(status: int, code: str) -> None:
    outcome = operation_outcome_for_status(status, "a sentence")
    assert_r4_operation_outcome(outcome)
    assert outcome["issue"] == [
        {"severity": "error", "code": code, "details": {"text": "a sentence"}}
    ]


def test_an_operation_outcome_needs_a_problem() -> None:
    with pytest.raises(ValueError, match="at least one problem"):
        operation_outcome([])
