"""Admin API of the cache: `GET /api/cache` (stats) and `POST /api/cache/purge`."""

from __future__ import annotations

from typing import Any

from .admin import AdminServer, ApiHandler, Route
from .cache import ResponseCache
from .core.model import HostPattern
from .state import StateError

_PURGE_KEYS = {"host", "path_prefix", "all"}


def cache_routes(admin: AdminServer, cache: ResponseCache) -> list[Route]:
    kwargs = {"admin": admin, "cache": cache}
    return [
        (r"/api/cache", CacheStatsHandler, kwargs),
        (r"/api/cache/purge", CachePurgeHandler, kwargs),
    ]


class _CacheHandler(ApiHandler):
    cache: ResponseCache

    def initialize(self, admin: AdminServer, cache: ResponseCache) -> None:  # type: ignore[override]
        super().initialize(admin)
        self.cache = cache

    def unavailable(self, error: StateError) -> None:
        self.write_json({"error": "CACHE_UNAVAILABLE", "message": str(error)}, 503)


class CacheStatsHandler(_CacheHandler):
    async def get(self) -> None:
        try:
            self.write_json(await self.cache.stats())
        except StateError as e:
            self.unavailable(e)


class CachePurgeHandler(_CacheHandler):
    async def post(self) -> None:
        body = self.json_body()
        if body is None:
            return
        problem = _purge_problem(body)
        if problem:
            self.bad_request(problem)
            return
        try:
            purged = await self.cache.purge(body.get("host"), body.get("path_prefix"))
        except StateError as e:
            self.unavailable(e)
            return
        self.write_json({"purged": purged})


def _purge_problem(body: dict[str, Any]) -> str | None:
    unknown = set(body) - _PURGE_KEYS
    if unknown:
        return f"unknown field {sorted(unknown)[0]!r} (expected host, path_prefix or all)"
    host, prefix, everything = body.get("host"), body.get("path_prefix"), body.get("all")
    if host is not None and not _is_host_pattern(host):
        return "host must be a host name, like api.example.com, *.example.com or host:8080"
    if prefix is not None and (not isinstance(prefix, str) or not prefix.startswith("/")):
        return "path_prefix must be a path starting with /"
    if everything is not None and not isinstance(everything, bool):
        return "all must be true or false"
    if host is None and prefix is None and everything is not True:
        return "give host and/or path_prefix, or all: true to purge everything"
    if everything and (host is not None or prefix is not None):
        return "all: true purges everything; do not combine it with host or path_prefix"
    return None


def _is_host_pattern(value: Any) -> bool:
    if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
        return False
    try:
        HostPattern.parse(value)
    except ValueError:
        return False
    return True
