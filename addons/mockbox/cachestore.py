"""Cached answers in the shared state backend: look up, save, purge, count.

Keys are `mockbox:cache:e:<host>|<port>|<path> <METHOD> <scheme> <query-hash>[ <vary-hash>]`,
so a purge by host and path prefix is a pattern scan that works on Redis and in memory alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .core.cacheentry import Entry, EntryFormatError, VaryRecord, decode
from .core.cachepolicy import key_target, variant_key
from .core.model import HostPattern
from .core.request import Headers
from .state import StateBackend, glob_escape

logger = logging.getLogger(__name__)

PREFIX = "mockbox:cache:"
_DECODED_MAX = 1024  # entries kept decoded, so hot keys skip decoding
ENTRIES = PREFIX + "e:"
LOCKS = PREFIX + "lock:"


class CacheStore:
    def __init__(self, backend: Callable[[], StateBackend], compress_min_bytes: int) -> None:
        self._backend = backend  # read on every call: the backend changes with the Redis URL
        self.compress_min_bytes = compress_min_bytes
        self._decoded: dict[str, tuple[bytes, Entry | VaryRecord]] = {}

    @property
    def backend(self) -> StateBackend:
        return self._backend()

    async def lookup(self, base: str, headers: Headers) -> Entry | None:
        """The stored answer for this request (its variant when the answer Varies), or None."""
        record = await self._read(base)
        if isinstance(record, VaryRecord):
            record = await self._read(variant_key(base, record.vary, headers))
        return record if isinstance(record, Entry) else None

    async def _read(self, key: str) -> Entry | VaryRecord | None:
        data = await self.backend.get(ENTRIES + key)
        if data is None:
            return None
        known = self._decoded.get(key)
        if known is not None and (known[0] is data or known[0] == data):
            return known[1]
        try:
            record = decode(data)
        except EntryFormatError as e:
            logger.warning(f"mockbox: dropping unreadable cache entry {key!r}: {e}")
            await self.backend.delete(ENTRIES + key)
            return None
        if len(self._decoded) >= _DECODED_MAX:
            self._decoded.clear()
        self._decoded[key] = (data, record)
        return record

    async def save(self, base: str, headers: Headers, entry: Entry) -> int:
        """Store `entry` for the request with these headers; returns the bytes written."""
        ttl = entry.freshness.retention
        key = base
        written = 0
        if entry.vary:
            record = VaryRecord(entry.vary).encode()
            await self.backend.set(ENTRIES + base, record, ttl)
            key = variant_key(base, entry.vary, headers)
            written += len(record)
        data = entry.encode(self.compress_min_bytes)
        await self.backend.set(ENTRIES + key, data, ttl)
        return written + len(data)

    async def forget(self, base: str) -> int:
        """Drop what is stored for one base key and all its variants."""
        return await self.backend.delete_matching(glob_escape(ENTRIES + base) + "*")

    async def purge(self, host: HostPattern | None = None, path_prefix: str | None = None) -> int:
        """Drop stored answers for a host (pattern) and/or a path prefix; both None: all."""
        if host is None:
            host_glob = "*|*|"
        else:
            name = ("*" if host.wildcard else "") + glob_escape(host.name)
            host_glob = f"{name}|{host.port if host.port else '*'}|"
        pattern = ENTRIES + host_glob + (glob_escape(path_prefix) if path_prefix else "") + "*"
        keep: Callable[[str], bool] | None = None
        if path_prefix:
            prefix = path_prefix

            def keep(key: str) -> bool:
                return key_target(key[len(ENTRIES) :])[1].startswith(prefix)

        return await self.backend.delete_matching(pattern, keep)

    async def usage(self) -> tuple[int, int]:
        """(keys, bytes) stored; keys count answers and the vary records of varying ones."""
        return await self.backend.usage(ENTRIES + "*")
