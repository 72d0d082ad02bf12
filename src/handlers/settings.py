"""Configuration: read from the environment in one place, validated, cached.

The same code runs on AWS and on the embedded local stack; only these variables differ.
`AWS_ENDPOINT_URL` (read by boto3 itself) points every client at the local moto server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata

from domain.fhir import questionnaire_url
from services.jobs import JobSettings, SyncLimits


def software_version(environ: Mapping[str, str] | None = None) -> str:
    """The installed package's version (pyproject.toml); in a Lambda package, which carries
    no package metadata, the template's ``CMT_SOFTWARE_VERSION`` (its SoftwareVersion
    parameter, kept equal to pyproject's version by a test)."""
    try:
        return metadata.version("cmt-collect")
    except metadata.PackageNotFoundError:
        env = os.environ if environ is None else environ
        return env.get("CMT_SOFTWARE_VERSION") or "unknown"


SOFTWARE_VERSION = software_version()


#: the fields of SyncLimits, each read from CMT_SYNC_<NAME> (e.g. CMT_SYNC_REPORT_MAX_SCORES)
SYNC_LIMIT_NAMES = (
    "long_export_max_scores",
    "wide_export_max_scores",
    "wide_export_max_participants",
    "report_max_scores",
    "report_max_participants",
    "max_response_bytes",
)


class ConfigurationError(RuntimeError):
    """A required environment variable is missing or malformed."""


#: The FHIR canonical base when CMT_FHIR_BASE is not set: stable, never resolvable (RFC 2606
#: reserves .invalid). A deployment that hands out Questionnaires sets its own, once.
DEFAULT_FHIR_BASE = "https://cmt-collect.invalid/fhir"


@dataclass(frozen=True)
class Settings:
    main_table: str
    submissions_table: str
    reports_bucket: str
    mail_sender: str
    api_base_url: str | None = None
    key_cache_seconds: float = 5.0
    trial_cache_seconds: float = 30.0
    outbox_dir: str | None = None
    region: str | None = None
    alert_emails_per_trial_hour: int = 20
    key_requests_per_second: float = 10.0
    key_request_burst: int = 50
    fhir_base: str = DEFAULT_FHIR_BASE
    exchange_source_per_second: float = 0.2
    exchange_source_burst: int = 20
    exchange_per_second: float = 5.0
    exchange_burst: int = 20

    # the queue of the job function: its URL on AWS, or a queue name (resolved once)
    jobs_queue: str | None = None
    sync_limits: SyncLimits = field(default_factory=SyncLimits)
    jobs: JobSettings = field(default_factory=JobSettings)

    def __post_init__(self) -> None:
        try:
            questionnaire_url(base=self.fhir_base, instrument_id="hads")
        except ValueError as exc:
            raise ConfigurationError(f"CMT_FHIR_BASE: {exc}") from None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        missing = [
            name
            for name in (
                "CMT_TABLE_NAME",
                "CMT_SUBMISSIONS_TABLE_NAME",
                "CMT_REPORTS_BUCKET",
                "CMT_MAIL_SENDER",
            )
            if not env.get(name)
        ]
        if missing:
            raise ConfigurationError(f"missing environment variables: {', '.join(missing)}")
        try:
            key_cache = float(env.get("CMT_KEY_CACHE_SECONDS", "5"))
            trial_cache = float(env.get("CMT_TRIAL_CACHE_SECONDS", "30"))
            alert_cap = int(env.get("CMT_ALERT_EMAILS_PER_TRIAL_HOUR", "20"))
            key_rate = float(env.get("CMT_KEY_REQUESTS_PER_SECOND", "10"))
            key_burst = int(env.get("CMT_KEY_REQUEST_BURST", "50"))
            exchange_source_rate = float(env.get("CMT_EXCHANGE_SOURCE_PER_SECOND", "0.2"))
            exchange_source_burst = int(env.get("CMT_EXCHANGE_SOURCE_BURST", "20"))
            exchange_rate = float(env.get("CMT_EXCHANGE_PER_SECOND", "5"))
            exchange_burst = int(env.get("CMT_EXCHANGE_BURST", "20"))
            defaults = SyncLimits()
            sync_limits = SyncLimits(
                **{
                    name: int(env.get(f"CMT_SYNC_{name.upper()}", str(getattr(defaults, name))))
                    for name in SYNC_LIMIT_NAMES
                }
            )
            jobs = JobSettings(
                deadline_seconds=int(env.get("CMT_JOB_DEADLINE_SECONDS", "1800")),
                url_seconds=int(env.get("CMT_DOWNLOAD_URL_SECONDS", "900")),
            )
        except ValueError as exc:
            raise ConfigurationError(f"numeric settings must be numbers: {exc}") from exc
        return cls(
            main_table=env["CMT_TABLE_NAME"],
            submissions_table=env["CMT_SUBMISSIONS_TABLE_NAME"],
            reports_bucket=env["CMT_REPORTS_BUCKET"],
            mail_sender=env["CMT_MAIL_SENDER"],
            api_base_url=env.get("CMT_API_BASE_URL") or None,
            key_cache_seconds=key_cache,
            trial_cache_seconds=trial_cache,
            outbox_dir=env.get("CMT_OUTBOX_DIR") or None,
            region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
            alert_emails_per_trial_hour=alert_cap,
            key_requests_per_second=key_rate,
            key_request_burst=key_burst,
            fhir_base=env.get("CMT_FHIR_BASE") or DEFAULT_FHIR_BASE,
            exchange_source_per_second=exchange_source_rate,
            exchange_source_burst=exchange_source_burst,
            exchange_per_second=exchange_rate,
            exchange_burst=exchange_burst,
            jobs_queue=env.get("CMT_JOBS_QUEUE") or None,
            sync_limits=sync_limits,
            jobs=jobs,
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
