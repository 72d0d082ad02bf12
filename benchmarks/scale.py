"""Figure 7: every synchronous route and every job at 1,000, 10,000 and 50,000 participants.

What is measured is named in two lists at the top, ROUTES and JOBS, so a route or a job that
another branch adds is picked up by its name once it exists: an entry whose route is not in
the app (or whose function is not in template.yaml) is reported as "not on this branch", and
a route of the app that is in neither list is reported as "not in ROUTES" (the smoke test
fails on that, so a new route gets a line here).

One trial grows to each size on the embedded moto stack (`local.world.create_world` inside
`mock_aws`, moto sped up for scale by `moto_scale`; seeding by `scale_seed`). At each size:

- each route is called once through the ASGI app behind `local.limits` (the 6 MB response
  limit; the 30 s is judged on the estimated Lambda time) with a `CapacityMeter` on the DynamoDB
  client (units, and the DynamoDB requests it made), then once more unmetered for its time:
  wall time, the process's CPU time and the CPU time spent inside moto. The time on Lambda is
  estimated as (CPU outside moto) / (the function's CPU share) + (moto's CPU, standing in for
  DynamoDB's service time): Lambda gives a function 1 vCPU at 1,769 MB and a share in
  proportion below that, and one Python thread uses at most one vCPU;
- the baseline, in the same run: the route's own DynamoDB reads replayed bare through the same
  client (and one bare PutItem of the same size for each item it wrote), i.e. the least any
  code serving the same answer from the same items must spend;
- a route that already took more than `MAX_LOCAL_SECONDS` here, or would by its growth, is not
  run at the larger sizes: the table says so and gives the estimate;
- each job is run as its function runs it (a scheduled handler, or the job the API queued,
  handed to the job function by the local job runner) for time and, in a second run, peak
  Python memory (tracemalloc, less what the job left in the embedded AWS and less moto's
  joining of a multipart upload, which S3 does outside the function), against its
  function's MemorySize and Timeout (at most 15 minutes).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import sys
import threading
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from capacity import CapacityMeter, Units, item_size
from timing import fmt_ms

__all__ = [
    "JOBS",
    "ROUTES",
    "Job",
    "Route",
    "ScaleResult",
    "measure_scale",
]

# -- what is measured ------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One synchronous route: `method path` as the app declares it, and how to call it.

    `body` builds the request body from the run's context; `note` is shown in the table
    (e.g. a route that another branch pages). `units` names the figure its DynamoDB units
    stand for ("export", "report", "submission").
    """

    method: str
    path: str
    role: str = "coordinator"
    query: str = ""
    body: Callable[[Context], dict[str, Any]] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    note: str = ""
    units: str = ""
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or f"{self.method} {self.path}" + (f"?{self.query}" if self.query else "")

    @property
    def key(self) -> str:
        return f"{self.method} {_shape(self.path)}"


@dataclass(frozen=True)
class Job:
    """Work done by a function of its own: scheduled, or queued by an API route.

    `handler` names the module whose `make_handler(container)` the function runs (scheduled
    jobs); `request` is the (method, path, body, headers) that queues an API job, which the
    world's job runner then hands to the job function.
    """

    name: str
    function: str
    handler: str = ""
    request: tuple[str, str, dict[str, Any] | None, Mapping[str, str]] | None = None
    units: str = ""
    #: run at every size up to `MAX_JOB_SECONDS` here, not skipped by `MAX_LOCAL_SECONDS`:
    #: the largest job of each kind, so the largest size is measured and not only estimated
    always: bool = False


def _submission(ctx: Context) -> dict[str, Any]:
    participant = ctx.fresh_participant()
    return {
        "participant_id": participant,
        "instrument": "hads",
        "instrument_version": "1",
        "timepoint": "week-1",
        "completed_at": "2026-04-01T10:00:00Z",
        "responses": {str(i): (i * 7) % 4 for i in range(1, 15)},
        "notes": None,
    }


PAGED = "paged: the first page, at the default limit"
ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/health", role=""),
    Route("GET", "/v1/instruments", role=""),
    Route("GET", "/v1/instruments/{instrument_id}", role=""),
    Route("PUT", "/v1/trials/{put_trial_id}", role="admin", body=lambda ctx: ctx.put_trial_body()),
    Route("PATCH", "/v1/trials/{trial_id}", role="admin", body=lambda _: {"title": "Scale trial"}),
    Route("GET", "/v1/trials/{trial_id}"),
    Route(
        "POST",
        "/v1/trials/{trial_id}/api-keys",
        role="admin",
        body=lambda _: {"role": "submitter", "label": "scale"},
    ),
    Route("GET", "/v1/trials/{trial_id}/api-keys", role="admin"),
    Route("DELETE", "/v1/trials/{trial_id}/api-keys/{key_id}", role="admin"),
    Route(
        "POST",
        "/v1/trials/{trial_id}/participants",
        body=lambda ctx: {"participant_id": ctx.new_participant_id()},
    ),
    Route(
        "PATCH",
        "/v1/trials/{trial_id}/participants/{fresh_id}",
        body=lambda _: {"status": "completed"},
    ),
    Route("GET", "/v1/trials/{trial_id}/participants", note=PAGED),
    Route("DELETE", "/v1/trials/{trial_id}/participants/{erasable_id}"),
    Route(
        "POST",
        "/v1/trials/{trial_id}/submissions",
        role="submitter",
        body=_submission,
        units="submission",
    ),
    Route("GET", "/v1/trials/{trial_id}/participants/{participant_id}/scores"),
    Route("GET", "/v1/trials/{trial_id}/summary"),
    Route("POST", "/v1/trials/{trial_id}/reports/pre-post", units="report"),
    Route("GET", "/v1/trials/{trial_id}/reports/pre-post"),
    Route("GET", "/v1/trials/{trial_id}/export.csv", query="layout=long", units="export"),
    Route("GET", "/v1/trials/{trial_id}/export.csv", query="layout=wide", units="export"),
    Route("GET", "/v1/trials/{trial_id}/codebook"),
    Route("GET", "/v1/trials/{trial_id}/alerts", note=PAGED),
    Route("GET", "/v1/trials/{trial_id}/audit"),
    # participant access, forms and FHIR
    Route("POST", "/v1/trials/{trial_id}/participants/{fresh_id}/access-codes"),
    Route("POST", "/v1/access/exchange", role="", body=lambda ctx: {"code": ctx.fresh_code()}),
    Route("GET", "/v1/me", role="participant"),
    Route("GET", "/v1/me/questionnaires/{instrument_id}", role="participant"),
    Route(
        "POST",
        "/v1/trials/{trial_id}/fhir/QuestionnaireResponse",
        role="participant",
        body=lambda ctx: ctx.questionnaire_response(),
        headers={"Content-Type": "application/fhir+json"},
        units="submission",
    ),
    Route("DELETE", "/v1/me/token", role="participant"),
    Route("DELETE", "/v1/trials/{trial_id}/participants/{fresh_id}/tokens"),
    Route("GET", "/v1/trials/{trial_id}/questionnaires/{instrument_id}", query="timepoint=week-1"),
    Route(
        "PUT",
        "/v1/trials/{trial_id}/instrument-texts/{instrument_id}",
        role="admin",
        body=lambda _: {
            "copyright": "Reproduced under licence (scale benchmark)",
            "items": {str(n): {"text": f"Licensed wording of item {n}"} for n in range(1, 15)},
        },
    ),
    # exports and report jobs (asking for one; follow-up routes, answered from the job record)
    Route(
        "POST",
        "/v1/trials/{trial_id}/exports",
        body=lambda _: {"format": "csv-wide"},
        note="queues a job (measured below as its job)",
    ),
    Route("GET", "/v1/trials/{trial_id}/exports"),
    Route("GET", "/v1/trials/{trial_id}/exports/{export_id}"),
    Route("GET", "/v1/trials/{trial_id}/reports/pre-post/jobs/{job_id}"),
)
_EXPORT_JOB = "POST", "/v1/trials/{trial_id}/exports"
JOBS: tuple[Job, ...] = (
    Job(
        "nightly pre/post report",
        "PrePostReportFunction",
        handler="handlers.prepost_report",
        always=True,
    ),
    Job(
        "weekly summary e-mail",
        "WeeklySummaryFunction",
        handler="handlers.weekly_summary",
        always=True,
    ),
    # branch jobs: the job function, queued by the API
    *(
        Job(
            f"export job: {fmt}"
            + (f" {layout['layout']}" if layout else "")
            + (" deidentified" if deid else ""),
            "ExportJobFunction",
            request=(*_EXPORT_JOB, {"format": fmt, "deidentified": deid, **layout}, {}),
            units="export",
            always=fmt == "csv-long" and not deid,
        )
        for fmt, layout, deid in (
            ("csv-long", {}, False),
            ("csv-wide", {}, False),
            ("spss", {"layout": "wide"}, False),
            ("stata", {"layout": "wide"}, False),
            ("r", {"layout": "long"}, False),
            ("csv-long", {}, True),
        )
    ),
    Job(
        "report job (Prefer: respond-async)",
        "ExportJobFunction",
        request=(
            "POST",
            "/v1/trials/{trial_id}/reports/pre-post",
            None,
            {"Prefer": "respond-async"},
        ),
        units="report",
    ),
)

#: a route that took longer than this here is not run at the next size (its estimate is shown)
MAX_LOCAL_SECONDS = 120.0
#: the most an `always` job may be expected to take here before it is not run
MAX_JOB_SECONDS = 1500.0
#: an `always` job that took less than this here is run a second time for its peak memory
#: (under tracemalloc it runs two to three times slower); other jobs, `MAX_LOCAL_SECONDS`
MAX_PEAK_RUN_SECONDS = 360.0
TRIAL_ID = "scale-trial"
LOCAL_TIMEOUT_S = 3600.0
LAMBDA_FULL_CPU_MB = 1769  # Lambda: 1 vCPU at 1,769 MB, in proportion below [3]
LAMBDA_MAX_TIMEOUT_S = 900
SYNC_TIMEOUT_S = 30.0
# us-east-1 on-demand, per million request units (see docs/BENCHMARKS.md for the source)
PRICE_PER_MILLION_WRU = 0.625
PRICE_PER_MILLION_RRU = 0.125

# -- the run ---------------------------------------------------------------------------------


@dataclass
class Context:
    """What the routes' paths and bodies are filled from at one size."""

    trial_id: str
    seeded: int
    keys: dict[str, str]
    world: Any
    counter: int = 0
    key_ids: list[str] = field(default_factory=list)
    erasable: list[str] = field(default_factory=list)
    job_ids: dict[str, str] = field(default_factory=dict)
    tokens: list[str] = field(default_factory=list)
    client: Any = None

    def new_participant_id(self) -> str:
        self.counter += 1
        return f"B{uuid.uuid4().hex[:10]}"

    def fresh_participant(self) -> str:
        """A participant enrolled for this request (so each submission is a first one)."""
        from domain.trial import Participant
        from services.clock import iso

        pid = self.new_participant_id()
        now = iso(datetime(2026, 3, 30, tzinfo=UTC))
        self.world.adapters.stores.participants.enrol(
            Participant(
                trial_id=self.trial_id,
                participant_id=pid,
                status="active",
                enrolled_at=now,
                status_changed_at=now,
            )
        )
        self.erasable.append(pid)
        return pid

    def _enrolled_now(self) -> Any:
        """A participant enrolled at the stack's own now (so their baseline is due)."""
        from domain.trial import Participant
        from services.clock import iso, utc_now

        pid = self.new_participant_id()
        now = iso(utc_now())
        participant = Participant(
            trial_id=self.trial_id,
            participant_id=pid,
            status="active",
            enrolled_at=now,
            status_changed_at=now,
        )
        self.world.adapters.stores.participants.enrol(participant)
        return participant

    def fresh_code(self) -> str:
        """An unused enrolment code of a participant enrolled now."""
        code: str = self.world.container.access.issue_code(self._enrolled_now()).code
        return code

    def participant_token(self) -> str:
        """A token of its own for each request (one of the routes ends it)."""
        token: str = self.world.container.access.exchange(self.fresh_code()).participant_token
        self.tokens.append(token)
        return token

    def questionnaire_response(self) -> dict[str, Any]:
        """HADS answered in full, for the questionnaire issued to the next request's token."""
        from services.clock import iso, utc_now

        token = self.participant_token()
        answer = self.client.get(
            "/v1/me/questionnaires/hads", headers={"Authorization": f"Bearer {token}"}
        )
        if answer.status_code != 200:
            raise RuntimeError(f"the questionnaire answered {answer.status_code}")
        questionnaire = answer.json()
        items = [
            {
                "linkId": item["linkId"],
                "answer": [{"valueCoding": item["answerOption"][1]["valueCoding"]}],
            }
            for item in questionnaire["item"]
            if item["type"] == "choice"
        ]
        return {
            "resourceType": "QuestionnaireResponse",
            "questionnaire": f"{questionnaire['url']}|{questionnaire['version']}",
            "status": "completed",
            "authored": iso(utc_now()),
            "item": items,
        }

    def put_trial_body(self) -> dict[str, Any]:
        """Every field (PUT replaces an existing trial): the scale trial's own."""
        from handlers.http.trials import trial_out

        out = trial_out(self.world.container.trials.get(self.trial_id)).model_dump()
        return {k: out[k] for k in ("title", "coordinator_emails", "protocol", "alert_rules")}

    def path(self, template: str) -> str | None:
        values = {
            "trial_id": self.trial_id,
            "put_trial_id": "scale-put",
            "fresh_id": self.fresh_participant() if "{fresh_id}" in template else None,
            "instrument_id": "hads",
            "participant_id": "S000000",
            "erasable_id": self.erasable.pop(0) if self.erasable else None,
            "key_id": self.key_ids.pop(0) if self.key_ids else None,
            "export_id": self.job_ids.get("export"),
            "job_id": self.job_ids.get("report"),
        }
        names = re.findall(r"{(\w+)}", template)
        if any(values.get(n) is None for n in names):
            return None
        return template.format(**{n: values[n] for n in names})


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float
    moto_cpu: float

    def on_lambda(self, share: float) -> float:
        """Estimated seconds on a function with `share` of a vCPU (moto's CPU standing in for
        DynamoDB's time, unscaled)."""
        return max(0.0, self.cpu - self.moto_cpu) / share + self.moto_cpu


@dataclass(frozen=True)
class RouteAtSize:
    participants: int
    status: int | None = None
    status_seen: int | None = None  # what the client got from behind local.limits
    response_bytes: int = 0
    timing: Timing | None = None
    baseline: Timing | None = None
    units: Units | None = None
    skipped: str = ""

    @property
    def ratio(self) -> float | None:
        if self.timing is None or self.baseline is None or self.baseline.wall <= 0:
            return None
        return self.timing.wall / self.baseline.wall


@dataclass(frozen=True)
class JobAtSize:
    participants: int
    timing: Timing | None = None
    peak_mb: float | None = None
    units: Units | None = None
    skipped: str = ""
    error: str = ""


@dataclass
class ScaleResult:
    sizes: tuple[int, ...]
    api_memory_mb: int
    job_memory: dict[str, tuple[int, int]]  # function -> (MemorySize, Timeout)
    routes: dict[str, list[RouteAtSize]]
    route_notes: dict[str, str]
    jobs: dict[str, list[JobAtSize]]
    job_functions: dict[str, str]
    absent: dict[str, str]  # name -> why not measured
    unlisted: list[str]
    seeding: list[tuple[int, float, int]]  # (participants, seconds, items)
    scored: dict[int, Units] = field(default_factory=dict)  # units per scored record
    submitted: dict[int, Units] = field(default_factory=dict)  # per accepted submission
    quick: bool = False

    @property
    def api_share(self) -> float:
        return cpu_share(self.api_memory_mb)

    def section(self) -> str:
        return render(self)

    def over_limit(self) -> list[str]:
        """Routes over a synchronous limit at the largest size (measured or estimated)."""
        over = []
        last = self.sizes[-1]
        for name, measured in self.routes.items():
            m = next((x for x in measured if x.participants == last), None)
            if m is None:
                continue
            # a route not run by its growth counts as over; one with nothing to address
            # (no job of that kind at this size) was not measured, and says so in its row
            too_slow = m.skipped.startswith("not run")
            if too_slow or (m.timing is not None and _over(m, self.api_share)):
                over.append(f"`{name}`")
        return over


def cpu_share(memory_mb: int) -> float:
    return min(1.0, memory_mb / LAMBDA_FULL_CPU_MB)


class MotoClock:
    """CPU time spent inside moto (its request dispatch runs in the calling thread)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._lock = threading.Lock()
        self._original: Any = None

    def install(self) -> None:
        from moto.core.botocore_stubber import BotocoreStubber

        original = BotocoreStubber.__call__
        self._original = original
        clock = self

        def timed(stub: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return original(stub, event_name, request, **kwargs)
            finally:
                spent = time.thread_time() - started
                with clock._lock:
                    clock.seconds += spent

        BotocoreStubber.__call__ = timed  # type: ignore[method-assign]

    def uninstall(self) -> None:
        from moto.core.botocore_stubber import BotocoreStubber

        if self._original is not None:
            BotocoreStubber.__call__ = self._original  # type: ignore[method-assign]


@contextlib.contextmanager
def timed(moto: MotoClock) -> Iterator[list[Timing]]:
    out: list[Timing] = []
    wall, cpu, inside = time.perf_counter(), time.process_time(), moto.seconds
    try:
        yield out
    finally:
        out.append(
            Timing(
                wall=time.perf_counter() - wall,
                cpu=time.process_time() - cpu,
                moto_cpu=moto.seconds - inside,
            )
        )


class ResponseSizer:
    """ASGI middleware inside `local.limits`: the size of what the app answered, as Lambda
    would return it, even when the limits then refuse it."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.last: tuple[int, int] | None = None
        # set when the app has returned: past the gateway's timeout the client has its 503
        # while the route still runs, and the measurement waits for its end
        self.done = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from local.limits import lambda_response_bytes

        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def keep(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
            await send(message)

        try:
            await self.app(scope, receive, keep)
        finally:
            # also when the gateway's timeout cancelled the wait: the route ran to its end
            if start:
                self.last = (
                    int(start["status"]),
                    lambda_response_bytes(
                        status=int(start["status"]),
                        headers=[(bytes(k), bytes(v)) for k, v in start.get("headers", [])],
                        body=b"".join(chunks),
                    ),
                )
            self.done.set()


def _app_routes(app: Any) -> list[str]:
    """`METHOD /path` of every operation in the app's OpenAPI document, with the path's
    parameters written `{}` (ROUTES names them after what fills them)."""
    return sorted(
        f"{method.upper()} {_shape(path)}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if method in ("get", "put", "post", "patch", "delete")
    )


def _shape(path: str) -> str:
    return re.sub(r"{\w+}", "{}", path)


def _template_functions() -> dict[str, tuple[int, int]]:
    from local.template import load_template

    template = load_template()
    globals_ = template.get("Globals", {}).get("Function", {})
    out = {}
    for name, resource in template["Resources"].items():
        if resource.get("Type") == "AWS::Serverless::Function":
            props = resource.get("Properties", {})
            memory = int(props.get("MemorySize", globals_.get("MemorySize", 128)))
            timeout = int(props.get("Timeout", globals_.get("Timeout", 3)))
            out[name] = (memory, timeout)
    return out


def _replay(client: Any, units: Units) -> None:
    """The route's DynamoDB reads, bare, and a bare put of each item it wrote (same sizes)."""
    from botocore import xform_name

    n = 0
    for name, params in units.requests:
        if name in ("GetItem", "Query", "BatchGetItem"):
            getattr(client, xform_name(name))(**params)
        elif name in (
            "PutItem",
            "UpdateItem",
            "DeleteItem",
            "BatchWriteItem",
            "TransactWriteItems",
        ):
            for size in _written_sizes(name, params):
                n += 1
                client.put_item(
                    TableName=_table_of(name, params),
                    Item={
                        "pk": {"S": "BENCH#baseline"},
                        "sk": {"S": f"{n:08d}"},
                        "pad": {"S": "x" * max(0, size - 40)},
                    },
                )


def _table_of(name: str, params: Mapping[str, Any]) -> str:
    if "TableName" in params:
        return str(params["TableName"])
    if name == "BatchWriteItem":
        return str(next(iter(params["RequestItems"])))
    return str(next(iter(params["TransactItems"][0].values()))["TableName"])


def _written_sizes(name: str, params: Mapping[str, Any]) -> list[int]:
    if name == "PutItem":
        return [item_size(params["Item"])]
    if name in ("UpdateItem", "DeleteItem"):
        return [item_size(params["Key"]) + 100]
    if name == "BatchWriteItem":
        return [
            item_size(r["PutRequest"]["Item"]) if "PutRequest" in r else 100
            for requests in params["RequestItems"].values()
            for r in requests
        ]
    return [
        item_size(next(iter(op.values())).get("Item") or next(iter(op.values()))["Key"]) + 100
        for op in params["TransactItems"]
    ]


def measure_scale(sizes: Sequence[int], *, quick: bool = False) -> ScaleResult:
    """Grow one trial to each size and measure every route and job there."""
    import moto_scale
    from moto import mock_aws

    from local.moto_atomic import make_dynamodb_atomic

    moto_scale.install()
    make_dynamodb_atomic()
    moto = MotoClock()
    moto.install()
    try:
        with mock_aws():
            return _measure(sorted(sizes), moto, quick=quick)
    finally:
        moto.uninstall()
        moto_scale.uninstall()


def _measure(sizes: list[int], moto: MotoClock, *, quick: bool) -> ScaleResult:
    from fastapi.testclient import TestClient
    from moto_stack import FAKE_AWS_ENV, bench_names, cmt_env, quiet_service_logs, settings_for
    from scale_seed import TrialSeeder

    from handlers.http.app import create_app
    from local.limits import with_synchronous_limits
    from local.world import create_world
    from services.trials import TrialInput

    names = bench_names("scale")
    os.environ.update({**FAKE_AWS_ENV, **cmt_env(names)})
    os.environ.pop("AWS_ENDPOINT_URL", None)
    settings = dataclasses.replace(
        settings_for(names), key_requests_per_second=1e6, key_request_burst=10**6
    )
    functions = _template_functions()
    world = create_world(names=names, settings=settings)
    quiet_service_logs()
    container = world.container
    trial, _ = container.trials.put(
        TRIAL_ID,
        TrialInput(
            title="Scale trial",
            coordinator_emails=["coordinator@example.org"],
            protocol=None,
            alert_rules=None,
        ),
    )
    keys = {
        role: container.keys.create(
            role=role,
            trial_id="*" if role == "admin" else TRIAL_ID,
            label="scale",  # type: ignore[arg-type]
        )
        for role in ("admin", "coordinator", "submitter")
    }
    sizer = ResponseSizer(create_app(container))
    # the 6 MB limit as deployed; the 30 s is judged on the time estimated for Lambda, not on
    # this machine's wall time (a timeout here would cancel the route before it answers, and
    # its answer could not be sized)
    app = with_synchronous_limits(sizer, timeout_seconds=LOCAL_TIMEOUT_S)
    client = TestClient(app, raise_server_exceptions=False)
    app_routes = _app_routes(sizer.app)
    listed = {r.key for r in ROUTES} | {
        f"{j.request[0]} {_shape(j.request[1])}" for j in JOBS if j.request
    }
    unlisted = [r for r in app_routes if r not in listed]
    absent: dict[str, str] = {}
    for route in ROUTES:
        if route.key not in app_routes:
            absent[route.name] = "not on this branch (no such route)"
    jobs_runner = getattr(world, "jobs", None)
    for job in JOBS:
        if job.function not in functions:
            absent[job.name] = f"not on this branch ({job.function} is not in template.yaml)"
        elif job.request and (
            f"{job.request[0]} {_shape(job.request[1])}" not in app_routes or jobs_runner is None
        ):
            absent[job.name] = "not on this branch (no job route or job runner)"
    seeder = TrialSeeder(settings=settings, trial=trial, key_id=keys["submitter"].key_id)
    meter = CapacityMeter(world.adapters.dynamodb)
    meter.take()
    result = ScaleResult(
        sizes=tuple(sizes),
        api_memory_mb=functions["ApiFunction"][0],
        job_memory={j.function: functions[j.function] for j in JOBS if j.function in functions},
        routes={r.name: [] for r in ROUTES if r.name not in absent},
        route_notes={r.name: r.note for r in ROUTES},
        jobs={j.name: [] for j in JOBS if j.name not in absent},
        job_functions={j.name: j.function for j in JOBS},
        absent=absent,
        unlisted=unlisted,
        seeding=[],
        quick=quick,
    )
    previous: dict[str, tuple[int, float]] = {}
    for size in sizes:
        _progress(f"scale: seeding to {size:,} participants ...")
        stats = seeder.grow_to(size)
        result.seeding.append((size, stats.seconds, stats.total_items))
        _progress(f"scale: seeded {stats.total_items:,} items in {stats.seconds:.0f} s so far")
        ctx = Context(
            trial_id=TRIAL_ID,
            seeded=size,
            keys={k: v.api_key for k, v in keys.items()},
            world=world,
            client=client,
        )
        # the job follow-up routes, and the published report, are measured once the jobs
        # below have made their records (and published the report of this size)
        follow_ups = [
            r
            for r in ROUTES
            if "{export_id}" in r.path
            or "{job_id}" in r.path
            or r.key == "GET /v1/trials/{}/reports/pre-post"
        ]

        def measure_routes(routes: Sequence[Route], size: int, ctx: Context) -> None:
            for route in routes:
                measure_one(route, size, ctx)

        def measure_one(route: Route, size: int, ctx: Context) -> None:
            if route.name in absent:
                return
            estimate = _estimate(previous.get(route.name), size)
            if estimate is not None and estimate > MAX_LOCAL_SECONDS:
                result.routes[route.name].append(
                    RouteAtSize(
                        participants=size,
                        skipped=f"not run: ~{estimate:,.0f} s here by its growth",
                    )
                )
                previous[route.name] = (size, estimate)
                return
            measured = _measure_route(route, ctx, client, sizer, meter, moto, size)
            result.routes[route.name].append(measured)
            if measured.timing is not None:
                previous[route.name] = (size, measured.timing.wall)
            _progress(f"scale: {size:,} {route.name}: {_brief(measured)}")

        measure_routes([r for r in ROUTES if r not in follow_ups], size, ctx)
        # the jobs those routes queued (an export asked for; a report too large to answer
        # synchronously) are not run: each job below is timed alone
        world.clients["sqs"].purge_queue(QueueUrl=_job_queue_url(world))
        # the stream function scores what the submissions route accepted
        meter.take()
        records_before = world.pump.stats.records
        world.pump.drain()
        records = world.pump.stats.records - records_before
        scored = meter.take()
        accepted = [m for m in result.routes.get(_SUBMIT, []) if m.participants == size]
        if accepted and accepted[0].units is not None:
            result.submitted[size] = accepted[0].units
        if records:
            result.scored[size] = _scaled(scored, 1 / records)
        for job in JOBS:
            if job.name in absent:
                continue
            estimate = _estimate(previous.get(job.name), size)
            budget = MAX_JOB_SECONDS if job.always else MAX_LOCAL_SECONDS
            if estimate is not None and estimate > budget:
                result.jobs[job.name].append(
                    JobAtSize(participants=size, skipped=f"not run: ~{estimate:,.0f} s here")
                )
                previous[job.name] = (size, estimate)
                continue
            measured_job = _measure_job(job, ctx, client, world, meter, moto, size)
            result.jobs[job.name].append(measured_job)
            if measured_job.timing is not None:
                previous[job.name] = (size, measured_job.timing.wall)
            _progress(f"scale: {size:,} {job.name}: {_brief_job(measured_job)}")
        measure_routes(follow_ups, size, ctx)
    meter.close()
    return result


_SUBMIT = "POST /v1/trials/{trial_id}/submissions"


def _job_queue_url(world: Any) -> str:
    return str(world.clients["sqs"].get_queue_url(QueueName=world.names.jobs_queue)["QueueUrl"])


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _brief(m: RouteAtSize) -> str:
    if m.skipped:
        return m.skipped
    assert m.timing is not None
    return f"{m.status} {m.response_bytes / 1e6:.3f} MB {fmt_ms(m.timing.wall)}"


def _brief_job(m: JobAtSize) -> str:
    if m.timing is None:
        return m.error or m.skipped
    return fmt_ms(m.timing.wall)


def _estimate(previous: tuple[int, float] | None, size: int) -> float | None:
    """Seconds here at `size`, growing linearly from the last size measured."""
    if previous is None:
        return None
    at, seconds = previous
    return seconds * size / at if seconds > 2.0 else None


def _headers(route_role: str, ctx: Context, extra: Mapping[str, str]) -> dict[str, str]:
    headers = dict(extra)
    if route_role == "participant":
        # the body's builder may have made the token for this request already
        token = ctx.tokens.pop() if ctx.tokens else ctx.participant_token()
        ctx.tokens.clear()
        headers["Authorization"] = f"Bearer {token}"
    elif route_role:
        headers["Authorization"] = f"Bearer {ctx.keys[route_role]}"
    return headers


def _call(
    client: Any, method: str, path: str, query: str, headers: Mapping[str, str], body: Any
) -> Any:
    url = path + (f"?{query}" if query else "")
    return client.request(method, url, headers=dict(headers), json=body)


def _measure_route(
    route: Route,
    ctx: Context,
    client: Any,
    sizer: ResponseSizer,
    meter: CapacityMeter,
    moto: MotoClock,
    size: int,
) -> RouteAtSize:
    def prepare() -> tuple[str | None, Any]:
        path = ctx.path(route.path)
        body = route.body(ctx) if route.body else None
        return path, body

    if route.key == "DELETE /v1/trials/{}/api-keys/{}":
        for _ in range(2):
            created = ctx.world.container.keys.create(
                role="submitter", trial_id=ctx.trial_id, label="revoke"
            )
            ctx.key_ids.append(created.key_id)
    if route.key == "DELETE /v1/trials/{}/participants/{}" and len(ctx.erasable) < 2:
        for _ in range(2 - len(ctx.erasable)):
            ctx.fresh_participant()
    # metered run: units, status, size, the DynamoDB requests for the baseline
    path, body = prepare()
    if path is None:
        return RouteAtSize(participants=size, skipped="nothing to address (no such item yet)")
    headers = _headers(route.role, ctx, route.headers)
    meter.take()
    sizer.last = None
    sizer.done.clear()
    answer = _call(client, route.method, path, route.query, headers, body)
    sizer.done.wait()
    units = meter.take()
    status, response_bytes = sizer.last or (answer.status_code, len(answer.content))
    # timed run, unmetered
    meter_hooks_off = _Unhooked(meter)
    with meter_hooks_off:
        path, body = prepare()
        if path is None:
            return RouteAtSize(participants=size, skipped="nothing to address the second time")
        headers = _headers(route.role, ctx, route.headers)
        sizer.done.clear()
        with timed(moto) as out:
            _call(client, route.method, path, route.query, headers, body)
            sizer.done.wait()
        timing = out[0]
        baseline = None
        if units.requests:
            with timed(moto) as base:
                _replay(ctx.world.adapters.dynamodb, units)
            baseline = base[0]
    return RouteAtSize(
        participants=size,
        status=status,
        status_seen=answer.status_code,
        response_bytes=response_bytes,
        timing=timing,
        baseline=baseline,
        units=dataclasses.replace(units, requests=[]),
    )


class _Unhooked:
    """The meter's hooks off for a while (so the timed run pays nothing for them)."""

    def __init__(self, meter: CapacityMeter) -> None:
        self.meter = meter

    def __enter__(self) -> None:
        self.meter.close()

    def __exit__(self, *_: object) -> None:
        self.meter.__init__(self.meter.client, keep_requests=self.meter.keep_requests)  # type: ignore[misc]


class _S3CompletionOutside:
    """Leave out of a traced peak what moto allocates to complete a multipart upload.

    moto joins an upload's parts in memory (a bytearray of the whole object, then its bytes)
    inside the process; S3 does that on its own servers, while the function that sent the
    parts waits for the answer. So the peak before each completion is kept, the completion's
    own allocations are not counted (the peak is reset when it returns), and the job's peak is
    the larger of the two. What the job itself holds while it waits was allocated before the
    call, so it is in the kept peak.
    """

    def __init__(self) -> None:
        self.peak = 0

    def __enter__(self) -> _S3CompletionOutside:
        from moto.s3.models import S3Backend

        self._backend = S3Backend
        self._complete = complete = S3Backend.complete_multipart_upload

        def completed_outside(backend: Any, *args: Any, **kwargs: Any) -> Any:
            if tracemalloc.is_tracing():
                self.peak = max(self.peak, tracemalloc.get_traced_memory()[1])
            try:
                return complete(backend, *args, **kwargs)
            finally:
                if tracemalloc.is_tracing():
                    tracemalloc.reset_peak()

        S3Backend.complete_multipart_upload = completed_outside  # type: ignore[method-assign]
        return self

    def __exit__(self, *_: object) -> None:
        self._backend.complete_multipart_upload = self._complete  # type: ignore[method-assign]


def _measure_job(
    job: Job,
    ctx: Context,
    client: Any,
    world: Any,
    meter: CapacityMeter,
    moto: MotoClock,
    size: int,
) -> JobAtSize:
    import importlib

    def run_once() -> None:
        if job.handler:
            module = importlib.import_module(job.handler)
            module.make_handler(world.container)({"trial_id": ctx.trial_id}, None)
            return
        assert job.request is not None
        method, template, body, extra = job.request
        path = ctx.path(template)
        assert path is not None
        answer = _call(client, method, path, "", _headers("coordinator", ctx, extra), body)
        if answer.status_code != 202:
            raise RuntimeError(f"{method} {template} answered {answer.status_code}")
        location = answer.headers.get("location", "")
        kind = "report" if "reports" in template else "export"
        ctx.job_ids[kind] = location.rstrip("/").rsplit("/", 1)[-1]
        world.jobs.drain()

    try:
        meter.take()
        with timed(moto) as out:
            run_once()
        units = meter.take()
        timing = out[0]
        peak = None
        if timing.wall < (MAX_PEAK_RUN_SECONDS if job.always else MAX_LOCAL_SECONDS):
            with _Unhooked(meter), _S3CompletionOutside() as outside:
                tracemalloc.start()
                try:
                    run_once()
                    # what is still allocated at the end is what the job left in the
                    # embedded AWS (its files in moto's S3, its items in moto's tables),
                    # which on AWS is in S3 and DynamoDB, not in the function's memory
                    retained, traced_peak = tracemalloc.get_traced_memory()
                    peak = (max(traced_peak, outside.peak) - retained) / 2**20
                finally:
                    tracemalloc.stop()
        return JobAtSize(
            participants=size,
            timing=timing,
            peak_mb=peak,
            units=dataclasses.replace(units, requests=[]),
        )
    except Exception as exc:  # noqa: BLE001 (reported in the table; the run goes on)
        return JobAtSize(participants=size, error=f"{type(exc).__name__}: {str(exc)[:200]}")


# -- rendering -------------------------------------------------------------------------------


def _over(m: RouteAtSize, share: float) -> bool:
    from local.limits import LAMBDA_RESPONSE_LIMIT_BYTES

    assert m.timing is not None
    return (
        m.response_bytes > LAMBDA_RESPONSE_LIMIT_BYTES or m.timing.on_lambda(share) > SYNC_TIMEOUT_S
    )


def _mb(n: int) -> str:
    return f"{n / 2**20:.2f} MB" if n >= 10_000 else f"{n / 1024:.1f} KB"


def _cell(m: RouteAtSize, share: float) -> str:
    if m.skipped:
        return m.skipped
    assert m.timing is not None
    refused = ""
    if m.status_seen is not None and m.status is not None and m.status_seen != m.status:
        refused = f" → **{m.status_seen}**"
    ratio = f", ×{m.ratio:.1f} bare" if m.ratio is not None else ""
    return (
        f"{m.status}{refused} {_mb(m.response_bytes)}; {m.timing.on_lambda(share):.2f} s "
        f"({m.timing.wall:.2f} s here{ratio})"
    )


def _headroom(m: RouteAtSize | None, share: float) -> str:
    from local.limits import LAMBDA_RESPONSE_LIMIT_BYTES

    if m is None or m.timing is None:
        return "—"
    size_room = LAMBDA_RESPONSE_LIMIT_BYTES / max(1, m.response_bytes)
    time_room = SYNC_TIMEOUT_S / max(1e-9, m.timing.on_lambda(share))
    worst = min(size_room, time_room)
    flag = "" if worst >= 1 else " **over**"
    return f"size ×{size_room:,.1f}, time ×{time_room:,.1f}{flag}"


def _units_cell(units: Units | None) -> str:
    if units is None:
        return "—"
    return f"{units.rcu:,.1f} R / {units.wcu:,.1f} W"


def render(r: ScaleResult) -> str:
    share = r.api_share
    header = [
        "route",
        *(f"{n:,} participants" for n in r.sizes),
        "limit",
        f"headroom at {r.sizes[-1]:,}",
        "note",
    ]
    rows = []
    for name, measured in r.routes.items():
        by_size = {m.participants: m for m in measured}
        last = by_size.get(r.sizes[-1])
        measured_last = next((m for m in reversed(measured) if m.timing is not None), None)
        rows.append(
            [
                f"`{name}`",
                *(_cell(by_size[n], share) if n in by_size else "—" for n in r.sizes),
                "6 MB, 30 s",
                _headroom(last, share)
                if last and last.timing
                else (
                    f"from {measured_last.participants:,}: " + _headroom(measured_last, share)
                    if measured_last
                    else "—"
                ),
                r.route_notes.get(name, ""),
            ]
        )
    for name, why in r.absent.items():
        if name in r.route_notes:
            rows.append([f"`{name}`", *("—" for _ in r.sizes), "6 MB, 30 s", "—", why])
    for key in r.unlisted:
        rows.append(
            [
                f"`{key}`",
                *("—" for _ in r.sizes),
                "",
                "",
                "**not in ROUTES**: add it to benchmarks/scale.py",
            ]
        )
    route_table = _table(header, rows)

    job_header = [
        "job",
        "function (memory, timeout)",
        *(f"{n:,} participants" for n in r.sizes),
        "headroom at largest measured",
    ]
    job_rows = []
    for job, measured in r.jobs.items():
        function = r.job_functions[job]
        memory, timeout = r.job_memory[function]
        limit_s = min(timeout, LAMBDA_MAX_TIMEOUT_S)
        jshare = cpu_share(memory)
        cells = []
        last_ok: JobAtSize | None = None
        peaks = [(x.participants, x.peak_mb) for x in measured if x.peak_mb is not None]
        for n in r.sizes:
            m = next((x for x in measured if x.participants == n), None)
            if m is None:
                cells.append("—")
            elif m.error:
                cells.append(f"failed: {m.error[:80]}")
            elif m.skipped:
                cells.append(m.skipped)
            else:
                assert m.timing is not None
                if m.peak_mb is None and peaks and peaks[-1][0] < n:
                    # too long to run twice: the peak grown in proportion from the last one
                    at, mb = peaks[-1]
                    m = dataclasses.replace(m, peak_mb=mb * n / at)
                    peak = f", peak ~{m.peak_mb:,.0f} MB (grown from {at:,})"
                else:
                    peak = f", peak {m.peak_mb:,.0f} MB" if m.peak_mb is not None else ""
                last_ok = m
                cells.append(
                    f"{m.timing.on_lambda(jshare):.1f} s ({m.timing.wall:.1f} s here){peak}"
                )
        room = "—"
        if last_ok is not None and last_ok.timing is not None:
            t = limit_s / max(1e-9, last_ok.timing.on_lambda(jshare))
            mem = f", memory ×{memory / last_ok.peak_mb:,.1f}" if last_ok.peak_mb else ""
            room = f"time ×{t:,.1f}{mem}" + ("" if t >= 1 else " **over**")
        job_rows.append([job, f"{function} ({memory} MB, {limit_s} s)", *cells, room])
    for name, why in r.absent.items():
        if name in r.job_functions:
            job_rows.append([name, r.job_functions[name], *("—" for _ in r.sizes), why])
    job_table = _table(job_header, job_rows)

    unit_rows = []
    for n in r.sizes:
        sub = r.submitted.get(n)
        scored = r.scored.get(n)
        report = _units_of(r, "POST /v1/trials/{trial_id}/reports/pre-post", n)
        long_ = _units_of(r, "GET /v1/trials/{trial_id}/export.csv?layout=long", n)
        wide = _units_of(r, "GET /v1/trials/{trial_id}/export.csv?layout=wide", n)
        nightly = _job_units(r, "nightly pre/post report", n)
        unit_rows.append(
            [
                f"{n:,}",
                _units_cell(sub),
                _units_cell(scored),
                _units_cell(report),
                _units_cell(nightly),
                _units_cell(long_),
                _units_cell(wide),
            ]
        )
    units_table = _table(
        [
            "participants",
            "per accepted submission",
            "per scored record",
            "per report (POST)",
            "per nightly report (job)",
            "per export, long",
            "per export, wide",
        ],
        unit_rows,
    )
    cost = _cost(r)
    seeding = "; ".join(
        f"{n:,} participants: {items:,} items in {seconds:,.0f} s (cumulative)"
        for n, seconds, items in r.seeding
    )
    return f"""\
{"Quick run (smoke sizes): one" if r.quick else "One"} trial of the default protocol (six
questionnaires at three timepoints, twelve weekly diaries), every participant complete: 30
submissions, 30 scores, the participant item with its 30 `done` slots, a sent alert for one
FSCRS submission in 50, and the trial's 30 aggregates. Seeding ({seeding}; items
built by the adapters, stored in moto directly: see `benchmarks/scale_seed.py`).

Each cell: status (→ what the client got from behind `local.limits`, when it refused), the
response as Lambda returns it, the **estimated time on the API function**
({r.api_memory_mb} MB: {share:.2f} vCPU; CPU outside moto ÷ {share:.2f} + moto's CPU), then
the wall time here and the ratio to the route's own DynamoDB requests replayed bare in the
same run. Headroom: the limit over the figure (below 1 is over the limit).

{route_table}

Jobs: the estimated time on their function (its MemorySize's CPU share), wall time here, and
the peak of Python's own allocations (tracemalloc) in a second run, less what is still
allocated when the job has ended (what it left in the embedded AWS: its files in moto's S3 and
its items in moto's tables, which on AWS live outside the function) and less what moto
allocates to join a multipart upload's parts (S3 does that on its own servers while the
function waits), against the function's memory and timeout (Lambda's limit is 15 minutes).
The jobs that always run are run twice when they took under {MAX_PEAK_RUN_SECONDS:.0f} s here,
the others under {MAX_LOCAL_SECONDS:.0f} s; a job too long to run twice has its peak grown
in proportion from the last size it was measured at (marked ~).

{job_table}

DynamoDB capacity units (R = read request units, W = write request units), counted from the
item sizes as AWS bills them (`benchmarks/capacity.py`): per accepted submission and per
scored record (the stream function, on the records the submissions route accepted at that
size), and per participant of the trial for a report and an export.

{units_table}

{cost}
"""


def _units_of(r: ScaleResult, name: str, n: int) -> Units | None:
    for m in r.routes.get(name, []):
        if m.participants == n and m.units is not None:
            return _scaled(m.units, 1 / n)
    return None


def _job_units(r: ScaleResult, name: str, n: int) -> Units | None:
    for m in r.jobs.get(name, []):
        if m.participants == n and m.units is not None:
            return _scaled(m.units, 1 / n)
    return None


def _scaled(units: Units, factor: float) -> Units:
    return Units(
        read={k: v * factor for k, v in units.read.items()},
        write={k: v * factor for k, v in units.write.items()},
    )


def _largest(r: ScaleResult, find: Callable[[int], Units | None]) -> tuple[int, Units] | None:
    """The units at the largest size where they were measured."""
    for n in reversed(r.sizes):
        units = find(n)
        if units is not None:
            return n, units
    return None


def _cost(r: ScaleResult) -> str:
    sub = _largest(r, r.submitted.get)
    rec = _largest(r, r.scored.get)
    nightly = _largest(r, lambda n: _job_units(r, "nightly pre/post report", n)) or _largest(
        r, lambda n: _units_of(r, "POST /v1/trials/{trial_id}/reports/pre-post", n)
    )
    if sub is None or rec is None:
        return "Cost: not computed (no submission measured)."
    participants = 100_000
    submissions = participants * 30
    days = 12 * 7
    write = submissions * (sub[1].wcu + rec[1].wcu)
    read = submissions * (sub[1].rcu + rec[1].rcu)
    report_read = nightly[1].rcu * participants * days if nightly else 0.0
    report_write = nightly[1].wcu * participants * days if nightly else 0.0
    total_w = write + report_write
    total_r = read + report_read
    dollars = total_w / 1e6 * PRICE_PER_MILLION_WRU + total_r / 1e6 * PRICE_PER_MILLION_RRU
    at = f"the report's per-participant units at {nightly[0]:,}" if nightly else "no report"
    return f"""\
**100,000 participants over twelve weeks** (3,000,000 submissions, each accepted and scored
once, at the units per submission and per record measured at {sub[0]:,}; the nightly report
over the whole trial every day, 84 times, at {at}): submissions and scoring {write:,.0f} write
and {read:,.0f} read request units; nightly reports {report_write:,.0f} write and
{report_read:,.0f} read request units; in all **{total_w:,.0f} WRU and {total_r:,.0f} RRU**,
about **${dollars:,.2f}** on demand at us-east-1's ${PRICE_PER_MILLION_WRU} per million WRU
and ${PRICE_PER_MILLION_RRU} per million RRU (exports, the weekly e-mail and storage not
included)."""


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
