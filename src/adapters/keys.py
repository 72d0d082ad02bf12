"""Key patterns of both tables: the only place that builds pk/sk strings.

Identifiers are keyword-only wherever two could be swapped. See docs/data-model.md for the
access pattern each key serves.
"""

from __future__ import annotations

from domain.trial import Slot

TRIALS_PK = "TRIALS"
PARTICIPANT_PREFIX = "P#"
SCORE_PREFIX = "SC#"
AGGREGATE_PREFIX = "AG#"
ALERT_PREFIX = "AL#"
ALERT_CAP_PREFIX = "AC#"
SUBMISSION_PREFIX = "S#"
INSTRUMENT_TEXTS_PREFIX = "IT#"
#: The main table's sparse index of API keys by owning trial ("*" for admin keys).
KEYS_BY_TRIAL_INDEX = "keys_by_trial"
#: The submissions table's index of a trial's submissions in arrival order.
BY_TRIAL_INDEX = "by_trial"


def trial(trial_id: str) -> dict[str, str]:
    return {"pk": TRIALS_PK, "sk": f"T#{trial_id}"}


def api_key(key_hash: str) -> dict[str, str]:
    return {"pk": f"KEY#{key_hash}", "sk": "KEY"}


def api_key_owner(trial_id: str) -> str:
    return f"KEYS#{trial_id}"


def access_code(code_hash: str) -> dict[str, str]:
    """A one-time enrolment code, found by the hash of its normalised form."""
    return {"pk": f"CODE#{code_hash}", "sk": "CODE"}


def instrument_texts(*, trial_id: str, instrument_id: str, version: str) -> dict[str, str]:
    """A trial's licensed wording of one instrument version."""
    return {
        "pk": trial_pk(trial_id),
        "sk": f"{INSTRUMENT_TEXTS_PREFIX}{instrument_id}#{version}",
    }


def trial_pk(trial_id: str) -> str:
    return f"T#{trial_id}"


def participant(*, trial_id: str, participant_id: str) -> dict[str, str]:
    return {"pk": trial_pk(trial_id), "sk": f"{PARTICIPANT_PREFIX}{participant_id}"}


def _slot_part(slot: Slot) -> str:
    return f"{slot.instrument}#{slot.timepoint}"


def score(*, trial_id: str, participant_id: str, slot: Slot, seq: int) -> dict[str, str]:
    return {
        "pk": trial_pk(trial_id),
        "sk": f"{SCORE_PREFIX}{participant_id}#{_slot_part(slot)}#{seq:03d}",
    }


def scores_of(participant_id: str | None) -> str:
    """The sort-key prefix of a participant's scores (every score of the trial for None)."""
    return SCORE_PREFIX + (f"{participant_id}#" if participant_id else "")


def aggregate(*, trial_id: str, slot: Slot) -> dict[str, str]:
    return {"pk": trial_pk(trial_id), "sk": f"{AGGREGATE_PREFIX}{_slot_part(slot)}"}


def slot_of_aggregate(sk: str) -> Slot:
    return Slot.parse(sk.removeprefix(AGGREGATE_PREFIX))


def alert(
    *, trial_id: str, participant_id: str, submission_id: str, rule_no: int
) -> dict[str, str]:
    return {
        "pk": trial_pk(trial_id),
        "sk": f"{ALERT_PREFIX}{participant_id}#{submission_id}#{rule_no}",
    }


def alerts_of(participant_id: str | None) -> str:
    return ALERT_PREFIX + (f"{participant_id}#" if participant_id else "")


def alert_cap(*, trial_id: str, participant_id: str, instrument: str, item: int) -> dict[str, str]:
    """The last e-mail sent for one participant and rule (the 24-hour cap)."""
    return {
        "pk": trial_pk(trial_id),
        "sk": f"{ALERT_CAP_PREFIX}{participant_id}#{instrument}#{item}",
    }


def alert_caps_of(participant_id: str) -> str:
    return f"{ALERT_CAP_PREFIX}{participant_id}#"


def alert_rate(*, trial_id: str, hour: str) -> dict[str, str]:
    """Safety-alert e-mails of one trial in one clock hour (the hourly cap)."""
    return {"pk": trial_pk(trial_id), "sk": f"AR#{hour}"}


def audit_pk(trial_id: str) -> str:
    return f"AUDIT#{trial_id}"


def audit_sk(*, at: str, event_id: str) -> str:
    return f"{at}#{event_id}"


def jobs_pk(trial_id: str) -> str:
    """The partition of a trial's export and report jobs (IAM scopes the job function's
    writes to it with dynamodb:LeadingKeys ``JOBS#*``)."""
    return f"JOBS#{trial_id}"


def jobs_of(kind: str) -> str:
    """The sort-key prefix of one kind of job (``export#``, ``report#``)."""
    return f"{kind}#"


def job(*, trial_id: str, kind: str, job_id: str) -> dict[str, str]:
    return {"pk": jobs_pk(trial_id), "sk": f"{jobs_of(kind)}{job_id}"}


def idempotency(scope_hash: str) -> dict[str, str]:
    return {"pk": f"IDEM#{scope_hash}", "sk": "IDEM"}


def submission_pk(*, trial_id: str, participant_id: str) -> str:
    return f"{trial_pk(trial_id)}#P#{participant_id}"


def slot_prefix(slot: Slot) -> str:
    return f"{SUBMISSION_PREFIX}{_slot_part(slot)}#"


def submission(*, trial_id: str, participant_id: str, slot: Slot, seq: int) -> dict[str, str]:
    return {
        "pk": submission_pk(trial_id=trial_id, participant_id=participant_id),
        "sk": f"{slot_prefix(slot)}{seq:03d}",
    }


def trial_received(*, received_at: str, submission_id: str) -> str:
    """The sort key of the by_trial index: arrival order."""
    return f"{received_at}#{submission_id}"
