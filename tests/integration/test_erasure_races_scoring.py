"""Erasure racing the stream: whatever the interleaving, nothing of the participant survives.

A participant's submission (a safety-alert FSCRS, or a correction of one) is scored while the
participant is erased. The interleavings are explored two ways:

- deterministically: the erasure runs whole just before the scorer's k-th DynamoDB call, and
  the scoring runs whole just before the erasure's j-th call, for every k and j (hooks on each
  side's own boto3 client, the only seam; no code of ours is replaced);
- at random: both run in threads at once, each DynamoDB call of either side delayed by a
  random fraction of a millisecond (seeded).

After each race the stream redelivers the record (at least once), and then nothing of the
participant may be left: no score, no aggregate share, no alert or alert-cap item, no
adherence mark, no submission, no export row, no alert-log row. The audit trail keeps its
data-free record by design.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from conftest import NAMES, TrialKeys, World, make_trial, moto_world, settings_for_tests, submission
from domain.submissions import SubmissionRecord
from domain.trial import Slot
from handlers.wiring import Adapters, Container, build, build_adapters
from services.audit import Actor

TRIAL = "cmt-race"
SUBMISSIONS = f"/v1/trials/{TRIAL}/submissions"
FSCRS_ALERT = {**{str(i): 1 for i in range(1, 23)}, "9": 4}
RANDOM_RUNS = 160
ACTOR = Actor(key_id="k_race", role="coordinator")


@dataclass
class Race:
    world: World
    keys: TrialKeys
    scorer: Container  # the stream function's container (its own DynamoDB client)
    eraser: Container  # the API function's container
    scorer_adapters: Adapters
    hooks: dict[str, Callable[[], None] | None]
    counter: Iterator[int]

    def head(self, pid: str) -> SubmissionRecord:
        found = self.scorer_adapters.stores.submissions.slot_head(
            trial_id=TRIAL, participant_id=pid, slot=Slot(instrument="fscrs", timepoint="week-1")
        )
        assert found is not None
        return found


def _hook(race: Race, side: str) -> Callable[..., None]:
    def before_call(**_: Any) -> None:
        action = race.hooks[side]
        if action is not None:
            action()

    return before_call


@pytest.fixture(scope="module")
def race() -> Iterator[Race]:
    with moto_world() as world:
        keys = make_trial(world.client, world.container, trial_id=TRIAL, participants=())
        scorer_adapters = build_adapters(settings_for_tests())
        eraser_adapters = build_adapters(settings_for_tests())
        scorer = build(settings_for_tests(), clock=world.clock, adapters=scorer_adapters)
        eraser = build(settings_for_tests(), clock=world.clock, adapters=eraser_adapters)
        hooks: dict[str, Callable[[], None] | None] = {"scorer": None, "eraser": None}
        state = Race(world, keys, scorer, eraser, scorer_adapters, hooks, iter(range(10**6)))
        scorer_adapters.dynamodb.meta.events.register(
            "before-call.dynamodb.*", _hook(state, "scorer")
        )
        eraser_adapters.dynamodb.meta.events.register(
            "before-call.dynamodb.*", _hook(state, "eraser")
        )
        yield state


def enrol_and_submit(race: Race, *, correction: bool) -> tuple[str, SubmissionRecord]:
    """A new participant with a stored (unscored) alerting FSCRS; returns its stream item.

    The clock moves on a day first, so every run takes the same path through the alert
    e-mail caps (which the fault-injection and alert tests cover).
    """
    race.world.clock.advance(timedelta(days=1, hours=1))
    client, keys = race.world.client, race.keys
    pid = f"R{next(race.counter):04d}"
    r = client.post(
        f"/v1/trials/{TRIAL}/participants", headers=keys.coordinator, json={"participant_id": pid}
    )
    assert r.status_code == 201, r.text
    body = submission(pid, "fscrs", "week-1", FSCRS_ALERT)
    r = client.post(SUBMISSIONS, headers=keys.submitter, json=body)
    assert r.status_code == 201, r.text
    if correction:
        # the first one is scored normally; the race is about its correction
        race.scorer.scoring.process(race.head(pid))
        body = {**body, "supersedes": r.json()["submission_id"], "responses": FSCRS_ALERT}
        r = client.post(
            SUBMISSIONS, headers={**keys.submitter, "Idempotency-Key": f"fix-{pid}"}, json=body
        )
        assert r.status_code == 201, r.text
    return pid, race.head(pid)


def score(race: Race, item: SubmissionRecord) -> None:
    """Deliver the record as the stream does: retried until it succeeds (at most 6 times)."""
    for attempt in range(6):
        try:
            race.scorer.scoring.process(item)
            return
        except Exception:
            if attempt == 5:
                raise


def erase(race: Race, pid: str) -> None:
    trial = race.eraser.trials.get(TRIAL)
    race.eraser.erasure.erase(trial, pid, ACTOR)


def assert_nothing_left(race: Race, pid: str, *, through_the_api: bool = True) -> None:
    dynamodb = race.world.aws["dynamodb"]

    def query(table: str, pk: str, prefix: str | None = None) -> list[Any]:
        condition = "pk = :pk" + (" AND begins_with(sk, :p)" if prefix else "")
        values: dict[str, Any] = {":pk": {"S": pk}}
        if prefix:
            values[":p"] = {"S": prefix}
        return list(
            dynamodb.query(
                TableName=table,
                KeyConditionExpression=condition,
                ExpressionAttributeValues=values,
                ConsistentRead=True,
            )["Items"]
        )

    main = NAMES.main_table
    left = {
        prefix: query(main, f"T#{TRIAL}", f"{prefix}{pid}")
        for prefix in ("P#", "SC#", "AL#", "AC#")
    }
    left["submissions"] = query(NAMES.submissions_table, f"T#{TRIAL}#P#{pid}")
    assert not any(left.values()), {k: [i["sk"]["S"] for i in v] for k, v in left.items() if v}
    # no aggregate share: every participant of this trial is erased, so every sum is zero
    for aggregate in query(main, f"T#{TRIAL}", "AG#"):
        for name, value in aggregate.items():
            if name.startswith(("n_", "sum_", "sumsq_")):
                assert Decimal(value["N"]) == 0, (pid, name, value)
    if not through_the_api:
        return
    client, keys = race.world.client, race.keys
    for layout in ("long", "wide"):
        text = client.get(
            f"/v1/trials/{TRIAL}/export.csv?layout={layout}", headers=keys.coordinator
        ).text
        assert pid not in text, layout
    alerts = client.get(f"/v1/trials/{TRIAL}/alerts", headers=keys.coordinator).json()
    assert pid not in {a["participant_id"] for a in alerts["alerts"]}
    summary = client.get(f"/v1/trials/{TRIAL}/summary", headers=keys.coordinator).json()
    assert pid not in {a["participant_id"] for a in summary["diary_adherence"]}


class RunInside:
    """A hook that runs `intruder` whole just before the `at`-th call of `side`."""

    def __init__(self, race: Race, side: str, at: int, intruder: Callable[[], None]) -> None:
        self.race, self.side, self.at, self.intruder = race, side, at, intruder
        self.seen = 0
        self.ran = False

    def __call__(self) -> None:
        self.seen += 1
        if self.seen == self.at:
            self.race.hooks[self.side] = None  # the intruder's calls are on the other client
            self.intruder()
            self.ran = True


def race_once(race: Race, *, correction: bool, side: str, at: int) -> bool:
    """One run with the intruder at call `at` of `side`; False when `side` made fewer calls."""
    pid, item = enrol_and_submit(race, correction=correction)
    if side == "scorer":
        hook = RunInside(race, "scorer", at, lambda: erase(race, pid))
        race.hooks["scorer"] = hook
        score(race, item)
    else:
        hook = RunInside(race, "eraser", at, lambda: score(race, item))
        race.hooks["eraser"] = hook
        erase(race, pid)
    race.hooks = {"scorer": None, "eraser": None}
    if not hook.ran:  # past the last call: finish the sequential run, then check it too
        if side == "scorer":
            erase(race, pid)
        else:
            score(race, item)
    score(race, item)  # the stream redelivers the record
    try:
        assert_nothing_left(race, pid)
    except AssertionError as exc:
        raise AssertionError(f"correction={correction} {side} call {at}: {exc}") from None
    return hook.ran


def test_erasure_at_every_point_of_scoring_and_scoring_at_every_point_of_erasure(
    race: Race,
) -> None:
    runs = {}
    for correction in (False, True):
        for side in ("scorer", "eraser"):
            at = 1
            while race_once(race, correction=correction, side=side, at=at):
                at += 1
            runs[(correction, side)] = at
    # both sides make several calls, so there are many interleavings
    assert all(n > 5 for n in runs.values()), runs
    print(f"\nerasure races, deterministic interleavings: {sum(runs.values())} runs {runs}")


def guarded(
    errors: list[BaseException], work: Callable[..., None], *args: Any
) -> Callable[[], None]:
    def run_it() -> None:
        try:
            work(*args)
        except BaseException as exc:  # the test reports it
            errors.append(exc)

    return run_it


def test_erasure_and_scoring_in_threads_at_once_leave_nothing(race: Race) -> None:
    rng = random.Random(20261201)
    lock = threading.Lock()

    def jitter() -> None:
        with lock:
            pause = rng.random() * 0.0015
        time.sleep(pause)

    for run in range(RANDOM_RUNS):
        pid, item = enrol_and_submit(race, correction=run % 4 == 3)
        race.hooks = {"scorer": jitter, "eraser": jitter}
        errors: list[BaseException] = []

        threads = [
            threading.Thread(target=guarded(errors, score, race, item)),
            threading.Thread(target=guarded(errors, erase, race, pid)),
        ]
        if run % 2:
            threads.reverse()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        race.hooks = {"scorer": None, "eraser": None}
        assert not errors, errors
        score(race, item)  # the stream redelivers the record
        # the tables every run; the coordinator's routes too on every tenth
        assert_nothing_left(race, pid, through_the_api=run % 10 == 0)
    print(f"\nerasure races, threads: {RANDOM_RUNS} runs, nothing left")
