"""The composition root: builds the real adapters and services from settings.

Nothing else constructs boto3 clients. Handlers call `build()` once at cold start; tests and
the local stack call it with their own settings (and a moto endpoint via AWS_ENDPOINT_URL).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

from adapters.access_store import AccessTable
from adapters.aggregate_store import AggregateTable
from adapters.alert_store import AlertTable
from adapters.audit_store import AuditTable
from adapters.bulk_read import lean_queries
from adapters.dynamodb import DynamoTable
from adapters.emf_metrics import EmfMetrics
from adapters.idempotency_store import IdempotencyTable
from adapters.instrument_text_store import InstrumentTextTable
from adapters.job_queue import SqsJobQueue
from adapters.job_store import JobTable
from adapters.key_store import KeyTable
from adapters.participant_store import ParticipantTable
from adapters.s3_reports import ReportBucket
from adapters.score_store import ScoreTable
from adapters.scoring_ledger import ScoringLedger
from adapters.ses_mail import SesMailer
from adapters.submission_store import SubmissionTable
from adapters.trial_counts import TrialCountTable
from adapters.trial_store import TrialTable
from handlers.settings import SOFTWARE_VERSION, Settings
from services.access import AccessService
from services.audit import AuditLog
from services.auth import KeyService
from services.clock import Clock, utc_now
from services.erasure import ErasureService
from services.jobs import JobService
from services.participants import ParticipantService
from services.ports import TrialStores
from services.questionnaires import QuestionnaireService
from services.rate_limit import RateLimiter, RatePolicy
from services.reads import Reads
from services.reporting import ReportService
from services.score_submission import AlertCaps, ScoringService
from services.submit import SubmissionService
from services.trials import TrialService
from services.weekly import WeeklySummaryService

# botocore's standard retry mode backs off and retries throttling and transient errors
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 8},
    connect_timeout=3,
    read_timeout=10,
)


class LazyClient:
    """A boto3 client created on first use, once per container.

    The API function needs S3 and SES only on a few routes; deferring those clients keeps
    them out of every cold start (DynamoDB, used by every request, is built eagerly).
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
        return getattr(self._client, name)


@dataclass(frozen=True)
class Adapters:
    """The real clients and stores of one deployment (or of one moto world)."""

    dynamodb: Any
    s3: Any
    ses: Any
    sqs: Any
    stores: TrialStores
    keys: KeyTable
    access: AccessTable
    instrument_texts: InstrumentTextTable
    audit: AuditTable
    reports: ReportBucket
    mailer: SesMailer
    metrics: EmfMetrics
    jobs: JobTable
    job_queue: SqsJobQueue
    counts: TrialCountTable


def build_adapters(settings: Settings, *, session: boto3.session.Session | None = None) -> Adapters:
    session = session or boto3.session.Session(region_name=settings.region)
    # Query and Scan answers are decoded by json.loads alone (adapters.bulk_read)
    dynamodb = lean_queries(session.client("dynamodb", config=CLIENT_CONFIG))
    s3 = LazyClient(lambda: session.client("s3", config=CLIENT_CONFIG))
    ses = LazyClient(lambda: session.client("ses", config=CLIENT_CONFIG))
    sqs = LazyClient(lambda: session.client("sqs", config=CLIENT_CONFIG))
    main = DynamoTable(dynamodb, settings.main_table)
    return Adapters(
        dynamodb=dynamodb,
        s3=s3,
        ses=ses,
        sqs=sqs,
        stores=TrialStores(
            trials=TrialTable(main),
            participants=ParticipantTable(main),
            submissions=SubmissionTable(DynamoTable(dynamodb, settings.submissions_table)),
            scores=ScoreTable(main),
            aggregates=AggregateTable(main),
            ledger=ScoringLedger(main),
            alerts=AlertTable(main),
            idempotency=IdempotencyTable(main),
        ),
        keys=KeyTable(main),
        access=AccessTable(main),
        instrument_texts=InstrumentTextTable(main),
        audit=AuditTable(main),
        reports=ReportBucket(s3, settings.reports_bucket),
        mailer=SesMailer(ses, settings.mail_sender, settings.outbox_dir),
        metrics=EmfMetrics(),
        jobs=JobTable(main),
        job_queue=SqsJobQueue(sqs, settings.jobs_queue),
        counts=TrialCountTable(main),
    )


@dataclass
class Container:
    """The services of one function instance (handlers use nothing else)."""

    settings: Settings
    audit: AuditLog
    keys: KeyService
    key_limits: RateLimiter  # per key and per participant token
    access: AccessService
    exchange_by_source: RateLimiter  # code exchanges per source address
    exchange_all: RateLimiter  # code exchanges of this function instance
    trials: TrialService
    participants: ParticipantService
    questionnaires: QuestionnaireService
    submit: SubmissionService
    reads: Reads
    reporting: ReportService
    scoring: ScoringService
    erasure: ErasureService
    weekly: WeeklySummaryService
    jobs: JobService


def build(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    session: boto3.session.Session | None = None,
    adapters: Adapters | None = None,
) -> Container:
    a = adapters or build_adapters(settings, session=session)
    stores = a.stores
    audit = AuditLog(a.audit, clock)
    trials = TrialService(stores.trials, clock, settings.trial_cache_seconds)
    access = AccessService(
        a.access, trials=trials.get_cached, clock=clock, cache_seconds=settings.key_cache_seconds
    )
    reporting = ReportService(
        trials=stores.trials,
        participants=stores.participants,
        scores=stores.scores,
        bucket=a.reports,
        audit=audit,
        clock=clock,
        software_version=SOFTWARE_VERSION,
    )
    jobs = JobService(
        jobs=a.jobs,
        queue=a.job_queue,
        files=a.reports,
        counts=a.counts,
        trials=stores.trials,
        participants=stores.participants,
        scores=stores.scores,
        submissions=stores.submissions,
        reporting=reporting,
        audit=audit,
        clock=clock,
        metrics=a.metrics,
        limits=settings.sync_limits,
        settings=settings.jobs,
    )
    return Container(
        settings=settings,
        audit=audit,
        keys=KeyService(a.keys, clock, settings.key_cache_seconds),
        key_limits=RateLimiter(
            RatePolicy(settings.key_requests_per_second, settings.key_request_burst)
        ),
        access=access,
        exchange_by_source=RateLimiter(
            RatePolicy(settings.exchange_source_per_second, settings.exchange_source_burst)
        ),
        exchange_all=RateLimiter(RatePolicy(settings.exchange_per_second, settings.exchange_burst)),
        trials=trials,
        participants=ParticipantService(stores.participants, clock, access),
        questionnaires=QuestionnaireService(
            a.instrument_texts,
            base=settings.fhir_base,
            clock=clock,
            cache_seconds=settings.trial_cache_seconds,
        ),
        submit=SubmissionService(
            stores.submissions, stores.participants, stores.idempotency, clock
        ),
        reads=Reads(stores, clock),
        reporting=reporting,
        scoring=ScoringService(
            stores,
            mailer=a.mailer,
            audit=audit,
            clock=clock,
            metrics=a.metrics,
            trial_cache_seconds=settings.trial_cache_seconds,
            caps=AlertCaps(per_trial_hour=settings.alert_emails_per_trial_hour),
        ),
        erasure=ErasureService(stores, audit=audit, exports=jobs),
        weekly=WeeklySummaryService(
            trials=stores.trials,
            participants=stores.participants,
            alerts=stores.alerts,
            audit=audit,
            reports=reporting,
            mailer=a.mailer,
            clock=clock,
        ),
        jobs=jobs,
    )
