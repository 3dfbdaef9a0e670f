"""A plain view of one HTTP request, so the core never needs mitmproxy's types."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from functools import cached_property
from typing import Any
from urllib.parse import unquote


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only headers; repeated fields are joined with ', '."""

    __slots__ = ("_fields", "_map")

    def __init__(self, fields: Iterable[tuple[str, str]] = ()) -> None:
        self._fields = tuple(fields)
        merged: dict[str, str] = {}
        for name, value in self._fields:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        self._map = merged

    def __getitem__(self, name: str) -> str:
        return self._map[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._map

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._map)

    def fields(self) -> tuple[tuple[str, str], ...]:
        return self._fields


class RequestView:
    """What MockBox needs to know about a request to match and answer it.

    `query`, `headers` and `body` are properties so that a view over a live flow can read
    them only when a matcher or template asks (most requests need none of them).
    """

    def __init__(
        self,
        method: str,
        scheme: str,
        host: str,
        port: int,
        path: str,
        query: tuple[tuple[str, str], ...] = (),
        headers: Headers | None = None,
        body: bytes = b"",
        client: str = "",
    ) -> None:
        self.method, self.scheme, self.host, self.port, self.path = method, scheme, host, port, path
        self.client = client
        self._query, self._headers, self._body = query, headers or Headers(), body

    @property
    def query(self) -> tuple[tuple[str, str], ...]:
        return self._query

    @property
    def headers(self) -> Headers:
        return self._headers

    @property
    def body(self) -> bytes:
        return self._body

    @property
    def url(self) -> str:
        default = (self.scheme == "https" and self.port == 443) or (
            self.scheme == "http" and self.port == 80
        )
        netloc = self.host if default else f"{self.host}:{self.port}"
        qs = "&".join(f"{k}={v}" if v != "" else k for k, v in self.query)
        return f"{self.scheme}://{netloc}{self.path}" + (f"?{qs}" if qs else "")

    @property
    def authority(self) -> str:
        return f"{self.host}:{self.port}"

    @cached_property
    def segments(self) -> tuple[str, ...]:
        """Decoded path segments; empty segments (`//`, trailing `/`) are ignored."""
        parts = [s for s in self.path.split("/") if s]
        return tuple(unquote(s) for s in parts) if "%" in self.path else tuple(parts)

    @cached_property
    def query_map(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for k, v in self.query:
            out.setdefault(k, []).append(v)
        return out

    @cached_property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @cached_property
    def json(self) -> Any:
        """The body parsed as JSON, or `NOT_JSON` when it is not JSON."""
        if not self.body:
            return NOT_JSON
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return NOT_JSON


class _NotJson:
    """Marker for a body that does not parse as JSON."""

    def __repr__(self) -> str:
        return "<not JSON>"


NOT_JSON: Any = _NotJson()
