"""Key patterns of both tables: the only place that builds pk/sk strings.

See docs/data-model.md for the access pattern each serves.
"""

from __future__ import annotations

TRIALS_PK = "TRIALS"


def trial(trial_id: str) -> dict[str, str]:
    return {"pk": TRIALS_PK, "sk": f"T#{trial_id}"}


def api_key(key_hash: str) -> dict[str, str]:
    return {"pk": f"KEY#{key_hash}", "sk": "KEY"}


#: The main table's sparse index of API keys by owning trial ("*" for admin keys).
KEYS_BY_TRIAL_INDEX = "keys_by_trial"


def api_key_owner(trial_id: str) -> str:
    return f"KEYS#{trial_id}"


def trial_pk(trial_id: str) -> str:
    return f"T#{trial_id}"


def participant(trial_id: str, participant_id: str) -> dict[str, str]:
    return {"pk": trial_pk(trial_id), "sk": f"P#{participant_id}"}


PARTICIPANT_PREFIX = "P#"
SCORE_PREFIX = "SC#"
AGGREGATE_PREFIX = "AG#"
ALERT_PREFIX = "AL#"


def score(
    trial_id: str, participant_id: str, instrument: str, timepoint: str, seq: int
) -> dict[str, str]:
    return {
        "pk": trial_pk(trial_id),
        "sk": f"SC#{participant_id}#{instrument}#{timepoint}#{seq:03d}",
    }


def aggregate(trial_id: str, instrument: str, timepoint: str) -> dict[str, str]:
    return {"pk": trial_pk(trial_id), "sk": f"AG#{instrument}#{timepoint}"}


def alert(trial_id: str, participant_id: str, submission_id: str, rule_no: int) -> dict[str, str]:
    return {"pk": trial_pk(trial_id), "sk": f"AL#{participant_id}#{submission_id}#{rule_no}"}


def alert_cap(trial_id: str, participant_id: str, instrument: str, item: int) -> dict[str, str]:
    """The last e-mail sent for one participant and rule (the 24-hour cap)."""
    return {"pk": trial_pk(trial_id), "sk": f"AC#{participant_id}#{instrument}#{item}"}


ALERT_CAP_PREFIX = "AC#"


def alert_rate(trial_id: str, hour: str) -> dict[str, str]:
    """Safety-alert e-mails of one trial in one clock hour (the hourly cap)."""
    return {"pk": trial_pk(trial_id), "sk": f"AR#{hour}"}


def audit_pk(trial_id: str) -> str:
    return f"AUDIT#{trial_id}"


def idempotency(scope_hash: str) -> dict[str, str]:
    return {"pk": f"IDEM#{scope_hash}", "sk": "IDEM"}


def submission_pk(trial_id: str, participant_id: str) -> str:
    return f"T#{trial_id}#P#{participant_id}"


def slot_prefix(instrument: str, timepoint: str) -> str:
    return f"S#{instrument}#{timepoint}#"


def submission(
    trial_id: str, participant_id: str, instrument: str, timepoint: str, seq: int
) -> dict[str, str]:
    return {
        "pk": submission_pk(trial_id, participant_id),
        "sk": f"{slot_prefix(instrument, timepoint)}{seq:03d}",
    }
