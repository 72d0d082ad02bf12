"""Per-caller rate limits: a token bucket per API key (and, later, per participant token).

Each warm function instance keeps its own buckets (no DynamoDB call on the hot path), so the
limit of one caller across the service is `rate x` the number of instances serving it; the
template bounds those instances with reserved concurrency and API Gateway throttles every
route as a whole. A refused request learns when to retry (`RateLimited.retry_after`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from services.errors import ServiceError

__all__ = ["RateLimited", "RateLimiter", "RatePolicy"]

MAX_TRACKED = 10_000  # buckets kept per instance; the least recently used go first


class RateLimited(ServiceError):
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


@dataclass(frozen=True)
class RatePolicy:
    """`per_second` sustained, up to `burst` at once."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second <= 0 or self.burst < 1:
            raise ValueError("a rate policy needs a positive rate and a burst of at least 1")


class RateLimiter:
    def __init__(self, policy: RatePolicy, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.monotonic = monotonic
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, caller: str) -> None:
        """Spend one request of `caller`'s bucket, or raise `RateLimited`."""
        now = self.monotonic()
        rate, burst = self.policy.per_second, float(self.policy.burst)
        with self._lock:
            tokens, at = self._buckets.pop(caller, (burst, now))
            tokens = min(burst, tokens + (now - at) * rate)
            if tokens < 1.0:
                self._buckets[caller] = (tokens, now)
                wait = math.ceil((1.0 - tokens) / rate)
                raise RateLimited(
                    f"more than {self.policy.burst} requests at once or {rate:g} a second "
                    f"from this caller; retry in {wait} s",
                    retry_after=max(1, wait),
                )
            self._buckets[caller] = (tokens - 1.0, now)
            while len(self._buckets) > MAX_TRACKED:
                self._buckets.popitem(last=False)
