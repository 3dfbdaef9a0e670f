"""The cache's pure core: every storage and freshness rule of the issue, keys, entries, CDN
headers, and the memory backend with its LRU cap (no proxy needed)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from email.utils import formatdate
from typing import Any

import pytest

from mockbox.cachestore import CacheStore
from mockbox.coalesce import Coalescer
from mockbox.core.cacheentry import Entry, EntryFormatError, VaryRecord, decode
from mockbox.core.cachepolicy import (
    CachePolicyError,
    Defaults,
    Exchange,
    Freshness,
    MockCaching,
    Rule,
    StorePlan,
    base_key,
    invalidates,
    key_target,
    match_rule,
    parse_rules,
    plan_storage,
    request_bypass,
    variant_key,
    wants_refresh,
    with_cdn,
)
from mockbox.core.config import load_config
from mockbox.core.model import HostPattern
from mockbox.core.pathtemplate import PathTemplate
from mockbox.core.request import Headers
from mockbox.state import MemoryState, glob_escape

NOW = 1_700_000_000.0


def exchange(
    response: dict[str, str] | list[tuple[str, str]],
    request: dict[str, str] | None = None,
    status: int = 200,
    method: str = "GET",
    body_size: int = 10,
) -> Exchange:
    fields = list(response.items()) if isinstance(response, dict) else response
    return Exchange(
        method=method,
        url="http://api.test/items",
        request_headers=Headers((request or {}).items()),
        status=status,
        response_headers=fields,
        body_size=body_size,
        request_time=NOW - 0.5,
        response_time=NOW,
    )


def plan(
    response: dict[str, str] | list[tuple[str, str]],
    rule: Rule | None = None,
    defaults: Defaults = Defaults(),  # noqa: B008 - frozen
    **kw: object,
) -> StorePlan | str:
    return plan_storage(exchange(response, **kw), rule, defaults)  # type: ignore[arg-type]


def stored(result: StorePlan | str) -> StorePlan:
    assert isinstance(result, StorePlan), result
    return result


# --- what may be stored ------------------------------------------------------------------------


def test_no_store_and_private_are_never_stored() -> None:
    assert isinstance(plan({"Cache-Control": "no-store, max-age=60"}), str)
    assert isinstance(plan({"Cache-Control": "private, max-age=60"}), str)
    assert isinstance(
        plan({"Cache-Control": "max-age=60"}, request={"Cache-Control": "no-store"}), str
    )
    assert stored(plan({"Cache-Control": "max-age=60"})).freshness.lifetime == 60


def test_authorization_needs_an_explicit_permission() -> None:
    auth = {"Authorization": "Bearer secret"}
    assert isinstance(plan({"Cache-Control": "max-age=60"}, request=auth), str)
    for cc in ("public, max-age=60", "s-maxage=60", "must-revalidate, max-age=60"):
        result = stored(plan({"Cache-Control": cc}, request=auth))
        assert result.freshness.shared_auth
    assert not stored(plan({"Cache-Control": "max-age=60"})).freshness.shared_auth


def test_vary() -> None:
    assert isinstance(plan({"Cache-Control": "max-age=60", "Vary": "*"}), str)
    assert isinstance(plan({"Cache-Control": "max-age=60", "Vary": "Accept, *"}), str)
    result = stored(plan({"Cache-Control": "max-age=60", "Vary": "Accept, Accept-Language"}))
    assert result.vary == ("accept", "accept-language")


def test_status_codes_and_methods() -> None:
    for status in (206, 304):
        assert isinstance(plan({"Cache-Control": "max-age=60"}, status=status), str)
    assert stored(plan({"Cache-Control": "max-age=60"}, status=404)).freshness.lifetime == 60
    assert isinstance(plan({"Cache-Control": "max-age=60"}, method="POST"), str)
    assert stored(plan({"Cache-Control": "max-age=60"}, method="HEAD"))


def test_set_cookie_only_when_explicitly_shared() -> None:
    assert isinstance(plan({"Cache-Control": "max-age=60", "Set-Cookie": "s=1"}), str)
    assert stored(plan({"Cache-Control": "public, max-age=60", "Set-Cookie": "s=1"}))


def test_no_cache_answers_are_not_stored_but_field_lists_only_drop_the_field() -> None:
    assert isinstance(plan({"Cache-Control": "no-cache, max-age=60"}), str)
    result = stored(plan({"Cache-Control": 'max-age=60, no-cache="X-Secret"', "X-Secret": "s"}))
    assert "x-secret" not in {k.lower() for k, _ in result.headers}


def test_too_large_bodies_are_not_stored() -> None:
    small = Defaults(max_body_bytes=100)
    assert isinstance(plan({"Cache-Control": "max-age=60"}, defaults=small, body_size=101), str)
    assert stored(plan({"Cache-Control": "max-age=60"}, defaults=small, body_size=100))


# --- for how long ---------------------------------------------------------------------------------


def test_freshness_lifetime_precedence() -> None:
    date = formatdate(NOW, usegmt=True)
    expires = formatdate(NOW + 120, usegmt=True)
    both = {"Cache-Control": "max-age=60, s-maxage=90", "Date": date}
    assert stored(plan(both)).freshness.lifetime == 90  # a shared cache prefers s-maxage
    with_expires = {"Cache-Control": "max-age=60", "Expires": expires, "Date": date}
    assert stored(plan(with_expires)).freshness.lifetime == 60
    assert stored(plan({"Expires": expires, "Date": date})).freshness.lifetime == 120
    assert isinstance(plan({"Expires": "not a date", "Date": date}), str)  # already expired


def test_rules_apply_only_when_the_origin_says_nothing() -> None:
    rule = Rule(host="api.test", path="/items*", ttl=30)
    assert isinstance(plan({"Content-Type": "application/json"}), str)
    assert stored(plan({"Content-Type": "application/json"}, rule=rule)).freshness.lifetime == 30
    assert isinstance(plan({"Cache-Control": "max-age=0"}, rule=rule), str)
    assert stored(plan({"Cache-Control": "max-age=5"}, rule=rule)).freshness.lifetime == 5
    default = Defaults(ttl=7)
    assert stored(plan({}, defaults=default)).freshness.lifetime == 7


def test_age_counts_the_origins_age_and_the_transit() -> None:
    result = stored(plan({"Cache-Control": "max-age=60", "Age": "20"}))
    assert result.freshness.initial_age == pytest.approx(20.5)  # Age + response delay
    assert result.freshness.age(NOW + 10) == pytest.approx(30.5)
    assert "age" not in {k.lower() for k, _ in result.headers}  # a hit sends its own
    old_date = {"Cache-Control": "max-age=60", "Date": formatdate(NOW - 45, usegmt=True)}
    assert stored(plan(old_date)).freshness.initial_age == pytest.approx(45)
    assert isinstance(plan({"Cache-Control": "max-age=60", "Age": "61"}), str)


def test_stale_windows_and_must_revalidate() -> None:
    cc = "max-age=10, stale-while-revalidate=20, stale-if-error=100"
    f = stored(plan({"Cache-Control": cc})).freshness
    start = f.stored_at - f.initial_age
    assert f.state(start + 9) == "fresh"
    assert f.state(start + 11) == "stale-while-revalidate"
    assert f.state(start + 31) == "stale-if-error"
    assert f.state(start + 111) == "expired"
    assert f.retention == pytest.approx(110 - f.initial_age)
    strict = stored(plan({"Cache-Control": cc + ", must-revalidate"})).freshness
    assert strict.stale_while_revalidate == strict.stale_if_error == 0
    windows = Rule(host=None, path="*", ttl=5, stale_if_error=50)
    assert stored(plan({}, rule=windows)).freshness.stale_if_error == 50
    # a stale-if-error window alone is worth storing, even when already stale
    assert stored(plan({"Cache-Control": "max-age=0, stale-if-error=60"}))


def test_stored_headers_drop_hop_by_hop_and_fix_the_length() -> None:
    result = stored(
        plan(
            [
                ("Cache-Control", "max-age=60"),
                ("Transfer-Encoding", "chunked"),
                ("Connection", "keep-alive"),
            ],
            body_size=42,
        )
    )
    names = [k.lower() for k, _ in result.headers]
    assert "transfer-encoding" not in names and "connection" not in names
    assert ("Content-Length", "42") in result.headers
    assert "date" in names  # added when the origin sent none
    # repeated fields stay apart (Set-Cookie must never be joined)
    public = stored(
        plan([("Cache-Control", "public, max-age=1"), ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    )
    assert [v for k, v in public.headers if k == "Set-Cookie"] == ["a=1", "b=2"]


# --- requests -------------------------------------------------------------------------------------


def test_requests_that_bypass_or_refresh() -> None:
    assert request_bypass("POST", Headers()) == "method"
    assert request_bypass("GET", Headers([("Range", "bytes=0-1")])) == "range"
    assert request_bypass("GET", Headers([("Cache-Control", "no-store")])) == "no-store"
    assert request_bypass("HEAD", Headers()) is None
    assert wants_refresh(Headers([("Cache-Control", "no-cache")]))
    assert wants_refresh(Headers([("Cache-Control", "max-age=0")]))
    assert wants_refresh(Headers([("Pragma", "no-cache")]))
    assert not wants_refresh(Headers([("Cache-Control", "max-age=10")]))
    assert invalidates("POST", 201) and invalidates("DELETE", 204)
    assert not invalidates("POST", 500) and not invalidates("GET", 200)


def test_keys() -> None:
    key = base_key("GET", "https", "API.test", 443, "/items/1", "a=1")
    others = {
        base_key("HEAD", "https", "api.test", 443, "/items/1", "a=1"),
        base_key("GET", "http", "api.test", 443, "/items/1", "a=1"),
        base_key("GET", "https", "other.test", 443, "/items/1", "a=1"),
        base_key("GET", "https", "api.test", 8443, "/items/1", "a=1"),
        base_key("GET", "https", "api.test", 443, "/items/2", "a=1"),
        base_key("GET", "https", "api.test", 443, "/items/1", "a=2"),
        base_key("GET", "https", "api.test", 443, "/items/1", ""),
    }
    assert key not in others and len(others) == 7
    assert key_target(key) == ("api.test", "/items/1")
    vary = ("accept",)
    json_a = variant_key(key, vary, Headers([("Accept", "application/json")]))
    json_b = variant_key(key, vary, Headers([("accept", " application/json ")]))
    xml = variant_key(key, vary, Headers([("Accept", "text/xml")]))
    missing = variant_key(key, vary, Headers())
    assert json_a == json_b and len({json_a, xml, missing}) == 3
    assert key_target(json_a) == ("api.test", "/items/1")


def test_rules_parse_and_match() -> None:
    rules = parse_rules(
        [
            {"host": "*.example.com", "path": "/v1/*", "ttl": 60, "cdn_ttl": 300},
            {"path": "/health", "ttl": 1},
        ]
    )
    assert match_rule(rules, "API.example.com", "/v1/items") is rules[0]
    assert match_rule(rules, "example.com", "/v1/items") is None
    assert match_rule(rules, "other.test", "/health") is rules[1]
    for bad, message in (
        ({"path": "/x", "ttl": -1}, "ttl"),
        ({"path": "x"}, "path"),
        ({"path": "/x", "tll": 5}, "unknown key 'tll'"),
        ({"host": 5}, "host"),
    ):
        with pytest.raises(CachePolicyError, match=message):
            parse_rules([bad])
    with pytest.raises(CachePolicyError, match="list"):
        parse_rules({"path": "/x"})


def test_cache_configuration_from_the_environment() -> None:
    config = load_config(None, {"MOCKBOX_CACHE_ENABLED": "false"})
    assert config.get("cache", "enabled") is False
    assert load_config(None, {}).get("cache", "rules") == []


def test_literal_prefix_of_mock_paths() -> None:
    assert PathTemplate.parse("/users/{id}").literal_prefix == "/users/"
    assert PathTemplate.parse("/files/{rest*}").literal_prefix == "/files/"
    assert PathTemplate.parse("/v1/books/").literal_prefix == "/v1/books"
    assert PathTemplate.parse("/").literal_prefix == "/"


# --- CDN headers --------------------------------------------------------------------------------


def test_cdn_headers() -> None:
    headers = with_cdn(
        [("Cache-Control", "max-age=60, s-maxage=5"), ("X", "1")],
        300,
        ["mockbox", "host:api.test"],
    )
    assert ("Cache-Control", "max-age=60, s-maxage=300") in headers
    assert ("Surrogate-Key", "mockbox host:api.test") in headers
    assert ("Cache-Tag", "mockbox,host:api.test") in headers
    caching = MockCaching.parse({"ttl": 10, "cdn_ttl": 600}, default_cdn_ttl=300)
    assert caching is not None
    out = dict(caching.headers([], "API.test", "books.yaml#GET /v1/books"))
    assert out["Cache-Control"] == "public, max-age=10, s-maxage=600"
    assert out["Surrogate-Key"] == "mockbox host:api.test mock:books.yaml#GET%20/v1/books"
    never = MockCaching.parse(False, 300)
    assert never is not None and dict(never.headers([], "h", "m"))["Cache-Control"] == "no-store"
    default = MockCaching.parse(True, 300)
    assert default is not None
    assert dict(default.headers([], "h", "m"))["Cache-Control"] == "public, max-age=0, s-maxage=300"
    own = MockCaching.parse({"cdn_ttl": 30}, 300)
    assert own is not None
    kept = dict(own.headers([("Cache-Control", "max-age=60")], "h", "m"))
    assert kept["Cache-Control"] == "max-age=60, s-maxage=30"
    assert MockCaching.parse(None, 300) is None


# --- entries --------------------------------------------------------------------------------------


def _entry(body: bytes, headers: list[tuple[str, str]] | None = None) -> Entry:
    return Entry(
        200, "OK", headers or [("Content-Type", "text/plain")], body, Freshness(NOW, 1.0, 60.0)
    )


def test_entries_round_trip_compressed_when_large() -> None:
    big = b'{"items": [' + b'{"name": "x"},' * 2000 + b"]}"
    data = _entry(big).encode(compress_min_bytes=1024)
    assert len(data) < len(big) / 5
    back = decode(data)
    assert isinstance(back, Entry) and back.body == big and back.freshness.initial_age == 1.0
    encoded = _entry(big, [("Content-Encoding", "identity")]).encode(compress_min_bytes=1024)
    assert len(encoded) > len(big)  # an encoded body is stored as it came
    assert decode(VaryRecord(("accept",)).encode()) == VaryRecord(("accept",))
    for junk in (b"garbage", data[:20], b"MBC1E\x00\x00\x00\x05{}xyz"):
        with pytest.raises(EntryFormatError):
            decode(junk)


# --- the memory backend, the store, single flight ---------------------------------------------


def run(coro: Coroutine[Any, Any, None]) -> None:
    """Run `coro` on a fresh event loop in its own thread: the session's Playwright keeps a
    loop running in the main thread once a browser test ran, so pytest-asyncio cannot."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


def test_memory_backend_ttl_lru_and_patterns() -> None:
    run(_memory_backend_ttl_lru_and_patterns())


async def _memory_backend_ttl_lru_and_patterns() -> None:
    state = MemoryState(max_bytes=2000)
    await state.set("pinned", b"x" * 100)  # no TTL: never evicted
    await state.set("short", b"v", ttl=0.05)
    for i in range(10):
        await state.set(f"c:{i}", b"y" * 300, ttl=60)
        await state.get("c:0")  # keep c:0 recently used
    assert state.bytes <= 2000
    assert await state.get("pinned") == b"x" * 100
    assert await state.get("c:0") is not None and await state.get("c:1") is None
    assert await state.get("c:9") is not None
    await asyncio.sleep(0.06)
    assert await state.get("short") is None
    await state.set("a*b|1", b"1", ttl=60)
    await state.set("a-b|2", b"2", ttl=60)
    assert [k async for k in state.scan(glob_escape("a*b") + "|*")] == ["a*b|1"]
    assert await state.delete_matching("a*", keep=lambda k: k.endswith("2")) == 1
    lock, other = state.lock("l", 0.05), state.lock("l", 0.05)
    assert await lock.acquire() and not await other.acquire()
    await other.release()  # not the holder: nothing happens
    assert await lock.locked()
    await asyncio.sleep(0.06)
    assert await other.acquire()  # the first one expired


def test_store_purges_by_host_and_path_prefix() -> None:
    run(_store_purges_by_host_and_path_prefix())


async def _store_purges_by_host_and_path_prefix() -> None:
    state = MemoryState(max_bytes=1 << 20)
    store = CacheStore(lambda: state, compress_min_bytes=1024)
    targets = [
        ("api.test", "/v1/items/1"),
        ("api.test", "/v1/users/1"),
        ("api.test", "/v2/items/1"),
        ("eu.example.com", "/v1/items/1"),
    ]
    for host, path in targets:
        await store.save(base_key("GET", "http", host, 80, path, ""), Headers(), _entry(b"x"))
    varying = Entry(200, "OK", [], b"v", Freshness(time.time(), 0, 60), vary=("accept",))
    await store.save(base_key("GET", "http", "api.test", 80, "/v1/items/2", ""), Headers(), varying)
    assert (await store.usage())[0] == 6  # 5 answers and one vary record
    assert await store.purge(HostPattern.parse("api.test"), "/v1/items") == 3
    assert await store.purge(HostPattern.parse("*.example.com"), None) == 1
    assert await store.purge(None, "/v2/") == 1
    assert (await store.usage())[0] == 1
    assert await store.purge() == 1


def test_single_flight_within_a_process() -> None:
    run(_single_flight_within_a_process())


async def _single_flight_within_a_process() -> None:
    state = MemoryState(max_bytes=1 << 20)
    waits: list[int] = []
    coalescer = Coalescer(lambda: state, "lock:", 5.0, lambda: waits.append(1))
    leads = []

    async def request() -> None:
        lead = await coalescer.lead("k")
        if lead is not None:
            leads.append(lead)
            await asyncio.sleep(0.05)
            await lead.release()

    await asyncio.gather(*(request() for _ in range(20)))
    assert len(leads) == 1 and len(waits) == 19
    assert await coalescer.try_lead("k") is not None  # released: the next one leads again
    assert await coalescer.try_lead("k") is None
