"""Stateful synthesis: what a synthesized POST/PUT created, later GETs return and DELETE removes.

Resources are kept per session (the `X-MockBox-Session` header, else the client) and host, in
Redis when configured (shared by every instance) or in memory.
"""

from __future__ import annotations

import uuid
from typing import Any

from ..core.ai_answer import AIAnswer
from ..core.ai_prompt import is_id_like
from .stores import StateStore

TTL = 24 * 3600


class SessionResources:
    def __init__(self, store: StateStore) -> None:
        self.store = store

    @staticmethod
    def _key(session: str, host: str, collection: str, item: str) -> str:
        return f"ai:resource:{session}:{host.lower()}:/{collection}/{item}"

    async def answer(
        self, session: str, method: str, host: str, segments: tuple[str, ...], body: Any
    ) -> AIAnswer | None:
        """An answer from a resource this session created, or None to synthesize as usual."""
        if (
            not segments
            or not is_id_like(segments[-1])
            or method not in ("GET", "PUT", "PATCH", "DELETE")
        ):
            return None
        key = self._key(session, host, "/".join(segments[:-1]), segments[-1])
        stored = await self.store.get_json(key)
        if stored is None:
            return None
        explanation = "Stateful: the resource this session created earlier."
        if method == "DELETE":
            await self.store.delete(key)
            return AIAnswer(204, {}, None, "Stateful: removed the resource this session created.")
        if method in ("PUT", "PATCH") and isinstance(stored, dict) and isinstance(body, dict):
            stored = body if method == "PUT" else {**stored, **body}
            stored.setdefault("id", _id_value(segments[-1]))
            await self.store.set_json(key, stored, TTL)
            explanation = "Stateful: updated the resource this session created."
        return AIAnswer(200, {"Content-Type": "application/json"}, stored, explanation)

    async def remember(
        self, session: str, method: str, host: str, segments: tuple[str, ...], answer: AIAnswer
    ) -> AIAnswer:
        """Keep what a POST (to a collection) or PUT (to an item) created; give it an id."""
        if not 200 <= answer.status < 300 or not isinstance(answer.body, dict) or not segments:
            return answer
        if method == "POST" and not is_id_like(segments[-1]):
            body = dict(answer.body)
            item = str(body.setdefault("id", str(uuid.uuid4())))
            collection = "/".join(segments)
        elif method == "PUT" and is_id_like(segments[-1]):
            body, item = dict(answer.body), segments[-1]
            collection = "/".join(segments[:-1])
        else:
            return answer
        await self.store.set_json(self._key(session, host, collection, item), body, TTL)
        return AIAnswer(answer.status, answer.headers, body, answer.explanation)


def _id_value(segment: str) -> Any:
    return int(segment) if segment.isdigit() else segment
