"""Counting against a real redis-server and in memory: the same behaviour from both, numbers
that agree with `limits`' own window statistics, and one round trip per check."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from limits import parse
from limits.aio.strategies import (
    FixedWindowRateLimiter,
    MovingWindowRateLimiter,
    RateLimiter,
    SlidingWindowCounterRateLimiter,
)

from mockbox.core.ratelimit import STRATEGIES, Policy, Tally
from mockbox.windows import MemoryWindows, RedisWindows, identifiers

from .conftest import RedisServer

REFERENCE: dict[str, type[RateLimiter]] = {
    "moving-window": MovingWindowRateLimiter,
    "sliding-window-counter": SlidingWindowCounterRateLimiter,
    "fixed-window": FixedWindowRateLimiter,
}


def policy(limit: str, strategy: str = "moving-window", scope: str = "public") -> Policy:
    items = tuple(parse(text) for text in limit.split(";"))
    return Policy("public", scope, scope, items, strategy)


@pytest.fixture(params=["memory", "redis"])
async def windows(
    request: pytest.FixtureRequest, redis_server: RedisServer
) -> AsyncIterator[MemoryWindows | RedisWindows]:
    if request.param == "memory":
        yield MemoryWindows()
        return
    if redis_server.proc is None:
        redis_server.start()
    store = RedisWindows(redis_server.url, 2.0)
    await store.client.flushall()
    yield store
    await store.close()


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_n_plus_one_is_refused_with_true_numbers(
    windows: MemoryWindows | RedisWindows, strategy: str
) -> None:
    chosen = policy("3/10 seconds", strategy)
    item = chosen.items[0]
    reference = REFERENCE[strategy](windows.storage)
    mine = Tally(chosen, "ip:192.0.2.1")
    seen = []
    for _ in range(4):
        before = time.time()
        [state] = await windows.hit([mine])
        # limits' sliding-window arithmetic (ttl % window) reads a window created in the same
        # millisecond as ending now; a millisecond later it agrees with ours (a full window).
        await asyncio.sleep(0.002)
        stats = await reference.get_window_stats(item, *identifiers(mine))
        seen.append((state.allowed, state.remaining))
        # Our one-trip numbers are the ones `limits` itself reports for the same window.
        assert state.remaining == stats.remaining
        assert abs(state.reset_at - stats.reset_time) < 0.5
        assert before <= state.reset_at <= before + 10.5
    assert seen == [(True, 2), (True, 1), (True, 0), (False, 0)]
    [other] = await windows.hit([Tally(chosen, "ip:192.0.2.2")])  # another client: its own count
    assert (other.allowed, other.remaining) == (True, 2)


async def test_every_limit_of_a_tier_must_hold(windows: MemoryWindows | RedisWindows) -> None:
    chosen = policy("2/minute;3/hour")
    results = [await windows.hit([Tally(chosen, "ip:192.0.2.1")]) for _ in range(3)]
    assert [[(s.allowed, s.remaining) for s in r] for r in results] == [
        [(True, 1), (True, 2)],
        [(True, 0), (True, 1)],
        # Refused by the minute, which stops there: the hour is not spent (as in flask-limiter).
        [(False, 0), (True, 1)],
    ]


async def test_strategies_and_scopes_keep_separate_counters(
    windows: MemoryWindows | RedisWindows,
) -> None:
    for strategy in STRATEGIES:
        [first] = await windows.hit([Tally(policy("1/minute", strategy), "ip:192.0.2.1")])
        assert first.allowed, strategy
    [other] = await windows.hit(
        [Tally(policy("1/minute", scope="public|mock:m.yaml#a"), "ip:192.0.2.1")]
    )
    assert other.allowed


async def test_a_key_then_its_address_are_tried_in_order(
    windows: MemoryWindows | RedisWindows,
) -> None:
    per_key, address = policy("1/minute"), policy("3/minute")  # address: as without a key

    async def keyed(key: str) -> list[tuple[bool, int]]:
        states = await windows.hit([Tally(per_key, key), Tally(address, "ip:192.0.2.1")])
        return [(s.allowed, s.remaining) for s in states]

    assert await keyed("key:0000000000000001") == [(True, 0), (True, 2)]
    # Refused by the key: the address's window is only read, not spent.
    assert await keyed("key:0000000000000001") == [(False, 0), (True, 2)]
    # Invented keys: each is fresh, the address is not.
    assert await keyed("key:0000000000000002") == [(True, 0), (True, 1)]
    assert await keyed("key:0000000000000003") == [(True, 0), (True, 0)]
    assert await keyed("key:0000000000000004") == [(True, 0), (False, 0)]
    [plain] = await windows.hit([Tally(address, "ip:192.0.2.1")])
    assert (plain.allowed, plain.remaining) == (False, 0)  # the same counter


async def test_mixed_strategies_keep_the_order(windows: MemoryWindows | RedisWindows) -> None:
    per_key, address = policy("1/minute", "fixed-window"), policy("5/minute")
    first = await windows.hit([Tally(per_key, "key:1"), Tally(address, "ip:192.0.2.1")])
    again = await windows.hit([Tally(per_key, "key:1"), Tally(address, "ip:192.0.2.1")])
    assert [[(s.allowed, s.remaining) for s in r] for r in (first, again)] == [
        [(True, 0), (True, 4)],
        [(False, 0), (True, 4)],  # the moving window, in a round trip of its own, not spent
    ]


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_one_redis_round_trip_per_check(redis_url: str, strategy: str) -> None:
    store = RedisWindows(redis_url, 2.0)
    chosen = policy("1000/minute;5000/hour", strategy)
    # A key and its address: four limits, one script call.
    tallies = [Tally(chosen, "key:0123456789abcdef"), Tally(chosen, "ip:192.0.2.1")]
    await store.hit(tallies)  # loads the script into a fresh Redis
    await store.client.config_resetstat()
    for _ in range(20):
        await store.hit(tallies)
    calls = {
        name.removeprefix("cmdstat_"): stats["calls"]
        for name, stats in (await store.client.info("commandstats")).items()
    }
    await store.close()
    # One EVALSHA per check, whatever the number of limits; every other command counted ran
    # inside the script (limits' own scripts, called from ours).
    assert calls.pop("evalsha") == 20
    assert calls.pop("config|resetstat") == 1
    inside = {"lindex", "lpush", "ltrim", "expire", "incrby", "get", "pttl", "set", "exists"}
    assert set(calls) <= inside


async def test_scripts_are_reloaded_when_redis_forgets_them(redis_url: str) -> None:
    store = RedisWindows(redis_url, 2.0)
    chosen = policy("2/minute", "sliding-window-counter")
    assert (await store.hit([Tally(chosen, "ip:192.0.2.1")]))[0].remaining == 1
    await store.client.script_flush()
    assert (await store.hit([Tally(chosen, "ip:192.0.2.1")]))[0].remaining == 0
    await store.close()


async def test_a_burst_shares_round_trips_and_counts_exactly(redis_url: str) -> None:
    store = RedisWindows(redis_url, 2.0)
    chosen = policy("50/minute")
    results = await asyncio.gather(
        *(store.hit([Tally(chosen, "ip:192.0.2.1")]) for _ in range(300))
    )
    allowed = [state.remaining for [state] in results if state.allowed]
    assert sorted(allowed) == list(range(50))  # each count given out once
    clients = (await store.client.info("clients"))["connected_clients"]
    await store.close()
    assert clients <= 3  # one connection carried the burst (redis-py's pool stops at 100)


async def test_a_batch_survives_redis_forgetting_its_scripts(redis_url: str) -> None:
    store = RedisWindows(redis_url, 2.0)
    moving, fixed = policy("10/minute"), policy("10/minute", "fixed-window")
    await store.hit([Tally(moving, "ip:192.0.2.1")])
    await store.client.script_flush()
    burst = [store.hit([Tally(p, "ip:192.0.2.2")]) for p in (moving, fixed) for _ in range(12)]
    results = await asyncio.gather(*burst)
    await store.close()
    # Sent again after loading the scripts, and counted once.
    assert [sum(r[0].allowed for r in results[i : i + 12]) for i in (0, 12)] == [10, 10]
