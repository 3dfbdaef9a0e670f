"""What the soak (bench/soak.py) found growing stays within its bounds."""

from __future__ import annotations

import asyncio
import tracemalloc
from pathlib import Path

import requests

from mockbox.state import MemoryState

from .conftest import MockBox, MockBoxFactory, clean_env, write_mocks


async def test_memory_state_drops_expired_keys_nobody_reads() -> None:
    # Synthesized answers of distinct URLs, each read never again: once their TTL passes they
    # must not hold memory until the size cap evicts them.
    state = MemoryState(max_bytes=1 << 30)
    for i in range(2000):
        await state.set(f"mockbox:cache:e:{i}", b"x" * 200, ttl=1.0)  # a busy machine: not less
    await state.set("pinned", b"p")  # no TTL: kept
    assert len(state._items) == 2001
    await asyncio.sleep(1.05)
    await state.set("next", b"y", ttl=60)  # any write sweeps what has expired
    assert set(state._items) == {"pinned", "next"}
    assert state.bytes < 1000
    assert await state.get("pinned") == b"p"


async def test_memory_state_expiry_heap_stays_bounded_under_rewrites() -> None:
    # A counter rewritten at every request with a TTL of days (the AI budgets) leaves one
    # stale heap entry per write; the heap is rebuilt before they pile up.
    state = MemoryState(max_bytes=1 << 30)
    for _ in range(20_000):
        await state.incr("ai:budget:day:tokens", 1, ttl=2 * 86400)
    assert await state.get("ai:budget:day:tokens") == b"20000.0"
    assert len(state._expiries) <= 2 * len(state._items) + 1024


async def test_memory_state_cap_bounds_the_memory_really_used() -> None:
    # Many small entries (the soak's synthesized answers are a few hundred bytes): what the
    # process really allocates must stay near state.memory_max_bytes, not a multiple of it.
    cap = 4 << 20
    state = MemoryState(max_bytes=cap)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(40_000):  # about three times the cap
            await state.set(f"mockbox:cache:e:api.test|80|/items/{i} GET http", b"v" * 20, ttl=60)
        used = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert state.bytes <= cap
    assert used <= 1.2 * cap, f"{used} bytes held for a cap of {cap}"


MOCKS = """\
mocks:
  - request: {method: GET, host: api.bound.test, path: "/users/{id}"}
    response: {body: {id: "{{ path.id | int }}", name: "{{ fake.name() }}"}}
  - request: {method: GET, host: api.bound.test, path: "/users"}
    response: {body: [{id: 1, name: "a"}]}
"""
CONFIG = """\
traffic: {size: 20}
rate_limit: {violations_kept: 10, public: {per_address: none}}  # every key a client of its own
"""


def _series(metrics: str) -> list[str]:
    """The metric series (name and labels), without their values."""
    return sorted(line.rpartition(" ")[0] for line in metrics.splitlines() if line[:1] != "#")


def _round(box: MockBox, tag: str) -> None:
    """Distinct paths, API keys and clients over the limit: mock, AI and 429 answers."""
    for i in range(30):
        key = {"X-API-Key": f"{tag}-{i}"}
        assert box.get(f"http://api.bound.test/users/{tag}{i}", headers=key).status_code == 200
        assert box.get(f"http://api.bound.test/users/{i}/x{tag}", headers=key).status_code < 600
        limited = box.get("http://api.bound.test/users/1", headers={"X-API-Key": f"{tag}-hot"})
        assert limited.status_code == (200 if i < 3 else 429)


def test_metrics_traffic_and_violations_stay_bounded_over_new_paths_and_clients(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    write_mocks(tmp_path / "mocks", "bound.yaml", MOCKS)
    (tmp_path / "mockbox.yaml").write_text(CONFIG)
    env = clean_env(MOCKBOX_RATE_LIMIT_PUBLIC="3/minute", MOCKBOX_RATE_LIMIT_AI="100/minute")
    box = mockbox(tmp_path / "mocks", "--config", str(tmp_path / "mockbox.yaml"), env=env)
    _round(box, "a")
    series = _series(box.metrics())
    _round(box, "b")
    text = box.metrics()
    # No path, key or client became a label: the same series as before, only their values moved.
    assert _series(text) == series
    assert "b-" not in text and "/users/" not in text
    traffic = requests.get(f"{box.admin}/api/traffic", timeout=5).json()["traffic"]
    assert len(traffic) == 20
    violations = requests.get(f"{box.admin}/api/limits", timeout=5).json()["violations"]
    assert violations["kept"] == 10 and len(violations["top_clients"]) == 1
