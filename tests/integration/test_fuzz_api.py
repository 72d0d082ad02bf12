"""Property-based fuzzing of the whole HTTP contract with schemathesis, against moto.

Every operation of the generated OpenAPI document is fuzzed (positive and negative data) three
ways: with a coordinator key of `cmt-pilot` and the trial id pinned to it (so the authenticated
routes are really reached), with an admin key on the trial-management routes, and with no key
at all. Each response must not be a server error, must conform to the documented schema, and
every 4xx must be an RFC 9457 problem (application/problem+json with type/title/status/detail).

The run is bounded (`max_examples` per operation) and seeded (schemathesis seed plus
hypothesis `derandomize`), so it is the same run every time and stays well under 90 s.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from moto import mock_aws
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

import conftest
from handlers.api_app import create_app
from handlers.wiring import build
from local.template import create_local_resources

SEED = 20261126
TRIAL_ID = "cmt-pilot"
MAX_EXAMPLES = 12
PROBLEM_FIELDS = ("type", "title", "status", "detail")

FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=False,
)


@dataclass
class FuzzCounter:
    """How many generated cases each run sent, by run and response status."""

    by_run: dict[str, int] = field(default_factory=dict)
    by_status: dict[int, int] = field(default_factory=dict)
    started: float = field(default_factory=time.perf_counter)

    def count(self, run: str, status: int) -> None:
        self.by_run[run] = self.by_run.get(run, 0) + 1
        self.by_status[status] = self.by_status.get(status, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.by_run.values())


COUNTER = FuzzCounter()


@dataclass(frozen=True)
class FuzzTarget:
    app: Any
    admin_key: str
    coordinator_key: str


@pytest.fixture(scope="module")
def fuzz_target() -> Iterator[FuzzTarget]:
    # One moto account for the whole module: schemathesis' lazy loader resolves its schema
    # fixture once per test, and every generated case must hit the same tables.
    with mock_aws():
        session = boto3.session.Session(region_name=conftest.REGION)
        clients = {n: session.client(n) for n in ("dynamodb", "s3", "sqs", "ses")}
        create_local_resources(
            dynamodb_client=clients["dynamodb"],
            s3_client=clients["s3"],
            sqs_client=clients["sqs"],
            names=conftest.NAMES,
        )
        clients["ses"].verify_email_identity(EmailAddress=conftest.SENDER)
        container = build(conftest.test_settings())
        app = create_app(container)
        with TestClient(app) as client:
            keys = conftest.make_trial(client, container, trial_id=TRIAL_ID, participants=("P01", "P02"))
            # a little data, so the read routes have something to render
            for pid, tp in (("P01", "week-1"), ("P02", "week-1")):
                body = {
                    "participant_id": pid,
                    "instrument": "hads",
                    "timepoint": tp,
                    "completed_at": "2026-11-20T10:15:00Z",
                    "responses": {str(i): i % 4 for i in range(1, 15)},
                }
                r = client.post(
                    f"/v1/trials/{TRIAL_ID}/submissions", headers=keys.submitter, json=body
                )
                assert r.status_code == 201, r.text
        yield FuzzTarget(
            app=app,
            admin_key=keys.admin["Authorization"].removeprefix("Bearer "),
            coordinator_key=keys.coordinator["Authorization"].removeprefix("Bearer "),
        )
    print(
        f"\nfuzz cases run: {COUNTER.total} "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(COUNTER.by_run.items()))}); "
        f"statuses {dict(sorted(COUNTER.by_status.items()))}; "
        f"{time.perf_counter() - COUNTER.started:.1f} s"
    )


def _config(*, authorization: str | None, pin_trial: bool) -> schemathesis.Config:
    project: dict[str, Any] = {"seed": SEED, "generation": {"mode": "all"}}
    if pin_trial:
        project["parameters"] = {"path.trial_id": TRIAL_ID}
    if authorization:
        project["headers"] = {"Authorization": authorization}
    return schemathesis.Config.from_dict(project)


@pytest.fixture(scope="module")
def coordinator_schema(fuzz_target: FuzzTarget) -> Any:
    return schemathesis.openapi.from_asgi(
        "/openapi.json",
        fuzz_target.app,
        config=_config(authorization=f"Bearer {fuzz_target.coordinator_key}", pin_trial=True),
    )


@pytest.fixture(scope="module")
def admin_schema(fuzz_target: FuzzTarget) -> Any:
    return schemathesis.openapi.from_asgi(
        "/openapi.json",
        fuzz_target.app,
        config=_config(authorization=f"Bearer {fuzz_target.admin_key}", pin_trial=False),
    )


@pytest.fixture(scope="module")
def anonymous_schema(fuzz_target: FuzzTarget) -> Any:
    return schemathesis.openapi.from_asgi(
        "/openapi.json", fuzz_target.app, config=_config(authorization=None, pin_trial=False)
    )


def problem_json_for_4xx(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx is RFC 9457 problem+json with type, title, status and detail."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    assert content_type.startswith("application/problem+json"), (
        f"{response.status_code} with content type {content_type!r}"
    )
    body = json.loads(response.content)
    missing = [f for f in PROBLEM_FIELDS if f not in body]
    assert not missing, f"{response.status_code} problem lacks {missing}: {body}"
    assert body["status"] == response.status_code, body
    assert "Traceback" not in response.text and "botocore" not in response.text
    return True


CHECKS = [not_a_server_error, response_schema_conformance, problem_json_for_4xx]


def _run(case: Any, run: str) -> None:
    response = case.call_and_validate(checks=CHECKS)
    COUNTER.count(run, response.status_code)


coordinator = schemathesis.pytest.from_fixture("coordinator_schema")
admin = schemathesis.pytest.from_fixture("admin_schema").include(tag="trials")
anonymous = schemathesis.pytest.from_fixture("anonymous_schema")


@coordinator.parametrize()
@FUZZ_SETTINGS
def test_fuzzed_requests_with_a_coordinator_key_never_fail_the_contract(case: Any) -> None:
    _run(case, "coordinator")


@admin.parametrize()
@FUZZ_SETTINGS
def test_fuzzed_trial_management_with_an_admin_key_never_fails_the_contract(case: Any) -> None:
    _run(case, "admin")


@anonymous.parametrize()
@FUZZ_SETTINGS
def test_fuzzed_requests_without_a_key_never_fail_the_contract(case: Any) -> None:
    _run(case, "anonymous")
