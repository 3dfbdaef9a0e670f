"""Stored answers as bytes, the same for the memory backend and Redis.

An entry is a small JSON head (status, headers, freshness) followed by the body, compressed
with zlib when it is large and not already encoded. A key whose answers Vary holds a vary
record instead: the request header names that select the variant key.
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from functools import cached_property

from .cachepolicy import Freshness

_MAGIC = b"MBC1"
_ENTRY, _VARY = b"E", b"V"
_HEAD = struct.Struct(">I")
_ZLIB_LEVEL = 1  # fast: the body is compressed on the event loop when it is stored


class EntryFormatError(ValueError):
    """Bytes that are not a cache entry (another version wrote them, or a foreign key)."""


@dataclass(frozen=True)
class Entry:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    freshness: Freshness
    vary: tuple[str, ...] = ()

    @cached_property
    def wire_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The headers as bytes, encoded once however often the entry is served."""
        return tuple((k.encode(), v.encode("utf-8", "surrogateescape")) for k, v in self.headers)

    def encode(self, compress_min_bytes: int) -> bytes:
        compressed = len(self.body) >= compress_min_bytes and not any(
            name.lower() == "content-encoding" for name, _ in self.headers
        )
        body = zlib.compress(self.body, _ZLIB_LEVEL) if compressed else self.body
        if compressed and len(body) >= len(self.body):
            compressed, body = False, self.body
        f = self.freshness
        head = json.dumps(
            {
                "s": self.status,
                "r": self.reason,
                "h": self.headers,
                "f": [
                    f.stored_at,
                    f.initial_age,
                    f.lifetime,
                    f.stale_while_revalidate,
                    f.stale_if_error,
                    f.shared_auth,
                ],
                "v": self.vary,
                "z": compressed,
            },
            separators=(",", ":"),
        ).encode()
        return b"".join((_MAGIC, _ENTRY, _HEAD.pack(len(head)), head, body))


@dataclass(frozen=True, slots=True)
class VaryRecord:
    """Stored at a base key when its answers Vary: which request headers pick the variant."""

    vary: tuple[str, ...]

    def encode(self) -> bytes:
        return _MAGIC + _VARY + json.dumps(self.vary).encode()


def decode(data: bytes) -> Entry | VaryRecord:
    if data[:4] != _MAGIC:
        raise EntryFormatError("not a MockBox cache entry")
    kind = data[4:5]
    try:
        if kind == _VARY:
            return VaryRecord(tuple(json.loads(data[5:])))
        if kind != _ENTRY:
            raise EntryFormatError(f"unknown entry kind {kind!r}")
        (size,) = _HEAD.unpack_from(data, 5)
        start = 5 + _HEAD.size
        head = json.loads(data[start : start + size])
        body = data[start + size :]
        if head["z"]:
            body = zlib.decompress(body)
        stored_at, initial_age, lifetime, swr, sie, shared_auth = head["f"]
        return Entry(
            status=head["s"],
            reason=head["r"],
            headers=[(k, v) for k, v in head["h"]],
            body=body,
            freshness=Freshness(stored_at, initial_age, lifetime, swr, sie, shared_auth),
            vary=tuple(head["v"]),
        )
    except (ValueError, KeyError, TypeError, struct.error, zlib.error) as e:
        raise EntryFormatError(f"corrupt cache entry: {e}") from e
