"""`cmt-collect demo`: a synthetic 12-week trial like the pilot study, through the real API.

Nine enrolled, three withdrawn, six completers; every instrument at week-1 and week-12,
weekly diaries, one correction, one safety alert. Runs the stream pump, the report and the
weekly summary, writes the report, figures, exports and codebooks to ``.local/demo/`` and
prints where everything is; then keeps its stack serving (admin and coordinator keys printed)
until Ctrl-C, so the demo trial can be queried (``--no-serve`` exits instead). Synthetic values
only (seeded random numbers), never real data.
"""

from __future__ import annotations

import json
import pathlib
import random
import socket
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from domain.instruments import CATALOGUE
from local.stack import LocalStack, free_port

TRIAL = "cmt-demo"
QUESTIONNAIRES = ("hads", "fscs", "fscrs", "oas", "scs", "sbs")
WITHDRAWN = {
    "P07": ("week-2", "crises made attending too hard"),
    "P08": ("week-4", "physically unwell"),
    "P09": ("week-10", "felt better and moved on"),
}


def _responses(instrument_id: str, severity: float, rng: random.Random) -> dict[str, int]:
    """Item values around `severity` (0 = well, 1 = unwell) in the instrument's range."""
    instrument = CATALOGUE.get(instrument_id)
    low, high = instrument.response_min, instrument.response_max
    improving_up = {s.id for s in instrument.subscales if s.improvement == "increase"}
    values = {}
    for subscale in instrument.subscales:
        level = 1 - severity if subscale.id in improving_up else severity
        for item in subscale.items:
            raw = low + (high - low) * min(1.0, max(0.0, rng.gauss(level, 0.15)))
            values[str(item)] = round(raw)
    return values


class PoliteTransport(httpx.BaseTransport):
    """A client as a front end should be: on 429 it waits `Retry-After` and tries again."""

    def __init__(self, inner: httpx.BaseTransport, *, attempts: int = 10) -> None:
        self.inner = inner
        self.attempts = attempts

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        for _ in range(self.attempts - 1):
            response = self.inner.handle_request(request)
            if response.status_code != 429:
                return response
            response.read()
            response.close()
            time.sleep(float(response.headers.get("Retry-After", "1")))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def seed(client: httpx.Client, admin_key: str, rng: random.Random) -> dict[str, Any]:
    admin = {"Authorization": f"Bearer {admin_key}"}
    r = client.put(
        f"/v1/trials/{TRIAL}",
        headers=admin,
        json={
            "title": "CMT demo group (synthetic data)",
            "coordinator_emails": ["coordinator@example.org"],
        },
    )
    r.raise_for_status()
    coordinator = client.post(
        f"/v1/trials/{TRIAL}/api-keys",
        headers=admin,
        json={"role": "coordinator", "label": "demo coordinator"},
    ).json()
    submitter = client.post(
        f"/v1/trials/{TRIAL}/api-keys",
        headers=admin,
        json={"role": "submitter", "label": "demo web app"},
    ).json()
    coord = {"Authorization": f"Bearer {coordinator['api_key']}"}
    sub = {"Authorization": f"Bearer {submitter['api_key']}"}
    start = datetime.now(UTC) - timedelta(weeks=12)
    posted = 0
    for n in range(1, 10):
        pid = f"P{n:02d}"
        client.post(
            f"/v1/trials/{TRIAL}/participants", headers=coord, json={"participant_id": pid}
        ).raise_for_status()
        last_week = int(WITHDRAWN[pid][0].split("-")[1]) if pid in WITHDRAWN else 12
        baseline = rng.uniform(0.55, 0.85)
        for week in range(1, last_week + 1):
            when = (start + timedelta(weeks=week - 1, days=4)).strftime("%Y-%m-%dT10:00:00Z")
            severity = baseline - (baseline - 0.25) * (week - 1) / 11
            instruments = ["diary"] + (list(QUESTIONNAIRES) if week in (1, 12) else [])
            for instrument in instruments:
                body: dict[str, Any] = {
                    "participant_id": pid,
                    "instrument": instrument,
                    "timepoint": f"week-{week}",
                    "completed_at": when,
                    "responses": _responses(instrument, severity, rng),
                }
                if instrument == "diary" and week == 1:
                    body["notes"] = {"critical_thoughts": "(synthetic) I should have done better"}
                if instrument == "fscrs":
                    # only P02 meets the default safety-alert rule (FSCRS item 9 at 3 or more)
                    body["responses"]["9"] = 3 if (pid == "P02" and week == 1) else 1
                if pid == "P05" and instrument == "hads" and week == 12:
                    body["responses"]["4"] = None  # a skipped item: prorated
                r = client.post(
                    f"/v1/trials/{TRIAL}/submissions", headers=sub, json=body, params=None
                )
                r.raise_for_status()
                posted += 1
                if pid == "P03" and instrument == "hads" and week == 12:
                    corrected = {
                        **body,
                        "responses": {**body["responses"], "1": 0},
                        "supersedes": r.json()["submission_id"],
                    }
                    client.post(
                        f"/v1/trials/{TRIAL}/submissions", headers=coord, json=corrected
                    ).raise_for_status()
                    posted += 1
        if pid in WITHDRAWN:
            client.patch(
                f"/v1/trials/{TRIAL}/participants/{pid}",
                headers=coord,
                json={"status": "withdrawn", "reason": WITHDRAWN[pid][1]},
            ).raise_for_status()
        else:
            client.patch(
                f"/v1/trials/{TRIAL}/participants/{pid}",
                headers=coord,
                json={"status": "completed"},
            ).raise_for_status()
    return {"coordinator_key": coordinator["api_key"], "posted": posted}


def available_port(wanted: int) -> int:
    """``wanted`` if it is free on loopback, else any free port (0 asks for any)."""
    if wanted:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", wanted))
            except OSError:
                print(f"port {wanted} is in use: serving the demo on another one", flush=True)
            else:
                return wanted
    return free_port()


def run_demo(state_dir: pathlib.Path, *, port: int = 8000, serve: bool = True) -> int:
    """Seed the demo trial, write what it produced to ``state_dir/demo`` and, with ``serve``,
    keep its stack serving on ``port`` until Ctrl-C."""
    import os

    import uvicorn

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # keep the demo's output readable
    # the seeding posts a whole trial in seconds from one key: let its own stack take it
    os.environ.setdefault("CMT_KEY_REQUESTS_PER_SECOND", "500")
    os.environ.setdefault("CMT_KEY_REQUEST_BURST", "1000")

    from handlers.api_app import create_app
    from handlers.settings import get_settings
    from handlers.wiring import build
    from local.cors import ALLOWED_ORIGINS_VARIABLE, behind_http_api

    stack = LocalStack(state_dir=state_dir / "demo-stack", api_port=available_port(port))
    stack.start_aws()
    stack.create_resources()
    admin_key = stack.bootstrap_admin(None)
    pump = stack.start_pump(interval=0.2)
    container = build(get_settings())
    server = uvicorn.Server(
        uvicorn.Config(
            behind_http_api(
                create_app(container),
                allowed_origins=os.environ.get(ALLOWED_ORIGINS_VARIABLE, ""),
            ),
            host="127.0.0.1",
            port=stack.api_port,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{stack.api_port}"
    try:
        with httpx.Client(
            base_url=base, timeout=30, transport=PoliteTransport(httpx.HTTPTransport())
        ) as client:
            _wait_until_healthy(client, thread)
            seeded = seed(client, admin_key, random.Random(20061))
            print(f"seeded {seeded['posted']} submissions for 9 participants", flush=True)
            pump.drain()
            coord = {"Authorization": f"Bearer {seeded['coordinator_key']}"}
            report = client.post(f"/v1/trials/{TRIAL}/reports/pre-post", headers=coord).json()
            summary = container.weekly.run(container.trials.get(TRIAL))
            out = (state_dir / "demo").resolve()
            out.mkdir(parents=True, exist_ok=True)
            (out / "pre-post.json").write_text(json.dumps(report, indent=2))
            for layout in ("long", "wide"):
                export = client.get(
                    f"/v1/trials/{TRIAL}/export.csv", params={"layout": layout}, headers=coord
                )
                export.raise_for_status()
                (out / f"export-{layout}.csv").write_bytes(export.content)  # CRLF kept
                codebook = client.get(
                    f"/v1/trials/{TRIAL}/codebook", params={"layout": layout}, headers=coord
                )
                codebook.raise_for_status()
                (out / f"codebook-{layout}.json").write_text(json.dumps(codebook.json(), indent=2))
            s3 = stack.clients()["s3"]
            figures = {}
            for instrument, uri in report["artifacts"]["figures"].items():
                key = uri.split("/", 3)[3]
                path = out / f"{instrument}.svg"
                path.write_bytes(
                    s3.get_object(Bucket=stack.names.reports_bucket, Key=key)["Body"].read()
                )
                figures[instrument] = path
            hads = next(r for r in report["results"] if r["subscale"] == "anxiety")
            mails = sorted(stack.outbox_dir.glob("*.eml"))
            print(
                "\n".join(
                    [
                        f"report      {report['artifacts']['json']}",
                        f"            copy: {out / 'pre-post.json'}",
                        f"            HADS anxiety: n={hads['n_pairs']} "
                        f"z={hads['wilcoxon']['z']:.4f} "
                        f"p={hads['wilcoxon']['p_two_sided']:.4f} ({hads['direction']})",
                        f"figures     {figures.get('hads')} (and {len(figures) - 1} more in {out})",
                        f"exports     {out / 'export-long.csv'}, {out / 'export-wide.csv'}",
                        f"codebooks   {out / 'codebook-long.json'}, {out / 'codebook-wide.json'}",
                        f"e-mails     {len(mails)} in {stack.outbox_dir} "
                        f"(weekly summary to {len(summary.sent_to)} coordinator(s), safety alerts)",
                        f"stream      {pump.stats.records} records delivered"
                        f" in {pump.stats.batches} batches",
                    ]
                ),
                flush=True,
            )
        if serve:
            state = stack.write_state()
            print(_serving(base, admin_key, seeded["coordinator_key"], state), flush=True)
            _wait_for_ctrl_c()
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        stack.stop()
    return 0


def _wait_until_healthy(client: httpx.Client, server_thread: threading.Thread) -> None:
    for _ in range(300):
        try:
            if client.get("/v1/health").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if not server_thread.is_alive():
            break
        threading.Event().wait(0.1)
    raise SystemExit(f"the demo's API did not come up on {client.base_url}")


def _serving(base: str, admin_key: str, coordinator_key: str, state: pathlib.Path) -> str:
    auth = f'-H "Authorization: Bearer {coordinator_key}"'
    launched = pathlib.Path(sys.argv[0])
    cli = launched.resolve() if launched.name == "cmt-collect" else "cmt-collect"
    trial = f"{base}/v1/trials/{TRIAL}"
    return "\n".join(
        [
            f"serving     {base}   (docs: {base}/docs)",
            f"  admin key        {admin_key}",
            f"  coordinator key  {coordinator_key}   (trial {TRIAL})",
            f"  state            {state}   (for the CLI: CMT_STATE_DIR={state.parent} {cli}"
            f" report --trial {TRIAL})",
            f"  try              curl -s {trial}/summary {auth}",
            f"                   curl -s '{trial}/export.csv?layout=wide' {auth}",
            f"                   curl -s '{trial}/codebook?layout=wide' {auth}",
            f"                   curl -s {trial}/participants/P02/scores {auth}",
            "Ctrl-C stops the demo stack (everything in it is in memory).",
        ]
    )


def _wait_for_ctrl_c() -> None:
    import signal

    # Ctrl-C stops the demo even when it was started with SIGINT ignored or blocked (both are
    # inherited through exec: a shell's background job, or a parent that masked it)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("\nstopping the demo stack", flush=True)
