"""Every refusal class of the contract: right status, problem+json, every bad field, no trace.

"... are all 422 with every offending field named, and nothing is stored": each case takes a
snapshot of both DynamoDB tables (a Scan, which only tests may do) before and after the
request and requires them to be identical. A refusal changes nothing, so one moto world
serves the whole module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from clock import SAMPLE_NOW
from conftest import (
    HADS_EXAMPLE,
    NAMES,
    TrialKeys,
    assert_problem,
    make_trial,
    moto_world,
    settings_for_tests,
    submission,
)
from handlers.api_app import create_app
from handlers.wiring import build

SUBMISSIONS = "/v1/trials/cmt-pilot/submissions"
LIMIT = 256 * 1024
DIARY = {str(n): 5 for n in range(1, 15)}


@dataclass
class World:
    client: TestClient
    keys: TrialKeys
    dynamodb: Any

    def snapshot(self) -> dict[str, list[Any]]:
        tables = {}
        for table in (NAMES.main_table, NAMES.submissions_table):
            items: list[Any] = []
            for page in self.dynamodb.get_paginator("scan").paginate(
                TableName=table, ConsistentRead=True
            ):
                items += page["Items"]
            tables[table] = sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))
        return tables


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with moto_world() as base:
        container, client, dynamodb = base.container, base.client, base.aws["dynamodb"]
        keys = make_trial(client, container, participants=("P01", "P02", "P03"))
        r = client.patch(
            "/v1/trials/cmt-pilot/participants/P02",
            headers=keys.coordinator,
            json={"status": "withdrawn", "reason": "asked to stop"},
        )
        assert r.status_code == 200, r.text
        r = client.post(SUBMISSIONS, headers=keys.submitter, json=submission("P03"))
        assert r.status_code == 201, r.text
        yield World(client, keys, dynamodb)


def locs(body: dict[str, Any]) -> list[list[Any]]:
    return sorted((e["loc"] for e in body["errors"]), key=str)


def future() -> str:
    """A day after the test clock's start (never the wall clock)."""
    return (SAMPLE_NOW + timedelta(days=1)).isoformat().replace("+00:00", "Z")


def with_responses(**changes: Any) -> dict[str, Any]:
    return {**HADS_EXAMPLE, **{k.lstrip("_"): v for k, v in changes.items()}}


# (case, body, every loc the answer must name)
INVALID_SUBMISSIONS: list[tuple[str, dict[str, Any], list[list[Any]]]] = [
    (
        "unknown item number",
        submission(responses=with_responses(_15=1)),
        [["body", "responses", "15"]],
    ),
    ("item number zero", submission(responses=with_responses(_0=1)), [["body", "responses", "0"]]),
    (
        "item number with a leading zero",
        submission(responses=with_responses(_01=1)),
        [["body", "responses", "01"]],
    ),
    (
        "value above the range",
        submission(responses=with_responses(_1=4)),
        [["body", "responses", "1"]],
    ),
    (
        "value below the range",
        submission(responses=with_responses(_1=-1)),
        [["body", "responses", "1"]],
    ),
    (
        "diary value outside 1-10",
        submission(instrument="diary", responses={**DIARY, "3": 0, "4": 11}),
        [["body", "responses", "3"], ["body", "responses", "4"]],
    ),
    (
        "fractional value",
        submission(responses=with_responses(_1=2.5)),
        [["body", "responses", "1"]],
    ),
    ("whole float", submission(responses=with_responses(_1=2.0)), [["body", "responses", "1"]]),
    ("numeric string", submission(responses=with_responses(_1="2")), [["body", "responses", "1"]]),
    ("boolean", submission(responses=with_responses(_1=True)), [["body", "responses", "1"]]),
    (
        "every non-integer at once",
        submission(responses=with_responses(_1=2.5, _2="2", _3=True, _4=[1], _5={"v": 1})),
        [["body", "responses", str(n)] for n in range(1, 6)],
    ),
    ("no item at all", submission(responses={}), [["body", "responses"]]),
    (
        "every item skipped",
        submission(responses={str(n): None for n in range(1, 15)}),
        [["body", "responses"]],
    ),
    ("unknown instrument", submission(instrument="bdi"), [["body", "instrument"]]),
    ("unknown version", submission(instrument_version="2"), [["body", "instrument_version"]]),
    ("timepoint not scheduled", submission(timepoint="week-2"), [["body", "timepoint"]]),
    ("timepoint not in the protocol", submission(timepoint="week-99"), [["body", "timepoint"]]),
    ("participant not enrolled", submission("P99"), [["body", "participant_id"]]),
    ("participant withdrawn", submission("P02"), [["body", "participant_id"]]),
    ("completed_at in the future", submission(completed_at=future()), [["body", "completed_at"]]),
    (
        "completed_at without an offset",
        submission(completed_at="2026-11-20T10:15:00"),
        [["body", "completed_at"]],
    ),
    (
        "completed_at not a time",
        submission(completed_at="last tuesday"),
        [["body", "completed_at"]],
    ),
    (
        "several problems at once",
        submission(
            "P99",
            timepoint="week-2",
            completed_at=future(),
            responses=with_responses(_1=4, _2=2.5, _15=1),
        ),
        [
            ["body", "completed_at"],
            ["body", "participant_id"],
            ["body", "responses", "1"],
            ["body", "responses", "15"],
            ["body", "responses", "2"],
            ["body", "timepoint"],
        ],
    ),
    (
        "schema and content problems at once",
        submission("jane@example.org", responses=with_responses(_1=9), timepoint="week-2"),
        [["body", "participant_id"], ["body", "responses", "1"], ["body", "timepoint"]],
    ),
    (
        "e-mail address as participant_id",
        submission("jane@example.org"),
        [["body", "participant_id"]],
    ),
    ("name with a space as participant_id", submission("Jane Doe"), [["body", "participant_id"]]),
    ("phone number as participant_id", submission("+44 7700 900123"), [["body", "participant_id"]]),
    ("participant_id too long", submission("P" * 65), [["body", "participant_id"]]),
    ("empty participant_id", submission(""), [["body", "participant_id"]]),
    (
        "notes on an instrument that is not the diary",
        submission(notes={"critical_situations": "at work"}),
        [["body", "notes"]],
    ),
    (
        "a note of 4,001 characters",
        submission(instrument="diary", responses=DIARY, notes={"critical_thoughts": "x" * 4001}),
        [["body", "notes", "critical_thoughts"]],
    ),
    (
        "unknown notes field",
        submission(instrument="diary", responses=DIARY, notes={"mood": "low"}),
        [["body", "notes", "mood"]],
    ),
    (
        "a note that is not text",
        submission(instrument="diary", responses=DIARY, notes={"soothing_thoughts": 5}),
        [["body", "notes", "soothing_thoughts"]],
    ),
    ("unknown top-level field", submission(mood="low"), [["body", "mood"]]),
    (
        "required fields missing",
        {"participant_id": "P01", "instrument": "hads"},
        [["body", "completed_at"], ["body", "responses"], ["body", "timepoint"]],
    ),
    ("responses not an object", {**submission(), "responses": [2, 0, 3]}, [["body", "responses"]]),
]


@pytest.mark.parametrize(
    ("body", "expected_locs"),
    [pytest.param(body, expected, id=case) for case, body, expected in INVALID_SUBMISSIONS],
)
def test_an_invalid_submission_is_422_naming_every_bad_field_and_stores_nothing(
    world: World, body: dict[str, Any], expected_locs: list[list[Any]]
) -> None:
    before = world.snapshot()
    for headers in (world.keys.submitter, {**world.keys.submitter, "Idempotency-Key": "k-422"}):
        problem = assert_problem(world.client.post(SUBMISSIONS, headers=headers, json=body), 422)
        assert locs(problem) == sorted(expected_locs, key=str)
        assert all(isinstance(e["msg"], str) and e["msg"] for e in problem["errors"])
    assert world.snapshot() == before


def test_a_note_of_exactly_4000_characters_is_accepted(world: World) -> None:
    body = submission(
        "P01",
        instrument="diary",
        timepoint="week-3",
        responses=DIARY,
        notes={"critical_thoughts": "é" * 4000},
    )
    r = world.client.post(SUBMISSIONS, headers=world.keys.submitter, json=body)
    assert r.status_code == 201, r.text


def test_a_second_submission_for_the_same_slot_is_409_and_stores_nothing(world: World) -> None:
    before = world.snapshot()
    r = world.client.post(
        SUBMISSIONS,
        headers=world.keys.submitter,
        json=submission("P03", responses=with_responses(_1=0)),
    )
    body = assert_problem(r, 409)
    assert "supersedes" in body["detail"]
    assert world.snapshot() == before


@pytest.mark.parametrize("key", ["", "k" * 129], ids=["empty", "129 characters"])
def test_an_idempotency_key_outside_1_to_128_characters_is_refused(world: World, key: str) -> None:
    before = world.snapshot()
    r = world.client.post(
        SUBMISSIONS,
        headers={**world.keys.submitter, "Idempotency-Key": key},
        json=submission("P01", timepoint="follow-up"),
    )
    body = assert_problem(r, 422)
    assert locs(body) == [["header", "Idempotency-Key"]]
    assert world.snapshot() == before


# -- identifiers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "trial_id", ["ab", "CMT-pilot", "-pilot", "cmt_pilot", "a" * 64, "cmt%20pilot"]
)
def test_a_trial_id_outside_the_pattern_is_refused_and_never_stored(
    world: World, trial_id: str
) -> None:
    before = world.snapshot()
    r = world.client.put(
        f"/v1/trials/{trial_id}", headers=world.keys.admin, json={"title": "Bad id"}
    )
    body = assert_problem(r, 422)
    assert locs(body) == [["path", "trial_id"]]
    assert world.snapshot() == before


@pytest.mark.parametrize(
    "participant_id",
    ["jane@example.org", "Jane Doe", "+44 7700 900123", "P" * 65, "P01/../P02", "Zoë"],
)
def test_a_participant_id_outside_the_pattern_can_never_be_enrolled(
    world: World, participant_id: str
) -> None:
    before = world.snapshot()
    r = world.client.post(
        "/v1/trials/cmt-pilot/participants",
        headers=world.keys.coordinator,
        json={"participant_id": participant_id},
    )
    assert locs(assert_problem(r, 422)) == [["body", "participant_id"]]
    assert world.snapshot() == before


def test_a_participant_id_outside_the_pattern_in_a_path_is_refused(world: World) -> None:
    before = world.snapshot()
    for method, suffix, body in (
        ("PATCH", "", {"status": "withdrawn"}),
        ("DELETE", "", None),
        ("GET", "/scores", None),
    ):
        r = world.client.request(
            method,
            f"/v1/trials/cmt-pilot/participants/jane@example.org{suffix}",
            headers=world.keys.coordinator,
            json=body,
        )
        assert locs(assert_problem(r, 422)) == [["path", "participant_id"]]
    assert world.snapshot() == before


def test_an_invalid_trial_definition_names_every_bad_field(world: World) -> None:
    before = world.snapshot()
    r = world.client.put(
        "/v1/trials/cmt-pilot",
        headers=world.keys.admin,
        json={
            "title": "Pilot",
            "coordinator_emails": ["not-an-address"],
            "protocol": {
                "timepoints": ["pre", "post"],
                "schedule": {"hads": ["pre", "later"], "bdi": ["pre"]},
                "comparison": {"pre": "pre", "post": "month-3"},
            },
        },
    )
    body = assert_problem(r, 422)
    # the schema's refusal of the address and the service's of the rest, in one answer: the
    # protocol, and the alert rules a replacement of the existing trial must send
    assert sorted(map(tuple, locs(body))) == [
        ("body", "alert_rules"),
        ("body", "coordinator_emails", 0),
        ("body", "protocol", "comparison", "post"),
        ("body", "protocol", "schedule", "bdi"),
        ("body", "protocol", "schedule", "hads", 1),
        ("body", "protocol", "timing", "pre"),
    ]
    r = world.client.put(
        "/v1/trials/cmt-pilot",
        headers=world.keys.admin,
        json={
            "title": "Pilot",
            "protocol": {
                "timepoints": ["pre", "post"],
                "schedule": {"hads": ["pre", "later"], "bdi": ["pre"]},
                "comparison": {"pre": "pre", "post": "month-3"},
            },
            "alert_rules": [{"instrument": "hads", "item": 15, "at_least": 4}],
        },
    )
    body = assert_problem(r, 422)
    found = locs(body)
    for expected in (
        ["protocol", "schedule", "hads", 1],
        ["protocol", "schedule", "bdi"],
        ["protocol", "comparison", "post"],
        ["alert_rules", 0, "item"],
        ["alert_rules", 0, "at_least"],
    ):
        assert any(loc[-len(expected) :] == expected for loc in found), (expected, found)
    assert world.snapshot() == before


def test_a_trial_body_the_schema_refuses_in_part_is_checked_whole_by_the_service(
    world: World,
) -> None:
    """Schema refusals and the service's (timing, rules, fields a replacement must send) at once."""
    before = world.snapshot()
    protocol = {
        "timepoints": ["baseline", "week-4"],
        "schedule": {"hads": ["baseline", "week-4"]},
        "comparison": {"pre": "baseline", "post": "week-4"},
    }
    # replacing the existing trial: the title is refused by the schema; the protocol leaves
    # baseline without a timing; alert_rules is missing, which a replacement must send
    r = world.client.put(
        "/v1/trials/cmt-pilot",
        headers=world.keys.admin,
        json={"title": "", "coordinator_emails": ["c@example.org"], "protocol": protocol},
    )
    errors = {(tuple(e["loc"]), e["type"]) for e in assert_problem(r, 422)["errors"]}
    assert {loc for loc, _ in errors} == {
        ("body", "title"),
        ("body", "alert_rules"),
        ("body", "protocol", "timing", "baseline"),
    }
    assert (("body", "protocol", "timing", "baseline"), "missing_timing") in errors
    assert (("body", "alert_rules"), "missing") in errors
    # a change: a rule the schema refuses (an item that is not a number) beside a protocol
    # the service refuses; the check across the two (is the rule's instrument scheduled?) is
    # left out
    r = world.client.patch(
        "/v1/trials/cmt-pilot",
        headers=world.keys.admin,
        json={
            "protocol": protocol,
            "alert_rules": [{"instrument": "fscrs", "item": "nine", "at_least": 1}],
        },
    )
    found = {tuple(loc) for loc in locs(assert_problem(r, 422))}
    assert found == {("body", "alert_rules", 0, "item"), ("body", "protocol", "timing", "baseline")}
    # a change of a trial that does not exist: the schema's refusal alone (then the 404)
    r = world.client.patch(
        "/v1/trials/no-such-trial",
        headers=world.keys.admin,
        json={"title": "", "protocol": protocol},
    )
    assert {tuple(loc) for loc in locs(assert_problem(r, 422))} == {("body", "title")}
    assert world.snapshot() == before


# -- bodies -------------------------------------------------------------------------------


def test_a_body_over_256_kib_with_a_content_length_is_413(world: World) -> None:
    before = world.snapshot()
    payload = b'{"participant_id": "P01", "pad": "' + b"x" * LIMIT + b'"}'
    r = world.client.post(
        SUBMISSIONS,
        content=payload,
        headers={**world.keys.submitter, "Content-Type": "application/json"},
    )
    assert_problem(r, 413)
    assert world.snapshot() == before


def test_a_body_over_256_kib_without_a_content_length_is_413(world: World) -> None:
    before = world.snapshot()

    def chunks() -> Iterator[bytes]:
        yield b'{"participant_id": "P01", "pad": "'
        for _ in range(LIMIT // 4096 + 1):
            yield b"x" * 4096
        yield b'"}'

    r = world.client.post(
        SUBMISSIONS,
        content=chunks(),
        headers={**world.keys.submitter, "Content-Type": "application/json"},
    )
    assert "content-length" not in {k.lower() for k in r.request.headers}
    assert_problem(r, 413)
    assert world.snapshot() == before


def test_a_body_just_under_256_kib_is_parsed_and_judged_on_its_content(world: World) -> None:
    body = submission(instrument="diary", responses=DIARY, notes={"critical_thoughts": "x" * 4001})
    body["pad"] = "y" * (LIMIT - 6000)
    r = world.client.post(SUBMISSIONS, headers=world.keys.submitter, json=body)
    problem = assert_problem(r, 422)
    assert ["body", "pad"] in locs(problem)


@pytest.mark.parametrize(
    "content",
    [b"{", b'{"participant_id": "P01",}', b"\xff\xfe", b"null", b"[]", b'"text"', b""],
    ids=["unclosed", "trailing comma", "not utf-8", "null", "array", "string", "empty"],
)
def test_a_body_that_is_not_a_json_object_is_422(world: World, content: bytes) -> None:
    before = world.snapshot()
    r = world.client.post(
        SUBMISSIONS,
        content=content,
        headers={**world.keys.submitter, "Content-Type": "application/json"},
    )
    body = assert_problem(r, 422)
    assert body["errors"]
    assert all(e["loc"][0] == "body" for e in body["errors"])
    assert world.snapshot() == before


@pytest.mark.parametrize(
    ("content_type", "content"),
    [
        ("text/plain", b'{"participant_id": "P01"}'),
        ("application/x-www-form-urlencoded", b"participant_id=P01&instrument=hads"),
        ("application/xml", b"<submission/>"),
    ],
)
def test_a_body_that_is_not_json_content_is_refused(
    world: World, content_type: str, content: bytes
) -> None:
    before = world.snapshot()
    r = world.client.post(
        SUBMISSIONS, content=content, headers={**world.keys.submitter, "Content-Type": content_type}
    )
    assert r.status_code in (415, 422), r.text
    assert_problem(r, r.status_code)
    assert world.snapshot() == before


# -- routing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/v1", "/v2/health", "/v1/trials", "/v1/trials/cmt-pilot/nothing-here"]
)
def test_an_unknown_route_is_a_404_problem(world: World, path: str) -> None:
    body = assert_problem(world.client.get(path, headers=world.keys.coordinator), 404)
    assert path in body["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("DELETE", "/v1/health"),
        ("POST", "/v1/instruments"),
        ("DELETE", "/v1/trials/cmt-pilot"),
        ("GET", "/v1/trials/cmt-pilot/submissions"),
        ("PUT", "/v1/trials/cmt-pilot/participants/P01"),
    ],
)
def test_a_wrong_method_is_a_405_problem_with_allow(world: World, method: str, path: str) -> None:
    before = world.snapshot()
    r = world.client.request(method, path, headers=world.keys.admin)
    assert_problem(r, 405)
    assert r.headers.get("allow")
    assert world.snapshot() == before


# -- failures -----------------------------------------------------------------------------


def test_an_unexpected_failure_is_a_500_problem_without_internals(world: World) -> None:
    broken = build(settings_for_tests(main_table="no-such-table", submissions_table="nor-this-one"))
    client = TestClient(create_app(broken), raise_server_exceptions=False)
    for method, path, body in (
        ("GET", "/v1/trials/cmt-pilot", None),
        ("POST", SUBMISSIONS, submission()),
    ):
        r = client.request(
            method, path, headers={**world.keys.coordinator, "X-Request-Id": "req-42"}, json=body
        )
        problem = assert_problem(r, 500)
        assert "req-42" in problem["detail"]
        for internal in ("no-such-table", "ResourceNotFound", "Exception", "dynamodb", "line "):
            assert internal.lower() not in r.text.lower()
    # the public routes do not touch the tables and keep working
    assert client.get("/v1/health").status_code == 200
