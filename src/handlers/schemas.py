"""Request and response models of the HTTP contract (they become the OpenAPI document)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import PydanticCustomError

TrialId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{2,62}$")]
ParticipantId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Timepoint = Annotated[str, StringConstraints(min_length=1, max_length=32)]
ResponseValue = Annotated[Any, Field(description="integer in the instrument's range, or null")]

# RFC 3339 date-time: a string with an explicit offset (Z or +hh:mm), at most microseconds
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:[Zz]|[+-]\d{2}:\d{2})"
)
EARLIEST_COMPLETION = datetime(2000, 1, 1, tzinfo=UTC)
EARLIEST_QUERY = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)
TIMESTAMP_RULE = (
    "an RFC 3339 date-time string with a UTC offset, e.g. 2026-11-20T10:15:00Z or "
    "2026-11-20T11:15:00+01:00 (at most 6 fractional digits); numbers and times without an "
    "offset are refused"
)


def parse_timestamp(value: object, *, earliest: datetime = EARLIEST_QUERY) -> datetime:
    """An aware UTC datetime from an RFC 3339 string, or a pydantic error naming the rule."""
    if not isinstance(value, str):
        raise PydanticCustomError("timestamp_type", f"must be {TIMESTAMP_RULE}")
    if _RFC3339.fullmatch(value) is None:
        raise PydanticCustomError("timestamp_format", f"must be {TIMESTAMP_RULE}")
    try:
        moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00")).astimezone(UTC)
    except (ValueError, OverflowError):
        moment = None
    if moment is None or not earliest <= moment <= LATEST:
        raise PydanticCustomError(
            "timestamp_range",
            f"must lie between {earliest:%Y-%m-%d} and 9999-12-31 in UTC",
        )
    return moment


def _completion(value: object) -> datetime:
    return parse_timestamp(value, earliest=EARLIEST_COMPLETION)


_TIMESTAMP_SCHEMA = {"type": "string", "format": "date-time", "example": "2026-11-20T10:15:00Z"}
#: When a questionnaire was completed: RFC 3339 with offset, from 2000-01-01 (see TIMESTAMP_RULE).
CompletedAt = Annotated[
    datetime,
    PlainValidator(_completion),
    WithJsonSchema({**_TIMESTAMP_SCHEMA, "description": f"{TIMESTAMP_RULE}; from 2000-01-01"}),
]
#: A bound of a time range in a query: RFC 3339 with offset, 1970-01-01 to 9999-12-31 UTC.
QueryTimestamp = Annotated[
    datetime,
    PlainValidator(parse_timestamp),
    WithJsonSchema({**_TIMESTAMP_SCHEMA, "description": TIMESTAMP_RULE}),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, Any]] | None = None


class Health(BaseModel):
    status: Literal["ok"]


class ComparisonIn(Strict):
    pre: Timepoint
    post: Timepoint


class ProtocolIn(Strict):
    timepoints: list[Timepoint] = Field(min_length=1, max_length=200)
    schedule: dict[str, list[Timepoint]]
    comparison: ComparisonIn


class AlertRuleIn(Strict):
    instrument: str
    item: int
    at_least: int


def _ses_address(value: object) -> str:
    """An address SES can deliver to: 7-bit ASCII local part, domain in its ASCII form.

    email-validator is imported here, on the trial routes only, not at cold start.
    """
    if not isinstance(value, str):
        raise PydanticCustomError("email_type", "must be an e-mail address (a string)")
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(value, allow_smtputf8=False, check_deliverability=False)
    except EmailNotValidError as exc:
        raise PydanticCustomError(
            "email_not_deliverable", "not an address SES can deliver to: {why}", {"why": str(exc)}
        ) from None
    domain = value.rsplit("@", 1)[1]
    if not domain.isascii():
        raise PydanticCustomError(
            "email_domain_not_ascii",
            "SES needs internationalised domains in their ASCII form: send {ascii}",
            {"ascii": f"{value.rsplit('@', 1)[0]}@{result.ascii_domain}"},
        )
    return value


SesAddress = Annotated[
    str,
    PlainValidator(_ses_address),
    WithJsonSchema(
        {
            "type": "string",
            "format": "email",
            "description": "7-bit ASCII local part; an internationalised domain in its "
            "ASCII (xn--) form",
        }
    ),
]
Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
CoordinatorEmails = Annotated[list[SesAddress], Field(max_length=20)]
AlertRules = Annotated[list[AlertRuleIn], Field(max_length=50)]


class TrialIn(Strict):
    """PUT: on a new trial only `title` is required (the rest default, as documented); on an
    existing trial PUT replaces it and every field is required (PATCH changes some)."""

    title: Title
    coordinator_emails: CoordinatorEmails | None = None
    protocol: ProtocolIn | None = None
    alert_rules: AlertRules | None = None


class TrialPatch(Strict):
    """PATCH: only the fields sent change; the result is validated as a whole."""

    title: Title | None = None
    coordinator_emails: CoordinatorEmails | None = None
    protocol: ProtocolIn | None = None
    alert_rules: AlertRules | None = None


class ComparisonOut(BaseModel):
    pre: str
    post: str


class ProtocolOut(BaseModel):
    timepoints: list[str]
    schedule: dict[str, list[str]]
    comparison: ComparisonOut


class AlertRuleOut(BaseModel):
    instrument: str
    item: int
    at_least: int


class TrialOut(BaseModel):
    trial_id: str
    title: str
    coordinator_emails: list[str]
    protocol: ProtocolOut
    alert_rules: list[AlertRuleOut]
    created_at: str
    updated_at: str


class ApiKeyIn(Strict):
    role: Literal["coordinator", "submitter"]
    label: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    expires_at: QueryTimestamp | None = Field(
        default=None, description="optional: the key is refused from this moment (future)"
    )


class ApiKeyOut(BaseModel):
    api_key: str = Field(description="shown once; only its hash is stored")
    key_id: str
    role: str
    trial_id: str
    expires_at: str | None = None


class ApiKeyInfo(BaseModel):
    """A key as the admin sees it: never the key itself."""

    key_id: str
    role: str
    label: str
    created_at: str
    last_used: str | None = Field(description="day (UTC) the key was last accepted")
    expires_at: str | None
    revoked_at: str | None


class ApiKeyPage(BaseModel):
    trial_id: str
    api_keys: list[ApiKeyInfo]
    next_cursor: str | None


class EnrolIn(Strict):
    participant_id: ParticipantId


class StatusIn(Strict):
    status: Literal["active", "withdrawn", "completed"]
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class ParticipantOut(BaseModel):
    trial_id: str
    participant_id: str
    status: str
    reason: str | None
    enrolled_at: str
    status_changed_at: str


class ParticipantProgress(ParticipantOut):
    done: list[str] = Field(
        description=(
            "scheduled 'instrument#timepoint' slots with a submission"
            " (marked by the stream function within seconds)"
        )
    )
    missing: list[str] = Field(description="scheduled slots without one yet")


class SubmissionIn(Strict):
    participant_id: ParticipantId
    instrument: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    instrument_version: Annotated[str, StringConstraints(min_length=1, max_length=16)] | None = None
    timepoint: Timepoint
    completed_at: CompletedAt
    responses: dict[str, ResponseValue] = Field(
        description="item number (as a string, 1-based) -> integer chosen, or null if skipped",
        max_length=100,
    )
    notes: dict[str, Any] | None = Field(
        default=None, description="diary only: free-text fields, each at most 4,000 characters"
    )
    supersedes: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class SubmissionAccepted(BaseModel):
    submission_id: str
    received_at: str
    status: Literal["accepted"]


class AuditEventOut(BaseModel):
    at: str
    event_id: str
    key_id: str
    role: str
    action: str
    targets: dict[str, str]


class AuditPage(BaseModel):
    trial_id: str
    events: list[AuditEventOut]
    next_cursor: str | None


class Erased(BaseModel):
    trial_id: str
    participant_id: str
    submissions_deleted: int
    scores_deleted: int
    alerts_deleted: int
    report_versions_deleted: int = Field(
        description="stored report versions that named the participant (the latest report "
        "is republished without them)"
    )
