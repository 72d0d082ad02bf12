"""The embedded local stack: moto in server mode inside this process, the API on loopback,
the stream pump and both schedules. The same handler code as on AWS, configured only by
environment (AWS_ENDPOINT_URL points boto3 at the embedded server).
"""

from __future__ import annotations

import logging
import os
import pathlib
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from local.pump import StreamPump
from local.template import LocalNames

REGION = "eu-west-2"
DEFAULT_SENDER = "cmt-collect@localhost.localdomain"
STATE_FILE = "stack.env"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def next_nightly(now: datetime) -> datetime:
    """Next 02:00 UTC (the template's cron(0 2 * * ? *))."""
    run = now.replace(hour=2, minute=0, second=0, microsecond=0)
    return run if run > now else run + timedelta(days=1)


def next_monday_0800(now: datetime) -> datetime:
    """Next Monday 08:00 UTC (the template's cron(0 8 ? * MON *))."""
    run = (now + timedelta(days=(7 - now.weekday()) % 7)).replace(
        hour=8, minute=0, second=0, microsecond=0
    )
    return run if run > now else run + timedelta(days=7)


@dataclass
class Schedule:
    name: str
    next_run: Callable[[datetime], datetime]
    job: Callable[[], Any]
    due: datetime | None = None


@dataclass
class LocalStack:
    state_dir: pathlib.Path = field(default_factory=lambda: pathlib.Path(".local"))
    api_port: int = 8000
    aws_port: int = 0
    names: LocalNames = field(default_factory=LocalNames)
    sender: str = DEFAULT_SENDER
    endpoint: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    pump: StreamPump | None = None
    _server: Any = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    @property
    def outbox_dir(self) -> pathlib.Path:
        return (self.state_dir / "outbox").resolve()

    def start_aws(self) -> str:
        from moto.server import ThreadedMotoServer

        from local.moto_atomic import make_dynamodb_atomic

        make_dynamodb_atomic()
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        port = self.aws_port or free_port()
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self._server.start()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "CMT_TABLE_NAME": self.names.main_table,
            "CMT_SUBMISSIONS_TABLE_NAME": self.names.submissions_table,
            "CMT_REPORTS_BUCKET": self.names.reports_bucket,
            "CMT_DLQ_NAME": self.names.dead_letter_queue,
            "CMT_MAIL_SENDER": self.sender,
            "CMT_OUTBOX_DIR": str(self.outbox_dir),
            "CMT_API_BASE_URL": f"http://127.0.0.1:{self.api_port}",
        }
        os.environ.update(self.env)
        return self.endpoint

    def clients(self) -> dict[str, Any]:
        import boto3

        from local.world import aws_clients

        return aws_clients(boto3.session.Session(region_name=REGION))

    def create_resources(self) -> None:
        from local.world import create_resources

        create_resources(self.clients(), names=self.names, sender=self.sender)

    def dead_letter_queue_url(self) -> str:
        return str(
            self.clients()["sqs"].get_queue_url(QueueName=self.names.dead_letter_queue)["QueueUrl"]
        )

    def bootstrap_admin(self, key: str | None) -> str:
        from handlers.settings import get_settings
        from handlers.wiring import build

        container = build(get_settings())
        if key:
            container.keys.install(api_key=key, role="admin", trial_id="*", label="bootstrap")
            return key
        return container.keys.create(role="admin", trial_id="*", label="bootstrap").api_key

    def start_pump(self, interval: float = 0.5) -> StreamPump:
        from handlers import score_stream

        c = self.clients()
        self.pump = StreamPump(
            streams_client=c["dynamodbstreams"],
            dynamodb_client=c["dynamodb"],
            table_name=self.names.submissions_table,
            handler=score_stream.handler,
            sqs_client=c["sqs"],
            dead_letter_queue_url=self.dead_letter_queue_url(),
            region=REGION,
        )
        self.pump.start(interval)
        return self.pump

    def schedules(self) -> list[Schedule]:
        def report() -> Any:
            from handlers import prepost_report

            return prepost_report.handler(scheduled_event("prepost-report"), None)

        def weekly() -> Any:
            from handlers import weekly_summary

            return weekly_summary.handler(scheduled_event("weekly-summary"), None)

        return [
            Schedule("nightly pre/post report", next_nightly, report),
            Schedule("weekly summary", next_monday_0800, weekly),
        ]

    def start_schedules(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        schedules = self.schedules()
        for s in schedules:
            s.due = s.next_run(clock())

        def loop() -> None:
            while not self._stop.wait(15):
                now = clock()
                for s in schedules:
                    if s.due and now >= s.due:
                        try:
                            s.job()
                            print(f"schedule: ran {s.name}", flush=True)
                        except Exception as exc:  # noqa: BLE001 - a failed run must not stop the schedule
                            print(
                                f"schedule: {s.name} failed: {type(exc).__name__}: {exc}",
                                flush=True,
                            )
                        s.due = s.next_run(now)

        thread = threading.Thread(target=loop, name="schedules", daemon=True)
        thread.start()
        self._threads.append(thread)

    def write_state(self) -> pathlib.Path:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / STATE_FILE
        path.write_text("".join(f"{k}={v}\n" for k, v in sorted(self.env.items())))
        return path

    def stop(self) -> None:
        self._stop.set()
        if self.pump:
            self.pump.stop()
        if self._server:
            self._server.stop()
        state = self.state_dir / STATE_FILE
        if state.exists():
            state.unlink()


def scheduled_event(name: str) -> dict[str, Any]:
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": "0",
        "id": f"local-{name}",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": now,
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:123456789012:rule/{name}"],
        "detail": {},
    }


def load_state(state_dir: pathlib.Path) -> dict[str, str] | None:
    path = state_dir / STATE_FILE
    if not path.exists():
        return None
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return dict(pairs)


def use_running_stack(state_dir: pathlib.Path, environ: Mapping[str, str] | None = None) -> bool:
    """Point this process at a running `make run` stack, unless AWS is configured already."""
    env = os.environ if environ is None else environ
    if env.get("AWS_ENDPOINT_URL") or env.get("CMT_TABLE_NAME"):
        return True
    state = load_state(state_dir)
    if state is None:
        return False
    os.environ.update(state)
    return True
