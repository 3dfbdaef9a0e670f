"""Recent rate-limit violations, bounded, for the admin API (`/api/limits`).

Each instance keeps its own in memory. With Redis they also go, in batches and off the request
path, to one capped list that every instance shares, so any instance's admin API shows all of
them; while Redis is unreachable the API falls back to the instance's own.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from .windows import KEY_PREFIX, STORAGE_ERRORS

SHARED_KEY = f"{KEY_PREFIX}:violations"


@dataclass(frozen=True, slots=True)
class Violation:
    at: float
    tier: str
    identity: str
    method: str
    host: str
    path: str  # without the query, which may hold secrets
    limit: str
    retry_after: int
    region: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["at"] = datetime.fromtimestamp(self.at, UTC).isoformat(timespec="milliseconds")
        return data


class ViolationLog:
    def __init__(self, keep: int, redis: Redis | None = None) -> None:
        self.keep = keep
        self.redis = redis
        self._recent: deque[Violation] = deque(maxlen=keep)
        self._pending: list[Violation] = []
        self._flushing: asyncio.Task[None] | None = None

    def record(self, violation: Violation, share: bool = True) -> None:
        """Keep it here, and (`share`: Redis is reachable) push it to the shared list soon."""
        if self.keep == 0:
            return
        self._recent.appendleft(violation)
        if self.redis is not None and share:
            self._pending.append(violation)
            if self._flushing is None or self._flushing.done():
                self._flushing = asyncio.get_running_loop().create_task(self._flush(self.redis))

    async def _flush(self, redis: Redis) -> None:
        """Push what is pending in one pipeline; what arrives meanwhile goes in the next."""
        while self._pending:
            batch, self._pending = self._pending, []
            pipe = redis.pipeline(transaction=False)
            pipe.lpush(SHARED_KEY, *(json.dumps(v.to_json()) for v in batch))
            pipe.ltrim(SHARED_KEY, 0, self.keep - 1)
            try:
                await pipe.execute()
            except STORAGE_ERRORS:
                return  # the instance's own list has them; the limiter reports the outage

    async def snapshot(self, recent: int, top: int) -> dict[str, Any]:
        """The newest `recent` violations and the `top` clients among all that are kept."""
        items: list[dict[str, Any]] = [v.to_json() for v in self._recent]
        scope = "instance"
        if self.redis is not None and self.keep:
            try:
                raw = await self.redis.lrange(SHARED_KEY, 0, self.keep - 1)
                items, scope = [json.loads(r) for r in raw], "shared"
            except (*STORAGE_ERRORS, ValueError):
                pass
        return {
            "scope": scope,
            "kept": len(items),
            "recent": items[:recent],
            "top_clients": _top_clients(items)[:top],
        }

    async def close(self) -> None:
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)


def _top_clients(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    clients: dict[str, dict[str, Any]] = {}
    for item in items:  # newest first
        entry = clients.setdefault(
            item["identity"],
            {"identity": item["identity"], "violations": 0, "last": item["at"], "tiers": []},
        )
        entry["violations"] += 1
        if item["tier"] not in entry["tiers"]:
            entry["tiers"].append(item["tier"])
    return sorted(clients.values(), key=lambda c: (-c["violations"], c["identity"]))
