"""A cheap refusal of anonymous reports sent too often: token buckets in this process, one per
client address and one per merchant card, so nobody floods a shop with cases from its QR code."""

from __future__ import annotations

import math

from api.token_buckets import TokenBuckets
from layers.errors import TooManyAttempts


class ReportBudget:
    """Per key: `burst` reports at once, then one every `3600 / per_hour` seconds."""

    def __init__(self, per_hour: float, burst: int, what_en: str, what_zh: str) -> None:
        self.buckets = TokenBuckets(per_hour / 3600.0, burst)
        self.what_en, self.what_zh = what_en, what_zh

    def take(self, key: str) -> None:
        """Spend one report for `key`, or refuse (429 with Retry-After) when it has none left."""
        wait = self.buckets.take(key)
        if wait is not None:
            seconds = max(math.ceil(wait), 1)
            raise TooManyAttempts(
                f"Too many reports {self.what_en}: try again in {seconds} s.",
                f"{self.what_zh}举报过于频繁，请 {seconds} 秒后再试。",
                code="too_many_reports",
                retry_after=seconds,
            )
