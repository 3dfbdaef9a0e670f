"""Grounding for AI answers: the nearest mocks of the same API as examples, and the prompt.

An LLM answers far better when it sees how this API already answers: the same host's mocks
(written, recorded or imported), ranked by how closely their path resembles the request's.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .model import ANY_METHOD, Mock
from .pathtemplate import Param
from .redaction import Policy, Redactor
from .request import NOT_JSON, RequestView

# A segment that is probably an identifier: a number, a UUID, a hash, a slug with digits.
_ID_LIKE = re.compile(
    r"^(\d+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{16,}|[A-Za-z]+_[A-Za-z0-9]{6,})$"
)
# Request headers worth showing the model; credentials are never sent to a provider, only
# that they were there (a few: a client sending hundreds must not grow the prompt).
RELEVANT_HEADERS = ("content-type", "accept", "accept-language", "user-agent", "if-none-match")
MAX_SECRET_HEADERS = 8
# A larger JSON body is shown as text, cut: walking it for secrets would hold the event loop.
PROMPT_JSON_BYTES = 256 * 1024
COMPLEXITY = {
    "simple": "Keep the body small: a few fields, no nesting beyond one level.",
    "medium": "A realistic body as the real API would send it.",
    "complex": "A rich, realistic body: nested objects, arrays of several items, pagination "
    "or metadata where such an API would have them.",
}


def is_id_like(segment: str) -> bool:
    return bool(_ID_LIKE.match(segment))


@dataclass(frozen=True, slots=True)
class Example:
    """An existing answer of the same API, shown to the model."""

    name: str
    method: str
    path: str
    status: int
    body: Any
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "request": f"{self.method} {self.path}",
            "status": self.status,
            "body": self.body,
        }


@dataclass(slots=True)
class GenerationRequest:
    """Everything a provider needs to answer one request as the real API would."""

    method: str
    url: str
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    description: str = ""
    schema_hint: str = ""
    complexity: str = "medium"
    body_schema: dict[str, Any] | None = None
    examples: list[Example] = field(default_factory=list)

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def path(self) -> str:
        return urlsplit(self.url).path or "/"

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(s for s in self.path.split("/") if s)

    def seed(self) -> int:
        """The same for the same request, in every process: fake data stays put."""
        body = json.dumps(self.body, sort_keys=True, default=str)
        text = f"{self.method.upper()} {self.url}\0{body}".encode()
        return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")

    @classmethod
    def from_view(
        cls, view: RequestView, policy: Policy, max_body_chars: int = 4000
    ) -> GenerationRequest:
        """What a provider may see of `view`: secrets redacted by `policy` in the URL, the
        body and the headers shown; secret query parameters left out of `query` (a mock kept
        from the answer must not match on them)."""
        redactor = Redactor(policy)
        headers: dict[str, str] = {}
        for name in RELEVANT_HEADERS:
            if name in view.headers:
                headers[name] = view.headers[name][:200]
        secret = [(k, v) for k, v in view.headers.fields() if policy.is_secret(k)]
        for name, value in secret[:MAX_SECRET_HEADERS]:
            headers[name.lower()] = redactor.header(name, value)[:200]
        for name, value in secret[MAX_SECRET_HEADERS:]:
            redactor.header(name, value)  # not shown, but copies elsewhere are scrubbed
        shown = tuple(redactor.query(view.query))
        url = RequestView(view.method, view.scheme, view.host, view.port, view.path, shown).url
        query = [(k, v) for k, v in view.query if not policy.is_secret(k, query=True)]
        body: Any = None
        if view.body:
            parsed = view.json if len(view.body) <= PROMPT_JSON_BYTES else NOT_JSON
            if parsed is not NOT_JSON:
                body = redactor.found.scrub_tree(redactor.json(parsed))
            else:  # redacted before it is cut: a cut pair would not be recognised
                window = view.body[: max_body_chars * 4 + 4096]
                text = redactor.body(window, view.headers.get("content-type", ""))
                body = redactor.scrub(text.decode("utf-8", "replace"))[:max_body_chars]
        scrub = redactor.scrub
        return cls(
            view.method,
            scrub(url),
            [(k, scrub(v)) for k, v in query],
            {k: scrub(v) for k, v in headers.items()},
            body,
        )


def path_score(mock: Mock, method: str, segments: tuple[str, ...]) -> float:
    """How much `mock`'s route resembles the request's path (higher is closer; <= 0: unrelated)."""
    want = mock.path.segments
    score = 0.0
    if len(want) == len(segments) and mock.path.catchall is None:
        score += 2
    for template, got in zip(want, segments, strict=False):
        if isinstance(template, Param):
            score += 2 if is_id_like(got) else 1
        elif template == got:
            score += 3
        elif is_id_like(template) and is_id_like(got):
            score += 2  # /users/3 recorded, /users/7 asked: the same route
        else:
            score -= 2
    common = 0
    for template, got in zip(want, segments, strict=False):
        if isinstance(template, str) and template != got and not is_id_like(got):
            break
        common += 1
    score += common  # a longer shared prefix is closer
    if method in mock.methods:
        score += 1
    elif ANY_METHOD not in mock.methods:
        score -= 0.5
    return score


def nearest_examples(
    mocks: Iterable[Mock],
    host: str,
    method: str,
    segments: tuple[str, ...],
    limit: int = 5,
    max_chars: int = 6000,
) -> list[Example]:
    """The mocks of `host` that look most like the request, bounded in count and size."""
    host = host.lower()
    scored = []
    for mock in mocks:
        # Only this host's mocks: any-host mocks say nothing about this API's shapes.
        if mock.host is None or not mock.host.test(host, mock.host.port or 0):
            continue
        score = path_score(mock, method, segments)
        if score > 0:
            scored.append((score, -mock.order, mock))
    scored.sort(key=lambda t: (t[0], t[1]), reverse=True)
    out: list[Example] = []
    used = 0
    for _, _, mock in scored[:limit]:
        example = example_of(mock)
        size = len(json.dumps(example.to_json(), default=str))
        if used + size > max_chars:
            continue
        used += size
        out.append(example)
    return out


def operation_schema(
    mocks: Iterable[Mock], host: str, method: str, segments: tuple[str, ...]
) -> dict[str, Any] | None:
    """The response schema of an imported OpenAPI operation for this route, if there is one."""
    for mock in mocks:
        op = mock.openapi
        if op is None or not isinstance(op.response_schema, dict):
            continue
        if mock.host is not None and not mock.host.test(host, mock.host.port or 0):
            continue
        if (op.method or "").upper() == method.upper() and mock.path.match(segments) is not None:
            return op.response_schema
    return None


def example_of(mock: Mock) -> Example:
    raw = mock.raw.get("response") or {}
    body: Any = raw.get("body")
    if body is None and mock.response.body_bytes is not None:
        text = mock.response.body_bytes[:4000].decode("utf-8", "replace")
        try:
            body = json.loads(text)
        except ValueError:
            body = text
    method = "/".join(sorted(mock.methods)).replace(ANY_METHOD, "ANY")
    return Example(mock.name, method, mock.path.text, int(raw.get("status", 200)), body, mock.id)


SYSTEM_PROMPT = """You are the backend of a real HTTP API, answering one request.
Answer exactly as this API would: same field names, naming style, types, nesting, envelope and
error format as the examples from the same API. Invent realistic values (no lorem ipsum, no
"string" placeholders). Use the status code the real API would use (201 for a creation, 404 for a
resource that cannot exist, 400/422 for an invalid body...).
Reply with one JSON object: {"status": int, "headers": {name: value}, "body": <JSON or string>,
"explanation": "<one or two sentences>"}. Set Content-Type in headers. Never set framing headers
(Content-Length, Transfer-Encoding, Connection, Content-Encoding)."""


def build_prompt(req: GenerationRequest) -> str:
    """The user message: the request, the API's examples, and any schema or hints."""
    parts: dict[str, Any] = {
        "request": {
            "method": req.method,
            "url": req.url,
            "query": dict(req.query),
            "headers": req.headers,
            "body": req.body,
        }
    }
    if req.examples:
        parts["examples_from_the_same_api"] = [e.to_json() for e in req.examples]
    if req.body_schema is not None:
        parts["response_body_json_schema"] = req.body_schema
    if req.description:
        parts["what_this_endpoint_does"] = req.description
    if req.schema_hint:
        parts["schema_hint"] = req.schema_hint
    parts["detail"] = COMPLEXITY.get(req.complexity, COMPLEXITY["medium"])
    return json.dumps(parts, indent=1, ensure_ascii=False, default=str)


def repair_prompt(errors: list[str]) -> str:
    return (
        "Your answer was rejected for these reasons:\n- "
        + "\n- ".join(errors)
        + "\nAnswer the same request again as one JSON object that fixes all of them."
    )
