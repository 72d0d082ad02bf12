"""Request and response models of the HTTP contract (they become the OpenAPI document).

Request models (`...In`, `...Patch`) refuse unknown fields and each carries an example body.
Response models (`...Out` and the documents below them) describe exactly what the routes
return today, field for field and in the same order; the routes' tests compare real answers
with them (tests/integration/test_openapi_document.py).
"""

from __future__ import annotations

import re
import warnings
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.warnings import UnsupportedFieldAttributeWarning
from pydantic_core import PydanticCustomError

from domain.addresses import address_problem, split_address
from domain.instruments import ChoiceOrientation, FormSource, Improvement
from domain.statistics import ChangeCategory, Direction, PMethod

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


# FastAPI makes a route's combined body field from an annotation that carries the alias
# "body", and silences pydantic's warning about it while it makes the field's adapter
# (`fastapi._compat.v2.ModelField`). With the models deferred, that adapter is built later,
# on the route's first request: the same warning is silenced for the same field.
warnings.filterwarnings(
    "ignore",
    message=r"The 'alias' attribute with value 'body' was provided to the `Field\(\)` function",
    category=UnsupportedFieldAttributeWarning,
)


class Model(BaseModel):
    """Every model of the API: built on first use, not at import (``defer_build``), so a cold
    start builds only the models of the routes it serves; FastAPI's adapters for a route's
    body and responses defer with them (pydantic reads the model's config through
    ``Annotated``). ``/openapi.json`` builds them all."""

    model_config = ConfigDict(defer_build=True)


class Strict(Model):
    model_config = ConfigDict(extra="forbid")


def example(body: dict[str, Any]) -> ConfigDict:
    """The configuration that makes `body` a request model's example in the OpenAPI document.

    (Merged with `Strict`'s: unknown fields stay refused.)
    """
    return ConfigDict(json_schema_extra={"examples": [body]})


# -- refusals (RFC 9457 problem+json) -------------------------------------------------------


class FieldError(Model):
    """One bad field of a refused request."""

    loc: list[str | int] = Field(
        description="where: 'body', 'query', 'path' or 'header', then field names and indices",
        examples=[["body", "responses", "3"]],
    )
    msg: str = Field(description="what is wrong, in words a front end can show")
    type: str = Field(description="a stable code for the kind of error", examples=["out_of_range"])


class Problem(Model):
    """Every refusal: application/problem+json (RFC 9457)."""

    type: str = Field(examples=["urn:cmt-collect:problem:validation-failed"])
    title: str
    status: int
    detail: str
    instance: str | None = Field(default=None, description="the request's path")
    errors: list[FieldError] | None = Field(
        default=None, description="422 only: every bad field, never just the first"
    )


class Health(Model):
    status: Literal["ok"]


class ComparisonIn(Strict):
    model_config = example({"pre": "week-1", "post": "week-12"})

    pre: Timepoint
    post: Timepoint


_PROTOCOL_EXAMPLE: dict[str, Any] = {
    "timepoints": ["baseline", "week-6", "week-12"],
    "schedule": {"hads": ["baseline", "week-12"], "diary": ["baseline", "week-6", "week-12"]},
    "comparison": {"pre": "baseline", "post": "week-12"},
    "timing": {"baseline": {"offset_days": 0, "window_days": 3}},
}


class TimingIn(Strict):
    """When a timepoint falls: `offset_days` after enrolment, +/- `window_days` (whole days)."""

    model_config = example({"offset_days": 0, "window_days": 3})

    offset_days: int = Field(description="days after enrolment (0-3660)")
    window_days: int = Field(description="days either side that still count as on time (0-366)")


_ALERT_RULE_EXAMPLE: dict[str, Any] = {"instrument": "fscrs", "item": 9, "at_least": 3}


class ProtocolIn(Strict):
    model_config = example(_PROTOCOL_EXAMPLE)

    timepoints: list[Timepoint] = Field(min_length=1, max_length=200)
    schedule: dict[str, list[Timepoint]]
    comparison: ComparisonIn
    timing: dict[Timepoint, TimingIn] | None = Field(
        default=None,
        description="optional timing per timepoint; the others take the defaults (week-N at "
        "7 (N - 1) days +/- 3, follow-up at 182 days +/- 14). A scheduled timepoint with no "
        "default (not week-N or follow-up) must be given one.",
    )


class AlertRuleIn(Strict):
    model_config = example(_ALERT_RULE_EXAMPLE)

    instrument: str
    item: int
    at_least: int


def _ses_address(value: object) -> str:
    """An address SES can deliver to: 7-bit ASCII local part, domain in its ASCII form.

    The rule is `domain.addresses`; a Unicode domain (or an ``xn--`` label) is converted
    (or checked) with the IDNA 2008 tables of the ``idna`` package, imported here, on the
    rare address that needs it, never at cold start.
    """
    if not isinstance(value, str):
        raise PydanticCustomError("email_type", "must be an e-mail address (a string)")
    parts = split_address(value)
    domain = parts[1] if parts else ""
    ascii_domain = domain
    if not domain.isascii() or "xn--" in domain.lower():
        ascii_domain = _idna_ascii(domain)
    why = address_problem(f"{parts[0]}@{ascii_domain}" if parts else value)
    if why is not None:
        raise PydanticCustomError(
            "email_not_deliverable", "not an address SES can deliver to: {why}", {"why": why}
        )
    if ascii_domain != domain and not domain.isascii():
        raise PydanticCustomError(
            "email_domain_not_ascii",
            "SES needs internationalised domains in their ASCII form: send {ascii}",
            {"ascii": f"{value.rsplit('@', 1)[0]}@{ascii_domain}"},
        )
    return value


def _idna_ascii(domain: str) -> str:
    """The ASCII form of a domain (UTS 46 mapping, IDNA 2008), or a refusal."""
    import idna

    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
        idna.decode(ascii_domain)  # every xn-- label must be valid Punycode of a valid label
    except (idna.IDNAError, UnicodeError) as exc:
        raise PydanticCustomError(
            "email_not_deliverable",
            "not an address SES can deliver to: {why}",
            {"why": f"the part after the @-sign is not a valid internationalised domain ({exc})"},
        ) from None
    return ascii_domain


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

    model_config = example(
        {
            "title": "CMT pilot",
            "coordinator_emails": ["coordinator@example.org"],
            "protocol": _PROTOCOL_EXAMPLE,
            "alert_rules": [_ALERT_RULE_EXAMPLE],
        }
    )

    title: Title
    coordinator_emails: CoordinatorEmails | None = None
    protocol: ProtocolIn | None = None
    alert_rules: AlertRules | None = None


class TrialPatch(Strict):
    """PATCH: only the fields sent change; the result is validated as a whole."""

    model_config = example({"coordinator_emails": ["coordinator@example.org"]})

    title: Title | None = None
    coordinator_emails: CoordinatorEmails | None = None
    protocol: ProtocolIn | None = None
    alert_rules: AlertRules | None = None


class ComparisonOut(Model):
    pre: str
    post: str


class TimingOut(Model):
    offset_days: int
    window_days: int


class ProtocolOut(Model):
    timepoints: list[str]
    schedule: dict[str, list[str]]
    comparison: ComparisonOut
    timing: dict[str, TimingOut] = Field(
        description="every timepoint's timing, the defaults included (in timepoint order)"
    )


class AlertRuleOut(Model):
    instrument: str
    item: int
    at_least: int


class TrialOut(Model):
    trial_id: str
    title: str
    coordinator_emails: list[str]
    protocol: ProtocolOut
    alert_rules: list[AlertRuleOut]
    created_at: str
    updated_at: str


class ApiKeyIn(Strict):
    model_config = example({"role": "submitter", "label": "web front end"})

    role: Literal["coordinator", "submitter"]
    label: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    expires_at: QueryTimestamp | None = Field(
        default=None, description="optional: the key is refused from this moment (future)"
    )


class ApiKeyOut(Model):
    api_key: str = Field(description="shown once; only its hash is stored")
    key_id: str
    role: str
    trial_id: str
    expires_at: str | None = None


class ApiKeyInfo(Model):
    """A key as the admin sees it: never the key itself."""

    key_id: str
    role: str
    label: str
    created_at: str
    last_used: str | None = Field(description="day (UTC) the key was last accepted")
    expires_at: str | None
    revoked_at: str | None


class ApiKeyPage(Model):
    trial_id: str
    api_keys: list[ApiKeyInfo]
    next_cursor: str | None


class EnrolIn(Strict):
    model_config = example({"participant_id": "P01"})

    participant_id: ParticipantId


class StatusIn(Strict):
    model_config = example({"status": "withdrawn", "reason": "moved away"})

    status: Literal["active", "withdrawn", "completed"]
    reason: Annotated[str, StringConstraints(max_length=500)] | None = None


class ParticipantOut(Model):
    trial_id: str
    participant_id: str
    status: str
    reason: str | None
    enrolled_at: str
    status_changed_at: str


SlotState = Literal["upcoming", "due", "done", "missed"]


class ScheduledSlotOut(Model):
    """One scheduled instrument x timepoint, its window and where it stands now."""

    instrument: str
    timepoint: str
    opens_at: str = Field(description="the window opens (inclusive)")
    closes_at: str = Field(description="the window has closed from this moment")
    state: SlotState = Field(
        description="upcoming (not open yet), due (open, not done), done (submitted, whenever), "
        "missed (closed without a submission)"
    )


class ParticipantProgress(ParticipantOut):
    done: list[str] = Field(
        description=(
            "scheduled 'instrument#timepoint' slots with a submission"
            " (marked by the stream function within seconds)"
        )
    )
    missing: list[str] = Field(description="scheduled slots without one yet")
    schedule: list[ScheduledSlotOut] = Field(
        description="every scheduled slot with its window and state (as GET /v1/me shows it)"
    )


class SubmissionIn(Strict):
    model_config = example(
        {
            "participant_id": "P01",
            "instrument": "hads",
            "instrument_version": "1",
            "timepoint": "week-1",
            "completed_at": "2026-11-20T10:15:00Z",
            "responses": {
                "1": 2,
                "2": 0,
                "3": 3,
                "4": 1,
                "5": 2,
                "6": 1,
                "7": 0,
                "8": 2,
                "9": 1,
                "10": 3,
                "11": 2,
                "12": 1,
                "13": 2,
                "14": 0,
            },
            "notes": None,
        }
    )

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


class SubmissionAccepted(Model):
    submission_id: str
    received_at: str
    status: Literal["accepted"]


class AuditEventOut(Model):
    at: str
    event_id: str
    key_id: str
    role: str
    action: str
    targets: dict[str, str]


class AuditPage(Model):
    trial_id: str
    events: list[AuditEventOut]
    next_cursor: str | None


class Erased(Model):
    trial_id: str
    participant_id: str
    submissions_deleted: int
    scores_deleted: int
    alerts_deleted: int
    report_versions_deleted: int | None = Field(
        description="stored report versions that named the participant (the latest report "
        "is republished without them); null when that is left to `report_job_id`"
    )
    export_files_deleted: int | None = Field(
        description="stored versions of export files that named the participant (those "
        "exports are failed: `participant_erased`); null when that is left to `report_job_id`"
    )
    report_job_id: str | None = Field(
        default=None,
        description="a trial too large to report synchronously: the report job "
        "(`GET .../reports/pre-post/jobs/{job_id}`) that republishes the report without the "
        "participant and then deletes the stored report versions and export files naming "
        "them (audited as `participant.erase.reports`); null when that was done here",
    )


class ParticipantList(Model):
    trial_id: str
    participants: list[ParticipantProgress] = Field(description="in participant-code order")
    next_cursor: str | None


# -- the instrument catalogue (domain.instruments.instrument_to_dict) -----------------------


class BandOut(Model):
    min: int
    max: int
    label: str


class SubscaleOut(Model):
    id: str
    label: str
    items: list[int] = Field(description="item numbers (1-based, printed order)")
    max_missing: int = Field(description="items that may be skipped before no score is given")
    range: list[int] = Field(min_length=2, max_length=2, description="[lowest, highest] score")
    reliability_alpha: float | None
    bands: list[BandOut]
    improvement: Improvement = Field(description="which way scores move when people improve")


class FormOptionOut(Model):
    code: str
    label: str
    score: int


class FormItemOut(Model):
    """An answerable item; fields that do not apply to its type are null (options empty)."""

    link_id: str
    type: Literal["choice", "text"]
    display_order: int
    number: int | None
    field: str | None
    stem: str | None
    text: str
    options: list[FormOptionOut]
    max_length: int | None


class FormOut(Model):
    """The form a front end renders: every answerable item in display order."""

    instrument: str
    instrument_version: str
    title: str
    source: FormSource
    stem: str | None
    choice_orientation: ChoiceOrientation
    copyright: str | None
    items: list[FormItemOut]


class InstrumentOut(Model):
    """One instrument definition (no licensed item wording)."""

    id: str
    version: str
    title: str
    citation: str
    items: int = Field(description="number of items")
    response_min: int
    response_max: int
    item_count: int
    response_range: list[int] = Field(min_length=2, max_length=2)
    anchors: list[str] = Field(description="generic labels of the responses, in score order")
    reverse_items: list[int]
    subscales: list[SubscaleOut]
    missing_item_rule: str
    item_labels: dict[str, str]
    free_text: list[str] = Field(description="free-text fields of `notes` (the diary)")
    free_text_max_chars: int | None
    probe: str | None
    sources: list[str]
    form: FormOut


class InstrumentCatalogue(Model):
    instruments: list[InstrumentOut] = Field(description="the current version of each")


# -- results: scores, summary, codebook, alerts (services.reads) -----------------------------


class SubscaleScoreOut(Model):
    score: float | None = Field(description="null when too many items were skipped")
    prorated: bool
    items_answered: int
    items_missing: int
    reason: str | None = Field(description="why there is no score (too_many_missing)")
    band: str | None


class ScoredSubmission(Model):
    submission_id: str
    instrument: str
    instrument_version: str
    timepoint: str
    completed_at: str
    received_at: str
    scored_at: str
    supersedes: str | None
    superseded_by: str | None
    counts: bool = Field(description="the newest correction of its slot: the one that counts")
    scores: dict[str, SubscaleScoreOut] = Field(description="subscale id -> score")


class TimepointScores(Model):
    timepoint: str
    submissions: list[ScoredSubmission]


class ParticipantScores(Model):
    trial_id: str
    participant_id: str
    timepoints: list[TimepointScores] = Field(description="in protocol order")


class Enrolment(Model):
    active: int
    withdrawn: int
    completed: int
    total: int


class AggregateOut(Model):
    instrument: str
    timepoint: str
    subscale: str
    n: int
    mean: float | None
    sd: float | None = Field(description="sample SD (n - 1); null below 2 scores")


class DiaryAdherence(Model):
    participant_id: str
    status: str
    weeks_submitted: int
    weeks_due: int = Field(description="diary weeks begun since enrolment")
    adherence: float | None = Field(description="submitted / due (at most 1); null if none due")


class Summary(Model):
    trial_id: str
    generated_at: str
    enrolment: Enrolment
    aggregates: list[AggregateOut] = Field(description="instrument × timepoint × subscale")
    diary_adherence: list[DiaryAdherence]


class ValueLabel(Model):
    value: int | str = Field(description="a value as it stands in the CSV")
    label: str


class CodebookColumn(Model):
    name: str
    label: str
    type: Literal["string", "integer", "number", "datetime", "boolean"]
    range: list[int] | None = Field(min_length=2, max_length=2, description="[min, max]")
    instrument: str | None
    missing: str = Field(description="what an empty field means")
    value_labels: list[ValueLabel] | None = Field(
        description="what each code of a coded column means (booleans, categories); else null"
    )
    missing_code: ValueLabel | None = Field(
        description="numeric columns that can be empty: the code the spss/stata/r syntax "
        "files give an empty field, declared missing (the CSV itself leaves it empty)"
    )


class Codebook(Model):
    trial_id: str
    layout: Literal["long", "wide"]
    columns: list[CodebookColumn] = Field(description="in header order")


class AlertOut(Model):
    participant_id: str
    submission_id: str
    instrument: str
    timepoint: str
    rule: AlertRuleOut
    created_at: str
    sent_at: str | None
    sent_to: list[str]
    suppressed: str | None = Field(
        description="why no e-mail went out for a met rule (participant_rule_24h, "
        "trial_hourly_cap), else null"
    )


class AlertLog(Model):
    trial_id: str
    alerts: list[AlertOut] = Field(
        description="by participant, then in the order their submissions arrived"
    )
    next_cursor: str | None = Field(description="the next page's `cursor`; null on the last")


# -- jobs: exports and reports made by the job function (services.jobs) ----------------------


class ExportIn(Strict):
    """An export job: the CSV of a layout, for spss/stata/r with a syntax file labelling it."""

    model_config = example({"format": "spss", "deidentified": False})

    format: Literal["csv-long", "csv-wide", "spss", "stata", "r"] = Field(
        description="csv-long / csv-wide: the CSV of that layout; spss, stata, r: the CSV "
        "plus a syntax file (.sps, .do, .R) applying variable labels, value labels and "
        "missing-value codes"
    )
    deidentified: bool = Field(
        default=False,
        description="drop free text, shift each participant's dates by a random whole "
        "number of weeks (1 to 52, either way), replace submission ids by export-local codes",
    )
    layout: Literal["long", "wide"] | None = Field(
        default=None,
        description="spss, stata, r: the CSV's layout (default long); csv-long and csv-wide "
        "name theirs",
    )

    @model_validator(mode="after")
    def _layout_of_the_format(self) -> ExportIn:
        named = {"csv-long": "long", "csv-wide": "wide"}.get(self.format)
        if named and self.layout not in (None, named):
            raise ValueError(f"format {self.format} is the {named} layout")
        return self


class JobFileOut(Model):
    name: str = Field(description="the file's name (a download saves as it)")
    content_type: str
    size: int | None = Field(description="bytes; null where the report function wrote it")
    url: str = Field(description="presigned S3 GET, valid until `url_expires_at`")
    url_expires_at: str = Field(description="at most 15 minutes after this answer")


class JobOut(Model):
    trial_id: str
    status: Literal["running", "ready", "failed"]
    created_at: str
    updated_at: str
    deadline_at: str = Field(description="a job still running then is failed (`timeout`)")
    finished_at: str | None
    error: str | None = Field(
        description="failed only: `timeout`, `participant_erased` or the error's class"
    )
    download_url: str | None = Field(
        description="ready only: the URL of the first file (the CSV or the report JSON)"
    )
    download_url_expires_at: str | None
    files: list[JobFileOut] = Field(description="ready only: every file, with its URL")


class ExportJob(JobOut):
    """An export job (GET it again until `status` is not running)."""

    export_id: str
    format: Literal["csv-long", "csv-wide", "spss", "stata", "r"]
    layout: Literal["long", "wide"]
    deidentified: bool


class ExportJobPage(Model):
    trial_id: str
    exports: list[ExportJob] = Field(description="newest first; `files` only on GET by id")
    next_cursor: str | None = Field(description="the next page's `cursor`; null on the last")


class ReportJob(JobOut):
    """A pre/post report job; when ready the report is published (`report`)."""

    job_id: str
    report: str = Field(description="where the published report is read when ready")


# -- the pre/post report (domain.report.build_report, rendered by services.prepost.to_json) ---


class Descriptives(Model):
    mean: float | None
    sd: float | None
    median: float | None


class WilcoxonOut(Model):
    n_nonzero: int
    t: float | None = Field(description="the smaller rank sum")
    w_plus: float | None
    w_minus: float | None
    z: float | None
    p_two_sided: float | None = Field(description="normal approximation")
    p_exact_two_sided: float | None = Field(description="exact (ties too), n_nonzero <= 50")
    p_method_primary: PMethod | None = Field(description="which p the report leads with")


class EffectSizes(Model):
    r_pairs: float | None
    r_observations: float | None
    rank_biserial: float | None


class RciOut(Model):
    participant_id: str
    rci: float
    category: ChangeCategory


class ReliableChange(Model):
    """Jacobson & Truax's reliable change, on a published basis or the trial's sample."""

    basis: Literal["published", "sample"]
    basis_note: str | None = Field(default=None, description="sample basis only: why")
    reference_sd: float
    reference_sd_source: str | None
    reference_sd_sample: str | None
    reliability: float
    reliability_kind: str
    reliability_interval: str | None
    reliability_source: str | None
    reliability_sample: str | None
    alpha: float | None
    s_diff: float
    critical_value: float
    improved: int
    no_reliable_change: int
    deteriorated: int
    participants: list[RciOut]


class Exclusion(Model):
    participant_id: str
    reason: str


class Sensitivity(Model):
    """The same statistics over all available pairs, withdrawn participants included."""

    population: str
    withdrawn_pairs: int
    n_pairs: int
    pre: Descriptives
    post: Descriptives
    wilcoxon: WilcoxonOut | None
    direction: Direction | None
    effect_size_r: float | None
    effect_sizes: EffectSizes
    hodges_lehmann_median_change: float | None
    reason: str | None
    prorated_pairs: int


class ReportResult(Model):
    """One instrument × subscale; statistics null (and `reason` set) when not computable."""

    instrument: str
    subscale: str
    subscale_label: str
    n_pairs: int
    pre: Descriptives
    post: Descriptives
    wilcoxon: WilcoxonOut | None
    direction: Direction | None = Field(description="from W+ against W-; null with no pair")
    effect_size_r: float | None = Field(description="z / sqrt(n_pairs)")
    effect_sizes: EffectSizes
    p_holm: float | None = Field(description="the primary p, Holm-adjusted across the report")
    hodges_lehmann_median_change: float | None
    prorated_pairs: int
    reliable_change: ReliableChange | None
    excluded: list[Exclusion] = Field(description="every participant not paired, and why")
    reason: str | None
    sensitivity: Sensitivity


class ReportParticipants(Model):
    enrolled: int
    withdrawn: int
    completed: int = Field(description="not withdrawn, and pairable on a compared instrument")
    active: int


class ReportArtifacts(Model):
    """Where the report was published (S3 URIs)."""

    json_: str = Field(alias="json")
    dated_json: str
    csv: str
    figures: dict[str, str] = Field(description="instrument id -> SVG figure")


class PrePostReport(Model):
    """The pre/post report (API.md, "The pre/post report" and its v1.1 fields)."""

    trial_id: str
    generated_at: str
    software_version: str
    comparison: ComparisonOut
    method: str
    participants: ReportParticipants
    results: list[ReportResult]
    artifacts: ReportArtifacts


# -- participant access (services.access) ----------------------------------------------------


class AccessCodeOut(Model):
    code: str = Field(
        description="shown once: 12 symbols (60 random bits) as XXXX-XXXX-XXXX; case, spaces "
        "and hyphens do not matter"
    )
    trial_id: str
    participant_id: str
    expires_at: str = Field(description="refused from this moment (14 days)")


class ExchangeIn(Strict):
    model_config = example({"code": "K7QD-93XM-2FRA"})

    code: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ExchangeOut(Model):
    participant_token: str = Field(
        description="shown once; send it as `Authorization: Bearer <token>`"
    )
    trial_id: str
    participant_id: str
    expires_at: str = Field(
        description="28 days after the participant's last window closes (at least 14 days)"
    )


class MeOut(Model):
    """What a participant sees of their trial: its title, their status and schedule."""

    trial_id: str
    trial_title: str
    participant_id: str
    status: Literal["active", "withdrawn", "completed"]
    schedule: list[ScheduledSlotOut] = Field(description="in timepoint order, then instrument")


class TokenEnded(Model):
    token_id: str
    ended: Literal[True]


class TokensRevoked(Model):
    trial_id: str
    participant_id: str
    tokens_revoked: int = Field(description="participant tokens that were valid until now")


# -- forms and FHIR (services.questionnaires) -------------------------------------------------

_TEXT = {"type": "string", "maxLength": 1000}
_INSTRUMENT_TEXTS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["items"],
    "additionalProperties": False,
    "properties": {
        "instrument_version": {"type": "string", "description": "default: the current one"},
        "stem": {"type": "string", "maxLength": 1000, "description": "replaces the probe"},
        "copyright": {"type": "string", "maxLength": 2000, "description": "the licence notice"},
        "items": {
            "type": "object",
            "description": "every item, by number: its text and, optionally, option labels by "
            "code (codes not named keep the catalogue's label)",
            "additionalProperties": {
                "type": "object",
                "required": ["text"],
                "additionalProperties": False,
                "properties": {
                    "text": _TEXT,
                    "options": {
                        "type": "object",
                        "additionalProperties": {"type": "string", "maxLength": 200},
                    },
                },
            },
        },
    },
}


class InstrumentTextsIn(Model):
    """The wording a trial is licensed to use for one instrument, checked as a whole on the
    server so that every problem is named at once (`domain.forms.parse_instrument_texts`)."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            **_INSTRUMENT_TEXTS_SCHEMA,
            "examples": [
                {
                    "instrument_version": "1",
                    "copyright": "Wording reproduced under licence no. 123 (example)",
                    "items": {
                        str(n): {"text": f"The licensed wording of item {n}"} for n in range(1, 15)
                    },
                }
            ],
        },
    )


class InstrumentTextsOut(Model):
    trial_id: str
    instrument: str
    instrument_version: str
    updated_at: str
    form: FormOut = Field(description="the trial's form with the wording (source: trial)")


class _Fhir(Model):
    """A FHIR R4 resource as JSON: only its main elements are described here."""

    model_config = ConfigDict(extra="allow")


class Questionnaire(_Fhir):
    """A FHIR R4 Questionnaire (application/fhir+json); see docs/forms-and-fhir.md."""

    resourceType: Literal["Questionnaire"]
    url: str = Field(description="the canonical the response names (with |version)")
    version: str = Field(description="the instrument version")
    name: str
    title: str
    status: Literal["active"]
    subjectType: list[str]
    copyright: str | None = Field(default=None, description="the trial's licence notice")
    item: list[dict[str, Any]] = Field(description="display, choice and text items")


class QuestionnaireResponse(_Fhir):
    """A FHIR R4 QuestionnaireResponse answering a served Questionnaire."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra={
            "examples": [
                {
                    "resourceType": "QuestionnaireResponse",
                    "questionnaire": "https://cmt-collect.invalid/fhir/trials/cmt-pilot/"
                    "timepoints/week-1/Questionnaire/hads|1",
                    "status": "completed",
                    "authored": "2026-11-20T10:15:00Z",
                    "subject": {"identifier": {"value": "P01"}},
                    "item": [
                        {"linkId": str(n), "answer": [{"valueInteger": v}]}
                        for n, v in enumerate((2, 0, 3, 1, 2, 1, 0, 2, 1, 3, 2, 1, 2, 0), 1)
                    ],
                }
            ]
        },
    )

    resourceType: Literal["QuestionnaireResponse"]
    questionnaire: str = Field(description="url|version of the Questionnaire answered")
    status: Literal["completed"]
    authored: str = Field(description="when it was completed, to the second, with its offset")
    subject: dict[str, Any] | None = Field(
        default=None,
        description="subject.identifier.value: the participant (required with a key; with a "
        "participant token it may be left out)",
    )
    item: list[dict[str, Any]] = Field(description="one answer per answered item, by linkId")


class OperationOutcome(_Fhir):
    """Every refusal of the FHIR route: one issue per problem, each naming its element."""

    resourceType: Literal["OperationOutcome"]
    issue: list[dict[str, Any]] = Field(
        description="severity, code, details (coding: the native problem type; text) and "
        "expression (FHIRPath, e.g. QuestionnaireResponse.item.where(linkId='3'))"
    )
