"""The whole local stack over HTTP: `cmt-collect demo` on an embedded moto server."""

from __future__ import annotations

import email
import json
import os
import pathlib
import subprocess
import sys
import xml.etree.ElementTree as ET

REPO = pathlib.Path(__file__).resolve().parents[2]


def test_the_demo_runs_the_pipeline_and_leaves_a_report_figures_and_mails(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "CMT_"))  # the demo configures its own embedded AWS
    }
    env["CMT_STATE_DIR"] = str(tmp_path)
    run = subprocess.run(
        [sys.executable, "-m", "handlers.cli", "demo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "seeded 179 submissions for 9 participants" in run.stdout

    report = json.loads((tmp_path / "demo" / "pre-post.json").read_text())
    assert report["participants"]["enrolled"] == 9
    assert report["participants"]["withdrawn"] == 3
    assert report["participants"]["completed"] == 6
    anxiety = next(r for r in report["results"] if r["subscale"] == "anxiety")
    assert anxiety["n_pairs"] == 6 and anxiety["direction"] == "decrease"
    assert {e["participant_id"] for e in anxiety["excluded"]} == {"P07", "P08", "P09"}

    figure = ET.fromstring((tmp_path / "demo" / "hads.svg").read_text())  # noqa: S314 - ours
    assert figure.tag.endswith("svg")

    subjects = sorted(
        str(email.message_from_bytes(p.read_bytes())["Subject"])
        for p in (tmp_path / "demo-stack" / "outbox").glob("*.eml")
    )
    assert len(subjects) == 2  # one safety alert (P02's FSCRS item 9) and one weekly summary
    # the alert's subject is neutral (a lock screen shows it); P02 is named in the body only
    assert any(s.startswith("Safety alert: action needed") for s in subjects)
    assert not any("P02" in s for s in subjects)
    assert any("Weekly summary" in s for s in subjects)
