"""Who may call what: every route of the contract × every kind of caller.

API.md: a missing or unknown key is 401; a valid key outside its role or trial is 403 ("a
submitter key of trial A gets 403 on every route of trial B and on every read route of
trial A"). Admin keys create and update trials and create keys; coordinators do everything
else on their own trial; submitters only submit (and, v1.1, read the trial's
Questionnaires). A participant token (v1.1) reads /v1/me and its questionnaires and submits
for its own participant on the submissions and FHIR routes, and is 403 everywhere else; an
ended token is 401. The route list below is the contract's; expected statuses are derived
from each route's roles, never listed by hand per case.

Authorisation never depends on stored state, so one moto world serves the whole module; a
call that is allowed gets a participant of its own, so the cases do not depend on order.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import (
    HADS_EXAMPLE,
    access_code,
    assert_problem,
    bearer,
    make_trial,
    moto_world,
    participant_token,
    submission,
)
from handlers.settings import DEFAULT_FHIR_BASE
from services.rate_limit import RateLimiter, RatePolicy

OWN, OTHER = "cmt-pilot", "other-trial"
PUBLIC = frozenset({"anyone"})
#: The participant each participant token of the module acts for (in its own trial).
TOKEN_PARTICIPANT = "PTOK"

Body = Callable[[str], Any]


@dataclass(frozen=True)
class Route:
    method: str
    path: str  # {trial} and {pid} are filled in per call
    roles: frozenset[str]
    ok: int
    body: Body | None = None
    needs_participant: bool = False  # an allowed call gets an enrolled participant of its own
    any_trial: bool = False  # a token's own route (/v1/me): its trial is the token's
    ends_token: bool = False  # an allowed call ends its token: a token of its own
    needs_code: bool = False  # the body is a fresh code of a participant of its own

    def url(self, trial_id: str, participant_id: str, **ids: str) -> str:
        """The path with its ids; {export} and {job} are jobs the fixture asked for."""
        return self.path.format(trial=trial_id, pid=participant_id, **ids)

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


WEEKS = [f"week-{n}" for n in range(1, 13)]
DEFAULT_PROTOCOL = {
    "timepoints": [*WEEKS, "follow-up"],
    "schedule": {
        **{i: ["week-1", "week-12", "follow-up"] for i in ("hads", "fscs", "fscrs", "oas", "scs")},
        "sbs": ["week-1", "week-12", "follow-up"],
        "diary": WEEKS,
    },
    "comparison": {"pre": "week-1", "post": "week-12"},
}


def _trial_body(_: str) -> Any:
    """A whole trial: PUT on an existing trial replaces it and needs every field."""
    return {
        "title": "CMT pilot",
        "coordinator_emails": ["coordinator@example.org"],
        "protocol": DEFAULT_PROTOCOL,
        "alert_rules": [{"instrument": "fscrs", "item": 9, "at_least": 3}],
    }


def _fhir_body(pid: str) -> Any:
    """A QuestionnaireResponse to the week-12 HADS (the native route's body is week-1's)."""
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": (
            f"{DEFAULT_FHIR_BASE}/trials/{OWN}/timepoints/week-12/Questionnaire/hads|1"
        ),
        "status": "completed",
        "authored": "2026-11-20T10:15:00Z",
        "subject": {"identifier": {"value": pid}},
        "item": [{"linkId": k, "answer": [{"valueInteger": v}]} for k, v in HADS_EXAMPLE.items()],
    }


def _texts_body(_: str) -> Any:
    return {"items": {str(n): {"text": f"wording {n}"} for n in range(1, 15)}}


PARTICIPANT = frozenset({"participant"})
FRONT_ENDS = frozenset({"participant", "submitter", "coordinator"})

ROUTES = [
    Route("GET", "/v1/health", PUBLIC, 200),
    Route("GET", "/v1/instruments", PUBLIC, 200),
    Route("GET", "/v1/instruments/hads", PUBLIC, 200),
    Route("PUT", "/v1/trials/{trial}", frozenset({"admin"}), 200, _trial_body),
    Route(
        "PATCH", "/v1/trials/{trial}", frozenset({"admin"}), 200, lambda _: {"title": "CMT pilot"}
    ),
    Route("GET", "/v1/trials/{trial}", frozenset({"admin", "coordinator"}), 200),
    Route("GET", "/v1/trials/{trial}/api-keys", frozenset({"admin"}), 200),
    Route(
        "POST",
        "/v1/trials/{trial}/api-keys",
        frozenset({"admin"}),
        201,
        lambda _: {"role": "submitter", "label": "front end"},
    ),
    Route(
        "POST",
        "/v1/trials/{trial}/participants",
        frozenset({"coordinator"}),
        201,
        lambda pid: {"participant_id": pid},
    ),
    Route(
        "PATCH",
        "/v1/trials/{trial}/participants/{pid}",
        frozenset({"coordinator"}),
        200,
        lambda _: {"status": "completed", "reason": "finished the programme"},
        needs_participant=True,
    ),
    Route("GET", "/v1/trials/{trial}/participants", frozenset({"coordinator"}), 200),
    Route(
        "POST",
        "/v1/trials/{trial}/submissions",
        FRONT_ENDS,
        201,
        lambda pid: submission(pid),
        needs_participant=True,
    ),
    Route(
        "GET",
        "/v1/trials/{trial}/participants/{pid}/scores",
        frozenset({"coordinator"}),
        200,
        needs_participant=True,
    ),
    Route("GET", "/v1/trials/{trial}/summary", frozenset({"coordinator"}), 200),
    Route("POST", "/v1/trials/{trial}/reports/pre-post", frozenset({"coordinator"}), 200),
    Route("GET", "/v1/trials/{trial}/reports/pre-post", frozenset({"coordinator"}), 200),
    Route("GET", "/v1/trials/{trial}/export.csv?layout=long", frozenset({"coordinator"}), 200),
    Route("GET", "/v1/trials/{trial}/export.csv?layout=wide", frozenset({"coordinator"}), 200),
    Route("GET", "/v1/trials/{trial}/reports/pre-post/jobs/{job}", frozenset({"coordinator"}), 200),
    Route(
        "POST",
        "/v1/trials/{trial}/exports",
        frozenset({"coordinator"}),
        202,
        lambda _: {"format": "spss", "deidentified": True},
    ),
    Route("GET", "/v1/trials/{trial}/exports", frozenset({"coordinator"}), 200),
    Route("GET", "/v1/trials/{trial}/exports/{export}", frozenset({"coordinator"}), 200),
    Route("GET", "/v1/trials/{trial}/codebook", frozenset({"coordinator"}), 200),
    Route("GET", "/v1/trials/{trial}/alerts", frozenset({"coordinator"}), 200),
    Route(
        "GET",
        "/v1/trials/{trial}/audit?from=2026-01-01T00:00:00Z",
        frozenset({"coordinator"}),
        200,
    ),
    Route(
        "DELETE",
        "/v1/trials/{trial}/participants/{pid}",
        frozenset({"coordinator"}),
        200,
        needs_participant=True,
    ),
    # v1.1: participant access, forms and FHIR
    Route(
        "POST",
        "/v1/trials/{trial}/participants/{pid}/access-codes",
        frozenset({"coordinator"}),
        201,
        needs_participant=True,
    ),
    Route(
        "DELETE",
        "/v1/trials/{trial}/participants/{pid}/tokens",
        frozenset({"coordinator"}),
        200,
        needs_participant=True,
    ),
    Route("POST", "/v1/access/exchange", PUBLIC, 201, needs_code=True),
    Route("GET", "/v1/me", PARTICIPANT, 200, any_trial=True),
    Route("GET", "/v1/me/questionnaires/hads", PARTICIPANT, 200, any_trial=True),
    Route("DELETE", "/v1/me/token", PARTICIPANT, 200, any_trial=True, ends_token=True),
    Route(
        "PUT", "/v1/trials/{trial}/instrument-texts/hads", frozenset({"admin"}), 201, _texts_body
    ),
    Route(
        "GET",
        "/v1/trials/{trial}/questionnaires/hads",
        frozenset({"coordinator", "submitter"}),
        200,
    ),
    Route(
        "POST",
        "/v1/trials/{trial}/fhir/QuestionnaireResponse",
        FRONT_ENDS,
        201,
        _fhir_body,
        needs_participant=True,
    ),
]


@dataclass(frozen=True)
class Caller:
    name: str
    role: str | None  # None: no valid key
    trial: str | None  # the trial the key belongs to (admin keys: every trial)


CALLERS = [
    Caller("admin", "admin", None),
    Caller("coordinator of this trial", "coordinator", OWN),
    Caller("coordinator of another trial", "coordinator", OTHER),
    Caller("submitter of this trial", "submitter", OWN),
    Caller("submitter of another trial", "submitter", OTHER),
    Caller("participant token of this trial", "participant", OWN),
    Caller("participant token of another trial", "participant", OTHER),
    Caller("no key", None, None),
    Caller("unknown key", None, None),
    Caller("basic credentials", None, None),
    Caller("revoked participant token", None, None),
    Caller("forged participant token", None, None),
]


def expected_status(route: Route, caller: Caller) -> int:
    if route.roles is PUBLIC:
        return route.ok
    if caller.role is None:
        return 401
    if caller.role not in route.roles:
        return 403
    if route.any_trial:
        return route.ok
    if caller.role != "admin" and caller.trial != OWN:
        return 403
    return route.ok


@dataclass
class World:
    client: TestClient
    headers: dict[str, dict[str, str]]
    coordinator: dict[str, str]  # of the trial under test, to prepare allowed calls
    coordinators: dict[str, dict[str, str]]  # of each trial, by trial id
    counter: Iterator[int]
    ids: dict[str, str]  # an export job and a report job of the trial under test


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with moto_world() as base:
        container, client = base.container, base.client
        # the matrix exchanges a few dozen codes from one address: not what it is about
        container.exchange_by_source = RateLimiter(RatePolicy(per_second=100, burst=1000))
        container.exchange_all = RateLimiter(RatePolicy(per_second=100, burst=1000))
        admin_key = container.keys.create(role="admin", trial_id="*", label="admin").api_key
        own = make_trial(client, container, OWN, participants=(), admin_key=admin_key)
        other = make_trial(client, container, OTHER, participants=(), admin_key=admin_key)
        for keys in (own, other):
            published = client.post(
                f"/v1/trials/{keys.trial_id}/reports/pre-post", headers=keys.coordinator
            )
            assert published.status_code == 200, published.text
        export = client.post(
            f"/v1/trials/{OWN}/exports", headers=own.coordinator, json={"format": "csv-long"}
        )
        report = client.post(
            f"/v1/trials/{OWN}/reports/pre-post",
            headers={**own.coordinator, "Prefer": "respond-async"},
        )
        assert (export.status_code, report.status_code) == (202, 202), (export.text, report.text)
        base.jobs.drain()
        ids = {"export": export.json()["export_id"], "job": report.json()["job_id"]}
        tokens = {}
        for keys in (own, other):
            for pid in (TOKEN_PARTICIPANT, "PREV"):
                enrolled = client.post(
                    f"/v1/trials/{keys.trial_id}/participants",
                    headers=keys.coordinator,
                    json={"participant_id": pid},
                )
                assert enrolled.status_code == 201, enrolled.text
            tokens[keys.trial_id] = participant_token(
                client, keys.coordinator, keys.trial_id, TOKEN_PARTICIPANT
            )
        revoked = participant_token(client, own.coordinator, OWN, "PREV")
        r = client.delete(f"/v1/trials/{OWN}/participants/PREV/tokens", headers=own.coordinator)
        assert r.json()["tokens_revoked"] == 1, r.text
        forged = revoked["Authorization"][:-4] + "AAAA"
        headers = {
            "admin": bearer(admin_key),
            "coordinator of this trial": own.coordinator,
            "coordinator of another trial": other.coordinator,
            "submitter of this trial": own.submitter,
            "submitter of another trial": other.submitter,
            "no key": {},
            "unknown key": bearer("cmt_this-key-was-never-issued"),
            "basic credentials": {"Authorization": "Basic YWRtaW46YWRtaW4="},
            "participant token of this trial": tokens[OWN],
            "participant token of another trial": tokens[OTHER],
            "revoked participant token": revoked,
            "forged participant token": {"Authorization": forged},
        }
        yield World(
            client,
            headers,
            own.coordinator,
            {OWN: own.coordinator, OTHER: other.coordinator},
            itertools.count(1),
            ids,
        )


@pytest.mark.parametrize("caller", CALLERS, ids=lambda c: c.name)
@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_each_route_answers_each_caller_as_the_role_table_says(
    world: World, route: Route, caller: Caller
) -> None:
    expected = expected_status(route, caller)
    participant_id = f"P{next(world.counter):03d}"
    headers = world.headers[caller.name]
    if caller.role == "participant":
        # a token submits for its own participant (another one's is 403: tested apart)
        participant_id = TOKEN_PARTICIPANT
    elif expected == route.ok and (route.needs_participant or route.needs_code):
        enrolled = world.client.post(
            f"/v1/trials/{OWN}/participants",
            headers=world.coordinator,
            json={"participant_id": participant_id},
        )
        assert enrolled.status_code == 201, enrolled.text
    if expected == route.ok and route.ends_token:
        assert caller.trial is not None
        headers = participant_token(
            world.client, world.coordinators[caller.trial], caller.trial, TOKEN_PARTICIPANT
        )
    body = route.body(participant_id) if route.body else None
    if route.needs_code:
        pid = participant_id if caller.role != "participant" else f"C{next(world.counter):03d}"
        if caller.role == "participant":
            enrolled = world.client.post(
                f"/v1/trials/{OWN}/participants",
                headers=world.coordinator,
                json={"participant_id": pid},
            )
            assert enrolled.status_code == 201, enrolled.text
        body = {"code": access_code(world.client, world.coordinator, OWN, pid)}
    r = world.client.request(
        route.method, route.url(OWN, participant_id, **world.ids), headers=headers, json=body
    )
    if expected == route.ok:
        assert r.status_code == expected, r.text
        return
    if expected == 401:
        assert r.headers.get("www-authenticate", "").startswith("Bearer")
    if "/fhir/" in route.path:
        # the FHIR route refuses with an OperationOutcome of the same meaning
        assert r.status_code == expected, r.text
        assert r.headers["content-type"] == "application/fhir+json"
        (issue,) = r.json()["issue"]
        assert issue["code"] == {401: "login", 403: "forbidden"}[expected]
        detail = issue["details"]["text"]
    else:
        detail = assert_problem(r, expected)["detail"]
    if caller.name == "no key":
        # told which credential the route takes
        assert ("API key" in detail) == bool(route.roles - {"participant"}), detail
        assert ("participant token" in detail) == ("participant" in route.roles), detail
    # a refusal names neither the key nor anything stored
    assert "cmt_" not in detail
    assert "cmtp_" not in detail


def test_a_submitter_key_is_refused_on_every_route_of_another_trial_and_every_read_of_its_own(
    world: World,
) -> None:
    """The sentence of the contract, checked directly against the route list."""
    submitter = world.headers["submitter of another trial"]
    for route in ROUTES:
        if route.roles is PUBLIC or route.any_trial:
            continue
        r = world.client.request(
            route.method,
            route.url(OWN, "P999", **world.ids),
            headers=submitter,
            json=route.body("P999") if route.body else None,
        )
        assert r.status_code == 403, (str(route), r.text)
        # v1.1: a submitter reads its own trial's Questionnaires (a front end renders them)
        if route.method == "GET" and "submitter" not in route.roles:
            r = world.client.get(route.url(OTHER, "P999", **world.ids), headers=submitter)
            assert_problem(r, 403)


def test_a_refused_caller_learns_nothing_about_the_body(world: World) -> None:
    for caller, status in (("no key", 401), ("submitter of another trial", 403)):
        headers = world.headers[caller]
        for content in (b"{}", b'{"participant_id": "a@b"}', b"{not json", b"[1, 2"):
            r = world.client.post(
                f"/v1/trials/{OWN}/submissions",
                content=content,
                headers={**headers, "Content-Type": "application/json"},
            )
            assert_problem(r, status)


def test_an_unknown_trial_is_403_to_a_coordinator_and_404_to_an_admin(world: World) -> None:
    assert_problem(
        world.client.get("/v1/trials/no-such-trial/summary", headers=world.coordinator), 403
    )
    assert_problem(
        world.client.get("/v1/trials/no-such-trial", headers=world.headers["admin"]), 404
    )
