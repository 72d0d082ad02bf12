"""Input a careless or hostile front end can send: never a 500, always a 422 naming the field.

Three classes that used to reach a 500: text that is not Unicode (a lone UTF-16 surrogate, as
JavaScript produces when it cuts a string inside an emoji), dates at the ends of the calendar
(year 1 or 9999 with an offset, which overflow when converted to UTC) and crafted audit
cursors. Each refusal stores nothing (both tables are compared before and after).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import (
    NAMES,
    TrialKeys,
    World,
    assert_problem,
    make_trial,
    moto_world,
    submission,
)
from domain.trial import Slot

TRIAL = "cmt-pilot"
SUBMISSIONS = f"/v1/trials/{TRIAL}/submissions"
DIARY = {str(n): 5 for n in range(1, 15)}
LONE = "\\ud800"  # as it appears in JSON text: a high surrogate with no low one after it


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[World, TrialKeys]]:
    with moto_world() as world:
        keys = make_trial(world.client, world.container, participants=("P01", "P02"))
        r = world.client.post(SUBMISSIONS, headers=keys.submitter, json=submission("P02"))
        assert r.status_code == 201, r.text
        yield world, keys


def snapshot(world: World) -> dict[str, list[Any]]:
    tables = {}
    for table in (NAMES.main_table, NAMES.submissions_table):
        items: list[Any] = []
        for page in (
            world.aws["dynamodb"]
            .get_paginator("scan")
            .paginate(TableName=table, ConsistentRead=True)
        ):
            items += page["Items"]
        tables[table] = sorted(items, key=lambda i: (i["pk"]["S"], i["sk"]["S"]))
    return tables


def raw_json(body: dict[str, Any], replace: dict[str, str]) -> bytes:
    """The body as JSON text with placeholders swapped for raw JSON escapes."""
    text = json.dumps(body)
    for placeholder, escaped in replace.items():
        text = text.replace(placeholder, escaped)
    return text.encode()


def post_raw(world: World, path: str, content: bytes, headers: dict[str, str]) -> Any:
    return world.client.post(
        path, content=content, headers={**headers, "Content-Type": "application/json"}
    )


def error_locs(response: Any) -> list[list[Any]]:
    body = assert_problem(response, 422)
    return sorted((e["loc"] for e in body["errors"]), key=str)


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        (
            submission("P01", "diary", responses=DIARY, notes={"critical_thoughts": "aXXb"}),
            ["body", "notes", "critical_thoughts"],
        ),
        (
            submission("P01", "diary", responses=DIARY, notes={"kXX": "text"}),
            ["body", "notes", "k\\ud800"],
        ),
        (submission("P01", responses={"1XX": 2}), ["body", "responses", "1\\ud800"]),
        (submission("P01", timepoint="week-1XX"), ["body", "timepoint"]),
        (submission("P01", supersedes="01JDXX"), ["body", "supersedes"]),
    ],
    ids=["note-text", "note-key", "response-key", "timepoint", "supersedes"],
)
def test_a_lone_surrogate_anywhere_in_a_submission_is_a_422_naming_the_field(
    hostile: tuple[World, TrialKeys], body: dict[str, Any], loc: list[Any]
) -> None:
    world, keys = hostile
    before = snapshot(world)
    r = post_raw(world, SUBMISSIONS, raw_json(body, {"XX": LONE}), keys.submitter)
    assert loc in error_locs(r)
    assert r.json()["errors"][0]["type"] == "text_not_unicode"
    assert "toWellFormed" in r.json()["errors"][0]["msg"]
    assert snapshot(world) == before


def test_a_lone_surrogate_is_refused_only_after_the_key_is_checked(
    hostile: tuple[World, TrialKeys],
) -> None:
    world, _ = hostile
    body = raw_json(submission("P01", notes={"critical_thoughts": "aXX"}), {"XX": LONE})
    r = post_raw(world, SUBMISSIONS, body, {"Authorization": "Bearer not-a-key"})
    assert_problem(r, 401)


def test_a_surrogate_pair_is_ordinary_text_and_is_stored_as_given(
    hostile: tuple[World, TrialKeys],
) -> None:
    world, keys = hostile
    body = submission(
        "P01", "diary", timepoint="week-2", responses=DIARY, notes={"soothing_thoughts": "XX"}
    )
    r = post_raw(world, SUBMISSIONS, raw_json(body, {"XX": "\\ud83d\\ude00"}), keys.submitter)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(
    ("path", "method", "body", "loc"),
    [
        (f"/v1/trials/{TRIAL}", "put", {"title": "TXX"}, ["body", "title"]),
        (
            f"/v1/trials/{TRIAL}/participants/P01",
            "patch",
            {"status": "withdrawn", "reason": "rXX"},
            ["body", "reason"],
        ),
        (
            f"/v1/trials/{TRIAL}/api-keys",
            "post",
            {"role": "submitter", "label": "lXX"},
            ["body", "label"],
        ),
    ],
    ids=["trial-title", "withdrawal-reason", "key-label"],
)
def test_a_lone_surrogate_in_any_other_body_is_a_422_naming_the_field(
    hostile: tuple[World, TrialKeys], path: str, method: str, body: dict[str, Any], loc: list[Any]
) -> None:
    world, keys = hostile
    headers = keys.admin if method != "patch" else keys.coordinator
    before = snapshot(world)
    r = world.client.request(
        method.upper(),
        path,
        content=raw_json(body, {"XX": LONE}),
        headers={**headers, "Content-Type": "application/json"},
    )
    assert loc in error_locs(r)
    assert snapshot(world) == before


@pytest.mark.parametrize(
    "completed_at",
    [
        "0001-01-01T00:00:00+05:00",  # overflows when converted to UTC
        "9999-12-31T23:59:59-05:00",  # likewise, the other end
        "0001-01-01T00:00:00Z",
        "1999-12-31T23:59:59Z",  # before the earliest plausible completion
        "2026-11-20T10:15:00",  # no offset
        "2026-11-20",  # no time
        "2026-11-20T10:15:00.1234567Z",  # more than microseconds
        "2026-11-20 10:15:00Z",  # a space is not RFC 3339's T
        "2026-13-01T00:00:00Z",
        1_795_685_700,  # a Unix time: numbers are refused
        1_795_685_700.5,
        None,
        True,
    ],
)
def test_a_completed_at_outside_the_documented_rule_is_a_422_naming_it(
    hostile: tuple[World, TrialKeys], completed_at: Any
) -> None:
    world, keys = hostile
    before = snapshot(world)
    body = submission("P01", completed_at=completed_at)
    r = world.client.post(SUBMISSIONS, headers=keys.submitter, json=body)
    assert error_locs(r) == [["body", "completed_at"]]
    assert snapshot(world) == before


@pytest.mark.parametrize(
    "completed_at", ["2026-11-20T10:15:00Z", "2026-11-20T11:15:00.5+01:00", "2000-01-01T00:00:00Z"]
)
def test_a_completed_at_by_the_rule_is_accepted_and_stored_in_utc(
    hostile: tuple[World, TrialKeys], completed_at: str
) -> None:
    world, keys = hostile
    timepoint = {"2026-11-20T10:15:00Z": "week-3", "2000-01-01T00:00:00Z": "week-4"}.get(
        completed_at, "week-5"
    )
    body = submission("P01", "diary", timepoint=timepoint, responses=DIARY)
    body["completed_at"] = completed_at
    r = world.client.post(SUBMISSIONS, headers=keys.submitter, json=body)
    assert r.status_code == 201, r.text
    stored = world.stores.submissions.slot_head(
        trial_id=TRIAL, participant_id="P01", slot=Slot(instrument="diary", timepoint=timepoint)
    )
    assert stored is not None
    assert stored.completed_at.endswith("Z")


@pytest.mark.parametrize(
    ("query", "loc"),
    [
        ("from=0001-01-01T00:00:00%2B05:00", ["query", "from"]),
        ("to=9999-12-31T23:59:59-05:00", ["query", "to"]),
        ("from=1700000000", ["query", "from"]),
        ("to=2026-11-30", ["query", "to"]),
    ],
)
def test_an_audit_range_outside_the_calendar_is_a_422_naming_the_bound(
    hostile: tuple[World, TrialKeys], query: str, loc: list[Any]
) -> None:
    world, keys = hostile
    r = world.client.get(f"/v1/trials/{TRIAL}/audit?{query}", headers=keys.coordinator)
    assert error_locs(r) == [loc]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.mark.parametrize(
    "cursor",
    [
        _b64(b"[" * 1400 + b"]" * 1400),  # nesting deep enough to exhaust the JSON parser
        _b64(b'{"pk": "AUDIT#cmt-pilot", "sk": {"a": 1}}'),
        _b64(b'{"pk": "AUDIT#cmt-pilot", "sk": "0000"}'),  # before the requested range
        _b64(b'{"pk": "AUDIT#cmt-pilot", "sk": "\\uffff\\uffff"}'),  # after it
        _b64(b'{"pk": "AUDIT#cmt-pilot", "sk": "2026-11-26T09:35:00.000Z#\\ud800"}'),
        _b64(b'{"pk": "AUDIT#cmt-pilot", "sk": "2026", "extra": "x"}'),
        _b64(b'{"pk": "AUDIT#cmt-pilot"}'),
        _b64(b"\xff\xfe\x00"),
        _b64(b"null"),
        _b64(b"12"),
        "====",
        "a" * 1999,
    ],
)
def test_a_crafted_audit_cursor_is_a_422_naming_the_cursor(
    hostile: tuple[World, TrialKeys], cursor: str
) -> None:
    world, keys = hostile
    r = world.client.get(
        f"/v1/trials/{TRIAL}/audit",
        params={"cursor": cursor, "from": "2026-01-01T00:00:00Z"},
        headers=keys.coordinator,
    )
    assert error_locs(r) == [["query", "cursor"]]
