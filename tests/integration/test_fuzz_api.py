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
from handlers.stream_batch import make_handler
from handlers.wiring import build
from local.pump import StreamPump
from local.world import aws_clients, create_resources

SEED = 20261126
TRIAL_ID = "cmt-pilot"
MAX_EXAMPLES = 25
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
    started: float = 0.0

    def count(self, run: str, status: int) -> None:
        self.by_run[run] = self.by_run.get(run, 0) + 1
        self.by_status[status] = self.by_status.get(status, 0) + 1

    @property
    def total(self) -> int:
        return sum(self.by_run.values())


COUNTER = FuzzCounter()


# Built at import, because schemathesis' pytest plugin collects one test per operation from a
# schema object. (Its lazy `schemathesis.pytest.from_fixture` loader rewrites the private
# `Node._nodeid`, which pytest 9 no longer has.) Building the container makes no AWS call; the
# clients it creates are served by moto once the module fixture below has started `mock_aws`.
CONTAINER = build(conftest.settings_for_tests())
APP = create_app(CONTAINER)


def _schema(*, pin_trial: bool) -> Any:
    project: dict[str, Any] = {"seed": SEED, "generation": {"mode": "all"}}
    if pin_trial:
        project["parameters"] = {"path.trial_id": TRIAL_ID}
    return schemathesis.openapi.from_asgi(
        "/openapi.json", APP, config=schemathesis.Config.from_dict(project)
    )


@dataclass(frozen=True)
class Keys:
    admin: dict[str, str]
    coordinator: dict[str, str]


@pytest.fixture(scope="module")
def keys() -> Iterator[Keys]:
    """One moto account for the module: the cmt-pilot trial, its keys and a little data."""
    COUNTER.started = time.perf_counter()
    with mock_aws():
        clients = aws_clients(boto3.session.Session(region_name=conftest.REGION))
        create_resources(clients, names=conftest.NAMES, sender=conftest.SENDER)
        with TestClient(APP) as client:
            trial = conftest.make_trial(
                client, CONTAINER, trial_id=TRIAL_ID, participants=("P01", "P02")
            )
            # a little data, so the read routes have something to render
            for pid in ("P01", "P02"):
                body = conftest.submission(participant_id=pid)
                r = client.post(
                    f"/v1/trials/{TRIAL_ID}/submissions", headers=trial.submitter, json=body
                )
                assert r.status_code == 201, r.text
        StreamPump(
            streams_client=clients["dynamodbstreams"],
            dynamodb_client=clients["dynamodb"],
            table_name=conftest.NAMES.submissions_table,
            handler=make_handler(CONTAINER.scoring),
            region=conftest.REGION,
        ).drain()
        yield Keys(admin=trial.admin, coordinator=trial.coordinator)
    print(
        f"\nfuzz cases run: {COUNTER.total} "
        f"({', '.join(f'{k}: {v}' for k, v in sorted(COUNTER.by_run.items()))}); "
        f"statuses {dict(sorted(COUNTER.by_status.items()))}; "
        f"{time.perf_counter() - COUNTER.started:.1f} s"
    )
    assert COUNTER.total > 0


def problem_json_for_4xx(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx is RFC 9457 problem+json with type, title, status and detail; on the FHIR
    route (API.md v1.1) a FHIR OperationOutcome with at least one issue instead."""
    if not 400 <= response.status_code < 500:
        return None
    content_type = response.headers.get("content-type", [""])
    content_type = content_type[0] if isinstance(content_type, list) else content_type
    if "/fhir/" in case.path:
        assert content_type == "application/fhir+json", (
            f"{response.status_code} with content type {content_type!r}"
        )
        outcome = json.loads(response.content)
        assert outcome["resourceType"] == "OperationOutcome", outcome
        assert outcome["issue"], outcome
        assert all(i["severity"] in ("error", "fatal") for i in outcome["issue"]), outcome
        assert "Traceback" not in response.text
        assert "botocore" not in response.text
        return True
    assert content_type.startswith("application/problem+json"), (
        f"{response.status_code} with content type {content_type!r}"
    )
    body = json.loads(response.content)
    missing = [f for f in PROBLEM_FIELDS if f not in body]
    assert not missing, f"{response.status_code} problem lacks {missing}: {body}"
    assert body["status"] == response.status_code, body
    assert "Traceback" not in response.text
    assert "botocore" not in response.text
    return True


CHECKS = [not_a_server_error, response_schema_conformance, problem_json_for_4xx]


def _run(case: Any, run: str, headers: dict[str, str] | None) -> None:
    if headers is None:
        # no key at all: drop any bearer token generated from the security scheme
        case.headers = {
            k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"
        }
    response = case.call_and_validate(headers=headers, checks=CHECKS)
    COUNTER.count(run, response.status_code)


coordinator_schema = _schema(pin_trial=True)
admin_schema = _schema(pin_trial=False).include(tag="trials")
anonymous_schema = _schema(pin_trial=False)


@coordinator_schema.parametrize()
@FUZZ_SETTINGS
def test_fuzzed_requests_with_a_coordinator_key_never_break_the_contract(
    case: Any, keys: Keys
) -> None:
    _run(case, "coordinator", keys.coordinator)


@admin_schema.parametrize()
@FUZZ_SETTINGS
def test_fuzzed_trial_management_with_an_admin_key_never_breaks_the_contract(
    case: Any, keys: Keys
) -> None:
    _run(case, "admin", keys.admin)


@anonymous_schema.parametrize()
@FUZZ_SETTINGS
def test_fuzzed_requests_without_a_key_never_break_the_contract(case: Any, keys: Keys) -> None:
    _run(case, "anonymous", None)
