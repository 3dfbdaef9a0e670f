"""Path templates: `/users/{id}/orders`, with an optional trailing catch-all `/files/{rest*}`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

_PARAM = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)(\*?)\}$")


class PathTemplateError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Param:
    name: str


type Segment = str | Param


@dataclass(frozen=True, slots=True)
class PathTemplate:
    text: str
    segments: tuple[Segment, ...]
    catchall: str | None = None

    @classmethod
    def parse(cls, text: str) -> PathTemplate:
        if not text.startswith("/"):
            raise PathTemplateError(f"path {text!r} must start with '/'")
        if "?" in text or "#" in text:
            raise PathTemplateError(
                f"path {text!r} must not hold a query or fragment (use `query:`)"
            )
        raw = [s for s in text.split("/") if s]
        segments: list[Segment] = []
        catchall: str | None = None
        names: set[str] = set()
        for i, seg in enumerate(raw):
            m = _PARAM.match(seg)
            if m is None:
                if "{" in seg or "}" in seg:
                    raise PathTemplateError(
                        f"segment {seg!r} of {text!r}: a parameter must be a whole segment, "
                        "like /users/{id}"
                    )
                segments.append(unquote(seg))
                continue
            name, star = m.groups()
            if name in names:
                raise PathTemplateError(f"parameter {{{name}}} appears twice in {text!r}")
            names.add(name)
            if star:
                if i != len(raw) - 1:
                    raise PathTemplateError(
                        f"catch-all {{{name}*}} must be the last segment of {text!r}"
                    )
                catchall = name
            else:
                segments.append(Param(name))
        return cls(text, tuple(segments), catchall)

    @property
    def literal_count(self) -> int:
        return sum(1 for s in self.segments if isinstance(s, str))

    @property
    def param_count(self) -> int:
        return len(self.segments) - self.literal_count

    @property
    def literal_prefix(self) -> str:
        """What every request path this template matches starts with (for cache purges)."""
        if "{" in self.text:
            return self.text.split("{", 1)[0]
        return self.text.rstrip("/") or "/"

    def match(self, segments: tuple[str, ...]) -> dict[str, str] | None:
        """Parameters bound by matching `segments` (decoded request path), or None."""
        n = len(self.segments)
        if len(segments) < n or (self.catchall is None and len(segments) != n):
            return None
        params: dict[str, str] = {}
        for want, got in zip(self.segments, segments, strict=False):
            if isinstance(want, Param):
                params[want.name] = got
            elif want != got:
                return None
        if self.catchall is not None:
            params[self.catchall] = "/".join(segments[n:])
        return params
