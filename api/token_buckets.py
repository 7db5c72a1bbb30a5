"""Token buckets in this process, one per key: `burst` at once, then `rate` a second; the keys
remembered are capped, idle (full) buckets dropped first. Used for cheap refusals before work."""

from __future__ import annotations

import threading
import time

MAX_TRACKED = 10_000  # keys remembered before full (idle) buckets are dropped


class TokenBuckets:
    """Per key: `burst` tokens at once, refilled at `rate` a second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        self._buckets = {
            k: (tokens, when)
            for k, (tokens, when) in self._buckets.items()
            if tokens + (now - when) * self.rate < self.burst
        }

    def take(self, key: str) -> float | None:
        """Spend one token of `key`: None, or the seconds until one is back when none is left."""
        now = time.monotonic()
        with self._lock:
            tokens, when = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                return (1 - tokens) / self.rate
            if len(self._buckets) >= MAX_TRACKED:
                self._prune(now)
            self._buckets[key] = (tokens - 1, now)
            return None
