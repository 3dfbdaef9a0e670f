"""The recent traffic the editor shows: a bounded, in-memory ring of requests and answers.

Entries keep what "Save as mock" needs (method, URL, status, headers, bodies up to a cap) and
hide credentials. The ring lives in this process; with several instances behind Redis each
shows its own traffic (a Redis-backed log can replace this class behind the same methods).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .ai_answer import FORBIDDEN_HEADERS, AIAnswer
from .ai_prompt import SECRET_HEADERS, GenerationRequest
from .mockwriter import mock_from_answer
from .request import RequestView

HIDDEN = "[hidden]"
_HIDDEN_HEADERS = frozenset({*SECRET_HEADERS, "set-cookie"})
# Headers that describe one exchange, not the API: left out of a mock saved from traffic.
_NOT_FOR_MOCKS = frozenset({"date", "server", "age", "retry-after", "x-cache-status", "via"})


@dataclass(frozen=True, slots=True)
class Message:
    fields: tuple[tuple[bytes, bytes], ...]  # header fields as received, decoded when read
    body: bytes  # at most the cap
    size: int  # the whole body's size

    @property
    def headers(self) -> list[tuple[str, str]]:
        return [(k.decode("latin-1"), v.decode("utf-8", "replace")) for k, v in self.fields]

    def to_json(self) -> dict[str, Any]:
        text: str | None
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return {
            "headers": [
                [k, HIDDEN if k.lower() in _HIDDEN_HEADERS else v] for k, v in self.headers
            ],
            "body": text,
            "binary": text is None,
            "size": self.size,
            "truncated": len(self.body) < self.size,
        }

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name), "")


@dataclass(frozen=True, slots=True)
class Exchange:
    id: int
    time: float  # when the request started (epoch seconds)
    method: str
    target: tuple[str, str, int, str]  # scheme, host, port, path with query: url when read
    status: int | None  # None: no answer (connection error, fault)
    source: str  # mock | cache | ai | upstream | ratelimit
    mock: str | None  # the id of the mock that answered, when one did
    duration_ms: float
    request: Message
    response: Message | None
    error: str | None = None

    @property
    def url(self) -> str:
        return RequestView(self.method, *self.target).url

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "method": self.method,
            "url": self.url,
            "status": self.status,
            "source": self.source,
            "mock": self.mock,
            "duration_ms": round(self.duration_ms, 2),
            "error": self.error,
        }

    def to_json(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "request": self.request.to_json(),
            "response": self.response.to_json() if self.response else None,
        }

    def draft(self) -> dict[str, Any]:
        """This exchange as a mock: the same request answers the same way.
        Raises ValueError when the answer cannot be one (none, binary, truncated)."""
        response = self.response
        if response is None or self.status is None:
            raise ValueError("this request got no answer to save")
        if len(response.body) < response.size:
            raise ValueError("the answer was larger than the traffic log keeps; not saved")
        try:
            text = response.body.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("the answer is binary; save it as a body_file by hand") from None
        body: Any = text if text else None
        if "json" in response.header("content-type") and text:
            with contextlib.suppress(ValueError):
                body = json.loads(text)
        headers = {
            k: v
            for k, v in response.headers
            if k.lower() not in FORBIDDEN_HEADERS
            and k.lower() not in _HIDDEN_HEADERS
            and k.lower() not in _NOT_FOR_MOCKS
            and not k.lower().startswith(("x-mockbox-", "x-ratelimit-", "ratelimit"))
        }
        url = urlsplit(self.url)
        greq = GenerationRequest(self.method, self.url, parse_qsl(url.query))
        mock = mock_from_answer(greq, AIAnswer(self.status, headers, body))
        mock["name"] = f"{self.method} {greq.path}" + (" (AI)" if self.source == "ai" else "")
        return mock


class TrafficLog:
    """The last `size` exchanges, newest last; safe to use from several threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ring: deque[Exchange] = deque(maxlen=max(1, size))
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def next_id(self) -> int:
        return next(self._ids)

    def add(self, exchange: Exchange) -> None:
        with self._lock:
            self._ring.append(exchange)

    def get(self, id: int) -> Exchange | None:
        with self._lock:
            return next((e for e in self._ring if e.id == id), None)

    def recent(
        self, limit: int = 100, since: int = 0, source: str = "", text: str = ""
    ) -> list[Exchange]:
        """Newest first; `since` keeps only entries after that id (for polling)."""
        with self._lock:
            entries = list(self._ring)
        out: list[Exchange] = []
        needle = text.lower()
        for e in reversed(entries):
            if e.id <= since:
                break
            if source and e.source != source:
                continue
            if needle and needle not in f"{e.method} {e.url} {e.status}".lower():
                continue
            out.append(e)
            if len(out) >= limit:
                break
        return out
