"""Counting requests against their limits: `limits` strategies over its memory or Redis storage.

Against Redis a check is one round trip: the `limits` Lua scripts that take the hit and the
ones that read the window back go together in one MULTI/EXEC, so the remaining count and the
reset time in the headers are true, and still cost a single trip. While Redis is unreachable
the `on_redis_error` policy applies (open, closed or local), logged once per outage, counted,
and Redis is tried again every second until it answers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any, Protocol, cast
from urllib.parse import urlsplit, urlunsplit

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.storage.redis.redispy import RedispyBridge
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from prometheus_client import CollectorRegistry, Counter, Gauge
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from .core.quota import WindowState
from .core.ratelimit import TIERS, Policy

logger = logging.getLogger(__name__)

KEY_PREFIX = "mockbox:limits"
RETRY_INTERVAL = 1.0  # seconds between attempts to reach Redis during an outage
STORAGE_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
DEGRADED = {
    "open": "are not enforced",
    "closed": "refuse every request with 503",
    "local": "are counted in this instance's memory only",
}


class StorageUnavailable(Exception):
    """Redis is unreachable and `on_redis_error` is closed."""


class RateLimitMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.limited = Counter(
            "mockbox_rate_limited_total",
            "Requests refused with 429, by rate-limit tier.",
            ["tier"],
            registry=registry,
        )
        self.unavailable = Counter(
            "mockbox_ratelimit_redis_unavailable_total",
            "Rate-limit checks made while Redis was unreachable, by the on_redis_error "
            "policy that decided them.",
            ["on_error"],
            registry=registry,
        )
        self.outages = Counter(
            "mockbox_ratelimit_redis_outages_total",
            "Times the rate limiter lost Redis.",
            registry=registry,
        )
        self.redis_up = Gauge(
            "mockbox_ratelimit_redis_up",
            "0 while the rate limiter cannot reach Redis, else 1 (also without Redis).",
            registry=registry,
        )
        self.redis_up.set(1)
        for tier in TIERS:
            self.limited.labels(tier)  # export the zeros


def identifiers(policy: Policy, identity: str) -> tuple[str, str, str]:
    # The strategy is part of the key: moving and fixed windows keep different Redis types.
    return (policy.strategy, policy.scope, identity)


class Windows(Protocol):
    async def hit(self, policy: Policy, identity: str) -> list[WindowState]:
        """Count one request in each of the policy's limits; their states right after."""
        ...


class MemoryWindows:
    """`limits` strategies over its in-process memory storage."""

    def __init__(self) -> None:
        self.storage = storage = MemoryStorage()
        self._strategies: dict[str, RateLimiter] = {
            "moving-window": MovingWindowRateLimiter(storage),
            "sliding-window-counter": SlidingWindowCounterRateLimiter(storage),
            "fixed-window": FixedWindowRateLimiter(storage),
        }

    async def hit(self, policy: Policy, identity: str) -> list[WindowState]:
        strategy = self._strategies[policy.strategy]
        ids = identifiers(policy, identity)
        states = []
        for item in policy.items:
            allowed = await strategy.hit(item, *ids)
            stats = await strategy.get_window_stats(item, *ids)
            states.append(WindowState(allowed, max(0, stats.remaining), stats.reset_time))
        return states


# Per strategy: queue a check's two commands (take the hit, read the window), then read them.
type Queuer = Callable[[Pipeline, str, RateLimitItem, float], None]
type Reader = Callable[[RateLimitItem, Any, Any, float], WindowState]


class RedisWindows:
    """`limits`' Redis storage and Lua scripts, each check sent as one MULTI/EXEC.

    Keys follow `limits`' own layout, so its strategies read the same windows (the tests
    check each strategy's numbers against `limits`' get_window_stats)."""

    def __init__(self, url: str, timeout: float) -> None:
        options: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            # One immediate reconnect: a Redis restart leaves dead pooled connections behind.
            "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        }
        self.storage = RedisStorage(
            limits_uri(url), implementation="redispy", key_prefix=KEY_PREFIX, **options
        )
        self._bridge = cast(RedispyBridge, self.storage.bridge)
        self.client: Redis = cast(Redis, self._bridge.get_connection())
        b = self._bridge
        self._steps: dict[str, tuple[Queuer, Reader]] = {
            "moving-window": (self._queue_moving, _read_moving),
            "fixed-window": (self._queue_fixed, _read_fixed),
            "sliding-window-counter": (self._queue_sliding, _read_sliding),
        }
        self._scripts = (
            b.lua_acquire_moving_window,
            b.lua_moving_window,
            b.lua_incr_expire,
            b.lua_acquire_sliding_window,
            b.lua_sliding_window,
        )

    async def hit(self, policy: Policy, identity: str) -> list[WindowState]:
        try:
            return await self._hit(policy, identity)
        except NoScriptError:
            # A restarted or flushed Redis forgot the scripts: load them and try once more.
            pipe = self.client.pipeline(transaction=False)
            for script in self._scripts:
                pipe.script_load(script.script)
            await pipe.execute()
            return await self._hit(policy, identity)

    async def _hit(self, policy: Policy, identity: str) -> list[WindowState]:
        queue, read = self._steps[policy.strategy]
        ids = identifiers(policy, identity)
        now = time.time()
        pipe = self.client.pipeline(transaction=True)
        for item in policy.items:
            queue(pipe, item.key_for(*ids), item, now)
        replies = await pipe.execute()
        return [
            read(item, replies[2 * i], replies[2 * i + 1], now)
            for i, item in enumerate(policy.items)
        ]

    def _queue_moving(self, pipe: Pipeline, key: str, item: RateLimitItem, now: float) -> None:
        b, expiry = self._bridge, item.get_expiry()
        key = b.prefixed_key(key)
        pipe.evalsha(b.lua_acquire_moving_window.sha, 1, key, now, item.amount, expiry, 1)
        pipe.evalsha(b.lua_moving_window.sha, 1, key, now - expiry, item.amount)

    def _queue_fixed(self, pipe: Pipeline, key: str, item: RateLimitItem, now: float) -> None:
        key = self._bridge.prefixed_key(key)
        pipe.evalsha(self._bridge.lua_incr_expire.sha, 1, key, item.get_expiry(), 1)
        pipe.pttl(key)

    def _queue_sliding(self, pipe: Pipeline, key: str, item: RateLimitItem, now: float) -> None:
        # limits' layout: "{key}" holds the current window, "{key}/-1" the previous one.
        b, expiry = self._bridge, item.get_expiry()
        current = b.prefixed_key(f"{{{key}}}")
        previous = b.prefixed_key(f"{{{key}}}/-1")
        pipe.evalsha(b.lua_acquire_sliding_window.sha, 2, previous, current, item.amount, expiry, 1)
        pipe.evalsha(b.lua_sliding_window.sha, 2, previous, current, expiry)

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()


def _read_moving(item: RateLimitItem, acquired: Any, window: Any, now: float) -> WindowState:
    oldest, count = (float(window[0]), int(window[1])) if window else (now, 0)
    return WindowState(bool(acquired), max(0, item.amount - count), oldest + item.get_expiry())


def _read_fixed(item: RateLimitItem, count: Any, pttl: Any, now: float) -> WindowState:
    hits = int(count)
    reset = now + max(0, int(pttl)) / 1000
    return WindowState(hits <= item.amount, max(0, item.amount - hits), reset)


def _read_sliding(item: RateLimitItem, acquired: Any, window: Any, now: float) -> WindowState:
    """The arithmetic of limits' SlidingWindowCounterRateLimiter.get_window_stats."""
    previous, previous_ttl, current, current_ttl = (
        int(window[0] or 0),
        max(0.0, float(window[1] or 0)) / 1000,
        int(window[2] or 0),
        max(0.0, float(window[3] or 0)) / 1000,
    )
    expiry = item.get_expiry()
    weighted = previous * previous_ttl / expiry + current
    remaining = max(0, item.amount - math.floor(weighted))
    if not (previous or current):
        return WindowState(bool(acquired), remaining, now)
    previous_reset = previous_ttl % (expiry / previous) if previous else math.inf
    # A window read in the same transaction that created it has exactly 2 * expiry to live.
    current_reset = (current_ttl % expiry or expiry) if current else math.inf
    return WindowState(bool(acquired), remaining, now + min(previous_reset, current_reset))


def limits_uri(url: str) -> str:
    """`limits`' name for a Redis URL: redis://, rediss:// or unix:// (a socket path)."""
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss"):
        return f"async+{url}"
    if scheme == "unix":
        return "async+redis+" + url
    raise ValueError(f"redis_url {redact(url)!r}: expected redis://, rediss:// or unix://")


def redact(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class Limiter:
    """Counts requests; while Redis is unreachable, the `on_redis_error` policy decides."""

    def __init__(
        self,
        windows: MemoryWindows | RedisWindows,
        on_error: str,
        metrics: RateLimitMetrics,
        where: str = "memory",
    ) -> None:
        self.windows = windows
        self.on_error = on_error
        self.metrics = metrics
        self.where = where
        shared = isinstance(windows, RedisWindows)
        self.local = MemoryWindows() if shared and on_error == "local" else None
        self.down_since: float | None = None
        self._retry_at = 0.0
        metrics.redis_up.set(1)

    @property
    def shared(self) -> bool:
        return isinstance(self.windows, RedisWindows)

    async def hit(self, policy: Policy, identity: str) -> list[WindowState]:
        """The states of the request's windows; [] when it was not counted (Redis down and
        on_redis_error open). Raises StorageUnavailable when down and closed."""
        if self.down_since is not None:
            now = time.monotonic()
            if now < self._retry_at:
                return await self._degraded(policy, identity)
            self._retry_at = now + RETRY_INTERVAL  # this request tries Redis; others wait
        try:
            states = await self.windows.hit(policy, identity)
        except STORAGE_ERRORS as e:
            self._lost(e)
            return await self._degraded(policy, identity)
        if self.down_since is not None:
            self._back()
        return states

    async def probe(self) -> None:
        """Reach Redis once (at start), so an outage is reported before the first request."""
        if isinstance(self.windows, RedisWindows):
            try:
                await self.windows.ping()
            except STORAGE_ERRORS as e:
                self._lost(e)

    async def _degraded(self, policy: Policy, identity: str) -> list[WindowState]:
        self.metrics.unavailable.labels(self.on_error).inc()
        if self.local is not None:
            return await self.local.hit(policy, identity)
        if self.on_error == "closed":
            raise StorageUnavailable
        return []

    def _lost(self, error: BaseException) -> None:
        self._retry_at = time.monotonic() + RETRY_INTERVAL
        if self.down_since is not None:
            return
        self.down_since = time.time()
        self.metrics.outages.inc()
        self.metrics.redis_up.set(0)
        reason = str(error) or type(error).__name__
        logger.warning(
            f"mockbox: rate limiting lost Redis at {self.where} ({reason}); limits "
            f"{DEGRADED[self.on_error]} (on_redis_error: {self.on_error}) until it is back"
        )

    def _back(self) -> None:
        assert self.down_since is not None
        logger.warning(
            f"mockbox: rate limiting reaches Redis at {self.where} again after "
            f"{time.time() - self.down_since:.1f}s; limits are shared again"
        )
        self.down_since = None
        self.metrics.redis_up.set(1)

    async def close(self) -> None:
        if isinstance(self.windows, RedisWindows):
            await self.windows.close()
