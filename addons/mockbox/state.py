"""Shared state: one Redis client when `redis_url` is set, an in-process memory store otherwise.

Every feature that keeps state (the cache, AI single-flight locks, stateful resources) goes
through the small `StateBackend` API below, so it works the same on both backends: bytes
values with a TTL, deletion by glob pattern, and a lock with a timeout. Keys are plain
strings; each feature prefixes its own (`mockbox:cache:...`).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from .core.redaction import redact_url
from .settings import Settings

logger = logging.getLogger(__name__)

type Status = Literal["ok", "down", "disabled"]


class StateError(Exception):
    """The backend cannot answer (Redis down or timing out); callers degrade, never crash."""


class StateLock(Protocol):
    async def acquire(self) -> bool:
        """Take the lock without waiting; False when someone else holds it."""
        ...

    async def release(self) -> None:
        """Give the lock back (a lock that already expired is ignored)."""
        ...

    async def locked(self) -> bool: ...


class StateBackend(Protocol):
    name: str

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store `value`; it disappears after `ttl` seconds (never when None)."""
        ...

    async def delete(self, *keys: str) -> int: ...

    async def incr(self, key: str, amount: float, ttl: float) -> float:
        """Add `amount` atomically (counters shared by every instance); returns the total."""
        ...

    def scan(self, pattern: str) -> AsyncIterator[str]:
        """Keys matching the glob `pattern`: `*`, `?`, and `\\` escapes (see glob_escape)."""
        ...

    async def delete_matching(self, pattern: str, keep: Callable[[str], bool] | None = None) -> int:
        """Delete keys matching `pattern` for which `keep(key)` is true (all when None)."""
        ...

    async def usage(self, pattern: str) -> tuple[int, int]:
        """(keys, bytes of their values) for keys matching `pattern`."""
        ...

    def lock(self, name: str, timeout: float) -> StateLock: ...

    async def ping(self) -> bool: ...

    async def close(self) -> None: ...


def glob_escape(text: str) -> str:
    """`text` as a literal inside a `scan`/`delete_matching` pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


# --- memory -------------------------------------------------------------------------------------

# Bytes per item beyond its key and value, for the size cap: the str and bytes headers, the
# item, its OrderedDict slot, its expiry-heap entry and as many again of heap entries left by
# rewrites and evictions until the heap is rebuilt (measured with tracemalloc: 230-360).
_ITEM_OVERHEAD = 360


@dataclass(slots=True)
class _Item:
    value: bytes
    expires: float | None

    def size(self, key: str) -> int:
        return len(key) + len(self.value) + _ITEM_OVERHEAD


class MemoryState:
    """In-process store with TTLs and a size cap.

    Over the cap, the least recently used keys that have a TTL go first (like Redis's
    `volatile-lru`): cache entries are evictable, keys stored without a TTL are not. Keys whose
    TTL has passed are dropped as writes come, even if nobody reads them again (like Redis's
    active expiry), so memory follows what is live, not the cap.
    """

    name = "memory"

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[str, _Item] = OrderedDict()
        self._locks: dict[str, tuple[str, float]] = {}
        # (expires, key) of every item with a TTL, a heap: the next to expire comes first.
        self._expiries: list[tuple[float, str]] = []

    def _live(self, key: str, now: float) -> _Item | None:
        item = self._items.get(key)
        if item is not None and item.expires is not None and item.expires <= now:
            self._drop(key)
            return None
        return item

    def _drop(self, key: str) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.bytes -= item.size(key)

    async def get(self, key: str) -> bytes | None:
        item = self._live(key, time.time())
        if item is None:
            return None
        self._items.move_to_end(key)
        return item.value

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        now = time.time()
        self._drop(key)
        item = _Item(value, now + ttl if ttl is not None else None)
        self._items[key] = item
        self.bytes += item.size(key)
        if item.expires is not None:
            heapq.heappush(self._expiries, (item.expires, key))
        self._expire(now)
        self._evict()

    def _expire(self, now: float) -> None:
        """Drop the items whose TTL has passed (amortized: each heap entry is popped once)."""
        heap = self._expiries
        while heap and heap[0][0] <= now:
            expires, key = heapq.heappop(heap)
            item = self._items.get(key)
            if item is not None and item.expires == expires:
                self._drop(key)
        # Entries of keys since rewritten or deleted wait in the heap for their time; rebuild
        # it when they are most of it (a counter rewritten at every request, with a TTL of days).
        if len(heap) > 2 * len(self._items) + 1024:
            live = self._items.items()
            self._expiries = [(i.expires, k) for k, i in live if i.expires is not None]
            heapq.heapify(self._expiries)

    async def incr(self, key: str, amount: float, ttl: float) -> float:
        item = self._live(key, time.time())
        total = (float(item.value) if item is not None else 0.0) + amount
        await self.set(key, repr(total).encode(), ttl)
        return total

    def _evict(self) -> None:
        excess = self.bytes - self.max_bytes
        if excess <= 0:
            return
        victims: list[str] = []
        for key, item in self._items.items():  # least recently used first
            if excess <= 0:
                break
            if item.expires is not None:
                victims.append(key)
                excess -= item.size(key)
        for key in victims:
            self._drop(key)

    async def delete(self, *keys: str) -> int:
        present = [k for k in keys if k in self._items]
        for key in present:
            self._drop(key)
        return len(present)

    async def scan(self, pattern: str) -> AsyncIterator[str]:
        now = time.time()
        for key in _matching(list(self._items), pattern):
            if self._live(key, now) is not None:
                yield key

    async def delete_matching(self, pattern: str, keep: Callable[[str], bool] | None = None) -> int:
        doomed = [k for k in _matching(list(self._items), pattern) if keep is None or keep(k)]
        return await self.delete(*doomed)

    async def usage(self, pattern: str) -> tuple[int, int]:
        keys = [k async for k in self.scan(pattern)]
        return len(keys), sum(len(self._items[k].value) for k in keys)

    def lock(self, name: str, timeout: float) -> StateLock:
        return _MemoryLock(self._locks, name, timeout)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._items.clear()
        self._expiries.clear()
        self.bytes = 0


def _matching(keys: list[str], pattern: str) -> list[str]:
    regex = _glob_regex(pattern)
    return [k for k in keys if regex.fullmatch(k)]


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob of `*`, `?` and `\\` escapes (the part of Redis's MATCH syntax MockBox uses)."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.S)


class _MemoryLock:
    def __init__(self, table: dict[str, tuple[str, float]], name: str, timeout: float) -> None:
        self._table, self._name, self._timeout = table, name, timeout
        self._token = uuid.uuid4().hex

    async def acquire(self) -> bool:
        held = self._table.get(self._name)
        now = time.monotonic()
        if held is not None and held[1] > now:
            return False
        self._table[self._name] = (self._token, now + self._timeout)
        return True

    async def release(self) -> None:
        held = self._table.get(self._name)
        if held is not None and held[0] == self._token:
            del self._table[self._name]

    async def locked(self) -> bool:
        held = self._table.get(self._name)
        return held is not None and held[1] > time.monotonic()


# --- redis ------------------------------------------------------------------------------------

# After a failure, skip Redis this long: a dead or slow Redis must not add its timeout to
# every request.
_BREAKER_SECONDS = 2.0


class RedisState:
    """One async Redis client (with its connection pool) for every feature."""

    name = "redis"

    def __init__(self, url: str, timeout: float = 1.0) -> None:
        self.url = url
        self.client: aioredis.Redis = aioredis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._down_until = 0.0

    async def _call(self, op: Callable[[], Any]) -> Any:
        if time.monotonic() < self._down_until:
            raise StateError("redis is down (retrying shortly)")
        try:
            return await op()
        except (TimeoutError, RedisError, OSError) as e:
            self._down_until = time.monotonic() + _BREAKER_SECONDS
            raise StateError(f"redis: {e}") from e

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self._call(lambda: self.client.get(key))
        return value

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        px = max(1, int(ttl * 1000)) if ttl is not None else None
        await self._call(lambda: self.client.set(key, value, px=px))

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        deleted: int = await self._call(lambda: self.client.delete(*keys))
        return deleted

    async def incr(self, key: str, amount: float, ttl: float) -> float:
        async def op() -> Any:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incrbyfloat(key, amount)
                pipe.pexpire(key, max(1, int(ttl * 1000)))
                return await pipe.execute()

        total, _ = await self._call(op)
        return float(total)

    async def scan(self, pattern: str) -> AsyncIterator[str]:
        cursor = 0
        while True:
            cursor, keys = await self._call(
                lambda c=cursor: self.client.scan(c, match=pattern, count=1000)  # type: ignore[misc]
            )
            for key in keys:
                yield key.decode() if isinstance(key, bytes) else key
            if cursor == 0:
                return

    async def delete_matching(self, pattern: str, keep: Callable[[str], bool] | None = None) -> int:
        deleted = 0
        batch: list[str] = []
        async for key in self.scan(pattern):
            if keep is None or keep(key):
                batch.append(key)
            if len(batch) >= 500:
                deleted += await self.delete(*batch)
                batch = []
        return deleted + await self.delete(*batch)

    async def usage(self, pattern: str) -> tuple[int, int]:
        keys = [k async for k in self.scan(pattern)]
        total = 0
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]

            async def lengths(chunk: list[str] = chunk) -> list[int]:
                pipe = self.client.pipeline(transaction=False)
                for key in chunk:
                    pipe.strlen(key)
                result: list[int] = await pipe.execute()
                return result

            total += sum(await self._call(lengths))
        return len(keys), total

    def lock(self, name: str, timeout: float) -> StateLock:
        return _RedisLock(self, name, timeout)

    async def ping(self) -> bool:
        try:
            return bool(await self.client.ping())
        except (TimeoutError, RedisError, OSError):
            return False

    async def close(self) -> None:
        await self.client.aclose()


class _RedisLock:
    """redis-py's Lock (token + Lua release), taken without blocking."""

    def __init__(self, state: RedisState, name: str, timeout: float) -> None:
        self._state = state
        self._lock = state.client.lock(
            name,
            timeout=timeout,
            blocking=False,
            thread_local=False,
            raise_on_release_error=False,
        )

    async def acquire(self) -> bool:
        acquired: bool = await self._state._call(lambda: self._lock.acquire(blocking=False))
        return acquired

    async def release(self) -> None:
        await self._state._call(self._lock.release)

    async def locked(self) -> bool:
        held: bool = await self._state._call(self._lock.locked)
        return held


# --- the addon ---------------------------------------------------------------------------------


class SharedState:
    """Owns the backend: Redis when a URL is configured, memory otherwise."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.backend: StateBackend = MemoryState(self._memory_max_bytes())
        self._tasks: set[asyncio.Task[None]] = set()

    def _memory_max_bytes(self) -> int:
        return int(self.settings.config.get("state", "memory_max_bytes"))

    def configure(self, updated: set[str]) -> None:
        if not updated & {"mockbox_redis", "mockbox_config"}:
            return
        url = self.settings.redis_url
        current = self.backend
        if isinstance(current, RedisState) and current.url == url:
            return
        if isinstance(current, MemoryState) and not url:
            current.max_bytes = self._memory_max_bytes()
            return
        self.backend = RedisState(url) if url else MemoryState(self._memory_max_bytes())
        logger.info(f"mockbox: shared state in {_describe(self.backend)}")
        self._close_later(current)

    def _close_later(self, backend: StateBackend) -> None:
        try:
            task = asyncio.get_running_loop().create_task(backend.close())
        except RuntimeError:  # configured before the event loop runs: nothing to close yet
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def done(self) -> None:
        await self.backend.close()

    async def status(self) -> Status:
        """For /healthz: `disabled` without Redis, else whether it answers a PING."""
        if not isinstance(self.backend, RedisState):
            return "disabled"
        return "ok" if await self.backend.ping() else "down"


def _describe(backend: StateBackend) -> str:
    if isinstance(backend, RedisState):
        return f"redis {redact_url(backend.url)}"
    return "memory"
