"""Lambda entry point of the nightly pre/post report (EventBridge schedule).

Publishes every trial's report to S3; an event with `{"trial_id": ...}` runs one trial.
`make_handler` wraps any container (a test's, with its own clock) as the deployed function
wraps the one built from the environment.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger

from adapters.bulk_read import gc_paused
from handlers.settings import get_settings
from handlers.wiring import Container, build

logger = Logger(service="cmt-collect")
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def make_handler(container: Container) -> Handler:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        trial_id = (event or {}).get("trial_id")
        trials = [container.trials.get(trial_id)] if trial_id else container.trials.list_all()
        published = []
        for trial in trials:
            # a report holds a whole trial's scores alive while it computes: the cyclic
            # collector would scan them again and again for no garbage (adapters.bulk_read)
            with gc_paused():
                report = container.reporting.publish(trial)
            published.append({"trial_id": trial.trial_id, "json": report["artifacts"]["json"]})
            logger.info("pre/post report published", extra={"trial_id": trial.trial_id})
        return {"published": published}

    return handler


container = build(get_settings())
handler = make_handler(container)
