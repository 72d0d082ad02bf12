"""Shared fixtures: moto stands in for AWS; the real adapters and services run against it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from moto import mock_aws

from clock import TestClock
from handlers.api_app import create_app
from handlers.settings import Settings
from handlers.wiring import Adapters, Container
from local.cors import behind_http_api
from local.job_runner import JobRunner
from local.moto_atomic import make_dynamodb_atomic
from local.pump import StreamPump
from local.template import LocalNames
from local.world import create_world
from services.ports import TrialStores

REGION = "eu-west-2"
SENDER = "cmt-collect@example.org"
NAMES = LocalNames(
    main_table="test-main",
    submissions_table="test-submissions",
    reports_bucket="test-reports",
    dead_letter_queue="test-dlq",
    jobs_queue="test-jobs",
    jobs_dead_letter_queue="test-jobs-dlq",
)
TEST_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "CMT_TABLE_NAME": NAMES.main_table,
    "CMT_SUBMISSIONS_TABLE_NAME": NAMES.submissions_table,
    "CMT_REPORTS_BUCKET": NAMES.reports_bucket,
    "CMT_MAIL_SENDER": SENDER,
}

# conditional writes must be atomic under concurrency, as on DynamoDB (see local.moto_atomic)
make_dynamodb_atomic()

# importing the Lambda handler modules builds their containers from the environment
os.environ.update(TEST_ENV)
os.environ.pop("AWS_ENDPOINT_URL", None)


def settings_for_tests(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "main_table": NAMES.main_table,
        "submissions_table": NAMES.submissions_table,
        "reports_bucket": NAMES.reports_bucket,
        "mail_sender": SENDER,
        "api_base_url": "https://api.example.org",
        "region": REGION,
        "jobs_queue": NAMES.jobs_queue,
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class World:
    """One moto account with the stack's resources, the real services, app and pump."""

    aws: dict[str, Any]
    container: Container
    client: TestClient
    pump: StreamPump
    clock: TestClock
    adapters: Adapters
    jobs: JobRunner  # runs the job queue as the job function would (`world.jobs.drain()`)

    @property
    def stores(self) -> TrialStores:
        """The stores under the services: what a test inspects, never what it patches."""
        return self.adapters.stores


@contextmanager
def moto_world() -> Iterator[World]:
    with mock_aws():
        clock = TestClock()
        built = create_world(names=NAMES, settings=settings_for_tests(), clock=clock)
        # behind API Gateway as the local stack serves it (its limits; no allowed origins)
        app = behind_http_api(create_app(built.container), allowed_origins="")
        client = TestClient(app, raise_server_exceptions=False)
        yield World(
            aws=built.clients,
            container=built.container,
            client=client,
            pump=built.pump,
            clock=clock,
            adapters=built.adapters,
            jobs=built.jobs,
        )


@pytest.fixture
def world() -> Iterator[World]:
    """A fresh world per test (modules may override `world` with `module_world`)."""
    with moto_world() as fresh:
        yield fresh


@pytest.fixture(scope="module")
def module_world() -> Iterator[World]:
    """One world shared by a module's tests (each test then uses its own trial ids)."""
    with moto_world() as shared:
        yield shared


@pytest.fixture
def aws(world: World) -> dict[str, Any]:
    return world.aws


@pytest.fixture
def container(world: World) -> Container:
    return world.container


@pytest.fixture
def stores(world: World) -> TrialStores:
    return world.stores


@pytest.fixture
def client(world: World) -> TestClient:
    return world.client


@pytest.fixture
def pump(world: World) -> StreamPump:
    return world.pump


PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """A refusal as RFC 9457 problem+json that leaks no internals."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == status
    assert all(isinstance(body[k], str) and body[k] for k in ("type", "title", "detail"))
    for internal in ("Traceback", "botocore", "pydantic", 'File "', NAMES.main_table):
        assert internal not in response.text, f"{internal!r} leaked: {response.text}"
    return body


@dataclass
class TrialKeys:
    trial_id: str
    admin: dict[str, str]
    coordinator: dict[str, str]
    submitter: dict[str, str]
    coordinator_key_id: str


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def make_trial(
    client: TestClient,
    container: Container,
    trial_id: str = "cmt-pilot",
    participants: tuple[str, ...] = ("P01",),
    emails: tuple[str, ...] = ("coordinator@example.org",),
    admin_key: str | None = None,
) -> TrialKeys:
    admin = admin_key or container.keys.create(role="admin", trial_id="*", label="test").api_key
    r = client.put(
        f"/v1/trials/{trial_id}",
        headers=bearer(admin),
        # a trial without addresses can have no safety-alert rules (nobody to tell)
        json={
            "title": f"Trial {trial_id}",
            "coordinator_emails": list(emails),
            **({} if emails else {"alert_rules": []}),
        },
    )
    assert r.status_code in (200, 201), r.text
    keys = {}
    key_ids = {}
    for role in ("coordinator", "submitter"):
        r = client.post(
            f"/v1/trials/{trial_id}/api-keys",
            headers=bearer(admin),
            json={"role": role, "label": f"{role} key"},
        )
        assert r.status_code == 201, r.text
        keys[role] = r.json()["api_key"]
        key_ids[role] = r.json()["key_id"]
    for pid in participants:
        r = client.post(
            f"/v1/trials/{trial_id}/participants",
            headers=bearer(keys["coordinator"]),
            json={"participant_id": pid},
        )
        assert r.status_code == 201, r.text
    return TrialKeys(
        trial_id=trial_id,
        admin=bearer(admin),
        coordinator=bearer(keys["coordinator"]),
        submitter=bearer(keys["submitter"]),
        coordinator_key_id=key_ids["coordinator"],
    )


def access_code(
    client: TestClient, coordinator: dict[str, str], trial_id: str, participant_id: str
) -> str:
    """A new one-time enrolment code for an enrolled participant (the coordinator's route)."""
    r = client.post(
        f"/v1/trials/{trial_id}/participants/{participant_id}/access-codes", headers=coordinator
    )
    assert r.status_code == 201, r.text
    return str(r.json()["code"])


def participant_token(
    client: TestClient, coordinator: dict[str, str], trial_id: str, participant_id: str
) -> dict[str, str]:
    """Bearer headers of a fresh participant token: a code issued, then exchanged."""
    code = access_code(client, coordinator, trial_id, participant_id)
    r = client.post("/v1/access/exchange", json={"code": code})
    assert r.status_code == 201, r.text
    return bearer(r.json()["participant_token"])


HADS_EXAMPLE = {
    "1": 2,
    "2": 0,
    "3": 3,
    "4": 1,
    "5": 2,
    "6": 1,
    "7": 0,
    "8": 2,
    "9": 1,
    "10": 3,
    "11": 2,
    "12": 1,
    "13": 2,
    "14": 0,
}


def submission(
    participant_id: str = "P01",
    instrument: str = "hads",
    timepoint: str = "week-1",
    responses: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "participant_id": participant_id,
        "instrument": instrument,
        "instrument_version": "1",
        "timepoint": timepoint,
        "completed_at": "2026-11-20T10:15:00Z",
        "responses": dict(HADS_EXAMPLE if responses is None else responses),
        "notes": None,
    }
    body.update(extra)
    return body


# Debian's Chromium, as every browser test launches it: headless, a fresh profile, and nothing
# that reaches out to the network on its own (the machine notes for a closed network)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
