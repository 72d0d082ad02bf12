"""One structured JSON log line per request: request id, route template, status, latency."""

from __future__ import annotations

import json
import logging

from conftest import make_trial, submission


def request_lines(captured: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in captured.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("message") == "request"]


def captured(capfd, caplog) -> str:
    """What the JSON logger wrote (to the process's stdout) plus any records pytest kept."""
    out, _ = capfd.readouterr()
    kept = [
        json.dumps({"message": r.getMessage(), **r.__dict__}, default=str) for r in caplog.records
    ]
    return out + "\n" + "\n".join(kept)


def test_each_request_logs_its_id_route_template_status_and_latency_but_no_body(
    client, container, capfd, caplog
):
    caplog.set_level(logging.INFO)
    keys = make_trial(client, container)
    capfd.readouterr()
    caplog.clear()
    marker = "unique-marker-4711"
    body = submission(instrument="diary", responses={str(n): 5 for n in range(1, 15)})
    body["notes"] = {"critical_thoughts": marker}
    r = client.post(
        "/v1/trials/cmt-pilot/submissions",
        headers={**keys.submitter, "X-Request-Id": "req-123"},
        json=body,
    )
    assert r.status_code == 201, r.text
    out = captured(capfd, caplog)
    (line, *_) = request_lines(out)
    assert line["request_id"] == "req-123"
    assert line["route"] == "/v1/trials/{trial_id}/submissions"
    assert line["status"] == 201
    assert isinstance(line["latency_ms"], float)
    assert marker not in out
    assert keys.submitter["Authorization"].split()[1] not in out
