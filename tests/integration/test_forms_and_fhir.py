"""Forms and FHIR over HTTP (API.md v1.1, "Forms and FHIR").

The catalogue describes every instrument as a form in one shape; a trial's licensed wording
is served only to that trial ("Item N" everywhere else); each scheduled instrument is a FHIR
R4 Questionnaire, and a QuestionnaireResponse to it is stored as an ordinary submission
(same validation, idempotency, 201 body, stream), refused as an OperationOutcome naming each
bad item by linkId.

Every resource the API answers is validated with fhir.resources' R4B models (8.3.0, pinned
in the dev extra; R4B's Questionnaire, QuestionnaireResponse and OperationOutcome differ
from R4 only in value-set versions), independently of `domain.fhir`, which uses no FHIR
library.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from conftest import (
    HADS_EXAMPLE,
    World,
    access_code,
    assert_problem,
    bearer,
    make_trial,
    submission,
)
from handlers.settings import DEFAULT_FHIR_BASE

TRIAL, OTHER = "cmt-pilot", "other-trial"
INSTRUMENTS = ("hads", "fscs", "fscrs", "oas", "scs", "sbs", "diary")
FHIR_JSON = "application/fhir+json"
ORDINAL = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
FORM_ITEM_KEYS = {
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


def token_for(world: World, coordinator: dict[str, str], trial_id: str, pid: str) -> dict[str, str]:
    code = access_code(world.client, coordinator, trial_id, pid)
    r = world.client.post("/v1/access/exchange", json={"code": code})
    assert r.status_code == 201, r.text
    return bearer(r.json()["participant_token"])


def fhir_resource(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == FHIR_JSON
    body: dict[str, Any] = response.json()
    return body


def outcome(response: Any, status: int) -> dict[str, Any]:
    """A refusal of the FHIR route: a valid R4 OperationOutcome, nothing internal in it."""
    body = fhir_resource(response, status)
    OperationOutcome.model_validate(body)
    assert body["resourceType"] == "OperationOutcome"
    for internal in ("Traceback", "botocore", "pydantic"):
        assert internal not in response.text
    return body


def response_to(
    questionnaire: dict[str, Any], answers: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """A QuestionnaireResponse as LHC-Forms exports one: each answer the chosen answerOption's
    valueCoding, the questionnaire named by url|version."""
    items = []
    for item in questionnaire["item"]:
        if item["linkId"] not in answers:
            continue
        value = answers[item["linkId"]]
        if item["type"] == "choice":
            (coding,) = [
                o["valueCoding"]
                for o in item["answerOption"]
                if o["valueCoding"]["code"] == str(value)
            ]
            items.append({"linkId": item["linkId"], "answer": [{"valueCoding": coding}]})
        else:
            items.append({"linkId": item["linkId"], "answer": [{"valueString": value}]})
    body = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{questionnaire['url']}|{questionnaire['version']}",
        "status": "completed",
        "authored": "2026-11-26T09:00:00Z",
        "item": items,
    }
    body.update(extra)
    QuestionnaireResponse.model_validate(body)  # what we send is valid R4 too
    return body


FHIR_ROUTE = f"/v1/trials/{TRIAL}/fhir/QuestionnaireResponse"


# -- the catalogue as forms ------------------------------------------------------------------


def test_the_catalogue_describes_all_seven_instruments_as_forms_in_one_shape(world: World) -> None:
    instruments = world.client.get("/v1/instruments").json()["instruments"]
    assert [i["id"] for i in instruments] == list(INSTRUMENTS)
    for instrument in instruments:
        form = instrument["form"]
        assert form["source"] == "catalogue"
        orders = [item["display_order"] for item in form["items"]]
        assert orders == sorted(orders) == list(range(1, len(orders) + 1)), instrument["id"]
        choices = [item for item in form["items"] if item["type"] == "choice"]
        assert len(choices) == instrument["item_count"], instrument["id"]
        for item in form["items"]:
            assert set(item) == FORM_ITEM_KEYS, (instrument["id"], item)
        for item in choices:
            if instrument["id"] == "diary":
                # the diary's wording is the pilot study's own, printed in its appendix 2
                assert item["text"]
                assert item["text"] != f"Item {item['number']}"
            else:
                # no wording of a licensed scale is shipped
                assert item["text"] == f"Item {item['number']}"
            assert item["link_id"] == str(item["number"])
            codes = [o["code"] for o in item["options"]]
            low, high = instrument["response_range"]
            assert sorted(int(c) for c in codes) == list(range(low, high + 1)), item
            for option in item["options"]:
                assert option["code"] == str(option["score"]), option
                assert isinstance(option["label"], str), option
                assert option["label"], option
    hads = next(i for i in instruments if i["id"] == "hads")
    # HADS options are item-specific: item 1 is printed from 3 down, item 2 from 0 up
    first, second = hads["form"]["items"][0], hads["form"]["items"][1]
    assert [o["code"] for o in first["options"]] == ["3", "2", "1", "0"]
    assert [o["code"] for o in second["options"]] == ["0", "1", "2", "3"]
    diary = next(i for i in instruments if i["id"] == "diary")
    texts = [item for item in diary["form"]["items"] if item["type"] == "text"]
    assert {item["field"] for item in texts} == {
        "critical_situations",
        "critical_thoughts",
        "soothing_situations",
        "soothing_thoughts",
    }
    assert all(item["max_length"] == 4000 for item in texts)


# -- a trial's own wording -------------------------------------------------------------------


def wording(n_items: int, prefix: str = "Licensed wording of item") -> dict[str, Any]:
    return {
        "copyright": "Reproduced under licence (test)",
        "items": {str(n): {"text": f"{prefix} {n}"} for n in range(1, n_items + 1)},
    }


def test_a_trials_wording_is_served_only_to_that_trial(world: World) -> None:
    own = make_trial(world.client, world.container, TRIAL, participants=("P01",))
    other = make_trial(world.client, world.container, OTHER, participants=("P01",))
    url = f"/v1/trials/{TRIAL}/instrument-texts/hads"

    r = world.client.put(url, headers=own.admin, json=wording(14))
    assert r.status_code == 201, r.text
    stored = r.json()
    assert (stored["instrument"], stored["instrument_version"]) == ("hads", "1")
    assert stored["form"]["source"] == "trial"
    assert stored["form"]["items"][0]["text"] == "Licensed wording of item 1"
    r = world.client.put(url, headers=own.admin, json=wording(14, "Revised item"))
    assert r.status_code == 200, r.text

    q = fhir_resource(
        world.client.get(f"/v1/trials/{TRIAL}/questionnaires/hads", headers=own.submitter), 200
    )
    Questionnaire.model_validate(q)
    texts = {i["linkId"]: i["text"] for i in q["item"] if i["type"] == "choice"}
    assert texts["1"] == "Revised item 1"
    assert q["copyright"] == "Reproduced under licence (test)"
    assert q["url"] == f"{DEFAULT_FHIR_BASE}/trials/{TRIAL}/Questionnaire/hads"
    token = token_for(world, own.coordinator, TRIAL, "P01")
    mine = fhir_resource(world.client.get("/v1/me/questionnaires/hads", headers=token), 200)
    assert {i["linkId"]: i["text"] for i in mine["item"] if i["type"] == "choice"} == texts

    # nowhere else: another trial, the public catalogue
    q = fhir_resource(
        world.client.get(f"/v1/trials/{OTHER}/questionnaires/hads", headers=other.coordinator),
        200,
    )
    assert {i["text"] for i in q["item"] if i["type"] == "choice"} == {
        f"Item {n}" for n in range(1, 15)
    }
    assert "copyright" not in q
    public = world.client.get("/v1/instruments/hads").text
    assert "Revised item" not in public
    assert "licence" not in public


def test_an_upload_missing_items_is_refused_naming_each_one_and_nothing_is_stored(
    world: World,
) -> None:
    own = make_trial(world.client, world.container, TRIAL, participants=())
    body = wording(12)
    body["items"]["99"] = {"text": "no such item"}
    r = world.client.put(f"/v1/trials/{TRIAL}/instrument-texts/hads", headers=own.admin, json=body)
    problem = assert_problem(r, 422)
    locs = [tuple(e["loc"]) for e in problem["errors"]]
    assert ("body", "items", "13") in locs
    assert ("body", "items", "14") in locs
    assert ("body", "items", "99") in locs
    q = world.client.get(f"/v1/trials/{TRIAL}/questionnaires/hads", headers=own.coordinator)
    assert {i["text"] for i in q.json()["item"] if i["type"] == "choice"} == {
        f"Item {n}" for n in range(1, 15)
    }
    r = world.client.put(
        f"/v1/trials/{TRIAL}/instrument-texts/nothing", headers=own.admin, json=wording(1)
    )
    assert_problem(r, 404)


# -- Questionnaires --------------------------------------------------------------------------


def test_every_scheduled_instrument_is_a_valid_fhir_r4_questionnaire(world: World) -> None:
    own = make_trial(world.client, world.container, TRIAL, participants=())
    catalogue = {i["id"]: i for i in world.client.get("/v1/instruments").json()["instruments"]}
    for instrument_id in INSTRUMENTS:
        r = world.client.get(
            f"/v1/trials/{TRIAL}/questionnaires/{instrument_id}",
            headers=own.submitter,
            params={"timepoint": "week-12"},
        )
        q = fhir_resource(r, 200)
        Questionnaire.model_validate(q)
        assert q["resourceType"] == "Questionnaire"
        assert q["url"] == (
            f"{DEFAULT_FHIR_BASE}/trials/{TRIAL}/timepoints/week-12/Questionnaire/{instrument_id}"
        )
        assert q["version"] == catalogue[instrument_id]["version"]
        choices = [i for i in q["item"] if i["type"] == "choice"]
        assert [i["linkId"] for i in choices] == [
            str(n) for n in range(1, catalogue[instrument_id]["item_count"] + 1)
        ]
        form_items = {i["link_id"]: i for i in catalogue[instrument_id]["form"]["items"]}
        for item in choices:
            options = item["answerOption"]
            assert [o["valueCoding"]["code"] for o in options] == [
                o["code"] for o in form_items[item["linkId"]]["options"]
            ]
            for option in options:
                (ordinal,) = [e for e in option["extension"] if e["url"] == ORDINAL]
                assert ordinal["valueDecimal"] == int(option["valueCoding"]["code"])
                assert option["valueCoding"]["display"]
        # nothing in these instruments is conditional or compulsory
        assert not [i for i in q["item"] if i.get("required") or i.get("enableWhen")]


def test_a_questionnaire_is_only_for_an_instrument_and_timepoint_the_trial_schedules(
    world: World,
) -> None:
    own = make_trial(world.client, world.container, TRIAL, participants=())
    r = world.client.get(
        f"/v1/trials/{TRIAL}/questionnaires/hads",
        headers=own.coordinator,
        params={"timepoint": "week-5"},
    )
    assert [e["loc"] for e in assert_problem(r, 422)["errors"]] == [["query", "timepoint"]]
    r = world.client.get(f"/v1/trials/{TRIAL}/questionnaires/nothing", headers=own.coordinator)
    assert_problem(r, 404)


def test_a_participants_questionnaire_is_issued_for_the_timepoint_due_now(world: World) -> None:
    own = make_trial(world.client, world.container, TRIAL, participants=("P01",))
    token = token_for(world, own.coordinator, TRIAL, "P01")
    q = fhir_resource(world.client.get("/v1/me/questionnaires/diary", headers=token), 200)
    Questionnaire.model_validate(q)
    assert q["url"].endswith(f"/trials/{TRIAL}/timepoints/week-1/Questionnaire/diary")


# -- QuestionnaireResponses ------------------------------------------------------------------


def test_a_questionnaire_response_is_stored_scored_and_replayed_as_a_submission(
    world: World,
) -> None:
    own = make_trial(world.client, world.container, TRIAL, participants=("P01", "P02"))
    token = token_for(world, own.coordinator, TRIAL, "P01")
    q = fhir_resource(world.client.get("/v1/me/questionnaires/hads", headers=token), 200)
    body = response_to(q, HADS_EXAMPLE)
    headers = {**token, "Content-Type": FHIR_JSON, "Idempotency-Key": "qr-1"}

    r = world.client.post(FHIR_ROUTE, headers=headers, json=body)
    assert r.status_code == 201, r.text
    accepted = r.json()
    assert set(accepted) == {"submission_id", "received_at", "status"}
    assert accepted["status"] == "accepted"
    # the same key and body replay the first answer; nothing is stored twice
    again = world.client.post(FHIR_ROUTE, headers=headers, json=body)
    assert again.status_code in (200, 201), again.text
    assert again.json()["submission_id"] == accepted["submission_id"]
    (stored,) = world.stores.submissions.list_for_trial(TRIAL)
    assert (stored.participant_id, stored.instrument, stored.timepoint) == (
        "P01",
        "hads",
        "week-1",
    )
    # the same key with another body is 409, as an OperationOutcome
    changed = response_to(q, {**HADS_EXAMPLE, "1": 0})
    conflict = outcome(world.client.post(FHIR_ROUTE, headers=headers, json=changed), 409)
    assert conflict["issue"][0]["code"] == "conflict"

    # through the stream: scored exactly as the same answers sent natively
    world.pump.drain()
    native = world.client.post(
        f"/v1/trials/{TRIAL}/submissions", headers=own.submitter, json=submission("P02")
    )
    assert native.status_code == 201, native.text
    world.pump.drain()

    def scores(pid: str) -> Any:
        r = world.client.get(
            f"/v1/trials/{TRIAL}/participants/{pid}/scores", headers=own.coordinator
        )
        assert r.status_code == 200, r.text
        (timepoint,) = r.json()["timepoints"]
        (scored,) = timepoint["submissions"]
        return timepoint["timepoint"], scored

    (fhir_at, fhir_scored), (native_at, native_scored) = scores("P01"), scores("P02")
    assert fhir_scored["submission_id"] == accepted["submission_id"]
    assert fhir_at == native_at == "week-1"
    assert fhir_scored["scores"] == native_scored["scores"]
    assert fhir_scored["completed_at"].startswith("2026-11-26T09:00:00")


def test_bad_answers_are_one_operation_outcome_naming_each_linkid_and_nothing_is_stored(
    world: World,
) -> None:
    own = make_trial(world.client, world.container, TRIAL, participants=("P01",))
    token = token_for(world, own.coordinator, TRIAL, "P01")
    q = fhir_resource(world.client.get("/v1/me/questionnaires/hads", headers=token), 200)
    body = response_to(q, HADS_EXAMPLE)
    body["item"][2] = {"linkId": "3", "answer": [{"valueInteger": 7}]}  # out of range
    body["item"][4] = {"linkId": "5", "answer": [{"valueString": "often"}]}  # not a score
    body["item"].append({"linkId": "15", "answer": [{"valueInteger": 1}]})  # no such item

    refused = outcome(world.client.post(FHIR_ROUTE, headers=token, json=body), 422)
    expressions = {e for issue in refused["issue"] for e in issue.get("expression", [])}
    assert {
        "QuestionnaireResponse.item.where(linkId='3')",
        "QuestionnaireResponse.item.where(linkId='5')",
        "QuestionnaireResponse.item.where(linkId='15')",
    } <= expressions
    assert all(issue["severity"] == "error" for issue in refused["issue"])
    assert world.stores.submissions.list_for_trial(TRIAL) == []

    # the native route refuses the same answers with the same fields
    native = world.client.post(
        f"/v1/trials/{TRIAL}/submissions",
        headers=token,
        json=submission("P01", responses={**HADS_EXAMPLE, "3": 7, "5": "often", "15": 1}),
    )
    assert {tuple(e["loc"]) for e in assert_problem(native, 422)["errors"]} >= {
        ("body", "responses", "3"),
        ("body", "responses", "5"),
        ("body", "responses", "15"),
    }


def test_a_token_answers_only_for_its_own_participant_and_a_key_names_its_participant(
    world: World,
) -> None:
    own = make_trial(world.client, world.container, TRIAL, participants=("P01", "P02"))
    token = token_for(world, own.coordinator, TRIAL, "P01")
    q = fhir_resource(world.client.get("/v1/me/questionnaires/hads", headers=token), 200)

    someone_else = response_to(q, HADS_EXAMPLE, subject={"identifier": {"value": "P02"}})
    forbidden = outcome(world.client.post(FHIR_ROUTE, headers=token, json=someone_else), 403)
    assert forbidden["issue"][0]["code"] == "forbidden"

    # a key: the participant is the subject's, which a key must give
    keyed = response_to(q, HADS_EXAMPLE, subject={"identifier": {"value": "P02"}})
    r = world.client.post(FHIR_ROUTE, headers=own.submitter, json=keyed)
    assert r.status_code == 201, r.text
    anonymous = response_to(q, HADS_EXAMPLE)
    refused = outcome(world.client.post(FHIR_ROUTE, headers=own.submitter, json=anonymous), 422)
    assert "QuestionnaireResponse.subject.identifier.value" in {
        e for issue in refused["issue"] for e in issue.get("expression", [])
    }
    # no credential: 401, still an OperationOutcome
    assert outcome(world.client.post(FHIR_ROUTE, json=anonymous), 401)["issue"][0]["code"] == (
        "login"
    )


def test_a_response_without_a_timepoint_takes_the_one_due_now_and_none_due_is_422(
    world: World,
) -> None:
    own = make_trial(world.client, world.container, TRIAL, participants=("P01",))
    token = token_for(world, own.coordinator, TRIAL, "P01")
    q = fhir_resource(
        world.client.get(f"/v1/trials/{TRIAL}/questionnaires/diary", headers=own.coordinator),
        200,
    )
    assert "/timepoints/" not in q["url"]
    diary = {str(n): 1 for n in range(1, 4)}
    r = world.client.post(FHIR_ROUTE, headers=token, json=response_to(q, diary))
    assert r.status_code == 201, r.text
    (stored,) = world.stores.submissions.list_for_trial(TRIAL)
    assert stored.timepoint == "week-1"

    # between windows nothing of the hads is due: the response must say its timepoint
    world.clock.advance(timedelta(days=10))
    hads = fhir_resource(
        world.client.get(f"/v1/trials/{TRIAL}/questionnaires/hads", headers=own.coordinator),
        200,
    )
    refused = outcome(
        world.client.post(FHIR_ROUTE, headers=token, json=response_to(hads, HADS_EXAMPLE)), 422
    )
    assert refused["issue"][0]["expression"] == ["QuestionnaireResponse.questionnaire"]
    # a key always says the timepoint through the Questionnaire it answers
    keyed = response_to(q, diary, subject={"identifier": {"value": "P01"}})
    assert outcome(world.client.post(FHIR_ROUTE, headers=own.submitter, json=keyed), 422)
