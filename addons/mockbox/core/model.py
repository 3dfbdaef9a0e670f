"""The compiled form of a mock: what it matches and how it answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .matchers import BodyMatcher, ValueMatcher
from .operation import OperationSchema
from .pathtemplate import PathTemplate
from .templating import Compiled

if TYPE_CHECKING:
    from .ratelimit import LimitRule

ANY_METHOD = "*"


@dataclass(frozen=True, slots=True)
class Delay:
    min_ms: int
    max_ms: int


@dataclass(frozen=True)
class ResponseSpec:
    status: int
    headers: tuple[tuple[str, Compiled], ...]
    body: Compiled | None = None
    body_bytes: bytes | None = None  # from body_file, served as is
    content_type: str | None = None  # used when `headers` sets none
    delay: Delay | None = None
    fault: Fault | None = None

    @cached_property
    def needs(self) -> frozenset[str]:
        """Template variables used by the headers and body."""
        out: frozenset[str] = self.body.needs if self.body else frozenset()
        return out.union(*(h.needs for _, h in self.headers))

    @cached_property
    def templated(self) -> bool:
        return self.body is not None or not all(h.static for _, h in self.headers)


@dataclass(frozen=True, slots=True)
class Fault:
    kind: Literal["connection_reset", "empty_reply", "status"]
    probability: float = 1.0
    response: ResponseSpec | None = None  # for kind "status"


@dataclass(frozen=True, slots=True)
class HostPattern:
    """`api.example.com`, `api.example.com:8443` or `*.example.com` (any port unless given)."""

    name: str
    port: int | None = None
    wildcard: bool = False

    @classmethod
    def parse(cls, text: str) -> HostPattern:
        name, _, port = text.lower().partition(":")
        wildcard = name.startswith("*.")
        return cls(name[1:] if wildcard else name, int(port) if port else None, wildcard)

    def test(self, host: str, port: int) -> bool:
        if self.port is not None and port != self.port:
            return False
        host = host.lower()
        return host.endswith(self.name) if self.wildcard else host == self.name

    def __str__(self) -> str:
        name = f"*{self.name}" if self.wildcard else self.name
        return f"{name}:{self.port}" if self.port else name


@dataclass(slots=True, eq=False)
class Mock:
    id: str  # "<file relative to the mocks folder>#<name>"
    name: str
    file: Path
    line: int
    methods: frozenset[str]  # {"*"} for any method
    host: HostPattern | None
    path: PathTemplate
    query: tuple[tuple[str, ValueMatcher], ...]
    headers: tuple[tuple[str, ValueMatcher], ...]
    body: tuple[BodyMatcher, ...]
    priority: int
    response: ResponseSpec  # the only answer, or the first of a sequence
    raw: dict[str, Any] = field(repr=False)
    order: int = 0  # load order across all files, the last tie-break
    # `responses:` — call 1 gets sequence[0], ..., then the last repeats; empty for `response:`.
    sequence: tuple[ResponseSpec, ...] = ()
    openapi: OperationSchema | None = None  # the OpenAPI operation the mock came from
    rate_limit: LimitRule | None = None  # the mock's own `rate_limit:`

    @property
    def matcher_count(self) -> int:
        return len(self.query) + len(self.headers) + len(self.body)

    @property
    def sort_key(self) -> tuple[int, ...]:
        """Higher sorts first: priority, then the more specific mock, then load order."""
        host_rank = 0 if self.host is None else (1 if self.host.wildcard else 2)
        return (
            self.priority,
            self.path.literal_count,
            len(self.path.segments),
            0 if self.path.catchall else 1,
            host_rank,
            0 if ANY_METHOD in self.methods else 1,
            self.matcher_count,
            -self.order,
        )
