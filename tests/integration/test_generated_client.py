"""A client generated from /openapi.json with openapi-python-client reads our real answers.

The generator (pinned in the dev extra) runs offline: its post-generation hooks (formatters)
are switched off. The generated package is imported from the test's temporary directory and
talks to the app through the app's own TestClient (an httpx client), so every answer it
parses is one the API really sent: a 422 must come out as its typed `Problem` with the
`errors` list, not as `None` (what a client generated from an error declared under
application/json gets for problem+json).
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import World, make_trial, settings_for_tests, submission
from handlers.api_app import create_app
from handlers.wiring import build

PACKAGE = "cmt_generated_client"
GENERATOR = Path(sys.executable).with_name("openapi-python-client")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package generated from the app's /openapi.json, imported (once a module)."""
    tmp_path = tmp_path_factory.mktemp("generated")
    # building the app calls no AWS service
    document = TestClient(create_app(build(settings_for_tests()))).get("/openapi.json")
    assert document.status_code == 200, document.text
    (tmp_path / "openapi.json").write_text(document.text)
    (tmp_path / "config.json").write_text(
        json.dumps({"post_hooks": [], "package_name_override": PACKAGE})
    )
    done = subprocess.run(
        [
            str(GENERATOR),
            "generate",
            "--path",
            str(tmp_path / "openapi.json"),
            "--config",
            str(tmp_path / "config.json"),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / PACKAGE),
            "--fail-on-warning",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def generated_client(package: ModuleType, world: World, headers: dict[str, str]) -> Any:
    """The generated `Client` over a TestClient of the real app, holding a key."""
    http = TestClient(create_app(world.container), headers=headers)
    return package.Client(base_url=str(http.base_url)).set_httpx_client(http)


def operation(package: ModuleType, tag: str, name: str) -> Any:
    return importlib.import_module(f"{package.__name__}.api.{tag}.{name}")


def test_the_generated_client_parses_a_refused_submission_into_its_typed_errors(
    world: World, generated: ModuleType
) -> None:
    keys = make_trial(world.client, world.container, "generated")
    client = generated_client(generated, world, keys.submitter)
    models = importlib.import_module(f"{generated.__name__}.models")
    # a pattern the schema refuses, and an answer out of range the service refuses
    body = submission("not a code!", responses={"1": 9, "2": 0})
    answer = operation(generated, "submissions", "create_submission").sync_detailed(
        trial_id="generated", client=client, body=models.SubmissionIn.from_dict(body)
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.parsed
    assert isinstance(problem, models.Problem)
    assert (problem.status, problem.type_) == (422, "urn:cmt-collect:problem:validation-failed")
    assert problem.instance == "/v1/trials/generated/submissions"
    assert all(isinstance(error, models.FieldError) for error in problem.errors)
    where = {tuple(error.loc): error.type_ for error in problem.errors}
    assert ("body", "participant_id") in where
    assert ("body", "responses", "1") in where
    assert all(error.msg for error in problem.errors)
    # the typed errors are exactly what was sent
    assert [e.to_dict() for e in problem.errors] == json.loads(answer.content)["errors"]


def test_the_generated_client_parses_a_rate_limited_and_an_unauthenticated_answer(
    world: World, generated: ModuleType
) -> None:
    keys = make_trial(world.client, world.container, "generated")
    models = importlib.import_module(f"{generated.__name__}.models")
    get_trial = operation(generated, "trials", "get_trial")
    nobody = generated_client(generated, world, {})
    refused = get_trial.sync_detailed(trial_id="generated", client=nobody)
    assert refused.status_code == 401
    assert isinstance(refused.parsed, models.Problem)
    assert refused.headers["www-authenticate"] == "Bearer"

    # the same tables, served by an API that allows a key one request at once
    strict = build(settings_for_tests(key_request_burst=1, key_requests_per_second=0.01))
    http = TestClient(create_app(strict), headers=keys.coordinator)
    client = generated.Client(base_url=str(http.base_url)).set_httpx_client(http)
    assert get_trial.sync_detailed(trial_id="generated", client=client).status_code == 200
    limited = get_trial.sync_detailed(trial_id="generated", client=client)
    assert limited.status_code == 429
    assert isinstance(limited.parsed, models.Problem)
    assert limited.parsed.status == 429
    assert int(limited.headers["retry-after"]) >= 1


def test_the_generated_client_reads_the_modelled_answers_of_the_results_routes(
    world: World, generated: ModuleType
) -> None:
    keys = make_trial(world.client, world.container, "generated", participants=("P01", "P02"))
    for pid, week_1, week_12 in (("P01", 2, 0), ("P02", 3, 1)):
        for timepoint, value in (("week-1", week_1), ("week-12", week_12)):
            body = submission(
                pid, timepoint=timepoint, responses={str(n): value for n in range(1, 15)}
            )
            r = world.client.post(
                "/v1/trials/generated/submissions", headers=keys.submitter, json=body
            )
            assert r.status_code == 201, r.text
    world.pump.drain()
    client = generated_client(generated, world, keys.coordinator)
    models = importlib.import_module(f"{generated.__name__}.models")

    report = operation(generated, "results", "publish_prepost_report").sync(
        trial_id="generated", client=client
    )
    assert isinstance(report, models.PrePostReport)
    anxiety = next(r for r in report.results if (r.instrument, r.subscale) == ("hads", "anxiety"))
    assert anxiety.n_pairs == 2
    assert isinstance(anxiety.sensitivity, models.Sensitivity)

    summary = operation(generated, "results", "get_summary").sync(
        trial_id="generated", client=client
    )
    assert isinstance(summary, models.Summary)
    assert summary.enrolment.total == 2

    scores = operation(generated, "results", "get_participant_scores").sync(
        trial_id="generated", participant_id="P01", client=client
    )
    assert isinstance(scores, models.ParticipantScores)
    assert [t.timepoint for t in scores.timepoints] == ["week-1", "week-12"]

    catalogue = operation(generated, "instruments", "list_instruments").sync(client=client)
    assert isinstance(catalogue, models.InstrumentCatalogue)
    assert "hads" in {i.id for i in catalogue.instruments}

    csv_text = operation(generated, "results", "export_csv").sync(
        trial_id="generated", client=client
    )
    assert isinstance(csv_text, str)
    assert csv_text.startswith("trial_id,participant_id,")
