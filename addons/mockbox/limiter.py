"""The outage policy around the windows: while Redis is unreachable `on_redis_error` decides
(open, closed or local), the outage is logged once and counted, and Redis is tried again every
second until it answers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge

from .core.quota import WindowState
from .core.ratelimit import TIERS, Tally
from .windows import STORAGE_ERRORS, MemoryWindows, RedisWindows

logger = logging.getLogger(__name__)

RETRY_INTERVAL = 1.0  # seconds between attempts to reach Redis during an outage
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
        self.local = MemoryWindows() if self.shared and on_error == "local" else None
        self.down_since: float | None = None
        self._retry_at = 0.0
        metrics.redis_up.set(1)

    @property
    def shared(self) -> bool:
        return isinstance(self.windows, RedisWindows)

    async def hit(self, tallies: Sequence[Tally]) -> list[WindowState]:
        """The states of the request's windows; [] when it was not counted (Redis down and
        on_redis_error open). Raises StorageUnavailable when down and closed."""
        if self.down_since is not None:
            now = time.monotonic()
            if now < self._retry_at:
                return await self._degraded(tallies)
            self._retry_at = now + RETRY_INTERVAL  # this request tries Redis; others wait
        try:
            states = await self.windows.hit(tallies)
        except STORAGE_ERRORS as e:
            self._lost(e)
            return await self._degraded(tallies)
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

    async def _degraded(self, tallies: Sequence[Tally]) -> list[WindowState]:
        self.metrics.unavailable.labels(self.on_error).inc()
        if self.local is not None:
            return await self.local.hit(tallies)
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
