"""Lambda entry point of the weekly summary e-mail (EventBridge, Monday 08:00 UTC).

An event with `{"trial_id": ...}` runs one trial; trials without coordinator addresses are
skipped with a log line.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from handlers.settings import get_settings
from handlers.wiring import build

logger = Logger(service="cmt-collect")
container = build(get_settings())


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    trial_id = (event or {}).get("trial_id")
    if trial_id:
        outcomes = [container.weekly.run(container.trials.get(trial_id))]
    else:
        outcomes = container.weekly.run_all()
    return {
        "summaries": [
            {"trial_id": o.trial_id, "sent_to": len(o.sent_to), "skipped": o.skipped_reason}
            for o in outcomes
        ]
    }
