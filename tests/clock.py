"""A test clock that never reads the wall clock: fixed start, one millisecond per reading.

Every moto world and sample-event test runs on it, so no test depends on today's date
(a sample event asking for last month's audit, say, stays valid in any year). Each reading
is a millisecond after the one before, so audit events and ULIDs keep their order.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

#: The moment the sample events in events/ were recorded (their requestContext.timeEpoch).
SAMPLE_NOW = datetime(2026, 11, 26, 9, 35, tzinfo=UTC)


class TestClock:
    """Callable like `services.clock.utc_now`; `advance` moves it on (days, weeks)."""

    __test__ = False  # not a test class, whatever pytest's name rules say

    def __init__(self, start: datetime = SAMPLE_NOW, step: timedelta = timedelta(milliseconds=1)):
        self._now = start
        self._step = step
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self._now += self._step
            return self._now

    def advance(self, delta: timedelta) -> None:
        with self._lock:
            self._now += delta

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = moment
