"""API keys an admin can list, revoke and let expire; rate limits per key (v1.1)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from clock import SAMPLE_NOW
from conftest import World, assert_problem, bearer, make_trial, settings_for_tests
from handlers.wiring import build
from services.auth import KeyService
from services.errors import NotAuthenticated
from services.rate_limit import RateLimited, RateLimiter, RatePolicy


class Ticks:
    """A monotonic clock the test moves by hand (never the machine's)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def keys_of(world: World, trial: str, admin: dict[str, str], **params: Any) -> dict[str, Any]:
    r = world.client.get(f"/v1/trials/{trial}/api-keys", headers=admin, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def test_an_admin_lists_a_trials_keys_paged_without_ever_seeing_a_key(world: World) -> None:
    keys = make_trial(world.client, world.container)
    created = [
        world.client.post(
            f"/v1/trials/{keys.trial_id}/api-keys",
            headers=keys.admin,
            json={"role": "submitter", "label": f"app {n}"},
        ).json()
        for n in range(3)
    ]
    seen, cursor, pages = [], None, 0
    while True:
        page = keys_of(
            world, keys.trial_id, keys.admin, limit=2, **({"cursor": cursor} if cursor else {})
        )
        seen += page["api_keys"]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages >= 3
    # the coordinator and submitter keys of make_trial, and the three above
    assert len(seen) == 5
    assert len({k["key_id"] for k in seen}) == 5
    assert {c["key_id"] for c in created} <= {k["key_id"] for k in seen}
    text = str(seen)
    assert all(c["api_key"] not in text for c in created)
    assert all(
        set(k) == {"key_id", "role", "label", "created_at", "last_used", "expires_at", "revoked_at"}
        for k in seen
    )
    # the coordinator key was used by make_trial (to enrol): its day is recorded
    used = {k["key_id"]: k["last_used"] for k in seen}
    assert used[keys.coordinator_key_id] == SAMPLE_NOW.date().isoformat()
    assert_problem(
        world.client.get(f"/v1/trials/{keys.trial_id}/api-keys", headers=keys.coordinator), 403
    )
    r = world.client.get(
        f"/v1/trials/{keys.trial_id}/api-keys", headers=keys.admin, params={"cursor": "x"}
    )
    assert [e["loc"] for e in assert_problem(r, 422)["errors"]] == [["query", "cursor"]]


def test_a_revoked_key_is_refused_at_once_by_the_revoking_function(world: World) -> None:
    keys = make_trial(world.client, world.container)
    summary = f"/v1/trials/{keys.trial_id}/summary"
    assert world.client.get(summary, headers=keys.coordinator).status_code == 200
    r = world.client.delete(
        f"/v1/trials/{keys.trial_id}/api-keys/{keys.coordinator_key_id}", headers=keys.admin
    )
    assert r.status_code == 200, r.text
    assert r.json()["revoked_at"]
    body = assert_problem(world.client.get(summary, headers=keys.coordinator), 401)
    assert "revoked" in body["detail"]
    # listed as revoked; revoking again keeps the first time
    again = world.client.delete(
        f"/v1/trials/{keys.trial_id}/api-keys/{keys.coordinator_key_id}", headers=keys.admin
    )
    assert again.json()["revoked_at"] == r.json()["revoked_at"]
    assert_problem(
        world.client.delete(
            f"/v1/trials/{keys.trial_id}/api-keys/k_0000000000000000", headers=keys.admin
        ),
        404,
    )


def test_a_revoked_key_is_refused_by_every_other_warm_function_within_five_seconds(
    world: World,
) -> None:
    keys = make_trial(world.client, world.container)
    token = keys.coordinator["Authorization"].removeprefix("Bearer ")
    ticks = Ticks()
    # another warm instance of the API function, with its own key cache
    other = KeyService(world.adapters.keys, world.clock, cache_seconds=60, monotonic=ticks)
    assert other.cache_seconds == 5.0  # capped whatever is configured
    other.authenticate(token)
    world.container.keys.revoke(keys.trial_id, keys.coordinator_key_id)
    ticks.now += 4.9
    other.authenticate(token)  # still cached: at most 5 seconds
    ticks.now += 0.1
    with pytest.raises(NotAuthenticated, match="revoked"):
        other.authenticate(token)


def test_a_key_with_an_expiry_is_refused_from_that_moment(world: World) -> None:
    keys = make_trial(world.client, world.container)
    expires = (SAMPLE_NOW + timedelta(hours=1)).isoformat()
    r = world.client.post(
        f"/v1/trials/{keys.trial_id}/api-keys",
        headers=keys.admin,
        json={"role": "coordinator", "label": "visiting statistician", "expires_at": expires},
    )
    assert r.status_code == 201, r.text
    assert r.json()["expires_at"] == "2026-11-26T10:35:00.000Z"
    visitor = bearer(r.json()["api_key"])
    summary = f"/v1/trials/{keys.trial_id}/summary"
    assert world.client.get(summary, headers=visitor).status_code == 200
    world.clock.advance(timedelta(hours=1))
    body = assert_problem(world.client.get(summary, headers=visitor), 401)
    assert "expired" in body["detail"]
    listed = {k["key_id"]: k for k in keys_of(world, keys.trial_id, keys.admin)["api_keys"]}
    assert listed[r.json()["key_id"]]["expires_at"] == "2026-11-26T10:35:00.000Z"
    past = world.client.post(
        f"/v1/trials/{keys.trial_id}/api-keys",
        headers=keys.admin,
        json={"role": "submitter", "label": "x", "expires_at": "2020-01-01T00:00:00Z"},
    )
    assert [e["loc"] for e in assert_problem(past, 422)["errors"]] == [["body", "expires_at"]]


def test_a_key_over_its_rate_gets_429_with_retry_after_and_others_are_not_slowed(
    world: World,
) -> None:
    keys = make_trial(world.client, world.container)
    ticks = Ticks()
    world.container.key_limits = RateLimiter(RatePolicy(per_second=2, burst=3), monotonic=ticks)
    summary = f"/v1/trials/{keys.trial_id}/summary"
    statuses = [world.client.get(summary, headers=keys.coordinator).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    r = world.client.get(summary, headers=keys.coordinator)
    body = assert_problem(r, 429)
    assert r.headers["Retry-After"] == "1"
    assert "retry in 1 s" in body["detail"]
    # another key of the same trial is not held back by the noisy one
    r = world.client.post(
        f"/v1/trials/{keys.trial_id}/submissions", headers=keys.submitter, json={}
    )
    assert r.status_code == 422
    ticks.now += 0.5  # one token back at 2 a second
    assert world.client.get(summary, headers=keys.coordinator).status_code == 200
    assert world.client.get(summary, headers=keys.coordinator).status_code == 429


def test_the_rate_limiter_refills_at_its_rate_and_caps_at_its_burst() -> None:
    ticks = Ticks()
    limiter = RateLimiter(RatePolicy(per_second=10, burst=5), monotonic=ticks)
    for _ in range(5):
        limiter.take("k")
    with pytest.raises(RateLimited) as refused:
        limiter.take("k")
    assert refused.value.retry_after == 1
    ticks.now += 0.35  # 3.5 tokens back
    for _ in range(3):
        limiter.take("k")
    with pytest.raises(RateLimited):
        limiter.take("k")
    ticks.now += 3600  # never more than the burst
    for _ in range(5):
        limiter.take("k")
    with pytest.raises(RateLimited):
        limiter.take("k")
    limiter.take("another caller")


def test_the_default_limits_and_key_cache_come_from_settings() -> None:
    container = build(settings_for_tests(key_requests_per_second=3.0, key_request_burst=7))
    assert container.key_limits.policy == RatePolicy(per_second=3.0, burst=7)
    assert container.keys.cache_seconds == 5.0
