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

from adapters.dynamodb import DynamoTable
from adapters.emf_metrics import EmfMetrics
from adapters.main_store import MainStore
from adapters.s3_reports import ReportBucket
from adapters.ses_mail import SesMailer
from adapters.submission_store import SubmissionStore
from handlers.settings import SOFTWARE_VERSION, Settings
from services.audit import AuditLog
from services.auth import KeyService
from services.clock import Clock, utc_now
from services.erasure import ErasureService
from services.participants import ParticipantService
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


@dataclass
class Container:
    settings: Settings
    dynamodb: Any
    s3: Any
    ses: Any
    main: MainStore
    submissions: SubmissionStore
    audit: AuditLog
    keys: KeyService
    trials: TrialService
    participants: ParticipantService
    submit: SubmissionService
    reads: Reads
    reporting: ReportService
    scoring: ScoringService
    erasure: ErasureService
    weekly: WeeklySummaryService
    metrics: EmfMetrics
    key_limits: RateLimiter


def build(
    settings: Settings, *, clock: Clock = utc_now, session: boto3.session.Session | None = None
) -> Container:
    session = session or boto3.session.Session(region_name=settings.region)
    dynamodb = session.client("dynamodb", config=CLIENT_CONFIG)
    s3 = LazyClient(lambda: session.client("s3", config=CLIENT_CONFIG))
    ses = LazyClient(lambda: session.client("ses", config=CLIENT_CONFIG))
    main = MainStore(DynamoTable(dynamodb, settings.main_table))
    submissions = SubmissionStore(DynamoTable(dynamodb, settings.submissions_table))
    audit = AuditLog(main, clock)
    mailer = SesMailer(ses, settings.mail_sender, settings.outbox_dir)
    metrics = EmfMetrics()
    reporting = ReportService(
        main, ReportBucket(s3, settings.reports_bucket), audit, clock, SOFTWARE_VERSION
    )
    return Container(
        settings=settings,
        dynamodb=dynamodb,
        s3=s3,
        ses=ses,
        main=main,
        submissions=submissions,
        audit=audit,
        keys=KeyService(main, clock, settings.key_cache_seconds),
        trials=TrialService(main, clock, settings.trial_cache_seconds),
        participants=ParticipantService(main, clock),
        submit=SubmissionService(submissions, main, clock),
        reads=Reads(main, submissions, clock),
        reporting=reporting,
        scoring=ScoringService(
            main,
            submissions,
            mailer,
            audit,
            clock,
            metrics,
            settings.trial_cache_seconds,
            AlertCaps(per_trial_hour=settings.alert_emails_per_trial_hour),
        ),
        erasure=ErasureService(main, submissions, audit, reporting),
        weekly=WeeklySummaryService(main, reporting, mailer, clock),
        metrics=metrics,
        key_limits=RateLimiter(
            RatePolicy(settings.key_requests_per_second, settings.key_request_burst)
        ),
    )
