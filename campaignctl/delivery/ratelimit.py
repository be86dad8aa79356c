"""Token-bucket rate limits and per-key concurrency limits for transports.

The bucket works by reservation: each caller takes a token now and is told how
long to wait for it, so concurrent senders queue fairly without a lock and the
delays are a pure function of the clock (tests assert them directly).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class TokenBucket:
    """At most `rate` acquisitions per second on average, with bursts of `capacity`.

    With the default capacity of 1, no window of T seconds ever holds more than
    1 + rate × T messages: what a provider's "N per second" limit expects.
    """

    def __init__(
        self,
        rate: float,
        *,
        capacity: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.rate = rate
        self.capacity = capacity
        self._clock = clock
        self._tokens = capacity
        self._updated = clock()

    def reserve(self) -> float:
        """Take one token and return how many seconds to wait before using it (0 if none)."""
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now
        self._tokens -= 1
        if self._tokens >= 0:
            return 0.0
        return -self._tokens / self.rate

    async def acquire(self) -> None:
        """Wait until this caller may send one message."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


class KeyedLimiter:
    """At most `limit` holders per key at once (the concurrency limit per recipient domain).

    `try_acquire` never waits: the SMTP workers use it to pick, among pending
    messages, one whose domain has room, so one slow domain never blocks others.
    """

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        self._held: dict[str, int] = {}

    def try_acquire(self, key: str) -> bool:
        held = self._held.get(key, 0)
        if held >= self.limit:
            return False
        self._held[key] = held + 1
        return True

    def release(self, key: str) -> None:
        held = self._held[key] - 1
        if held:
            self._held[key] = held
        else:
            del self._held[key]

    def held(self, key: str) -> int:
        return self._held.get(key, 0)
