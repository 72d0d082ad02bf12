"""What the in-process benchmarks share: moto in server mode, settings, events, call counting.

moto runs as `ThreadedMotoServer` on a free loopback port and every boto3 client reaches it over
HTTP through `AWS_ENDPOINT_URL`, as in `make run`; the tables, bucket and queue are built from
`template.yaml` by `local.template.create_local_resources`. Each benchmark gets its own set of
resource names, so one benchmark's items (or stream records) never reach another's.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from local.stack import REGION, free_port
from local.template import LocalNames

__all__ = [
    "FAKE_AWS_ENV",
    "MAIL_SENDER",
    "REGION",
    "CallCounter",
    "LambdaContext",
    "PatientSession",
    "api_gateway_v2_event",
    "bench_names",
    "cmt_env",
    "create_resources",
    "moto_server",
    "quiet_service_logs",
    "settings_for",
]

MAIL_SENDER = "cmt-bench@example.org"

# Credentials that cannot reach a real account; the shared config files are pointed at nothing
# so a developer's profile is never read either.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def bench_names(prefix: str) -> LocalNames:
    return LocalNames(
        main_table=f"{prefix}-main",
        submissions_table=f"{prefix}-submissions",
        reports_bucket=f"{prefix}-reports",
        dead_letter_queue=f"{prefix}-dlq",
    )


def cmt_env(names: LocalNames) -> dict[str, str]:
    """The variables the Lambda functions read (handlers.settings)."""
    return {
        "CMT_TABLE_NAME": names.main_table,
        "CMT_SUBMISSIONS_TABLE_NAME": names.submissions_table,
        "CMT_REPORTS_BUCKET": names.reports_bucket,
        "CMT_MAIL_SENDER": MAIL_SENDER,
        "CMT_DLQ_NAME": names.dead_letter_queue,
        # figure 2 sends one key's requests back to back, faster than a key's rate limit
        # (10 a second, bursts of 50): the limiter still runs on every request, never refuses
        "CMT_KEY_REQUESTS_PER_SECOND": "1000000",
        "CMT_KEY_REQUEST_BURST": "1000000",
    }


def settings_for(names: LocalNames) -> Any:
    from handlers.settings import Settings

    return Settings(
        main_table=names.main_table,
        submissions_table=names.submissions_table,
        reports_bucket=names.reports_bucket,
        mail_sender=MAIL_SENDER,
        region=REGION,
    )


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto in server mode on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    from local.moto_atomic import make_dynamodb_atomic

    make_dynamodb_atomic()  # as the local stack serves it
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def create_resources(names: LocalNames) -> dict[str, Any]:
    """Tables, bucket and queue from template.yaml; returns the plain clients used."""
    import boto3

    from local import world

    clients = world.aws_clients(boto3.session.Session(region_name=REGION))
    world.create_resources(clients, names=names, sender=MAIL_SENDER)
    return clients


class PatientSession:
    """A boto3 session whose clients wait longer for an answer (given to `wiring.build`).

    The functions' clients time out reads after 10 s, which DynamoDB never comes near; moto,
    sharing two busy cores with the benchmark, can take that long to serve one 1 MB page of
    nested score items. Everything else about the clients (retries, pool) is unchanged.
    """

    def __init__(self, read_timeout: float = 600.0) -> None:
        import boto3

        self._session = boto3.session.Session(region_name=REGION)
        self.read_timeout = read_timeout

    def client(self, service_name: str, config: Any = None, **kwargs: Any) -> Any:
        from botocore.config import Config

        patient = Config(read_timeout=self.read_timeout)
        merged = config.merge(patient) if config is not None else patient
        return self._session.client(service_name, config=merged, **kwargs)


@dataclass
class CallCounter:
    """Counts API calls made through one boto3 client, by operation name.

    Hooks `before-call.<service>.*` (DynamoDB unless told), which botocore emits once per API
    call: retries of the same call are not counted again, and a paged Query counts one call
    per page.
    """

    client: Any
    counts: Counter[str] = field(default_factory=Counter)
    service: str = "dynamodb"

    def __post_init__(self) -> None:
        self._unique_id = f"cmt-bench-{uuid.uuid4().hex}"
        self.client.meta.events.register(
            f"before-call.{self.service}.*", self._on_call, unique_id=self._unique_id
        )

    def _on_call(self, model: Any, **_: Any) -> None:
        self.counts[model.name] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def take(self) -> Counter[str]:
        """The calls since the last take (and start afresh)."""
        taken, self.counts = self.counts, Counter()
        return taken

    def close(self) -> None:
        self.client.meta.events.unregister(
            f"before-call.{self.service}.*", unique_id=self._unique_id
        )


class LambdaContext:
    """The few attributes of a Lambda context object that Mangum and Powertools read."""

    function_name = "cmt-bench"
    function_version = "$LATEST"
    invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:cmt-bench"
    memory_limit_in_mb = 512
    log_group_name = "/aws/lambda/cmt-bench"
    log_stream_name = "bench"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 30_000


def api_gateway_v2_event(
    *,
    method: str,
    path: str,
    body: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An HTTP API (payload format 2.0) event as API Gateway sends it to the function."""
    payload = json.dumps(body, separators=(",", ":")) if body is not None else None
    now = time.time()
    all_headers = {
        "accept": "application/json",
        "host": "a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com",
        "user-agent": "cmt-bench",
        "x-forwarded-for": "203.0.113.10",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
        **{k.lower(): v for k, v in (headers or {}).items()},
    }
    if payload is not None:
        all_headers["content-type"] = "application/json"
        all_headers["content-length"] = str(len(payload.encode()))
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "ANY /{proxy+}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": all_headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "a1b2c3d4e5",
            "domainName": all_headers["host"],
            "domainPrefix": "a1b2c3d4e5",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.10",
                "userAgent": "cmt-bench",
            },
            "requestId": base64.b32encode(uuid.uuid4().bytes[:10]).decode(),
            "routeKey": "ANY /{proxy+}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "pathParameters": {"proxy": path.lstrip("/")},
        "isBase64Encoded": False,
    }
    if payload is not None:
        event["body"] = payload
    return event


def quiet_service_logs() -> None:
    """Send the service's Powertools log lines to /dev/null (still formatted, never printed).

    The stream function's module creates the `cmt-collect` logger with a stdout handler;
    thousands of JSON lines would bury the benchmark's own output.
    """
    devnull = open(os.devnull, "w", encoding="utf-8")  # noqa: SIM115 (lives as long as the process)
    for handler in logging.getLogger("cmt-collect").handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
