"""The request path: what a warm API request runs on the event loop, and what a cold start
builds and imports.

A hop to the thread pool costs more than the work of a guard, so the guards answer a key or
token they checked moments ago from memory and leave the loop only for a store read; each
function builds only the services its handler reaches.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
from fastapi.routing import APIRoute

from conftest import TEST_ENV, World, make_trial, settings_for_tests
from handlers.http import submissions
from handlers.wiring import build, build_adapters
from services.auth import KeyService
from services.errors import NotAuthenticated

SUBMISSIONS = "/v1/trials/{trial_id}/submissions"


class Ticks:
    """A monotonic clock the test moves by hand (never the machine's)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _calls(dependant: Any) -> list[Any]:
    found = []
    for sub in dependant.dependencies:
        found.append(sub.call)
        found.extend(_calls(sub))
    return found


def test_the_submission_route_runs_its_endpoint_and_every_dependency_on_the_event_loop() -> None:
    (route,) = [
        r
        for r in submissions.router.routes
        if isinstance(r, APIRoute) and r.path == SUBMISSIONS and "POST" in r.methods
    ]
    calls = _calls(route.dependant)
    assert len(calls) >= 3  # the guard, the bearer credentials, the container
    blocking = [call for call in calls if not _is_coroutine(call)]
    assert blocking == []
    assert inspect.iscoroutinefunction(route.endpoint)


def _is_coroutine(call: Any) -> bool:
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(
        getattr(call, "__call__", None)  # noqa: B004 (HTTPBearer is an instance)
    )


def test_a_key_checked_moments_ago_is_answered_from_memory_until_its_cache_ends(
    world: World,
) -> None:
    keys = make_trial(world.client, world.container)
    key = keys.coordinator["Authorization"].removeprefix("Bearer ")
    ticks = Ticks()
    # another warm instance of the API function, with its own cache
    other = KeyService(world.adapters.keys, world.clock, cache_seconds=5, monotonic=ticks)
    assert other.cached_principal(key) is None  # never read here: the store must be asked
    principal = other.authenticate(key)
    assert other.cached_principal(key) == principal
    world.container.keys.revoke(keys.trial_id, keys.coordinator_key_id)
    ticks.now += 4.9
    assert other.cached_principal(key) == principal  # memory, not the store
    ticks.now += 0.1
    assert other.cached_principal(key) is None
    with pytest.raises(NotAuthenticated, match="revoked"):
        other.authenticate(key)


def test_a_cached_key_not_yet_marked_used_today_goes_to_the_store(world: World) -> None:
    keys = make_trial(world.client, world.container)
    key = keys.coordinator["Authorization"].removeprefix("Bearer ")
    ticks = Ticks()
    other = KeyService(world.adapters.keys, world.clock, cache_seconds=5, monotonic=ticks)
    other.authenticate(key)
    world.clock.advance(timedelta(days=1))
    assert other.cached_principal(key) is None  # authenticate must write today's last-used
    other.authenticate(key)
    assert other.cached_principal(key) is not None


def test_an_unknown_or_missing_key_is_never_answered_from_memory(world: World) -> None:
    assert world.container.keys.cached_principal(None) is None
    assert world.container.keys.cached_principal("") is None
    assert world.container.keys.cached_principal("cmtk_unknown") is None


def test_a_container_builds_a_service_on_first_use_only(world: World) -> None:
    container = build(settings_for_tests(), adapters=world.adapters)
    assert "scoring" not in vars(container)
    assert "weekly" not in vars(container)
    assert container.scoring is container.scoring
    assert "scoring" in vars(container)
    assert "weekly" not in vars(container)


def test_adapters_build_the_mail_and_report_adapters_on_first_use_only() -> None:
    adapters = build_adapters(settings_for_tests())
    assert not {"mailer", "reports", "metrics", "job_queue"} & set(vars(adapters))
    assert adapters.mailer is adapters.mailer
    assert "mailer" in vars(adapters)


def test_the_api_function_starts_without_building_its_models_and_builds_each_on_first_use() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CMT_"))}
    env.update(TEST_ENV)
    script = (
        "import json, handlers.api\n"
        "from handlers import schemas\n"
        "models = [m for m in vars(schemas).values()\n"
        "          if isinstance(m, type) and issubclass(m, schemas.Model)]\n"
        "built = [m.__name__ for m in models if m.__pydantic_complete__]\n"
        "schemas.Health.model_validate({'status': 'ok'})\n"
        "print(json.dumps([len(models), built, schemas.Health.__pydantic_complete__]))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    )
    count, built, health_built = json.loads(completed.stdout)
    assert count > 50
    assert built == []  # none at start-up, although the app has made every route's adapters
    assert health_built is True  # built by its first use


def test_the_api_function_starts_without_the_modules_of_other_functions_and_rare_routes() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CMT_"))}
    env.update(TEST_ENV)
    completed = subprocess.run(
        [sys.executable, "-c", "import sys, handlers.api; print(*sorted(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
        env=env,
    )
    imported = set(completed.stdout.split())
    assert {"handlers.api", "fastapi", "services.submit"} <= imported  # a real report
    top_level = {name.split(".")[0] for name in imported}
    # sqlite3: the export job's spool
    assert not {"email_validator", "jinja2", "numpy", "scipy", "sqlite3"} & top_level
    # the stream's scoring and e-mails, the report's statistics and figures, the export
    # job's files
    assert (
        not {
            "services.export_files",
            "services.export_syntax",
            "services.score_submission",
            "services.mail_render",
            "services.weekly",
            "services.reporting",
            "services.figures",
            "adapters.ses_mail",
            "adapters.emf_metrics",
        }
        & imported
    )
