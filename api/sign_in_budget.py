"""A cheap refusal before any password hashing: each client address may cost so many argon2
hashes a second (a token bucket in this process), so anonymous guessing cannot starve the others."""

from __future__ import annotations

import math
import threading
import time

from layers.errors import TooManyAttempts

MAX_TRACKED = 10_000  # addresses remembered before full (idle) buckets are dropped


class HashBudget:
    """Per address: `burst` hashes at once, then `rate` a second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}  # address -> (tokens, when)
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        self._buckets = {
            k: (tokens, when)
            for k, (tokens, when) in self._buckets.items()
            if tokens + (now - when) * self.rate < self.burst
        }

    def take(self, client: str) -> None:
        """Spend one hash for `client`, or refuse (429 with Retry-After) when it has none left."""
        now = time.monotonic()
        with self._lock:
            tokens, when = self._buckets.get(client, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.rate)
            if tokens < 1:
                self._buckets[client] = (tokens, now)
                wait = (1 - tokens) / self.rate
                raise TooManyAttempts(
                    f"Too many sign-in attempts from this address: try again in {wait:.1f} s.",
                    f"该地址登录尝试过于频繁，请 {max(math.ceil(wait), 1)} 秒后再试。",
                    retry_after=max(math.ceil(wait), 1),
                )
            if len(self._buckets) >= MAX_TRACKED:
                self._prune(now)
            self._buckets[client] = (tokens - 1, now)
