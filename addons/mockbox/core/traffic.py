"""The recent traffic the editor shows: a bounded, in-memory ring of requests and answers.

Entries keep what "Save as mock" needs (method, URL, status, headers, bodies up to a cap) as
they came; every way out (summaries, the search, details, drafts) redacts them with the
policy of `redact:`, as a recording would. The ring lives in this process; with several
instances behind Redis each shows its own traffic (a Redis-backed log can replace this class
behind the same methods).
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
from .ai_prompt import GenerationRequest
from .mockwriter import mock_from_answer
from .redaction import Policy, Redactor
from .request import RequestView

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

    def to_json(self, redactor: Redactor) -> dict[str, Any]:
        """Headers and body as shown: secrets replaced (a body cut at the cap is redacted as
        text, by the name="value" pairs it holds)."""
        body = redactor.body(self.body, self.header("content-type"))
        text: str | None
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        return {
            "headers": [[k, v] for k, v in redactor.headers(self.headers)],
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
        """As received: secrets included; what leaves goes through a Redactor."""
        return RequestView(self.method, *self.target).url

    def summary(self, policy: Policy) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "method": self.method,
            "url": Redactor(policy).url(self.url),
            "status": self.status,
            "source": self.source,
            "mock": self.mock,
            "duration_ms": round(self.duration_ms, 2),
            "error": self.error,
        }

    def to_json(self, policy: Policy) -> dict[str, Any]:
        """Every secret the request or answer names is replaced, and so are its copies
        elsewhere in the exchange (an upstream echoing the request's token)."""
        redactor = Redactor(policy)
        url = redactor.url(self.url)
        request = self.request.to_json(redactor)
        response = self.response.to_json(redactor) if self.response else None
        shown = {**self.summary(policy), "url": url, "request": request, "response": response}
        scrubbed: dict[str, Any] = redactor.found.scrub_tree(shown)
        return scrubbed

    def draft(self, policy: Policy) -> dict[str, Any]:
        """This exchange as a mock: the same request answers the same way, without secrets
        (secret query parameters are not matched; secret headers are left out; the body's
        secrets are replaced). Raises ValueError when the answer cannot be one (none, binary,
        truncated)."""
        response = self.response
        if response is None or self.status is None:
            raise ValueError("this request got no answer to save")
        if len(response.body) < response.size:
            raise ValueError("the answer was larger than the traffic log keeps; not saved")
        redactor = Redactor(policy)
        # The request's secrets are found first, for their copies in the answer.
        redactor.headers(self.request.headers)
        redactor.body(self.request.body, self.request.header("content-type"))
        url = redactor.url(self.url)
        query = [
            (k, v)
            for k, v in parse_qsl(urlsplit(self.url).query, keep_blank_values=True)
            if not policy.is_secret(k, query=True)
        ]
        body_bytes = redactor.body(response.body, response.header("content-type"))
        try:
            text = redactor.scrub(body_bytes.decode("utf-8"))
        except UnicodeDecodeError:
            raise ValueError("the answer is binary; save it as a body_file by hand") from None
        body: Any = text if text else None
        if "json" in response.header("content-type") and text:
            with contextlib.suppress(ValueError):
                body = json.loads(text)
        headers = {
            k: redactor.scrub(v)
            for k, v in response.headers
            if k.lower() not in FORBIDDEN_HEADERS
            and not policy.is_secret(k)
            and k.lower() not in _NOT_FOR_MOCKS
            and not k.lower().startswith(("x-mockbox-", "x-ratelimit-", "ratelimit"))
        }
        greq = GenerationRequest(self.method, url, query)
        mock = mock_from_answer(greq, AIAnswer(self.status, headers, body))
        mock["name"] = f"{self.method} {greq.path}" + (" (AI)" if self.source == "ai" else "")
        return mock


class TrafficLog:
    """The last `size` exchanges, newest last; safe to use from several threads."""

    def __init__(self, size: int, policy: Policy) -> None:
        self.size = size
        self.policy = policy
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
            # The redacted URL: a search must not find what the list would not show.
            url = Redactor(self.policy).url(e.url) if needle else ""
            if needle and needle not in f"{e.method} {url} {e.status}".lower():
                continue
            out.append(e)
            if len(out) >= limit:
                break
        return out
