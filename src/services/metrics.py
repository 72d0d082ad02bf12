"""What an operator must see: the metrics the services count (alarms in template.yaml)."""

from __future__ import annotations

#: A safety alert that could not be e-mailed (no recipient, or the mail service refused it).
SAFETY_ALERTS_UNDELIVERED = "SafetyAlertsUndelivered"
#: A safety alert held back by the per-trial hourly e-mail cap (logged, not e-mailed).
SAFETY_ALERTS_CAPPED = "SafetyAlertsCapped"
#: A stream record whose scoring raised (retried, then sent to the on-failure queue).
SCORING_FAILURES = "ScoringFailures"
#: An export or report job that failed (its error is on the job; see GET .../exports/{id}).
JOBS_FAILED = "JobsFailed"
