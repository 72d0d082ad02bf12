"""The composition root: builds the real adapters and services from settings.

Nothing else constructs boto3 clients. Handlers call `build()` once at cold start; tests and
the local stack call it with their own settings (and a moto endpoint via AWS_ENDPOINT_URL).

Each function builds only what it uses: the adapters and the services are built (and their
modules imported) on first use, once per container, so the API's cold start does not build
the stream's scoring, the weekly e-mail or the report's figures, and the stream function does
not build the API's services. Only the DynamoDB client, used by every function, is eager.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import boto3
from botocore.config import Config

from adapters.access_store import AccessTable
from adapters.aggregate_store import AggregateTable
from adapters.alert_store import AlertTable
from adapters.audit_store import AuditTable
from adapters.bulk_read import lean_queries
from adapters.dynamodb import DynamoTable
from adapters.idempotency_store import IdempotencyTable
from adapters.instrument_text_store import InstrumentTextTable
from adapters.job_store import JobTable
from adapters.key_store import KeyTable
from adapters.participant_store import ParticipantTable
from adapters.score_store import ScoreTable
from adapters.scoring_ledger import ScoringLedger
from adapters.submission_store import SubmissionTable
from adapters.trial_counts import TrialCountTable
from adapters.trial_store import TrialTable
from handlers.settings import SOFTWARE_VERSION, Settings
from services.access import AccessService
from services.audit import AuditLog
from services.auth import KeyService
from services.clock import Clock, utc_now
from services.participants import ParticipantService
from services.ports import TrialStores
from services.questionnaires import QuestionnaireService
from services.rate_limit import RateLimiter, RatePolicy
from services.reads import Reads
from services.submit import SubmissionService
from services.trials import TrialService

if TYPE_CHECKING:  # built on first use: their modules are imported then
    from adapters.emf_metrics import EmfMetrics
    from adapters.job_queue import SqsJobQueue
    from adapters.s3_reports import ReportBucket
    from adapters.ses_mail import SesMailer
    from services.erasure import ErasureService
    from services.jobs import JobService
    from services.reporting import ReportService
    from services.score_submission import ScoringService
    from services.weekly import WeeklySummaryService

__all__ = ["Adapters", "Container", "LazyClient", "build", "build_adapters"]

T = TypeVar("T")
Owner = TypeVar("Owner", bound="_Lazily")


class _Lazily:
    """Something whose `built` attributes are made on first use, under one lock."""

    def __init__(self) -> None:
        # reentrant: building one service builds the ones it needs
        self._building = threading.RLock()


class built(Generic[Owner, T]):  # lower case: used as a decorator, like property
    """A read-only attribute made by `factory` on first use, once (thread-safe).

    After the first use the value sits in the instance's ``__dict__``, which Python reads
    before a non-data descriptor: later reads cost what a plain attribute costs.
    """

    def __init__(self, factory: Callable[[Owner], T]) -> None:
        self.factory = factory
        self.name = factory.__name__
        self.__doc__ = factory.__doc__

    def __set_name__(self, owner: type[Owner], name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type[Owner]) -> built[Owner, T]: ...

    @overload
    def __get__(self, instance: Owner, owner: type[Owner]) -> T: ...

    def __get__(self, instance: Owner | None, owner: type[Owner]) -> built[Owner, T] | T:
        if instance is None:
            return self
        with instance._building:
            cache = instance.__dict__
            if self.name not in cache:
                cache[self.name] = self.factory(instance)
            value: T = cache[self.name]
            return value


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


class Adapters(_Lazily):
    """The real clients and stores of one deployment (or of one moto world).

    The DynamoDB client is made at once (every function uses it); S3, SES and SQS clients
    and the adapters over them are made on first use.
    """

    def __init__(self, settings: Settings, *, session: boto3.session.Session) -> None:
        super().__init__()
        self.settings = settings
        # Query and Scan answers are decoded by json.loads alone (adapters.bulk_read)
        self.dynamodb: Any = lean_queries(session.client("dynamodb", config=CLIENT_CONFIG))
        self.s3: Any = LazyClient(lambda: session.client("s3", config=CLIENT_CONFIG))
        self.ses: Any = LazyClient(lambda: session.client("ses", config=CLIENT_CONFIG))
        self.sqs: Any = LazyClient(lambda: session.client("sqs", config=CLIENT_CONFIG))
        self._main = DynamoTable(self.dynamodb, settings.main_table)

    @built
    def stores(self) -> TrialStores:
        main = self._main
        return TrialStores(
            trials=TrialTable(main),
            participants=ParticipantTable(main),
            submissions=SubmissionTable(
                DynamoTable(self.dynamodb, self.settings.submissions_table)
            ),
            scores=ScoreTable(main),
            aggregates=AggregateTable(main),
            ledger=ScoringLedger(main),
            alerts=AlertTable(main),
            idempotency=IdempotencyTable(main),
        )

    @built
    def keys(self) -> KeyTable:
        return KeyTable(self._main)

    @built
    def access(self) -> AccessTable:
        return AccessTable(self._main)

    @built
    def instrument_texts(self) -> InstrumentTextTable:
        return InstrumentTextTable(self._main)

    @built
    def audit(self) -> AuditTable:
        return AuditTable(self._main)

    @built
    def jobs(self) -> JobTable:
        return JobTable(self._main)

    @built
    def counts(self) -> TrialCountTable:
        return TrialCountTable(self._main)

    @built
    def reports(self) -> ReportBucket:
        from adapters.s3_reports import ReportBucket

        return ReportBucket(self.s3, self.settings.reports_bucket)

    @built
    def mailer(self) -> SesMailer:
        from adapters.ses_mail import SesMailer

        return SesMailer(self.ses, self.settings.mail_sender, self.settings.outbox_dir)

    @built
    def metrics(self) -> EmfMetrics:
        from adapters.emf_metrics import EmfMetrics

        return EmfMetrics()

    @built
    def job_queue(self) -> SqsJobQueue:
        from adapters.job_queue import SqsJobQueue

        return SqsJobQueue(self.sqs, self.settings.jobs_queue)


def build_adapters(settings: Settings, *, session: boto3.session.Session | None = None) -> Adapters:
    return Adapters(settings, session=session or boto3.session.Session(region_name=settings.region))


class Container(_Lazily):
    """The services of one function instance (handlers use nothing else).

    Each service is built on first use: a function builds the ones its handler reaches.
    """

    def __init__(self, settings: Settings, *, clock: Clock, adapters: Adapters) -> None:
        super().__init__()
        self.settings = settings
        self._clock = clock
        self._adapters = adapters

    @built
    def audit(self) -> AuditLog:
        return AuditLog(self._adapters.audit, self._clock)

    @built
    def keys(self) -> KeyService:
        return KeyService(self._adapters.keys, self._clock, self.settings.key_cache_seconds)

    @built
    def key_limits(self) -> RateLimiter:
        """Per key and per participant token."""
        s = self.settings
        return RateLimiter(RatePolicy(s.key_requests_per_second, s.key_request_burst))

    @built
    def access(self) -> AccessService:
        return AccessService(
            self._adapters.access,
            trials=self.trials.get_cached,
            clock=self._clock,
            cache_seconds=self.settings.key_cache_seconds,
        )

    @built
    def exchange_by_source(self) -> RateLimiter:
        """Code exchanges per source address."""
        s = self.settings
        return RateLimiter(RatePolicy(s.exchange_source_per_second, s.exchange_source_burst))

    @built
    def exchange_all(self) -> RateLimiter:
        """Code exchanges of this function instance."""
        s = self.settings
        return RateLimiter(RatePolicy(s.exchange_per_second, s.exchange_burst))

    @built
    def trials(self) -> TrialService:
        return TrialService(
            self._adapters.stores.trials, self._clock, self.settings.trial_cache_seconds
        )

    @built
    def participants(self) -> ParticipantService:
        return ParticipantService(self._adapters.stores.participants, self._clock, self.access)

    @built
    def questionnaires(self) -> QuestionnaireService:
        return QuestionnaireService(
            self._adapters.instrument_texts,
            base=self.settings.fhir_base,
            clock=self._clock,
            cache_seconds=self.settings.trial_cache_seconds,
        )

    @built
    def submit(self) -> SubmissionService:
        stores = self._adapters.stores
        return SubmissionService(
            stores.submissions, stores.participants, stores.idempotency, self._clock
        )

    @built
    def reads(self) -> Reads:
        return Reads(self._adapters.stores, self._clock)

    @built
    def reporting(self) -> ReportService:
        from services.reporting import ReportService

        stores = self._adapters.stores
        return ReportService(
            trials=stores.trials,
            participants=stores.participants,
            scores=stores.scores,
            bucket=self._adapters.reports,
            audit=self.audit,
            clock=self._clock,
            software_version=SOFTWARE_VERSION,
        )

    @built
    def scoring(self) -> ScoringService:
        from services.score_submission import AlertCaps, ScoringService

        a = self._adapters
        return ScoringService(
            a.stores,
            mailer=a.mailer,
            audit=self.audit,
            clock=self._clock,
            metrics=a.metrics,
            trial_cache_seconds=self.settings.trial_cache_seconds,
            caps=AlertCaps(per_trial_hour=self.settings.alert_emails_per_trial_hour),
        )

    @built
    def erasure(self) -> ErasureService:
        from services.erasure import ErasureService

        return ErasureService(self._adapters.stores, audit=self.audit, exports=self.jobs)

    @built
    def weekly(self) -> WeeklySummaryService:
        from services.weekly import WeeklySummaryService

        a = self._adapters
        return WeeklySummaryService(
            trials=a.stores.trials,
            participants=a.stores.participants,
            alerts=a.stores.alerts,
            audit=self.audit,
            reports=self.reporting,
            mailer=a.mailer,
            clock=self._clock,
        )

    @built
    def jobs(self) -> JobService:
        from services.jobs import JobService

        a = self._adapters
        stores = a.stores
        return JobService(
            jobs=a.jobs,
            queue=a.job_queue,
            files=a.reports,
            counts=a.counts,
            trials=stores.trials,
            participants=stores.participants,
            scores=stores.scores,
            submissions=stores.submissions,
            reporting=self.reporting,
            audit=self.audit,
            clock=self._clock,
            metrics=a.metrics,
            limits=self.settings.sync_limits,
            settings=self.settings.jobs,
        )


def build(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    session: boto3.session.Session | None = None,
    adapters: Adapters | None = None,
) -> Container:
    """The container of one function; nothing but the adapters' DynamoDB client is built yet."""
    return Container(
        settings, clock=clock, adapters=adapters or build_adapters(settings, session=session)
    )
