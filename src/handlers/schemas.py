"""Request and response models of the HTTP contract (they become the OpenAPI document)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, StringConstraints

TrialId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{2,62}$")]
ParticipantId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Timepoint = Annotated[str, StringConstraints(min_length=1, max_length=32)]
ResponseValue = Annotated[Any, Field(description="integer in the instrument's range, or null")]


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


class TrialIn(Strict):
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    coordinator_emails: list[EmailStr] = Field(default_factory=list, max_length=20)
    protocol: ProtocolIn | None = None
    alert_rules: list[AlertRuleIn] | None = Field(default=None, max_length=50)


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


class ApiKeyOut(BaseModel):
    api_key: str = Field(description="shown once; only its hash is stored")
    key_id: str
    role: str
    trial_id: str


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
    completed_at: AwareDatetime
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
