"""A cheap refusal of anonymous reports sent too often: token buckets in this process, one per
client address and one per merchant card, so nobody floods a shop with cases from its QR code."""

from __future__ import annotations

import math
import threading
import time

from layers.errors import TooManyAttempts

MAX_TRACKED = 10_000  # keys remembered before full (idle) buckets are dropped


class ReportBudget:
    """Per key: `burst` reports at once, then one every `3600 / per_hour` seconds."""

    def __init__(self, per_hour: float, burst: int, what_en: str, what_zh: str) -> None:
        self.rate, self.burst = per_hour / 3600.0, float(burst)
        self.what_en, self.what_zh = what_en, what_zh
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    def _prune(self, now: float) -> None:
        self._buckets = {
            k: (tokens, when)
            for k, (tokens, when) in self._buckets.items()
            if tokens + (now - when) * self.rate < self.burst
        }

    def take(self, key: str) -> None:
        """Spend one report for `key`, or refuse (429 with Retry-After) when it has none left."""
        now = time.monotonic()
        with self._lock:
            tokens, when = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.rate)
            if tokens < 1:
                self._buckets[key] = (tokens, now)
                wait = max(math.ceil((1 - tokens) / self.rate), 1)
                raise TooManyAttempts(
                    f"Too many reports {self.what_en}: try again in {wait} s.",
                    f"{self.what_zh}举报过于频繁，请 {wait} 秒后再试。",
                    code="too_many_reports",
                    retry_after=wait,
                )
            if len(self._buckets) >= MAX_TRACKED:
                self._prune(now)
            self._buckets[key] = (tokens - 1, now)
