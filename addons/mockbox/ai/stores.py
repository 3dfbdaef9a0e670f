"""The AI features' view of the shared state: JSON values and counters, in Redis when
configured (shared by every instance) or in the process's memory."""

from __future__ import annotations

import json
from typing import Any

from ..state import SharedState


class StateStore:
    def __init__(self, state: SharedState) -> None:
        self.state = state  # its backend can change on reconfiguration: read it on each call

    async def get_json(self, key: str) -> Any:
        raw = await self.state.backend.get(key)
        return None if raw is None else json.loads(raw)

    async def set_json(self, key: str, value: Any, ttl: float) -> None:
        await self.state.backend.set(key, json.dumps(value).encode(), ttl)

    async def delete(self, key: str) -> bool:
        return await self.state.backend.delete(key) > 0

    async def incr(self, key: str, amount: float, ttl: float) -> float:
        return await self.state.backend.incr(key, amount, ttl)

    async def number(self, key: str) -> float:
        raw = await self.state.backend.get(key)
        return float(raw) if raw else 0.0
