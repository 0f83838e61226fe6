"""Fixed-window attempt counters: Redis when configured, process memory otherwise.

`hit()` counts an attempt atomically and says whether it is over the limit, so concurrent
attempts can't slip past a check-then-increment gap.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from redis.asyncio import Redis


@dataclass(frozen=True, slots=True)
class RateDecision:
    allowed: bool
    retry_after: int  # seconds until the window resets; 0 when allowed


class RateLimiter(Protocol):
    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision: ...

    async def peek(self, key: str, limit: int) -> RateDecision:
        """Whether `key` is over `limit` now, without counting an attempt."""
        ...

    async def reset(self, key: str) -> None: ...


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._windows: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()

    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        now = time.monotonic()
        with self._lock:
            count, resets_at = self._windows.get(key, (0, now + window_seconds))
            if resets_at <= now:
                count, resets_at = 0, now + window_seconds
            count += 1
            self._windows[key] = (count, resets_at)
            if len(self._windows) > 100_000:
                self._evict(now)
        if count > limit:
            return RateDecision(False, max(1, math.ceil(resets_at - now)))
        return RateDecision(True, 0)

    async def peek(self, key: str, limit: int) -> RateDecision:
        now = time.monotonic()
        with self._lock:
            count, resets_at = self._windows.get(key, (0, now))
        if resets_at > now and count >= limit:
            return RateDecision(False, max(1, math.ceil(resets_at - now)))
        return RateDecision(True, 0)

    async def reset(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)

    def _evict(self, now: float) -> None:
        for stale in [k for k, (_, resets_at) in self._windows.items() if resets_at <= now]:
            del self._windows[stale]


class RedisRateLimiter:
    def __init__(self, redis: Redis, prefix: str = "engage:rl:") -> None:
        self._redis = redis
        self._prefix = prefix

    async def hit(self, key: str, limit: int, window_seconds: int) -> RateDecision:
        name = self._prefix + key
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, window_seconds, nx=True)
            pipe.ttl(name)
            count, _, ttl = await pipe.execute()
        if int(count) > limit:
            return RateDecision(False, max(1, int(ttl)))
        return RateDecision(True, 0)

    async def peek(self, key: str, limit: int) -> RateDecision:
        name = self._prefix + key
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.get(name)
            pipe.ttl(name)
            count, ttl = await pipe.execute()
        if count is not None and int(count) >= limit and int(ttl) > 0:
            return RateDecision(False, int(ttl))
        return RateDecision(True, 0)

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._prefix + key)
