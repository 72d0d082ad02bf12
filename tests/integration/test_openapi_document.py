"""The OpenAPI document describes every answer the routes give, and the answers did not change.

Every 2xx answer has a named schema; every refusal is declared as it is sent, the `Problem`
schema under application/problem+json; operation ids are the route names; every request model
carries an example body. The response models describe what the services return: each answer
is, byte for byte, what the route sent when it returned the service's dict unmodelled.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel, TypeAdapter

from conftest import World, make_trial, settings_for_tests, submission
from domain.instruments import CATALOGUE, instrument_to_dict
from handlers import schemas
from handlers.api_app import create_app
from handlers.wiring import build
from services.clock import iso

PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
REF = "#/components/schemas/"

OPERATION_IDS = {
    ("get", "/v1/health"): "get_health",
    ("get", "/v1/instruments"): "list_instruments",
    ("get", "/v1/instruments/{instrument_id}"): "get_instrument",
    ("put", "/v1/trials/{trial_id}"): "put_trial",
    ("patch", "/v1/trials/{trial_id}"): "patch_trial",
    ("get", "/v1/trials/{trial_id}"): "get_trial",
    ("post", "/v1/trials/{trial_id}/api-keys"): "create_api_key",
    ("get", "/v1/trials/{trial_id}/api-keys"): "list_api_keys",
    ("delete", "/v1/trials/{trial_id}/api-keys/{key_id}"): "revoke_api_key",
    ("post", "/v1/trials/{trial_id}/participants"): "enrol_participant",
    ("get", "/v1/trials/{trial_id}/participants"): "list_participants",
    ("patch", "/v1/trials/{trial_id}/participants/{participant_id}"): "update_participant",
    ("delete", "/v1/trials/{trial_id}/participants/{participant_id}"): "erase_participant",
    ("post", "/v1/trials/{trial_id}/submissions"): "create_submission",
    (
        "get",
        "/v1/trials/{trial_id}/participants/{participant_id}/scores",
    ): "get_participant_scores",
    ("get", "/v1/trials/{trial_id}/summary"): "get_summary",
    ("post", "/v1/trials/{trial_id}/reports/pre-post"): "publish_prepost_report",
    ("get", "/v1/trials/{trial_id}/reports/pre-post"): "get_prepost_report",
    ("get", "/v1/trials/{trial_id}/reports/pre-post/jobs/{job_id}"): "get_report_job",
    ("get", "/v1/trials/{trial_id}/export.csv"): "export_csv",
    ("post", "/v1/trials/{trial_id}/exports"): "request_export",
    ("get", "/v1/trials/{trial_id}/exports"): "list_exports",
    ("get", "/v1/trials/{trial_id}/exports/{export_id}"): "get_export",
    ("get", "/v1/trials/{trial_id}/codebook"): "get_codebook",
    ("get", "/v1/trials/{trial_id}/alerts"): "list_alerts",
    ("get", "/v1/trials/{trial_id}/audit"): "list_audit_events",
    # v1.1: participant access, forms and FHIR
    (
        "post",
        "/v1/trials/{trial_id}/participants/{participant_id}/access-codes",
    ): "create_access_code",
    (
        "delete",
        "/v1/trials/{trial_id}/participants/{participant_id}/tokens",
    ): "revoke_participant_tokens",
    ("post", "/v1/access/exchange"): "exchange_access_code",
    ("get", "/v1/me"): "get_me",
    ("delete", "/v1/me/token"): "end_my_token",
    ("get", "/v1/me/questionnaires/{instrument_id}"): "get_my_questionnaire",
    ("put", "/v1/trials/{trial_id}/instrument-texts/{instrument_id}"): "put_instrument_texts",
    ("get", "/v1/trials/{trial_id}/questionnaires/{instrument_id}"): "get_trial_questionnaire",
    (
        "post",
        "/v1/trials/{trial_id}/fhir/QuestionnaireResponse",
    ): "post_questionnaire_response",
}
#: The FHIR route refuses with OperationOutcomes (API.md v1.1, "Forms and FHIR").
FHIR_ROUTE = ("post", "/v1/trials/{trial_id}/fhir/QuestionnaireResponse")
OUTCOME_CONTENT = {
    "application/fhir+json": {"schema": {"$ref": "#/components/schemas/OperationOutcome"}}
}
#: The one route without a key that still refuses with 401 (a wrong code) and 429 (guessing).
EXCHANGE_ROUTE = ("post", "/v1/access/exchange")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The document as served at /openapi.json (building the app calls no AWS service)."""
    r = TestClient(create_app(build(settings_for_tests()))).get("/openapi.json")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]


def component(document: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith(REF), ref
    found: dict[str, Any] = document["components"]["schemas"][ref.removeprefix(REF)]
    return found


# -- the document -------------------------------------------------------------------------


def test_every_success_answer_has_a_named_schema(document):
    seen = 0
    for method, path, operation in operations(document):
        successes = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        assert successes, (method, path)
        for status, response in successes.items():
            assert response.get("content"), (method, path, status)
            for media_type, content in response["content"].items():
                ref = content["schema"].get("$ref", "")
                assert ref.startswith(REF), (method, path, status, media_type, content)
                assert component(document, ref)
                seen += 1
    assert seen >= len(OPERATION_IDS)


def test_every_refusal_is_the_problem_schema_under_problem_json_only(document):
    declared = 0
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                content = OUTCOME_CONTENT if (method, path) == FHIR_ROUTE else PROBLEM_CONTENT
                assert response["content"] == content, (method, path, status)
                assert response["description"], (method, path, status)
                declared += 1
    assert declared > 5 * len(OPERATION_IDS)
    assert not {"HTTPValidationError", "ValidationError"} & set(document["components"]["schemas"])


def test_each_route_documents_the_refusals_it_can_answer(document):
    for method, path, operation in operations(document):
        statuses = set(operation["responses"])
        assert {"405", "500"} <= statuses, (method, path)
        if operation.get("security"):
            assert {"401", "403", "429"} <= statuses, (method, path)
        elif (method, path) == EXCHANGE_ROUTE:
            assert {"401", "429"} <= statuses, (method, path)
            assert "403" not in statuses
        else:
            assert not {"401", "403", "429"} & statuses, (method, path)
        if "requestBody" in operation:
            assert {"413", "422"} <= statuses, (method, path)
        if "{trial_id}" in path:
            assert "422" in statuses, (method, path)
        if "{trial_id}" in path and method != "put":
            assert "404" in statuses, (method, path)
    conflicts = {(m, p) for m, p, op in operations(document) if "409" in op["responses"]}
    assert conflicts == {
        ("post", "/v1/trials/{trial_id}/participants"),
        ("post", "/v1/trials/{trial_id}/submissions"),
        FHIR_ROUTE,
    }


def test_a_429_documents_retry_after_and_a_401_the_bearer_challenge(document):
    keyed = [op for _, _, op in operations(document) if op.get("security")]
    keyed.append(document["paths"][EXCHANGE_ROUTE[1]][EXCHANGE_ROUTE[0]])
    assert keyed
    for operation in keyed:
        retry = operation["responses"]["429"]["headers"]["Retry-After"]
        assert retry["schema"] == {"type": "integer", "minimum": 1}
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"]
    for _, _, operation in operations(document):
        assert "Allow" in operation["responses"]["405"]["headers"]


def test_the_problem_schema_types_each_field_error(document):
    problem = component(document, REF + "Problem")
    assert problem["required"] == ["type", "title", "status", "detail"]
    errors = problem["properties"]["errors"]["anyOf"]
    assert {"type": "null"} in errors
    (array,) = [branch for branch in errors if branch.get("type") == "array"]
    field_error = component(document, array["items"]["$ref"])
    assert field_error["required"] == ["loc", "msg", "type"]
    assert field_error["properties"]["loc"]["items"] == {
        "anyOf": [{"type": "string"}, {"type": "integer"}]
    }
    assert field_error["properties"]["msg"]["type"] == "string"
    assert field_error["properties"]["type"]["type"] == "string"


def test_operation_ids_are_the_short_route_names(document):
    found = {(method, path): op["operationId"] for method, path, op in operations(document)}
    assert found == OPERATION_IDS
    assert len(set(found.values())) == len(found)


def test_every_route_has_a_one_line_description(document):
    for method, path, operation in operations(document):
        description = operation.get("description", "")
        assert description, (method, path)
        assert "\n" not in description, (method, path, description)


def request_models() -> list[type[BaseModel]]:
    return [
        model
        for model in vars(schemas).values()
        if isinstance(model, type)
        and issubclass(model, schemas.Strict)
        and model is not schemas.Strict
    ]


def test_every_request_model_has_an_example_that_it_accepts(document):
    models = request_models()
    assert {m.__name__ for m in models} >= {"SubmissionIn", "TrialIn", "EnrolIn", "ProtocolIn"}
    for model in models:
        examples = component(document, REF + model.__name__).get("examples")
        assert examples, model.__name__
        for example in examples:
            model.model_validate(example)  # raises if the example is not a valid body


def test_every_request_body_of_the_document_has_an_example(document):
    bodies = 0
    for method, path, operation in operations(document):
        if "requestBody" not in operation:
            continue
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert component(document, schema["$ref"]).get("examples"), (method, path)
        bodies += 1
    assert bodies == 10
    # the FHIR route takes its resource under FHIR's media type as well
    fhir_body = document["paths"][FHIR_ROUTE[1]][FHIR_ROUTE[0]]["requestBody"]["content"]
    assert set(fhir_body) == {"application/fhir+json", "application/json"}


def test_the_questionnaire_routes_answer_fhir_json(document):
    for path in (
        "/v1/trials/{trial_id}/questionnaires/{instrument_id}",
        "/v1/me/questionnaires/{instrument_id}",
    ):
        content = document["paths"][path]["get"]["responses"]["200"]["content"]
        assert content == {
            "application/fhir+json": {"schema": {"$ref": "#/components/schemas/Questionnaire"}}
        }


# -- the answers --------------------------------------------------------------------------

# FastAPI's serialisation of a route that returned a bare dict (what these routes did before
# they had response models): the bytes must be the same.
UNMODELLED = TypeAdapter(dict[str, Any])


def unmodelled(value: dict[str, Any]) -> bytes:
    return UNMODELLED.dump_json(value)


def hads(anxiety_items: int, depression_items: int) -> dict[str, int]:
    """HADS responses: odd items (anxiety) all `anxiety_items`, even ones `depression_items`."""
    return {str(n): anxiety_items if n % 2 else depression_items for n in range(1, 15)}


def test_each_modelled_answer_is_byte_for_byte_the_services_own(world: World) -> None:
    client, container = world.client, world.container
    keys = make_trial(client, container, "bodies", participants=("P01", "P02", "P03"))
    tid = keys.trial_id

    def post(body: dict[str, Any]) -> str:
        r = client.post(f"/v1/trials/{tid}/submissions", headers=keys.submitter, json=body)
        assert r.status_code == 201, r.text
        return str(r.json()["submission_id"])

    first = post(submission("P01", responses=hads(1, 1)))
    post(submission("P01", responses=hads(2, 1), supersedes=first))  # a correction
    post(submission("P01", timepoint="week-12", responses=hads(0, 0)))
    post(submission("P02", responses=hads(3, 2)))
    post(submission("P02", timepoint="week-12", responses={**hads(1, 1), "3": None}))
    post(submission("P03", responses=hads(2, 3)))
    post(submission("P03", timepoint="week-12", responses=hads(2, 2)))
    post(submission("P01", "diary", responses={str(n): 5 for n in range(1, 15)}))
    post(submission("P02", "fscrs", responses={**{str(i): 1 for i in range(1, 23)}, "9": 3}))
    r = client.patch(
        f"/v1/trials/{tid}/participants/P03",
        headers=keys.coordinator,
        json={"status": "withdrawn", "reason": "moved"},
    )
    assert r.status_code == 200, r.text
    world.pump.drain()
    trial = container.trials.get(tid)

    published = client.post(f"/v1/trials/{tid}/reports/pre-post", headers=keys.coordinator)
    assert published.status_code == 200, published.text
    report = container.reporting.latest(tid)
    assert published.content == unmodelled(report)
    rows = {(row["instrument"], row["subscale"]): row for row in report["results"]}
    assert rows[("hads", "anxiety")]["n_pairs"] == 2
    assert rows[("hads", "anxiety")]["sensitivity"]["withdrawn_pairs"] == 1

    progress, _ = container.participants.page(trial, limit=100, cursor=None)
    expected = {
        "/v1/instruments": {
            "instruments": [instrument_to_dict(i) for i in CATALOGUE.instruments()]
        },
        "/v1/instruments/diary": instrument_to_dict(CATALOGUE.get("diary")),
        f"/v1/trials/{tid}/participants": {
            "trial_id": tid,
            "participants": [
                {
                    "trial_id": p.participant.trial_id,
                    "participant_id": p.participant.participant_id,
                    "status": p.participant.status,
                    "reason": p.participant.reason,
                    "enrolled_at": p.participant.enrolled_at,
                    "status_changed_at": p.participant.status_changed_at,
                    "done": list(p.done),
                    "missing": list(p.missing),
                    "schedule": [
                        {
                            "instrument": s.instrument,
                            "timepoint": s.timepoint,
                            "opens_at": iso(s.opens_at),
                            "closes_at": iso(s.closes_at),
                            "state": s.state,
                        }
                        for s in p.schedule
                    ],
                }
                for p in progress
            ],
            "next_cursor": None,
        },
        f"/v1/trials/{tid}/participants/P01/scores": container.reads.participant_scores(
            trial, "P01"
        ),
        f"/v1/trials/{tid}/participants/P02/scores": container.reads.participant_scores(
            trial, "P02"
        ),
        f"/v1/trials/{tid}/codebook": {
            "trial_id": tid,
            "layout": "long",
            "columns": container.reads.codebook(trial, "long"),
        },
        f"/v1/trials/{tid}/codebook?layout=wide": {
            "trial_id": tid,
            "layout": "wide",
            "columns": container.reads.codebook(trial, "wide"),
        },
        f"/v1/trials/{tid}/alerts": container.reads.alerts(tid),
        f"/v1/trials/{tid}/reports/pre-post": report,
    }
    assert len(container.reads.alerts(tid)["alerts"]) == 1
    for url, value in expected.items():
        r = client.get(url, headers=keys.coordinator)
        assert r.status_code == 200, (url, r.text)
        assert r.content == unmodelled(value), url

    # the summary says when it was made: that moment is the answer's, the rest the service's
    r = client.get(f"/v1/trials/{tid}/summary", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    summary = {**container.reads.summary(trial), "generated_at": r.json()["generated_at"]}
    assert r.content == unmodelled(summary)
    assert re.search(rb'"mean":\d+\.\d+', r.content)  # floats stay floats
