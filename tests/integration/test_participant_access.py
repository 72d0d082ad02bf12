"""Participant access (API.md v1.1): enrolment codes, participant tokens, GET /v1/me.

A coordinator asks for a one-time code; a participant's front end exchanges it (no key,
throttled) for a token scoped to that one participant, stored only as a hash, which reads
/v1/me and submits for that participant only, and ends when the participant logs out, the
coordinator revokes it, or the participant is withdrawn or erased. /v1/me and the
coordinator's participant list show one schedule with the same windows and states, from the
protocol's offsets and windows (default: week-N at 7 (N - 1) days +/- 3, follow-up at 26
weeks +/- 14).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from typing import Any

from conftest import (
    NAMES,
    World,
    access_code,
    assert_problem,
    bearer,
    make_trial,
    submission,
)
from services.rate_limit import RateLimiter, RatePolicy

TRIAL = "cmt-pilot"
DAY = timedelta(days=1)


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def scan_main(world: World) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": NAMES.main_table}
    while True:
        page = world.aws["dynamodb"].scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def exchange(world: World, code: str) -> Any:
    return world.client.post("/v1/access/exchange", json={"code": code})


def token_of(world: World, code: str) -> dict[str, str]:
    r = exchange(world, code)
    assert r.status_code == 201, r.text
    return bearer(r.json()["participant_token"])


# -- codes and their exchange ----------------------------------------------------------------


def test_a_code_is_shown_once_lasts_14_days_and_is_exchanged_for_a_token_of_its_participant(
    world: World,
) -> None:
    keys = make_trial(world.client, world.container, TRIAL, participants=("P01", "P02"))
    r = world.client.post(
        f"/v1/trials/{TRIAL}/participants/P01/access-codes", headers=keys.coordinator
    )
    assert r.status_code == 201, r.text
    issued = r.json()
    # 12 symbols of Crockford's base32 (5 bits each: 60 >= 40 random bits), in groups of 4
    assert re.fullmatch(
        r"[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", issued["code"]
    )
    assert (issued["trial_id"], issued["participant_id"]) == (TRIAL, "P01")
    asked_at = world.clock()
    assert timedelta(days=14) - timedelta(seconds=1) < moment(issued["expires_at"]) - asked_at
    assert moment(issued["expires_at"]) - asked_at <= timedelta(days=14)

    # typed by hand: lower case, spaces instead of hyphens
    r = exchange(world, issued["code"].lower().replace("-", " "))
    assert r.status_code == 201, r.text
    token = r.json()
    assert (token["trial_id"], token["participant_id"]) == (TRIAL, "P01")
    assert token["participant_token"].startswith("cmtp_")
    assert moment(token["expires_at"]) > moment(issued["expires_at"])

    me = world.client.get("/v1/me", headers=bearer(token["participant_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["participant_id"] == "P01"

    # neither the code nor the token is stored anywhere, only what opens them
    stored = json.dumps(scan_main(world), default=str)
    assert issued["code"] not in stored
    assert issued["code"].replace("-", "") not in stored
    assert token["participant_token"] not in stored
    assert token["participant_token"].rpartition(".")[2] not in stored


def test_a_code_works_once_and_every_wrong_code_gets_the_same_401(world: World) -> None:
    keys = make_trial(world.client, world.container, TRIAL, participants=("P01",))
    code = access_code(world.client, keys.coordinator, TRIAL, "P01")
    token_of(world, code)

    used = exchange(world, code)
    never_issued = exchange(world, "0000-0000-0000")
    not_a_code = exchange(world, "hello")
    details = {assert_problem(r, 401)["detail"] for r in (used, never_issued, not_a_code)}
    assert len(details) == 1  # a guess learns nothing from the answer


def test_a_new_code_replaces_the_unused_one_and_a_code_expires_after_14_days(
    world: World,
) -> None:
    keys = make_trial(world.client, world.container, TRIAL, participants=("P01",))
    first = access_code(world.client, keys.coordinator, TRIAL, "P01")
    second = access_code(world.client, keys.coordinator, TRIAL, "P01")
    assert_problem(exchange(world, first), 401)

    world.clock.advance(14 * DAY)
    assert_problem(exchange(world, second), 401)
    third = access_code(world.client, keys.coordinator, TRIAL, "P01")
    world.clock.advance(14 * DAY - timedelta(minutes=1))
    token_of(world, third)


def test_a_code_is_only_for_an_enrolled_participant_who_is_not_withdrawn(world: World) -> None:
    keys = make_trial(world.client, world.container, TRIAL, participants=("P01",))
    r = world.client.post(
        f"/v1/trials/{TRIAL}/participants/P99/access-codes", headers=keys.coordinator
    )
    assert_problem(r, 404)
    r = world.client.patch(
        f"/v1/trials/{TRIAL}/participants/P01",
        headers=keys.coordinator,
        json={"status": "withdrawn", "reason": "moved away"},
    )
    assert r.status_code == 200, r.text
    r = world.client.post(
        f"/v1/trials/{TRIAL}/participants/P01/access-codes", headers=keys.coordinator
    )
    problem = assert_problem(r, 422)
    assert [e["loc"] for e in problem["errors"]] == [["path", "participant_id"]]


def test_the_exchange_is_throttled_per_source_even_for_a_valid_code(world: World) -> None:
    keys = make_trial(world.client, world.container, TRIAL, participants=("P01",))
    ticks = [0.0]  # a monotonic clock moved by hand, never the machine's
    world.container.exchange_by_source = RateLimiter(
        RatePolicy(per_second=0.2, burst=3), monotonic=lambda: ticks[0]
    )
    for _ in range(3):
        assert_problem(exchange(world, "0000-0000-0000"), 401)
    code = access_code(world.client, keys.coordinator, TRIAL, "P01")

    refused = exchange(world, code)
    assert_problem(refused, 429)
    assert refused.headers["Retry-After"] == "5"  # one exchange per 5 s comes back

    ticks[0] += 5.0
    token_of(world, code)  # the refused try did not use the code up


def test_the_exchange_has_a_ceiling_for_the_whole_function_whatever_the_source(
    world: World,
) -> None:
    make_trial(world.client, world.container, TRIAL, participants=("P01",))
    world.container.exchange_all = RateLimiter(
        RatePolicy(per_second=1, burst=2), monotonic=lambda: 0.0
    )
    for _ in range(2):
        assert_problem(exchange(world, "0000-0000-0000"), 401)
    refused = exchange(world, "0000-0000-0000")
    assert "on this server" in assert_problem(refused, 429)["detail"]
    assert refused.headers["Retry-After"] == "1"


# -- what a token may do ---------------------------------------------------------------------


def test_a_token_submits_for_its_own_participant_only_and_in_its_own_trial_only(
    world: World,
) -> None:
    keys = make_trial(world.client, world.container, TRIAL, participants=("P01", "P02"))
    make_trial(world.client, world.container, "other-trial", participants=("P01",))
    token = token_of(world, access_code(world.client, keys.coordinator, TRIAL, "P01"))

    r = world.client.post(f"/v1/trials/{TRIAL}/submissions", headers=token, json=submission("P01"))
    assert r.status_code == 201, r.text
    (stored,) = world.stores.submissions.list_for_trial(TRIAL)
    assert (stored.submission_id, stored.participant_id) == (r.json()["submission_id"], "P01")

    # another participant of the trial, even with a body the schema refuses: 403 first
    for body in (submission("P02"), submission("P02", responses={"1": "lots"})):
        r = world.client.post(f"/v1/trials/{TRIAL}/submissions", headers=token, json=body)
        assert "own participant" in assert_problem(r, 403)["detail"]
    # the same participant id in another trial
    r = world.client.post(
        "/v1/trials/other-trial/submissions", headers=token, json=submission("P01")
    )
    assert_problem(r, 403)
    # and nothing of the coordinator's
    for path in (f"/v1/trials/{TRIAL}", f"/v1/trials/{TRIAL}/participants/P01/scores"):
        assert_problem(world.client.get(path, headers=token), 403)
    # a key has no /v1/me
    assert_problem(world.client.get("/v1/me", headers=keys.coordinator), 403)


def test_a_token_ends_on_logout_revocation_withdrawal_and_erasure(world: World) -> None:
    keys = make_trial(world.client, world.container, TRIAL, participants=("P01", "P02", "P03"))

    def new_token(pid: str) -> dict[str, str]:
        return token_of(world, access_code(world.client, keys.coordinator, TRIAL, pid))

    phone, laptop = new_token("P01"), new_token("P01")
    r = world.client.delete("/v1/me/token", headers=phone)
    assert r.status_code == 200, r.text
    assert r.json()["ended"] is True
    assert_problem(world.client.get("/v1/me", headers=phone), 401)
    assert world.client.get("/v1/me", headers=laptop).status_code == 200  # other tokens stay

    r = world.client.delete(f"/v1/trials/{TRIAL}/participants/P01/tokens", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    assert r.json() == {"trial_id": TRIAL, "participant_id": "P01", "tokens_revoked": 1}
    assert_problem(world.client.get("/v1/me", headers=laptop), 401)

    withdrawn = new_token("P02")
    unused = access_code(world.client, keys.coordinator, TRIAL, "P02")
    r = world.client.patch(
        f"/v1/trials/{TRIAL}/participants/P02",
        headers=keys.coordinator,
        json={"status": "withdrawn", "reason": "no time"},
    )
    assert r.status_code == 200, r.text
    assert_problem(world.client.get("/v1/me", headers=withdrawn), 401)
    assert_problem(exchange(world, unused), 401)  # the unused code went with them

    erased = new_token("P03")
    unused = access_code(world.client, keys.coordinator, TRIAL, "P03")
    r = world.client.delete(f"/v1/trials/{TRIAL}/participants/P03", headers=keys.coordinator)
    assert r.status_code == 200, r.text
    assert_problem(world.client.get("/v1/me", headers=erased), 401)
    assert_problem(exchange(world, unused), 401)
    assert not [i for i in scan_main(world) if i["pk"]["S"].startswith("CODE#")]
    # enrolled again under the same code, the old token still opens nothing
    r = world.client.post(
        f"/v1/trials/{TRIAL}/participants", headers=keys.coordinator, json={"participant_id": "P03"}
    )
    assert r.status_code == 201, r.text
    assert_problem(world.client.get("/v1/me", headers=erased), 401)


def test_a_forged_or_altered_token_is_401(world: World) -> None:
    keys = make_trial(world.client, world.container, TRIAL, participants=("P01", "P02"))
    token = token_of(world, access_code(world.client, keys.coordinator, TRIAL, "P01"))
    value = token["Authorization"].removeprefix("Bearer ")
    prefix, _, secret = value.partition(".")
    other_ids = "cmtp_" + "Y210LXBpbG90L1AwMg"  # base64url("cmt-pilot/P02"): another's ids
    for forged in (
        f"{prefix}.{secret[:-1]}{'A' if secret[-1] != 'A' else 'B'}",
        f"{other_ids}.{secret}",
        "cmtp_not-a-token",
    ):
        assert_problem(world.client.get("/v1/me", headers=bearer(forged)), 401)


# -- the schedule ----------------------------------------------------------------------------


def slots_by_key(schedule: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(s["instrument"], s["timepoint"]): s for s in schedule}


def test_me_shows_every_scheduled_slot_with_its_window_from_enrolment_and_its_state(
    world: World,
) -> None:
    keys = make_trial(world.client, world.container, TRIAL, participants=("P01",))
    enrolled_at = moment(
        world.client.get(f"/v1/trials/{TRIAL}/participants", headers=keys.coordinator).json()[
            "participants"
        ][0]["enrolled_at"]
    )
    token = token_of(world, access_code(world.client, keys.coordinator, TRIAL, "P01"))

    me = world.client.get("/v1/me", headers=token).json()
    assert set(me) == {"trial_id", "trial_title", "participant_id", "status", "schedule"}
    assert (me["trial_title"], me["participant_id"], me["status"]) == (
        f"Trial {TRIAL}",
        "P01",
        "active",
    )
    slots = slots_by_key(me["schedule"])
    # default protocol: six questionnaires at week-1, week-12, follow-up; the diary weekly
    assert len(slots) == 6 * 3 + 12
    for s in me["schedule"]:
        assert set(s) == {"instrument", "timepoint", "opens_at", "closes_at", "state"}

    def window(key: tuple[str, str]) -> tuple[timedelta, timedelta]:
        s = slots[key]
        return moment(s["opens_at"]) - enrolled_at, moment(s["closes_at"]) - enrolled_at

    # week-N at 7 (N - 1) days +/- 3 (half-open: closes the day after the last day), never
    # before enrolment; follow-up at 26 weeks +/- 14
    assert window(("hads", "week-1")) == (0 * DAY, 4 * DAY)
    assert window(("diary", "week-2")) == (4 * DAY, 11 * DAY)
    assert window(("hads", "week-12")) == (74 * DAY, 81 * DAY)
    assert window(("hads", "follow-up")) == (168 * DAY, 197 * DAY)
    assert slots[("hads", "week-1")]["state"] == "due"
    assert slots[("diary", "week-2")]["state"] == "upcoming"

    r = world.client.post(f"/v1/trials/{TRIAL}/submissions", headers=token, json=submission("P01"))
    assert r.status_code == 201, r.text
    world.pump.drain()
    world.clock.advance(5 * DAY)
    slots = slots_by_key(world.client.get("/v1/me", headers=token).json()["schedule"])
    assert slots[("hads", "week-1")]["state"] == "done"
    assert slots[("fscs", "week-1")]["state"] == "missed"
    assert slots[("diary", "week-2")]["state"] == "due"
    assert slots[("hads", "week-12")]["state"] == "upcoming"

    # the coordinator's list reads the very same schedule
    listed = world.client.get(f"/v1/trials/{TRIAL}/participants", headers=keys.coordinator)
    (row,) = listed.json()["participants"]
    assert row["schedule"] == world.client.get("/v1/me", headers=token).json()["schedule"]
    assert "hads#week-1" in row["done"]


def test_me_follows_the_protocols_own_timing(world: World) -> None:
    keys = make_trial(world.client, world.container, TRIAL, participants=())
    protocol = {
        "timepoints": ["baseline", "week-4"],
        "schedule": {"hads": ["baseline", "week-4"]},
        "comparison": {"pre": "baseline", "post": "week-4"},
        "timing": {"baseline": {"offset_days": 0, "window_days": 7}},
    }
    r = world.client.patch(
        f"/v1/trials/{TRIAL}", headers=keys.admin, json={"protocol": protocol, "alert_rules": []}
    )
    assert r.status_code == 200, r.text
    r = world.client.post(
        f"/v1/trials/{TRIAL}/participants", headers=keys.coordinator, json={"participant_id": "P01"}
    )
    enrolled_at = moment(r.json()["enrolled_at"])
    token = token_of(world, access_code(world.client, keys.coordinator, TRIAL, "P01"))
    world.clock.advance(8 * DAY)

    slots = slots_by_key(world.client.get("/v1/me", headers=token).json()["schedule"])
    assert moment(slots[("hads", "baseline")]["closes_at"]) - enrolled_at == 8 * DAY
    assert slots[("hads", "baseline")]["state"] == "missed"
    # week-4 keeps its default: day 21 +/- 3
    assert moment(slots[("hads", "week-4")]["opens_at"]) - enrolled_at == 18 * DAY
    assert slots[("hads", "week-4")]["state"] == "upcoming"


def test_a_scheduled_timepoint_without_a_default_timing_must_be_given_one(world: World) -> None:
    keys = make_trial(world.client, world.container, TRIAL, participants=())
    protocol = {
        "timepoints": ["baseline", "week-4"],
        "schedule": {"hads": ["baseline", "week-4"]},
        "comparison": {"pre": "baseline", "post": "week-4"},
        "timing": {
            "week-4": {"offset_days": -1, "window_days": 3},
            "later": {"offset_days": 3, "window_days": 1},
        },
    }
    r = world.client.patch(
        f"/v1/trials/{TRIAL}", headers=keys.admin, json={"protocol": protocol, "alert_rules": []}
    )
    problem = assert_problem(r, 422)
    # every problem at once: a negative offset, a timing for no timepoint of the protocol,
    # and a scheduled timepoint without a default left without a timing
    assert {(tuple(e["loc"]), e["type"]) for e in problem["errors"]} == {
        (("body", "protocol", "timing", "week-4", "offset_days"), "out_of_range"),
        (("body", "protocol", "timing", "later"), "unknown_timepoint"),
        (("body", "protocol", "timing", "baseline"), "missing_timing"),
    }


# -- the coordinator's list, paged -----------------------------------------------------------


def test_the_participant_list_is_paged_in_code_order_with_a_cursor(world: World) -> None:
    pids = ("P01", "P02", "P03", "P04", "P05")
    keys = make_trial(world.client, world.container, TRIAL, participants=pids)
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = world.client.get(
            f"/v1/trials/{TRIAL}/participants", headers=keys.coordinator, params=params
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert len(body["participants"]) <= 2
        seen += [p["participant_id"] for p in body["participants"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(pids)
    assert pages == 3

    r = world.client.get(
        f"/v1/trials/{TRIAL}/participants", headers=keys.coordinator, params={"cursor": "nonsense"}
    )
    problem = assert_problem(r, 422)
    assert [e["loc"] for e in problem["errors"]] == [["query", "cursor"]]
    r = world.client.get(
        f"/v1/trials/{TRIAL}/participants", headers=keys.coordinator, params={"limit": 0}
    )
    assert_problem(r, 422)


def test_a_token_whose_participant_was_erased_elsewhere_is_401_at_once_on_me(
    world: World,
) -> None:
    """Another function instance erased them: this one still trusts the token for up to 5 s,
    but /v1/me reads the participant afresh and finds the token ended with them."""
    keys = make_trial(world.client, world.container, TRIAL, participants=("P01",))
    token = token_of(world, access_code(world.client, keys.coordinator, TRIAL, "P01"))
    assert world.client.get("/v1/me", headers=token).status_code == 200  # the token is cached
    world.stores.participants.delete_participant(TRIAL, "P01")

    r = world.client.get("/v1/me", headers=token)
    assert_problem(r, 401)
    assert r.headers["www-authenticate"].startswith("Bearer")
