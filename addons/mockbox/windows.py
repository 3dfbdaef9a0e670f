"""Counting one request in its limits' windows: `limits` strategies over its memory storage,
or `limits`' Redis storage and Lua scripts in a single round trip.

Against Redis, `limits`' own scripts (the one that takes a hit and the one that reads the
window back) run inside one script of ours, once per limit of the policy: one EVALSHA per
check, atomic, and the remaining count and reset time it returns are true; checks that arrive
together share a round trip. The keys are `limits`' own, so its strategies read the same
windows.

Several limits (`10/minute;200/day`) are tried in order and the first that refuses stops the
rest, as flask-limiter does: a request refused by the minute spends nothing of the day. A
request that counts in several counters (its key's, then its address's) has their limits
tried in that order the same way, in one round trip when they share a strategy.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

from limits import RateLimitItem
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.storage.redis.bridge import RedisBridge
from limits.aio.storage.redis.redispy import RedispyBridge
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, RedisError

from .core.quota import WindowState
from .core.ratelimit import Tally
from .core.redaction import redact_url

KEY_PREFIX = "mockbox:limits"
STORAGE_ERRORS = (RedisError, OSError, asyncio.TimeoutError)
# Round trips to Redis at once; checks beyond wait and share the next one. More: less waiting
# behind a slow link; fewer: larger batches, less work per check under load.
MAX_IN_FLIGHT = 2


def identifiers(tally: Tally) -> tuple[str, str, str]:
    # The strategy is part of the key: moving and fixed windows keep different Redis types.
    return (tally.policy.strategy, tally.policy.scope, tally.identity)


def _state(tried: int, remaining: int, reset_at: float) -> WindowState:
    """`tried`: 1 took the hit, 0 refused it, -1 not tried (an earlier limit refused)."""
    allowed = tried == 1 if tried >= 0 else remaining > 0
    return WindowState(allowed, max(0, remaining), reset_at)


class Windows(Protocol):
    async def hit(self, tallies: Sequence[Tally]) -> list[WindowState]:
        """Count one request in the tallies' limits, in order; their states right after."""
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

    async def hit(self, tallies: Sequence[Tally]) -> list[WindowState]:
        states, tried = [], 1
        for tally in tallies:
            strategy = self._strategies[tally.policy.strategy]
            ids = identifiers(tally)
            for item in tally.policy.items:
                if tried == 1:
                    tried = 1 if await strategy.hit(item, *ids) else 0
                elif tried == 0:
                    tried = -1
                stats = await strategy.get_window_stats(item, *ids)
                states.append(_state(tried, stats.remaining, stats.reset_time))
        return states


# Our driver around `limits`' scripts: KEYS are each limit's keys in turn, ARGV[1] is the time,
# ARGV[2] whether to try the first limit (1) or only read them all (-1: an earlier call
# refused), then each limit's amount and window. Their bodies become local functions, which
# shadow the KEYS and ARGV they read. Each limit answers `tried` and what its read gives, all in one
# space-separated string ("-" for nothing): cheaper for the client to parse than nested arrays.
_DRIVER = """\
local function acquire(KEYS, ARGV)
%(acquire)s
end
local function read(KEYS, ARGV)
%(read)s
end
local out = {}
local function put(...)
  for j = 1, select('#', ...) do
    local v = select(j, ...)
    out[#out + 1] = v and tostring(v) or '-'
  end
end
local now = tonumber(ARGV[1])
local per = %(keys_per_limit)d
local tried = tonumber(ARGV[2])
for i = 1, #KEYS / per do
  local keys = {unpack(KEYS, per * (i - 1) + 1, per * i)}
  local limit, expiry = tonumber(ARGV[2 * i + 1]), tonumber(ARGV[2 * i + 2])
  if tried == 1 then
    %(try)s
  elseif tried == 0 then
    tried = -1
  end
  %(answer)s
end
return table.concat(out, ' ')
"""
_SCRIPTS: dict[str, dict[str, Any]] = {
    "moving-window": {
        "acquire": RedisBridge.SCRIPT_ACQUIRE_MOVING_WINDOW,
        "read": RedisBridge.SCRIPT_MOVING_WINDOW,
        "keys_per_limit": 1,
        "try": "tried = acquire(keys, {now, limit, expiry, 1}) and 1 or 0",
        "answer": "local w = read(keys, {now - expiry, limit}) or {}\n  put(tried, w[1], w[2])",
    },
    "fixed-window": {
        "acquire": RedisBridge.SCRIPT_INCR_EXPIRE,
        "read": "return redis.call('get', KEYS[1])",
        "keys_per_limit": 1,
        "try": "local count = acquire(keys, {expiry, 1})\n    tried = count <= limit and 1 or 0",
        "answer": "put(tried, read(keys, {}), redis.call('pttl', keys[1]))",
    },
    "sliding-window-counter": {
        "acquire": RedisBridge.SCRIPT_ACQUIRE_SLIDING_WINDOW,
        "read": RedisBridge.SCRIPT_SLIDING_WINDOW,
        "keys_per_limit": 2,
        "try": "tried = acquire(keys, {limit, expiry, 1}) and 1 or 0",
        "answer": "local w = read(keys, {expiry})\n  put(tried, w[1], w[2], w[3], w[4])",
    },
}


def driver(strategy: str) -> str:
    """The Lua script that checks a request against several limits of a strategy in one call."""
    parts = {k: v.decode() if isinstance(v, bytes) else v for k, v in _SCRIPTS[strategy].items()}
    return _DRIVER % parts


def _num(field: bytes) -> float:
    return 0.0 if field == b"-" else float(field)


def _read_moving(item: RateLimitItem, fields: Sequence[bytes], now: float) -> WindowState:
    tried, oldest, count = int(fields[0]), _num(fields[1]), int(_num(fields[2]))
    start = oldest if count else now
    return _state(tried, item.amount - count, start + item.get_expiry())


def _read_fixed(item: RateLimitItem, fields: Sequence[bytes], now: float) -> WindowState:
    tried, count, pttl = int(fields[0]), int(_num(fields[1])), _num(fields[2])
    return _state(tried, item.amount - count, now + max(0.0, pttl) / 1000)


def _read_sliding(item: RateLimitItem, fields: Sequence[bytes], now: float) -> WindowState:
    """The arithmetic of limits' SlidingWindowCounterRateLimiter.get_window_stats."""
    tried = int(fields[0])
    previous, current = int(_num(fields[1])), int(_num(fields[3]))
    previous_ttl = max(0.0, _num(fields[2])) / 1000
    current_ttl = max(0.0, _num(fields[4])) / 1000
    expiry = item.get_expiry()
    remaining = item.amount - math.floor(previous * previous_ttl / expiry + current)
    if not (previous or current):
        return _state(tried, remaining, now)
    previous_reset = previous_ttl % (expiry / previous) if previous else math.inf
    # A window read in the same script that created it has exactly 2 * expiry to live.
    current_reset = (current_ttl % expiry or expiry) if current else math.inf
    return _state(tried, remaining, now + min(previous_reset, current_reset))


# Per strategy: how many fields each limit answers, and how to read them.
_READERS: dict[str, tuple[int, Callable[[RateLimitItem, Sequence[bytes], float], WindowState]]] = {
    "moving-window": (3, _read_moving),
    "fixed-window": (3, _read_fixed),
    "sliding-window-counter": (5, _read_sliding),
}


type Check = tuple[str, list[str], list[float], asyncio.Future[Any]]


class RedisWindows:
    """`limits`' Redis storage; each check is one EVALSHA of `driver(strategy)`.

    At most MAX_IN_FLIGHT round trips at a time: checks made while they are in flight wait
    and go together in the next, as one pipeline. Under load that halves the client's work
    per check, and a burst of requests needs a connection or two, not one each (redis-py's
    pool stops at 100)."""

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
        self._prefixed = self.storage.bridge.prefixed_key
        bridge = cast(RedispyBridge, self.storage.bridge)
        self.client: Redis = cast(Redis, bridge.get_connection())
        self._scripts = {name: driver(name) for name in _SCRIPTS}
        self._shas = {
            name: hashlib.sha1(text.encode()).hexdigest() for name, text in self._scripts.items()
        }
        self._pending: list[Check] = []
        self._in_flight = 0
        self._senders: set[asyncio.Task[None]] = set()

    def _keys(self, strategy: str, key: str) -> tuple[str, ...]:
        if strategy == "sliding-window-counter":
            # limits' layout: "{key}/-1" holds the previous window, "{key}" the current one.
            return (self._prefixed(f"{{{key}}}/-1"), self._prefixed(f"{{{key}}}"))
        return (self._prefixed(key),)

    async def hit(self, tallies: Sequence[Tally]) -> list[WindowState]:
        """One round trip per run of tallies with the same strategy (usually one in all)."""
        now = time.time()
        states: list[WindowState] = []
        tried = 1
        for strategy, run in itertools.groupby(tallies, lambda t: t.policy.strategy):
            items: list[RateLimitItem] = []
            keys: list[str] = []
            args: list[float] = [now, tried]
            for tally in run:
                ids = identifiers(tally)
                for item in tally.policy.items:
                    items.append(item)
                    keys.extend(self._keys(strategy, item.key_for(*ids)))
                    args += [item.amount, item.get_expiry()]
            fields = (await self._call(strategy, keys, args)).split()
            width, read = _READERS[strategy]
            for i, item in enumerate(items):
                answer = fields[i * width : (i + 1) * width]
                states.append(read(item, answer, now))
                if answer[0] == b"0":  # refused: later runs only read their windows
                    tried = -1
        return states

    async def _call(self, strategy: str, keys: list[str], args: list[float]) -> Any:
        if self._in_flight >= MAX_IN_FLIGHT:  # wait, and go with the next round trip
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._pending.append((strategy, keys, args, future))
            return await future
        self._in_flight += 1  # a plain EVALSHA, sent from this task at once
        try:
            return await self._evalsha(strategy, keys, args)
        finally:
            self._next()

    def _next(self) -> None:
        """A round trip ended: the checks that queued meanwhile take its place, together."""
        if self._pending:
            sender = asyncio.get_running_loop().create_task(self._send())
            self._senders.add(sender)
            sender.add_done_callback(self._senders.discard)
        else:
            self._in_flight -= 1

    async def _evalsha(self, strategy: str, keys: list[str], args: list[float]) -> Any:
        try:
            return await self.client.evalsha(self._shas[strategy], len(keys), *keys, *args)
        except NoScriptError:  # a restarted Redis forgot the scripts
            await self._load_scripts()
            return await self.client.evalsha(self._shas[strategy], len(keys), *keys, *args)

    async def _send(self) -> None:
        batch, self._pending = self._pending, []
        try:
            replies = await self._execute(batch)
        except Exception as e:  # every waiting check must hear of it, or it would hang
            replies = [e] * len(batch)
        finally:
            self._next()
        for (*_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its request went away
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def _execute(self, batch: list[Check]) -> list[Any]:
        replies = await self._pipeline(batch)
        forgot = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if forgot:  # a restarted Redis: load the scripts, send those checks again
            await self._load_scripts()
            again = await self._pipeline([batch[i] for i in forgot])
            for i, reply in zip(forgot, again, strict=True):
                replies[i] = reply
        return replies

    async def _load_scripts(self) -> None:
        pipe = self.client.pipeline(transaction=False)
        for text in self._scripts.values():
            pipe.script_load(text)
        await pipe.execute()

    async def _pipeline(self, batch: list[Check]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        for strategy, keys, args, _ in batch:
            pipe.evalsha(self._shas[strategy], len(keys), *keys, *args)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
        return replies

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await asyncio.gather(*self._senders, return_exceptions=True)
        await self.client.aclose()


def limits_uri(url: str) -> str:
    """`limits`' name for a Redis URL: redis://, rediss:// or unix:// (a socket path)."""
    scheme = urlsplit(url).scheme
    if scheme in ("redis", "rediss"):
        return f"async+{url}"
    if scheme == "unix":
        return "async+redis+" + url
    raise ValueError(f"redis_url {redact_url(url)!r}: expected redis://, rediss:// or unix://")
