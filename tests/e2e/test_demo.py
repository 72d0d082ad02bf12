"""The whole local stack over HTTP: `cmt-collect demo` on an embedded moto server.

One run: the demo seeds its trial, writes what it produced, then serves its stack; the test
queries the demo trial with the printed key, as a newcomer would, and stops it with Ctrl-C
(SIGINT). No terminal is needed.
"""

from __future__ import annotations

import csv
import email
import io
import json
import os
import pathlib
import queue
import re
import signal
import subprocess
import sys
import threading
import xml.etree.ElementTree as ET

import httpx

REPO = pathlib.Path(__file__).resolve().parents[2]
READY = "Ctrl-C stops the demo stack"


def read_until_ready(demo: subprocess.Popen[str], timeout: float) -> str:
    """The demo's output up to the line saying it serves (or its end, if it stops first)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    while True:
        line = lines.get(timeout=timeout)
        if line is None or READY in line:
            return "".join(seen)
        seen.append(line)


def test_the_demo_writes_report_exports_codebooks_and_mails_then_serves_its_trial(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "CMT_"))  # the demo configures its own embedded AWS
    }
    env["CMT_STATE_DIR"] = str(tmp_path)
    errors = (tmp_path / "stderr.txt").open("w")  # a file: a full pipe would stall the demo
    demo = subprocess.Popen(
        [sys.executable, "-m", "local.cli", "demo", "--port", "0"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    try:
        printed = read_until_ready(demo, timeout=300)
        assert demo.poll() is None, (tmp_path / "stderr.txt").read_text()[-3000:] + printed
        assert "seeded 179 submissions for 9 participants" in printed
        base = re.search(r"^serving\s+(http://127\.0\.0\.1:\d+)", printed, re.M).group(1)
        key = re.search(r"coordinator key\s+(\S+)", printed).group(1)
        state = tmp_path / "demo-stack" / "stack.env"
        assert state.is_file()

        # the demo trial answers over the API while the stack serves
        coordinator = {"Authorization": f"Bearer {key}"}
        summary = httpx.get(f"{base}/v1/trials/cmt-demo/summary", headers=coordinator)
        assert summary.status_code == 200, summary.text
        wide = httpx.get(
            f"{base}/v1/trials/cmt-demo/export.csv", params={"layout": "wide"}, headers=coordinator
        )
        assert wide.content == (tmp_path / "demo" / "export-wide.csv").read_bytes()
        assert httpx.get(f"{base}/v1/trials/cmt-demo/summary").status_code == 401

        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0
        assert not state.exists()  # the stack cleaned up after itself
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        errors.close()

    out = tmp_path / "demo"
    report = json.loads((out / "pre-post.json").read_text())
    assert report["participants"]["enrolled"] == 9
    assert report["participants"]["withdrawn"] == 3
    assert report["participants"]["completed"] == 6
    anxiety = next(r for r in report["results"] if r["subscale"] == "anxiety")
    assert anxiety["n_pairs"] == 6
    assert anxiety["direction"] == "decrease"
    assert {e["participant_id"] for e in anxiety["excluded"]} == {"P07", "P08", "P09"}

    figure = ET.fromstring((out / "hads.svg").read_text())  # noqa: S314 - ours
    assert figure.tag.endswith("svg")

    for layout in ("long", "wide"):
        codebook = json.loads((out / f"codebook-{layout}.json").read_text())
        assert codebook["trial_id"] == "cmt-demo"
        assert codebook["layout"] == layout
        header = next(csv.reader(io.StringIO((out / f"export-{layout}.csv").read_text())))
        assert [column["name"] for column in codebook["columns"]] == header
    wide_rows = list(csv.DictReader(io.StringIO((out / "export-wide.csv").read_text())))
    assert len(wide_rows) == 9  # one row per participant

    subjects = sorted(
        str(email.message_from_bytes(p.read_bytes())["Subject"])
        for p in (tmp_path / "demo-stack" / "outbox").glob("*.eml")
    )
    assert len(subjects) == 2  # one safety alert (P02's FSCRS item 9) and one weekly summary
    # the alert's subject is neutral (a lock screen shows it); P02 is named in the body only
    assert any(s.startswith("Safety alert: action needed") for s in subjects)
    assert not any("P02" in s for s in subjects)
    assert any("Weekly summary" in s for s in subjects)
