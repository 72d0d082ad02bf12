"""Fuzzing the input classes a schema-driven fuzzer never generates: none may reach a 5xx.

schemathesis (test_fuzz_api.py) draws from the OpenAPI schema, so it sends well-formed
Unicode and dates its formats allow. These properties send what real clients get wrong:
lone UTF-16 surrogates and control characters in every string of a submission (keys too),
datetimes across the whole calendar with any offset (and numbers, and near-misses of the
format), and audit cursors that are random bytes, random JSON or forged keys. Each case must
be answered below 500, and a 4xx as problem+json. The runs are seeded and bounded; the module
prints how many cases ran and the statuses seen.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import PROBLEM, TrialKeys, World, make_trial, moto_world, submission

TRIAL = "cmt-pilot"
SUBMISSIONS = f"/v1/trials/{TRIAL}/submissions"
DIARY = {str(n): 5 for n in range(1, 15)}
FUZZ = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
STATUSES: Counter[int] = Counter()
CASES: Counter[str] = Counter()


@pytest.fixture(scope="module")
def hostile() -> Iterator[tuple[World, TrialKeys]]:
    with moto_world() as world:
        keys = make_trial(world.client, world.container, participants=("P01",))
        yield world, keys
    print(
        f"\nhostile-input fuzz: {sum(CASES.values())} cases ({dict(sorted(CASES.items()))}); "
        f"statuses {dict(sorted(STATUSES.items()))}"
    )
    assert not [s for s in STATUSES if s >= 500]


def check(kind: str, response: Any) -> None:
    CASES[kind] += 1
    STATUSES[response.status_code] += 1
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert response.headers["content-type"].startswith(PROBLEM)
        body = response.json()
        assert body["status"] == response.status_code


# lone surrogates (category Cs) and C0/C1 controls, mixed with ordinary text
bad_text = st.text(
    alphabet=st.one_of(
        st.characters(categories=["Cs"]),
        st.characters(categories=["Cc"]),
        st.characters(categories=["Lu", "Ll", "Nd", "So"]),
    ),
    min_size=1,
    max_size=12,
)
STRING_FIELDS = ("participant_id", "instrument", "instrument_version", "timepoint", "supersedes")


@st.composite
def submissions_with_bad_text(draw: st.DrawFn) -> dict[str, Any]:
    diary = draw(st.booleans())
    body = submission(
        "P01",
        "diary" if diary else "hads",
        timepoint=f"week-{draw(st.integers(2, 12))}" if diary else "week-12",
        **({"responses": dict(DIARY)} if diary else {}),
    )
    where = draw(st.sampled_from([*STRING_FIELDS, "note-value", "note-key", "response-key"]))
    text = draw(bad_text)
    if where == "note-value":
        body["notes"] = {"critical_thoughts": "before " + text}
    elif where == "note-key":
        body["notes"] = {text: "a note"}
    elif where == "response-key":
        body["responses"] = {**body["responses"], text: 1}
    else:
        body[where] = text
    return body


@FUZZ
@given(body=submissions_with_bad_text())
def test_text_that_is_not_unicode_or_holds_controls_never_reaches_a_5xx(
    hostile: tuple[World, TrialKeys], body: dict[str, Any]
) -> None:
    world, keys = hostile
    # ensure_ascii writes a lone surrogate as the \ud8xx escape a JavaScript client would send
    raw = json.dumps(body, ensure_ascii=True).encode()
    r = world.client.post(
        SUBMISSIONS, content=raw, headers={**keys.submitter, "Content-Type": "application/json"}
    )
    check("text", r)
    if r.status_code == 201:
        # accepted text was well-formed Unicode, and is stored exactly as sent
        note = (body.get("notes") or {}).get("critical_thoughts", "")
        assert not any(0xD800 <= ord(c) <= 0xDFFF for c in note)


offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
calendar = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59), timezones=offsets
).map(lambda moment: moment.isoformat())
near_misses = st.one_of(
    calendar.map(lambda text: text[:19]),  # offset dropped
    calendar.map(lambda text: text.replace("T", " ")),
    calendar.map(lambda text: text + "Z"),
    st.integers(min_value=-(2**63), max_value=2**63),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.none(),
)
any_datetime = st.one_of(calendar, near_misses)


@FUZZ
@given(completed_at=any_datetime, week=st.integers(2, 12))
def test_a_completed_at_from_anywhere_in_the_calendar_never_reaches_a_5xx(
    hostile: tuple[World, TrialKeys], completed_at: Any, week: int
) -> None:
    world, keys = hostile
    body = submission("P01", "diary", timepoint=f"week-{week}", responses=dict(DIARY))
    body["completed_at"] = completed_at
    raw = json.dumps(body, allow_nan=True).encode()  # NaN/Infinity: what JSON.parse refuses
    r = world.client.post(
        SUBMISSIONS, content=raw, headers={**keys.submitter, "Content-Type": "application/json"}
    )
    check("completed_at", r)
    if r.status_code == 201:
        stored = datetime.fromisoformat(r.json()["received_at"].replace("Z", "+00:00"))
        assert stored.tzinfo is not None
        assert stored.astimezone(UTC).year >= 2000


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20)),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)
forged_keys = st.fixed_dictionaries(
    {"pk": st.sampled_from([f"AUDIT#{TRIAL}", "AUDIT#other", "TRIALS", ""]), "sk": json_values}
)
cursors = st.one_of(
    st.binary(max_size=300).map(lambda raw: base64.urlsafe_b64encode(raw).decode()),
    st.one_of(json_values, forged_keys).map(
        lambda value: base64.urlsafe_b64encode(json.dumps(value).encode()).decode()
    ),
    st.text(max_size=80),
    st.integers(1, 1500).map(
        lambda depth: base64.urlsafe_b64encode(b"[" * depth + b"]" * depth).decode()
    ),
)


@FUZZ
@given(cursor=cursors, start=st.one_of(st.none(), calendar), end=st.one_of(st.none(), calendar))
def test_an_audit_query_with_any_cursor_and_range_never_reaches_a_5xx(
    hostile: tuple[World, TrialKeys], cursor: str, start: str | None, end: str | None
) -> None:
    world, keys = hostile
    params = {"cursor": cursor, "limit": "2"}
    if start:
        params["from"] = start
    if end:
        params["to"] = end
    r = world.client.get(f"/v1/trials/{TRIAL}/audit", params=params, headers=keys.coordinator)
    check("cursor", r)
