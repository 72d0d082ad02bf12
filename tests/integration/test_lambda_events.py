"""The Lambda entry point (handlers.api.handler, Mangum) on the sample API Gateway events.

The events in events/ are the ones `sam local invoke -e` uses. They authenticate with two
well-known sample keys, which the tests install first, as an operator would with
`cmt-collect keys create`. handlers.api builds its container from the environment at import
(cold start), so it is imported inside moto, after conftest.TEST_ENV is in place.
"""

from __future__ import annotations

import base64
import csv
import importlib
import io
import json
import sys
from datetime import timedelta
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from clock import SAMPLE_NOW, TestClock
from conftest import TEST_ENV, settings_for_tests, submission
from domain.trial import Trial
from handlers.api import make_handler
from handlers.wiring import Container, build
from services.trials import TrialInput

EVENTS = Path(__file__).resolve().parents[2] / "events"
ADMIN_KEY, COORDINATOR_KEY = "sample-admin-key", "sample-coordinator-key"

# every sample API event, in the order a trial is set up and used, with its answer
SEQUENCE = [
    ("api_health.json", 200),
    ("api_v1_rest_health.json", 200),
    ("api_instruments.json", 200),
    ("api_put_trial.json", 201),
    ("api_create_key.json", 201),
    ("api_enrol_participant.json", 201),
    ("api_submit_hads.json", 201),
    ("api_get_scores.json", 200),
    ("api_get_summary.json", 200),
    ("api_export_csv.json", 200),
    ("api_get_report.json", 404),  # nothing published yet
    ("api_audit.json", 200),
]
# the same events against a trial that already exists, with P01 enrolled and a report out
SEEDED = {
    "api_health.json": 200,
    "api_v1_rest_health.json": 200,
    "api_instruments.json": 200,
    "api_put_trial.json": 200,
    "api_create_key.json": 201,
    "api_enrol_participant.json": 409,
    "api_submit_hads.json": 201,
    "api_get_scores.json": 200,
    "api_get_summary.json": 200,
    "api_export_csv.json": 200,
    "api_get_report.json": 200,
    "api_audit.json": 200,
}


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


def context(name: str) -> Any:
    return SimpleNamespace(
        function_name="cmt-collect-api",
        function_version="$LATEST",
        invoked_function_arn="arn:aws:lambda:eu-west-2:123456789012:function:cmt-collect-api",
        memory_limit_in_mb=512,
        aws_request_id=f"req-{name}",
        log_group_name="/aws/lambda/cmt-collect-api",
        log_stream_name="2026/11/26/[$LATEST]0123456789abcdef",
        get_remaining_time_in_millis=lambda: 29_000,
    )


def body_of(result: dict[str, Any]) -> str:
    raw = result.get("body") or ""
    return base64.b64decode(raw).decode() if result.get("isBase64Encoded") else str(raw)


def header(result: dict[str, Any], name: str) -> str | None:
    for key, value in (result.get("headers") or {}).items():
        if key.lower() == name:
            return str(value)
    for key, values in (result.get("multiValueHeaders") or {}).items():
        if key.lower() == name:
            return str(values[0])
    return None


def invoke(api: Any, name: str, event: dict[str, Any] | None = None) -> dict[str, Any]:
    result = api.handler(event if event is not None else load(name), context(name))
    assert isinstance(result["statusCode"], int)
    return dict(result)


def parsed(result: dict[str, Any]) -> Any:
    """The body as the client would read it; JSON or CSV, never anything else."""
    content_type = header(result, "content-type") or ""
    text = body_of(result)
    if content_type.startswith("text/csv"):
        return list(csv.DictReader(io.StringIO(text)))
    assert "json" in content_type, content_type
    return json.loads(text)


def install_sample_keys(container: Container) -> None:
    container.keys.install(api_key=ADMIN_KEY, role="admin", trial_id="*", label="sample admin")
    container.keys.install(
        api_key=COORDINATOR_KEY, role="coordinator", trial_id="cmt-pilot", label="sample"
    )


@pytest.fixture
def cold_start(aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """The deployed module itself, imported (a cold start) inside this moto world."""
    for name, value in TEST_ENV.items():
        monkeypatch.setenv(name, value)
    install_sample_keys(build(settings_for_tests()))
    if "handlers.api" in sys.modules:
        return importlib.reload(sys.modules["handlers.api"])
    return importlib.import_module("handlers.api")


@pytest.fixture(params=[0, 400, 800], ids=["recorded", "next-year", "two-years-on"])
def clock(request: pytest.FixtureRequest) -> TestClock:
    """The events were recorded on 2026-11-26; they must still work years later."""
    return TestClock(start=SAMPLE_NOW + timedelta(days=request.param))


@pytest.fixture
def api(aws: dict[str, Any], clock: TestClock) -> SimpleNamespace:
    """The Lambda handler as `handlers.api` builds it, on a container with the test clock."""
    container = build(settings_for_tests(), clock=clock)
    install_sample_keys(container)
    return SimpleNamespace(handler=make_handler(container))


@pytest.fixture
def seeding(aws: dict[str, Any], clock: TestClock) -> Container:
    return build(settings_for_tests(), clock=clock)


def seed_trial(container: Container) -> Trial:
    trial, _ = container.trials.put(
        "cmt-pilot",
        TrialInput(
            title="CMT pilot",
            coordinator_emails=["coordinator@example.org"],
            protocol=None,
            alert_rules=None,
        ),
    )
    container.participants.enrol(trial, "P01")
    return trial


def test_every_sample_api_event_has_an_expected_answer() -> None:
    samples = {p.name for p in EVENTS.glob("api_*.json")}
    assert samples, f"no sample events in {EVENTS}"
    assert {name for name, _ in SEQUENCE} == samples
    assert set(SEEDED) == samples


def test_the_sample_events_set_up_and_use_a_trial_through_the_lambda_handler(
    api: SimpleNamespace, seeding: Container
) -> None:
    answers: dict[str, Any] = {}
    for name, expected in SEQUENCE:
        result = invoke(api, name)
        assert result["statusCode"] == expected, (name, body_of(result))
        answers[name] = parsed(result)
        if expected >= 400:
            assert (header(result, "content-type") or "").startswith("application/problem+json")
            assert answers[name]["status"] == expected
    assert answers["api_health.json"] == {"status": "ok"}
    assert answers["api_v1_rest_health.json"] == {"status": "ok"}
    assert len(answers["api_instruments.json"]["instruments"]) == 7
    assert answers["api_put_trial.json"]["trial_id"] == "cmt-pilot"
    assert answers["api_create_key.json"]["api_key"]
    assert answers["api_enrol_participant.json"]["participant_id"] == "P01"
    assert answers["api_submit_hads.json"]["status"] == "accepted"
    assert answers["api_get_scores.json"]["participant_id"] == "P01"
    assert answers["api_get_summary.json"]["enrolment"]["total"] == 1
    assert answers["api_export_csv.json"] == []  # nothing scored: no stream in this test
    actions = [e["action"] for e in answers["api_audit.json"]["events"]]
    assert actions[:4] == ["trial.create", "api_key.create", "participant.enrol", "export.read"]

    # once a report is published, the same event finds it
    trial = seeding.trials.get("cmt-pilot")
    published = seeding.reporting.publish(trial)
    result = invoke(api, "api_get_report.json")
    assert result["statusCode"] == 200, body_of(result)
    assert parsed(result)["generated_at"] == published["generated_at"]


def test_each_sample_event_is_answered_on_a_seeded_trial(
    api: SimpleNamespace, seeding: Container
) -> None:
    """Seeded as an operator would; no event's answer depends on another's here."""
    seeding.reporting.publish(seed_trial(seeding))
    for name in sorted(SEEDED):
        result = invoke(api, name)
        assert result["statusCode"] == SEEDED[name], (name, body_of(result))
        parsed(result)


def test_a_refusal_through_the_lambda_handler_is_a_problem_with_its_headers(
    api: SimpleNamespace, seeding: Container
) -> None:
    seed_trial(seeding)
    event = load("api_get_summary.json")
    event["headers"]["authorization"] = "Bearer not-a-key"
    result = invoke(api, "api_get_summary.json", event)
    assert result["statusCode"] == 401
    assert header(result, "www-authenticate") == "Bearer"
    assert header(result, "content-type") == "application/problem+json"
    assert parsed(result)["status"] == 401

    event = load("api_submit_hads.json")
    event["body"] = json.dumps(submission(responses={"1": 7, "15": 1}))
    event["headers"].pop("content-length")
    result = invoke(api, "api_submit_hads.json", event)
    assert result["statusCode"] == 422, body_of(result)
    errors = parsed(result)["errors"]
    assert sorted(e["loc"] for e in errors) == [
        ["body", "responses", "1"],
        ["body", "responses", "15"],
    ]


def test_a_rest_api_v1_event_for_an_unknown_route_is_a_404_problem(api: SimpleNamespace) -> None:
    event = load("api_v1_rest_health.json")
    event["path"] = "/v1/nowhere"
    event["pathParameters"] = {"proxy": "v1/nowhere"}
    result = invoke(api, "api_v1_rest_health.json", event)
    assert result["statusCode"] == 404
    problem = parsed(result)
    assert problem["status"] == 404
    assert "/v1/nowhere" in problem["detail"]


def test_the_deployed_module_answers_the_date_free_events_after_a_cold_start(
    cold_start: ModuleType,
) -> None:
    for name in ("api_health.json", "api_v1_rest_health.json", "api_instruments.json"):
        result = invoke(cold_start, name)
        assert result["statusCode"] == 200, (name, body_of(result))
    result = invoke(cold_start, "api_put_trial.json")
    assert result["statusCode"] == 201, body_of(result)
