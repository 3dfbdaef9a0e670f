"""In-process stores for the AI features (budgets, session resources) when no Redis is set."""

from __future__ import annotations

import json
import time
from typing import Any, Protocol


class JsonStore(Protocol):
    async def get(self, key: str) -> Any: ...

    async def set(self, key: str, value: Any, ttl: int) -> None: ...

    async def delete(self, key: str) -> bool: ...


class MemoryJsonStore:
    """A dict with expiry; values are copied through JSON so callers cannot alias them."""

    def __init__(self, max_entries: int = 10_000) -> None:
        self._data: dict[str, tuple[str, float]] = {}
        self.max_entries = max_entries

    async def get(self, key: str) -> Any:
        item = self._data.get(key)
        if item is None or item[1] < time.time():
            return None
        return json.loads(item[0])

    async def set(self, key: str, value: Any, ttl: int) -> None:
        if len(self._data) >= self.max_entries:
            now = time.time()
            self._data = {k: v for k, v in self._data.items() if v[1] > now}
            while len(self._data) >= self.max_entries:  # still full: drop the oldest
                self._data.pop(next(iter(self._data)))
        self._data[key] = (json.dumps(value), time.time() + ttl)

    async def delete(self, key: str) -> bool:
        return self._data.pop(key, None) is not None


class CounterStore(Protocol):
    """Where budget counters live: memory for one instance, Redis for all of them."""

    async def incr(self, key: str, amount: float, ttl: int) -> float: ...

    async def get(self, key: str) -> float: ...


class MemoryCounters:
    def __init__(self) -> None:
        self._values: dict[str, tuple[float, float]] = {}  # key → (value, expires at)

    async def incr(self, key: str, amount: float, ttl: int) -> float:
        value = await self.get(key) + amount
        self._values[key] = (value, time.time() + ttl)
        self._values = {k: v for k, v in self._values.items() if v[1] > time.time()}
        return value

    async def get(self, key: str) -> float:
        value, expires = self._values.get(key, (0.0, 0.0))
        return value if expires > time.time() else 0.0
