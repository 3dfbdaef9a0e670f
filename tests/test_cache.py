"""The response cache through real MockBox processes (`--unmatched upstream`), a real
upstream server that counts its hits, and a private redis-server. Every test that does not
need two processes runs on both backends: memory and Redis."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from .conftest import (
    BIN,
    MockBox,
    MockBoxFactory,
    Upstream,
    clean_env,
    free_port,
    wait_until,
    write_mocks,
)

JSON = {"Content-Type": "application/json"}


@pytest.fixture(params=["memory", "redis"])
def backend(request: pytest.FixtureRequest) -> list[str]:
    """Command-line arguments selecting the state backend."""
    if request.param == "memory":
        return []
    return ["--redis", request.getfixturevalue("redis_url")]


def start(
    mockbox: MockBoxFactory,
    tmp_path: Path,
    backend: list[str],
    config: str | None = None,
    env: dict[str, str] | None = None,
) -> MockBox:
    mocks = tmp_path / "mocks"
    mocks.mkdir(exist_ok=True)
    args = ["--unmatched", "upstream", *backend]
    if config is not None:
        path = tmp_path / "mockbox.yaml"
        path.write_text(config)
        args += ["--config", str(path)]
    return mockbox(mocks, *args, env=env)


def status(r: requests.Response) -> str:
    return r.headers.get("X-Cache-Status", "-")


def test_cacheable_answer_is_fetched_once_then_hit_with_growing_age(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path, backend: list[str]
) -> None:
    upstream.routes["/books"] = (200, {"Cache-Control": "max-age=60", **JSON}, b'{"n": 1}')
    box = start(mockbox, tmp_path, backend)
    url = f"{upstream.url}/books"
    first = box.get(url)
    assert (status(first), first.headers["X-MockBox-Source"]) == ("MISS", "upstream")
    second = box.get(url)
    assert (status(second), second.headers["X-MockBox-Source"]) == ("HIT", "cache")
    assert second.json() == {"n": 1} and second.headers["Content-Type"] == "application/json"
    assert second.headers["Cache-Control"] == "max-age=60"
    time.sleep(1.1)
    third = box.get(url)
    assert status(third) == "HIT"
    assert int(third.headers["Age"]) >= int(second.headers["Age"]) + 1
    assert upstream.count("/books") == 1
    assert box.health()["redis"] == ("ok" if backend else "disabled")
    metrics = box.metrics()
    assert 'mockbox_cache_requests_total{status="hit"} 2.0' in metrics
    assert 'mockbox_cache_requests_total{status="miss"} 1.0' in metrics
    assert 'mockbox_requests_total{source="cache"} 2.0' in metrics


def test_what_must_not_be_stored_or_served(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path, backend: list[str]
) -> None:
    for path, cc in (
        ("/no-store", "no-store, max-age=60"),
        ("/private", "private, max-age=60"),
        ("/silent", None),  # no freshness and no rule: not stored
    ):
        upstream.routes[path] = (200, {"Cache-Control": cc} if cc else {}, b"x")
    upstream.routes["/vary-star"] = (200, {"Cache-Control": "max-age=60", "Vary": "*"}, b"x")
    upstream.routes["/shared"] = (200, {"Cache-Control": "max-age=60"}, b"x")
    upstream.routes["/public"] = (200, {"Cache-Control": "public, max-age=60"}, b"x")
    box = start(mockbox, tmp_path, backend)
    for path in ("/no-store", "/private", "/silent", "/vary-star"):
        assert [status(box.get(upstream.url + path)) for _ in range(2)] == ["MISS", "MISS"]
        assert upstream.count(path) == 2, path

    auth = {"Authorization": "Bearer t0k3n"}
    # Answers to requests with credentials are stored only when the answer allows it ...
    assert status(box.get(upstream.url + "/shared", headers=auth)) == "MISS"
    assert status(box.get(upstream.url + "/shared", headers=auth)) == "MISS"
    assert status(box.get(upstream.url + "/public", headers=auth)) == "MISS"
    assert status(box.get(upstream.url + "/public", headers=auth)) == "HIT"
    # ... and a stored answer not marked public never answers a request with credentials.
    assert status(box.get(upstream.url + "/shared")) == "MISS"
    assert status(box.get(upstream.url + "/shared")) == "HIT"
    assert status(box.get(upstream.url + "/shared", headers=auth)) == "MISS"
    assert upstream.count("/shared") == 4 and upstream.count("/public") == 1

    # The client can ask for a fresh answer, or forbid storing; other methods pass by.
    assert (
        status(box.get(upstream.url + "/shared", headers={"Cache-Control": "no-cache"})) == "MISS"
    )
    assert (
        status(box.get(upstream.url + "/shared", headers={"Cache-Control": "no-store"})) == "BYPASS"
    )
    assert upstream.count("/shared") == 6
    posted = box.request("POST", upstream.url + "/shared", data=b"{}")
    assert status(posted) == "BYPASS"
    # a successful POST invalidates what was stored for its URL (RFC 9111 section 4.4)
    assert status(box.get(upstream.url + "/shared")) == "MISS"


def test_vary_keeps_one_entry_per_variant(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path, backend: list[str]
) -> None:
    upstream.routes["/vary"] = (200, {"Cache-Control": "max-age=60", "Vary": "Accept"}, b"v")
    box = start(mockbox, tmp_path, backend)
    url = upstream.url + "/vary"
    seen = [
        status(box.get(url, headers={"Accept": accept}))
        for accept in ("application/json", "application/json", "text/xml", "text/xml")
    ]
    assert seen == ["MISS", "HIT", "MISS", "HIT"]
    assert upstream.count("/vary") == 2
    hits = [h["headers"].get("Accept") for h in upstream.hits]
    assert hits == ["application/json", "text/xml"]


def test_concurrent_identical_requests_make_one_upstream_call(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path, backend: list[str]
) -> None:
    upstream.routes["/slow"] = (200, {"Cache-Control": "max-age=60"}, b"slow answer")
    upstream.delays["/slow"] = 1.0
    box = start(mockbox, tmp_path, backend)
    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(lambda _: box.get(upstream.url + "/slow", timeout=30), range(50)))
    assert all(r.status_code == 200 and r.text == "slow answer" for r in answers)
    assert upstream.count("/slow") == 1
    assert Counter(status(r) for r in answers) == {"MISS": 1, "HIT": 49}
    waits = re.search(r"^mockbox_cache_coalesced_waits_total (\S+)$", box.metrics(), re.M)
    assert waits is not None and 0 < float(waits.group(1)) <= 49


def stored_then_stale(
    mockbox: MockBoxFactory,
    tmp_path: Path,
    backend: list[str],
    upstream: Upstream,
    path: str,
    headers: dict[str, str],
    body: bytes,
) -> tuple[MockBox, str]:
    """A MockBox that stored the answer of `path` (fresh for one second), once it is stale."""
    upstream.routes[path] = (200, headers, body)
    box = start(mockbox, tmp_path, backend)
    url = upstream.url + path
    assert status(box.get(url)) == "MISS"
    time.sleep(1.2)
    return box, url


def test_stale_if_error_serves_stale_when_the_upstream_fails(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path, backend: list[str]
) -> None:
    cc = {"Cache-Control": "max-age=1, stale-if-error=300"}
    box, url = stored_then_stale(mockbox, tmp_path, backend, upstream, "/sie", cc, b"old")
    upstream.routes["/sie"] = (503, {}, b"overloaded")  # the origin answers with an error
    stale = box.get(url)
    assert (stale.status_code, stale.text, status(stale)) == (200, "old", "STALE")
    assert stale.headers["X-MockBox-Source"] == "cache"
    upstream.routes["/sie"] = (200, cc, b"new")  # it recovers: the fresh answer replaces it
    fresh = box.get(url)
    assert (fresh.text, status(fresh)) == ("new", "MISS")
    assert (box.get(url).text, status(box.get(url))) == ("new", "HIT")
    assert upstream.count("/sie") == 3
    time.sleep(1.2)
    upstream.stop()  # the origin goes down: connections refused
    down = box.get(url)
    assert (down.status_code, down.text, status(down)) == (200, "new", "STALE")
    assert 'mockbox_cache_refreshes_total{result="error"} 2.0' in box.metrics()


def test_stale_while_revalidate_serves_stale_during_one_background_refresh(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path, backend: list[str]
) -> None:
    cc = {"Cache-Control": "max-age=1, stale-while-revalidate=60"}
    box, url = stored_then_stale(mockbox, tmp_path, backend, upstream, "/swr", cc, b"v1")
    upstream.routes["/swr"] = (200, {"Cache-Control": "max-age=60"}, b"v2")
    upstream.delays["/swr"] = 1.0
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: box.get(url), range(10)))
    assert {(r.text, status(r)) for r in answers} == {("v1", "STALE")}
    wait_until(lambda: box.get(url).text == "v2", 10, "the background refresh")
    assert status(box.get(url)) == "HIT"
    assert upstream.count("/swr") == 2  # one refresh for all ten stale answers
    metrics = box.metrics()
    assert 'mockbox_cache_refreshes_total{result="ok"} 1.0' in metrics
    # the refresh is no client's answer: it is not counted as one
    assert 'mockbox_requests_total{source="upstream"} 1.0' in metrics


def test_a_mock_edit_purges_what_it_could_answer(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path, backend: list[str]
) -> None:
    for path in ("/items/1", "/other"):
        upstream.routes[path] = (200, {"Cache-Control": "max-age=300"}, b"real")
    box = start(mockbox, tmp_path, backend)
    for path in ("/items/1", "/other"):
        assert status(box.get(upstream.url + path)) == "MISS"
        assert status(box.get(upstream.url + path)) == "HIT"
    # a new mock for /items/{id} (only with ?special=1, so /items/1 still goes upstream)
    write_mocks(
        tmp_path / "mocks",
        "items.yaml",
        "mocks:\n  - request: {host: 127.0.0.1, path: '/items/{id}', query: {special: '1'}}\n"
        "    response: {body: mocked}\n",
    )
    wait_until(lambda: status(box.get(upstream.url + "/items/1")) == "MISS", 10, "the purge")
    assert box.get(upstream.url + "/items/1?special=1").text == "mocked"
    assert status(box.get(upstream.url + "/other")) == "HIT"  # unrelated: kept
    assert upstream.count("/items/1") == 2 and upstream.count("/other") == 1


def test_route_rules_and_cdn_headers(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path, backend: list[str]
) -> None:
    config = (
        "cache:\n  rules:\n"
        "    - {host: 127.0.0.1, path: /catalog/*, ttl: 60, cdn_ttl: 300}\n"
        "  max_body_bytes: 50000\n"
    )
    upstream.routes["/catalog/a"] = (200, JSON, json.dumps({"items": ["x"] * 4000}).encode())
    upstream.routes["/plain"] = (200, JSON, b"{}")
    upstream.routes["/huge"] = (200, {"Cache-Control": "max-age=60"}, b"x" * 60000)
    box = start(mockbox, tmp_path, backend, config=config)
    url = upstream.url + "/catalog/a"
    first, second = box.get(url), box.get(url)
    assert (status(first), status(second)) == ("MISS", "HIT")
    for r in (first, second):
        assert r.headers["Cache-Control"] == "s-maxage=300"
        assert r.headers["Surrogate-Key"] == "mockbox host:127.0.0.1"
        assert r.headers["Cache-Tag"] == "mockbox,host:127.0.0.1"
    assert second.json() == {"items": ["x"] * 4000}
    assert [status(box.get(upstream.url + "/plain")) for _ in range(2)] == ["MISS", "MISS"]
    assert [status(box.get(upstream.url + "/huge")) for _ in range(2)] == ["MISS", "MISS"]
    stats = requests.get(f"{box.admin}/api/cache", timeout=5).json()
    assert stats["entries"] == 1
    assert stats["bytes"] < len(first.content) / 5  # stored compressed


def test_admin_api_and_cli(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path, backend: list[str]
) -> None:
    for path in ("/a/1", "/a/2", "/b/1"):
        upstream.routes[path] = (200, {"Cache-Control": "max-age=300"}, b"x")
    box = start(mockbox, tmp_path, backend, env=clean_env(MOCKBOX_ADMIN_TOKEN="s3cret"))
    for path in ("/a/1", "/a/2", "/b/1", "/a/1"):
        box.get(upstream.url + path)
    api = f"{box.admin}/api/cache"
    assert requests.get(api, timeout=5).status_code == 401
    auth = {"Authorization": "Bearer s3cret"}
    stats = requests.get(api, headers=auth, timeout=5).json()
    assert (stats["entries"], stats["hits"], stats["misses"]) == (3, 1, 3)
    assert stats["hit_ratio"] == 0.25 and stats["backend"] == ("redis" if backend else "memory")
    for bad in ({}, {"host": ""}, {"path_prefix": "a"}, {"hots": "x"}, {"all": True, "host": "h"}):
        r = requests.post(f"{api}/purge", json=bad, headers=auth, timeout=5)
        assert r.status_code == 400 and r.json()["error"] == "BAD_REQUEST", bad
    r = requests.post(f"{api}/purge", data=b"{", headers=auth, timeout=5)
    assert r.status_code == 400 and "invalid JSON" in r.json()["message"]
    purge = {"host": "127.0.0.1", "path_prefix": "/a/"}
    r = requests.post(f"{api}/purge", json=purge, headers=auth, timeout=5)
    assert r.json() == {"purged": 2}
    assert status(box.get(upstream.url + "/a/1")) == "MISS"
    assert status(box.get(upstream.url + "/b/1")) == "HIT"

    def cli(*args: str, token: str = "s3cret") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIN / "mockbox"), "cache", *args, "--admin", box.admin],
            env=clean_env(MOCKBOX_ADMIN_TOKEN=token),
            capture_output=True,
            text=True,
            timeout=30,
        )

    shown = cli("stats")
    assert shown.returncode == 0 and "entries      2" in shown.stdout
    assert "hit ratio    33.3%" in shown.stdout
    rejected = cli("stats", token="wrong")
    assert rejected.returncode == 1 and "401" in rejected.stderr
    refused = cli("purge")  # neither a filter nor --all
    assert refused.returncode == 1 and "all: true" in refused.stderr
    purged = cli("purge", "--host", "127.0.0.1")
    assert purged.returncode == 0 and purged.stdout.strip() == "purged 2 cached answer(s)"
    assert json.loads(cli("stats", "--json").stdout)["entries"] == 0


def test_mock_cache_setting_becomes_cdn_headers(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    mocks = tmp_path / "mocks"
    write_mocks(
        mocks,
        "cdn.yaml",
        "mocks:\n"
        "  - name: catalog\n"
        "    request: {host: api.shop.test, path: /catalog}\n"
        "    response: {body: [1, 2]}\n"
        "    cache: {ttl: 10, cdn_ttl: 600}\n"
        "  - request: {host: api.shop.test, path: /cart}\n"
        "    response: {body: {}}\n"
        "    cache: false\n"
        "  - request: {host: api.shop.test, path: /plain}\n"
        "    response: {body: {}}\n",
    )
    box = mockbox(mocks)
    catalog = box.get("http://api.shop.test/catalog")
    assert catalog.headers["Cache-Control"] == "public, max-age=10, s-maxage=600"
    assert catalog.headers["Surrogate-Key"] == "mockbox host:api.shop.test mock:cdn.yaml#catalog"
    assert catalog.headers["Cache-Tag"] == "mockbox,host:api.shop.test,mock:cdn.yaml#catalog"
    assert "X-Cache-Status" not in catalog.headers  # mocks answer before the cache
    assert box.get("http://api.shop.test/cart").headers["Cache-Control"] == "no-store"
    plain = box.get("http://api.shop.test/plain")
    assert "Cache-Control" not in plain.headers and "Surrogate-Key" not in plain.headers
    write_mocks(mocks, "bad.yaml", "mocks:\n  - request: {path: /x}\n    cache: {ttl: -1}\n")
    wait_until(lambda: bool(box.health()["mocks"]["problems"]), 10, "the problem")
    assert "cache.ttl" in json.dumps(box.health()["mocks"]["problems"])


def test_two_processes_share_one_redis_cache(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path, redis_url: str
) -> None:
    upstream.routes["/shared"] = (200, {"Cache-Control": "max-age=60"}, b"one")
    upstream.routes["/slow"] = (200, {"Cache-Control": "max-age=60"}, b"slow")
    upstream.delays["/slow"] = 1.0
    a = start(mockbox, tmp_path, ["--redis", redis_url])
    b = start(mockbox, tmp_path, ["--redis", redis_url])
    assert status(a.get(upstream.url + "/shared")) == "MISS"
    assert (status(b.get(upstream.url + "/shared")), b.get(upstream.url + "/shared").text) == (
        "HIT",
        "one",
    )
    assert upstream.count("/shared") == 1
    with ThreadPoolExecutor(20) as pool:
        boxes = [a, b] * 10
        answers = list(pool.map(lambda box: box.get(upstream.url + "/slow", timeout=30), boxes))
    assert {r.text for r in answers} == {"slow"}
    assert upstream.count("/slow") == 1  # one call for both processes
    purged = requests.post(f"{b.admin}/api/cache/purge", json={"all": True}, timeout=5).json()
    assert purged == {"purged": 2}
    assert status(a.get(upstream.url + "/shared")) == "MISS"  # purged for both


def test_redis_down_degrades_to_uncached(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path
) -> None:
    upstream.routes["/x"] = (200, {"Cache-Control": "max-age=60"}, b"x")
    box = start(mockbox, tmp_path, ["--redis", f"redis://127.0.0.1:{free_port()}/0"])
    assert box.health()["redis"] == "down"
    answers = [box.get(upstream.url + "/x") for _ in range(2)]
    assert [(r.status_code, status(r)) for r in answers] == [(200, "BYPASS"), (200, "BYPASS")]
    assert upstream.count("/x") == 2
    assert requests.get(f"{box.admin}/api/cache", timeout=5).status_code == 503
    assert "mockbox_cache_backend_errors_total" in box.metrics()


def test_bad_cache_configuration_is_a_clear_error(tmp_path: Path) -> None:
    for text, message in (
        ("cache:\n  lock_timeout: 0\n", "cache.lock_timeout must be greater than 0"),
        ("cache:\n  default_ttl: -5\n", "cache.default_ttl must be 0 or more"),
        ("cache:\n  rules: [{path: v1, ttl: 5}]\n", "cache.rules[0].path must be a path glob"),
    ):
        config = tmp_path / "bad.yaml"
        config.write_text(text)
        out = subprocess.run(
            [str(BIN / "mockbox"), "run", "--config", str(config), "--port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(),
        )
        assert out.returncode == 2 and message in out.stderr, out.stderr
