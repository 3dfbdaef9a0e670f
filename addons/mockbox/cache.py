"""The ResponseCache addon: a shared HTTP cache for answers that are slow or costly to make.

It runs after the mocks. A request no mock answered is looked up: a fresh stored answer is
sent at once (HIT, with Age), a miss goes on to the upstream (or later the AI) and the
response hook stores what may be stored. Concurrent misses for one key make one upstream
call. Every answer that passed through here carries `X-Cache-Status`.

Stale answers (RFC 5861) are refreshed with mitmproxy's own replay machinery
(`ReplayHandler`, what `replay.client` uses), so a refresh takes the same road as any
upstream request (upstream proxy modes, TLS options, addons) without a client waiting on it:
- within `stale-while-revalidate`: the client gets STALE at once while one background
  refresh runs;
- within `stale-if-error` only: the refresh runs first; if the upstream fails (connection
  error, timeout, 500/502/503/504) the client gets STALE, otherwise the fresh answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from mitmproxy import command, connection, ctx, exceptions, http
from mitmproxy.addons.clientplayback import ReplayHandler
from prometheus_client import Counter, Gauge

from . import bodycap
from .cachestore import LOCKS, CacheStore
from .coalesce import Coalescer, Lead
from .core.cacheentry import Entry
from .core.cachepolicy import (
    CachePolicyError,
    Defaults,
    Exchange,
    Rule,
    StorePlan,
    base_key,
    invalidates,
    match_rule,
    parse_rules,
    plan_storage,
    request_bypass,
    surrogate_tags,
    wants_refresh,
    with_cdn,
)
from .core.library import ReloadReport
from .core.model import HostPattern
from .core.redaction import redact_url
from .core.request import Headers
from .flows import BACKGROUND, RECORDING, SOURCE, make_headers, request_view
from .metrics import Metrics
from .mocks import MockServer
from .settings import Settings
from .state import MemoryState, SharedState, StateError

logger = logging.getLogger(__name__)

# Where an answer must come from to be stored (flow.metadata[SOURCE]; unset means upstream).
CACHEABLE_SOURCES = frozenset({"upstream", "ai"})
_STATE = "mockbox.cache"  # flow.metadata: what the cache layer did with this flow
_ORIGIN_ERRORS = frozenset({500, 502, 503, 504})  # RFC 5861 section 4
# A refresh must get a full answer, whatever validators the client sent.
_CONDITIONAL = ("if-none-match", "if-modified-since", "if-match", "if-unmodified-since", "if-range")

_NUMBERS = (
    "default_ttl",
    "stale_while_revalidate",
    "stale_if_error",
    "max_body_bytes",
    "compress_min_bytes",
    "lock_timeout",
    "refresh_timeout",
)
_POSITIVE = frozenset({"lock_timeout", "refresh_timeout"})
_WARN_EVERY = 30.0  # seconds between warnings that the state backend fails

HIT, MISS, STALE, BYPASS = "HIT", "MISS", "STALE", "BYPASS"
_REFRESH = "REFRESH"  # a flow the cache made itself; nobody sees its X-Cache-Status


@dataclass(slots=True)
class _FlowState:
    status: str
    base: str | None = None  # the cache key without the Vary'd part
    rule: Rule | None = None
    may_store: bool = True
    lead: Lead | None = None
    invalidate: tuple[str, ...] = ()  # keys a successful unsafe request makes stale


class CacheMetrics:
    def __init__(self, metrics: Metrics, state: SharedState) -> None:
        registry = metrics.registry
        self.registry = registry
        self.requests = Counter(
            "mockbox_cache_requests_total",
            "Answers that passed through the cache layer, by X-Cache-Status.",
            ["status"],
            registry=registry,
        )
        self.by_status = {s: self.requests.labels(s.lower()) for s in (HIT, MISS, STALE, BYPASS)}
        self.stored = Counter(
            "mockbox_cache_stored_total", "Answers stored in the cache.", registry=registry
        )
        self.stored_bytes = Counter(
            "mockbox_cache_stored_bytes_total",
            "Bytes written to the cache (after compression).",
            registry=registry,
        )
        self.coalesced = Counter(
            "mockbox_cache_coalesced_waits_total",
            "Requests that waited for another request's upstream call instead of making one.",
            registry=registry,
        )
        self.refreshes = Counter(
            "mockbox_cache_refreshes_total",
            "Refreshes of stale answers, by result.",
            ["result"],
            registry=registry,
        )
        self.purged = Counter(
            "mockbox_cache_purged_total", "Keys removed by purges.", registry=registry
        )
        self.too_large = Counter(
            "mockbox_cache_too_large_total",
            "Upstream answers over cache.max_body_bytes: streamed to the client, not stored.",
            registry=registry,
        )
        self.errors = Counter(
            "mockbox_cache_backend_errors_total",
            "Cache operations the state backend failed (the request went on uncached).",
            registry=registry,
        )
        memory = Gauge(
            "mockbox_cache_memory_bytes",
            "Bytes held by the in-process memory backend (0 on Redis).",
            registry=registry,
        )
        memory.set_function(
            lambda: float(state.backend.bytes) if isinstance(state.backend, MemoryState) else 0.0
        )

    def value(self, name: str, **labels: str) -> int:
        """A counter's current value, for the stats API."""
        return int(self.registry.get_sample_value(name, labels) or 0)


class ResponseCache:
    def __init__(
        self, settings: Settings, metrics: Metrics, state: SharedState, mocks: MockServer
    ) -> None:
        self.settings, self.state = settings, state
        self.metrics = CacheMetrics(metrics, state)
        self.enabled = True
        self.defaults = Defaults()
        self.rules: tuple[Rule, ...] = ()
        self.refresh_timeout = 30.0
        self.store = CacheStore(lambda: state.backend, compress_min_bytes=1024)
        self.coalescer = Coalescer(lambda: state.backend, LOCKS, 10.0, self.metrics.coalesced.inc)
        self._tasks: set[asyncio.Task[None]] = set()
        self._warned_at = -_WARN_EVERY
        mocks.reload_listeners.append(self._mocks_changed)

    def configure(self, updated: set[str]) -> None:
        if "mockbox_config" not in updated:
            return
        config = self.settings.config.get("cache")
        try:
            rules = parse_rules(config["rules"])
        except CachePolicyError as e:
            raise exceptions.OptionsError(f"configuration: {e}") from e
        for name in _NUMBERS:
            if config[name] < 0 or (name in _POSITIVE and config[name] == 0):
                least = "greater than 0" if name in _POSITIVE else "0 or more"
                raise exceptions.OptionsError(f"configuration: cache.{name} must be {least}")
        self.enabled = bool(config["enabled"])
        self.rules = rules
        self.defaults = Defaults(
            ttl=int(config["default_ttl"]),
            stale_while_revalidate=int(config["stale_while_revalidate"]),
            stale_if_error=int(config["stale_if_error"]),
            max_body_bytes=int(config["max_body_bytes"]),
        )
        self.store.compress_min_bytes = int(config["compress_min_bytes"])
        self.coalescer.timeout = float(config["lock_timeout"])
        self.refresh_timeout = float(config["refresh_timeout"])

    async def done(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    # --- request: answer from the cache, or let the request go on -----------------------------

    async def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live or not self.enabled:
            return
        if _STATE in flow.metadata or flow.metadata.get(RECORDING):  # own refresh; recording
            return
        view = request_view(flow)
        req = flow.request
        method = req.method.upper()
        query = req.path.partition("?")[2]
        if request_bypass(method, view.headers) is not None:
            keys = (
                base_key(m, req.scheme, view.host, req.port, view.path, query)
                for m in ("GET", "HEAD")
            )
            flow.metadata[_STATE] = _FlowState(BYPASS, may_store=False, invalidate=tuple(keys))
            return
        st = flow.metadata[_STATE] = _FlowState(
            MISS,
            base_key(method, req.scheme, view.host, req.port, view.path, query),
            match_rule(self.rules, view.host, view.path),
        )
        if wants_refresh(view.headers):
            return
        assert st.base is not None
        entry = await self._lookup(st, view.headers)
        if st.status == BYPASS:
            return
        if entry is not None and self._serve_stored(flow, st, entry, waited=False):
            return
        lead = await self.coalescer.lead(st.base)
        if lead is None:  # someone else fetched it meanwhile
            entry = await self._lookup(st, view.headers)
            if entry is not None and self._serve_stored(flow, st, entry, waited=True):
                return
        elif entry is not None and entry.freshness.state(time.time()) == "stale-if-error":
            await self._refresh_or_stale(flow, st, entry, lead)  # falls back on the stale one
            return
        st.lead = lead

    async def _lookup(self, st: _FlowState, headers: Headers) -> Entry | None:
        """The stored answer that may serve this request. When the backend fails: None, and
        the request goes on uncached (BYPASS)."""
        assert st.base is not None
        if st.status == BYPASS:
            return None
        try:
            entry = await self.store.lookup(st.base, headers)
        except StateError as e:
            self._backend_failed(st, e)
            return None
        if entry is not None and "authorization" in headers and not entry.freshness.shared_auth:
            return None  # only answers marked for shared use may answer credentials
        return entry

    def _serve_stored(
        self, flow: http.HTTPFlow, st: _FlowState, entry: Entry, waited: bool
    ) -> bool:
        now = time.time()
        state = entry.freshness.state(now)
        if state == "fresh":
            self._answer(flow, st, entry, HIT, now)
        elif state == "stale-while-revalidate":
            self._answer(flow, st, entry, STALE, now)
            if not waited:
                self._start(self._refresh_in_background(flow.client_conn, flow.request.copy(), st))
        elif state == "stale-if-error" and waited:  # whoever led just failed to refresh it
            self._answer(flow, st, entry, STALE, now)
        else:
            return False
        return True

    def _answer(
        self, flow: http.HTTPFlow, st: _FlowState, entry: Entry, status: str, now: float
    ) -> None:
        age = b"%d" % entry.freshness.age(now)
        flow.response = http.Response(
            b"HTTP/1.1",
            entry.status,
            entry.reason.encode("ascii", "replace"),
            http.Headers(
                [*entry.wire_headers, (b"Age", age), (b"X-Cache-Status", status.encode())]
            ),
            entry.body,
            None,
            now,
            now,
        )
        flow.metadata[SOURCE] = "cache"
        st.status = status
        st.may_store = False

    # --- refreshing stale answers ---------------------------------------------------------------

    async def _refresh_in_background(
        self, client: connection.Client, request: http.Request, st: _FlowState
    ) -> None:
        assert st.base is not None
        lead = await self.coalescer.try_lead(st.base)
        if lead is None:  # a refresh of this key already runs (here or in another instance)
            return
        try:
            await self._refresh(client, request, st)
        finally:
            await lead.release()

    async def _refresh_or_stale(
        self, flow: http.HTTPFlow, st: _FlowState, stale: Entry, lead: Lead
    ) -> None:
        try:
            refreshed = await self._refresh(flow.client_conn, flow.request.copy(), st)
        finally:
            await lead.release()
        if refreshed is None:
            self._answer(flow, st, stale, STALE, time.time())
            return
        flow.response = refreshed.response
        if SOURCE in refreshed.metadata:
            flow.metadata[SOURCE] = refreshed.metadata[SOURCE]
        st.may_store = False  # the refresh stored it

    async def _refresh(
        self, client: connection.Client, request: http.Request, st: _FlowState
    ) -> http.HTTPFlow | None:
        """Replay `request` (a copy) to the upstream; the response hook stores the answer.
        None when the upstream failed (no answer, or 500/502/503/504)."""
        refresh = http.HTTPFlow(client, connection.Server(address=None))
        refresh.request = request
        for name in _CONDITIONAL:
            refresh.request.headers.pop(name, None)
        refresh.is_replay = "request"
        refresh.metadata[BACKGROUND] = True
        refresh.metadata[_STATE] = _FlowState(_REFRESH, st.base, st.rule)
        try:
            await asyncio.wait_for(
                ReplayHandler(refresh, ctx.options).replay(), self.refresh_timeout
            )
        except TimeoutError:
            if refresh.killable:
                refresh.kill()
        except Exception:  # a failed refresh must never take the proxy down
            logger.exception(f"mockbox: refreshing {redact_url(request.pretty_url)} failed")
        response = refresh.response
        ok = (
            response is not None
            and refresh.error is None
            and response.status_code not in _ORIGIN_ERRORS
            # Too large to hold: streamed to no one and not kept, so not a refresh at all.
            and response.raw_content is not None
        )
        self.metrics.refreshes.labels("ok" if ok else "error").inc()
        return refresh if ok else None

    def _start(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- response: store what may be stored ----------------------------------------------------

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        """An upstream answer this layer would store is held whole only up to max_body_bytes:
        a larger one, or one of unknown length, streams to the client (bodycap). Its headers
        leave now, so what the response hook would add for the client is added here."""
        st: _FlowState | None = flow.metadata.get(_STATE)
        response = flow.response
        if st is None or response is None or not st.may_store or SOURCE in flow.metadata:
            return
        limit = self.defaults.max_body_bytes
        if bodycap.held_whole(flow, limit) or isinstance(self._plan(flow, st, response, 0), str):
            return  # small, or never stored whatever its size: it passes as any other answer
        bodycap.stream(flow, limit)
        if st.status != _REFRESH:
            response.headers["X-Cache-Status"] = st.status
        if st.rule is not None and st.rule.cdn_ttl is not None:  # as _store would add them
            tags = surrogate_tags(request_view(flow).host)
            response.headers = make_headers(
                with_cdn(response.headers.items(multi=True), st.rule.cdn_ttl, tags)
            )

    async def response(self, flow: http.HTTPFlow) -> None:
        st: _FlowState | None = flow.metadata.get(_STATE)
        response = flow.response
        if st is None or response is None:
            return
        over = bodycap.finish(flow)
        if over is not None:
            st.may_store = False
            self.metrics.too_large.inc()
            url = redact_url(flow.request.pretty_url)
            logger.info(
                f"mockbox: not caching {url}: its body is {over.size} bytes, "
                f"over cache.max_body_bytes ({over.limit}); streamed to the client"
            )
        try:
            if st.invalidate and invalidates(flow.request.method.upper(), response.status_code):
                await self._forget(st.invalidate)
            elif st.may_store and flow.metadata.get(SOURCE, "upstream") in CACHEABLE_SOURCES:
                await self._store(flow, st, response)
        finally:
            await self._release(st)
        if st.status != _REFRESH:
            self.metrics.by_status[st.status].inc()
            if st.status not in (HIT, STALE):  # those were answered with it
                response.headers["X-Cache-Status"] = st.status

    async def error(self, flow: http.HTTPFlow) -> None:
        st: _FlowState | None = flow.metadata.get(_STATE)
        if st is not None:
            await self._release(st)

    @staticmethod
    async def _release(st: _FlowState) -> None:
        lead, st.lead = st.lead, None
        if lead is not None:
            await lead.release()

    def _plan(
        self, flow: http.HTTPFlow, st: _FlowState, response: http.Response, body_size: int
    ) -> StorePlan | str:
        request = flow.request
        return plan_storage(
            Exchange(
                method=request.method.upper(),
                url=request.pretty_url,
                request_headers=request_view(flow).headers,
                status=response.status_code,
                response_headers=list(response.headers.items(multi=True)),
                body_size=body_size,
                request_time=request.timestamp_start,
                response_time=response.timestamp_end or time.time(),
            ),
            st.rule,
            self.defaults,
        )

    async def _store(self, flow: http.HTTPFlow, st: _FlowState, response: http.Response) -> None:
        body = response.raw_content
        if body is None or st.base is None:  # streamed: never held whole
            return
        request = flow.request
        view = request_view(flow)
        plan = self._plan(flow, st, response, len(body))
        if isinstance(plan, str):
            logger.debug(f"mockbox: not caching {redact_url(request.pretty_url)}: {plan}")
            return
        headers = plan.headers
        cdn_ttl = st.rule.cdn_ttl if st.rule else None
        if cdn_ttl is not None:
            tags = surrogate_tags(view.host)
            headers = with_cdn(headers, cdn_ttl, tags)
            response.headers = make_headers(
                with_cdn(response.headers.items(multi=True), cdn_ttl, tags)
            )
        entry = Entry(
            response.status_code, response.reason, headers, body, plan.freshness, plan.vary
        )
        try:
            written = await self.store.save(st.base, view.headers, entry)
        except StateError as e:
            self._backend_failed(st, e)
            return
        self.metrics.stored.inc()
        self.metrics.stored_bytes.inc(written)

    async def _forget(self, bases: tuple[str, ...]) -> None:
        try:
            for base in bases:
                self.metrics.purged.inc(await self.store.forget(base))
        except StateError as e:
            self.metrics.errors.inc()
            logger.warning(f"mockbox: cache invalidation failed: {e}")

    def _backend_failed(self, st: _FlowState, error: StateError) -> None:
        self.metrics.errors.inc()
        now = time.monotonic()
        if now - self._warned_at > _WARN_EVERY:  # every request fails alike: say it now and then
            self._warned_at = now
            logger.warning(f"mockbox: cache unavailable, answering uncached: {error}")
        st.status = BYPASS
        st.may_store = False

    # --- invalidation and stats -------------------------------------------------------------------

    def _mocks_changed(self, report: ReloadReport) -> None:
        """Purge what the added, edited or removed mocks could answer from now on."""
        targets = {(mock.host, mock.path.literal_prefix) for mock in report.affected}
        if targets and self.enabled:
            self._start(self._purge_targets(targets))

    async def _purge_targets(self, targets: set[tuple[HostPattern | None, str]]) -> None:
        purged = 0
        try:
            for host, prefix in sorted(targets, key=str):
                purged += await self.store.purge(host, prefix)
                # A reloaded file of 20,000 mocks is as many purges; the in-memory store never
                # waits, so without this they ran as one 4 s step that held every client.
                await asyncio.sleep(0)
        except StateError as e:
            self.metrics.errors.inc()
            logger.warning(f"mockbox: purging the cache after a mock reload failed: {e}")
        self.metrics.purged.inc(purged)
        if purged:
            logger.info(f"mockbox: mocks changed; purged {purged} cached answers")

    async def purge(self, host: str | None = None, path_prefix: str | None = None) -> int:
        """Purge by host (`api.example.com`, `*.example.com`, `host:port`) and/or path prefix;
        neither: everything."""
        purged = await self.store.purge(HostPattern.parse(host) if host else None, path_prefix)
        self.metrics.purged.inc(purged)
        logger.info(
            f"mockbox: purged {purged} cached answers (host={host or '*'}, "
            f"path prefix={path_prefix or '/'})"
        )
        return purged

    @command.command("mockbox.cache.purge")
    def purge_command(self, host: str = "", path_prefix: str = "") -> None:
        """Purge cached answers by host and/or path prefix (both empty: all)."""
        self._start(self._purge_logged(host or None, path_prefix or None))

    async def _purge_logged(self, host: str | None, path_prefix: str | None) -> None:
        try:
            await self.purge(host, path_prefix)
        except (StateError, ValueError) as e:
            logger.warning(f"mockbox: cache purge failed: {e}")

    async def stats(self) -> dict[str, Any]:
        """Entries and bytes in the (shared) store; counters of this instance since it started."""
        entries, size = await self.store.usage()
        counts = {
            status: self.metrics.value("mockbox_cache_requests_total", status=status.lower())
            for status in (HIT, STALE, MISS, BYPASS)
        }
        hits, stale, misses = counts[HIT], counts[STALE], counts[MISS]
        served = hits + stale + misses
        backend = self.state.backend
        return {
            "enabled": self.enabled,
            "backend": backend.name,
            "entries": entries,
            "bytes": size,
            "memory_max_bytes": backend.max_bytes if isinstance(backend, MemoryState) else None,
            "hits": hits,
            "stale": stale,
            "misses": misses,
            "bypasses": counts[BYPASS],
            "hit_ratio": round((hits + stale) / served, 4) if served else None,
            "coalesced_waits": self.metrics.value("mockbox_cache_coalesced_waits_total"),
        }
