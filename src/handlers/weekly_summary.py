"""Lambda entry point of the weekly summary e-mail (EventBridge, Monday 08:00 UTC).

An event with `{"trial_id": ...}` runs one trial; trials without coordinator addresses are
skipped with a log line. `make_handler` wraps any container (a test's, with its own clock)
as the deployed function wraps the one built from the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from adapters.bulk_read import gc_paused
from handlers.settings import get_settings
from handlers.wiring import Container, build

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def make_handler(container: Container) -> Handler:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        trial_id = (event or {}).get("trial_id")
        # each trial's participants and alerts stay alive while its summary is built: the
        # cyclic collector would scan them again and again for no garbage
        with gc_paused():
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

    return handler


container = build(get_settings())
handler = make_handler(container)
