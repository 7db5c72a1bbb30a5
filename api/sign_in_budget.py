"""A cheap refusal before any password hashing: each client address may cost so many argon2
hashes a second (a token bucket in this process), so anonymous guessing cannot starve the others."""

from __future__ import annotations

import math

from api.token_buckets import TokenBuckets
from layers.errors import TooManyAttempts


class HashBudget:
    """Per address: `burst` hashes at once, then `rate` a second."""

    def __init__(self, rate: float, burst: int) -> None:
        self.buckets = TokenBuckets(rate, burst)

    def take(self, client: str) -> None:
        """Spend one hash for `client`, or refuse (429 with Retry-After) when it has none left."""
        wait = self.buckets.take(client)
        if wait is not None:
            raise TooManyAttempts(
                f"Too many sign-in attempts from this address: try again in {wait:.1f} s.",
                f"该地址登录尝试过于频繁，请 {max(math.ceil(wait), 1)} 秒后再试。",
                retry_after=max(math.ceil(wait), 1),
            )
