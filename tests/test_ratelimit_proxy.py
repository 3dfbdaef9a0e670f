"""Rate limiting through real `mockbox run` processes, with a real redis-server."""

from __future__ import annotations

import random
import re
import secrets
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import (
    BIN,
    REPO,
    MockBox,
    MockBoxFactory,
    RedisServer,
    clean_env,
    free_port,
    wait_until,
    write_mocks,
)

MOCKS = """\
mocks:
  - request: {path: /hello}
    response: {body: {hello: world}}
  - name: tight
    request: {path: /tight}
    response: {body: tight}
    rate_limit: 2/minute
  - request: {host: llm.test, path: /v1/chat}
    response: {body: {choices: []}}
"""
URL = "http://api.test/hello"


class Boxes:
    """Starts MockBox processes with a mocks folder and a configuration file of their own."""

    def __init__(self, mockbox: MockBoxFactory, tmp_path: Path) -> None:
        self.mockbox, self.tmp_path = mockbox, tmp_path
        self.mocks = tmp_path / "mocks"
        write_mocks(self.mocks, "m.yaml", MOCKS)

    def __call__(self, config: str, *args: str, **env: str) -> MockBox:
        path = self.tmp_path / f"config-{free_port()}.yaml"
        path.write_text(config)
        # Empty MOCKBOX_RATE_LIMIT_*: the configuration file's limits apply.
        env = clean_env(MOCKBOX_RATE_LIMIT_AI="", MOCKBOX_RATE_LIMIT_PUBLIC="", **env)
        # Strict mode whatever the default: unmatched requests get the 404 explanation.
        args = ("--unmatched", "404", *args)
        return self.mockbox(self.mocks, "--config", str(path), *args, env=env)


@pytest.fixture
def boxes(mockbox: MockBoxFactory, tmp_path: Path) -> Boxes:
    return Boxes(mockbox, tmp_path)


def limits_api(box: MockBox, token: str | None = None, **params: Any) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    r = requests.get(f"{box.admin}/api/limits", headers=headers, params=params, timeout=5)
    r.raise_for_status()
    data: dict[str, Any] = r.json()
    return data


def metric(box: MockBox, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", box.metrics(), re.M)
    assert m is not None, name
    return float(m.group(1))


def ietf(field: str) -> dict[str, dict[str, int]]:
    """`"name";r=1;t=2, ...` → {name: {r: 1, t: 2}}."""
    out = {}
    for item in field.split(", "):
        name, *params = item.split(";")
        out[name.strip('"')] = {k: int(v) for k, v in (p.split("=") for p in params)}
    return out


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_the_n_plus_first_request_gets_429_with_true_headers(
    boxes: Boxes, backend: str, redis_url: str
) -> None:
    redis = ["--redis", redis_url] if backend == "redis" else []
    box = boxes("rate_limit: {public: {limit: 3/minute}}\n", *redis, MOCKBOX_ADMIN_TOKEN="t0k3n")
    for remaining in (2, 1, 0):
        r = box.get(URL)
        assert r.status_code == 200 and r.json() == {"hello": "world"}
        assert r.headers["X-MockBox-Source"] == "mock"
        assert r.headers["X-RateLimit-Limit"] == "3"
        assert r.headers["X-RateLimit-Remaining"] == str(remaining)
        assert time.time() < int(r.headers["X-RateLimit-Reset"]) <= time.time() + 61
        assert r.headers["RateLimit-Policy"] == '"public";q=3;w=60'
        state = ietf(r.headers["RateLimit"])["public"]
        assert state["r"] == remaining and 55 <= state["t"] <= 60
        assert "Retry-After" not in r.headers

    refused = box.get(URL)
    assert refused.status_code == 429
    assert refused.headers["X-MockBox-Source"] == "ratelimit"
    assert refused.headers["Content-Type"] == "application/json"
    body = refused.json()
    assert body["error"] == "PUBLIC_API_RATE_LIMIT_EXCEEDED"
    assert "3 per minute" in body["message"]
    assert 55 <= body["retry_after"] <= 60
    assert refused.headers["Retry-After"] == str(body["retry_after"])
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert ietf(refused.headers["RateLimit"])["public"]["r"] == 0

    assert 'mockbox_rate_limited_total{tier="public"} 1.0' in box.metrics()
    assert 'mockbox_rate_limited_total{tier="ai"} 0.0' in box.metrics()
    assert re.search(
        r'rate_limited tier="public" identity="ip:127\.0\.0\.1" method="GET" host="api\.test" '
        r'path="/hello" limit="3 per minute" policy="public" retry_after=\d+',
        box.log(),
    )
    # The admin API is behind the token; it lists the violation and the client.
    assert requests.get(f"{box.admin}/api/limits", timeout=5).status_code == 401
    bad = requests.get(
        f"{box.admin}/api/limits?top=lots", headers={"Authorization": "Bearer t0k3n"}, timeout=5
    )
    assert bad.status_code == 400 and bad.json()["error"] == "BAD_REQUEST"
    data = limits_api(box, "t0k3n")
    assert data["tiers"]["public"] == {
        "limit": "3 per minute",
        "strategy": "moving-window",
        "per_address": "3 per minute",
    }
    assert data["storage"]["backend"] == backend
    [violation] = data["violations"]["recent"]
    assert (violation["identity"], violation["path"], violation["limit"]) == (
        "ip:127.0.0.1",
        "/hello",
        "3 per minute",
    )
    assert data["violations"]["top_clients"][0]["violations"] == 1
    assert data["violations"]["scope"] == ("shared" if backend == "redis" else "instance")


def test_the_window_moves(boxes: Boxes) -> None:
    box = boxes("rate_limit: {public: {limit: 2/4 seconds}}\n")
    assert box.get(URL).status_code == 200
    first_counted_by = time.time()
    time.sleep(2)
    assert box.get(URL).status_code == 200
    refused = box.get(URL)
    assert refused.status_code == 429 and 1 <= refused.json()["retry_after"] <= 3
    time.sleep(max(0.0, first_counted_by + 4.2 - time.time()))
    # The first request left the window; the second is still in it: exactly one slot is free.
    # (A fixed window would have reset both.)
    again = box.get(URL)
    assert again.status_code == 200 and again.headers["X-RateLimit-Remaining"] == "0"
    assert box.get(URL).status_code == 429


def test_tiers_mock_limits_and_overrides(boxes: Boxes) -> None:
    config = """\
rate_limit:
  public: {limit: 5/minute}
  ai: {limit: 2/minute}
  overrides:
    - {host: llm.test, tier: ai}
    - {path: "/reports/{rest*}", limit: 1/minute, name: reports}
"""
    box = boxes(config)
    # A mock's own limit counts apart from the tier's.
    assert [box.get("http://api.test/tight").status_code for _ in range(3)] == [200, 200, 429]
    tight = box.get("http://api.test/tight")
    assert tight.headers["RateLimit-Policy"] == '"public|mock:m.yaml#tight";q=2;w=60'
    hello = box.get(URL)
    assert hello.headers["X-RateLimit-Remaining"] == "4"  # untouched by /tight
    # An override with its own limit; an unmatched request's 404 carries the headers too.
    report = box.get("http://api.test/reports/2026/q1")
    assert report.status_code == 404 and report.json()["error"] == "NO_MOCK_MATCHED"
    assert report.headers["RateLimit-Policy"] == '"reports";q=1;w=60'
    assert box.get("http://api.test/reports/2026/q2").status_code == 429
    # An override that puts a host in the ai tier.
    chat = [box.request("POST", "http://llm.test/v1/chat") for _ in range(3)]
    assert [r.status_code for r in chat] == [200, 200, 429]
    assert chat[0].headers["RateLimit-Policy"] == '"ai";q=2;w=60'
    assert chat[2].json()["error"] == "AI_RATE_LIMIT_EXCEEDED"
    assert chat[2].json()["message"].startswith("AI rate limit exceeded: 2 per minute.")
    assert 'mockbox_rate_limited_total{tier="ai"} 1.0' in box.metrics()
    assert 'mockbox_rate_limited_total{tier="public"} 3.0' in box.metrics()


def test_stock_mitmdump_with_a_limit_option(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    write_mocks(tmp_path / "mocks", "m.yaml", MOCKS)
    box = mockbox(
        tmp_path / "mocks", "--set", "mockbox_rate_limit_public=1/minute", stock=True
    )  # the option wins over MOCKBOX_RATE_LIMIT_PUBLIC
    first, second = box.get(URL), box.get(URL)
    assert (first.status_code, second.status_code) == (200, 429)
    assert first.headers["RateLimit-Policy"] == '"public";q=1;w=60'
    assert second.headers["X-MockBox-Source"] == "ratelimit"


def test_api_keys_are_identities_and_never_stored_raw(boxes: Boxes) -> None:
    # printf %s partner-key | sha256sum | cut -c1-16
    config = """\
rate_limit:
  public: {limit: 1/minute, per_address: 10/minute}
  exempt: [key:346e50af211b5135]
"""
    box = boxes(config)
    assert box.get(URL, headers={"X-API-Key": "alpha-secret"}).status_code == 200
    assert box.get(URL, headers={"X-API-Key": "alpha-secret"}).status_code == 429
    assert box.get(URL, headers={"Authorization": "Bearer beta-secret"}).status_code == 200
    assert box.get(URL).status_code == 200  # the address is another identity again
    for _ in range(3):  # exempt: never limited, no headers
        r = box.get(URL, headers={"X-API-Key": "partner-key"})
        assert r.status_code == 200 and "X-RateLimit-Limit" not in r.headers
    api = limits_api(box)
    assert api["violations"]["recent"][0]["identity"].startswith("key:")
    for where in (box.log(), str(api)):
        assert "alpha-secret" not in where and "beta-secret" not in where


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_invented_keys_buy_no_fresh_budget(boxes: Boxes, backend: str, redis_url: str) -> None:
    """A client that sends a new key or token with every request stays within its address's
    budget, in both tiers, with the shipped `per_address` (the tier's limit)."""
    redis = ["--redis", redis_url] if backend == "redis" else []
    config = "rate_limit: {public: {limit: 3/minute}, ai: {limit: 2/minute}}\n"
    box = boxes(config, *redis, "--unmatched", "ai")

    def invented() -> dict[str, str]:
        token = secrets.token_hex(12)
        return random.choice([{"X-API-Key": token}, {"Authorization": f"Bearer {token}"}])

    assert [box.get(URL).status_code for _ in range(3)] == [200] * 3  # the address's budget
    refused = [box.get(URL, headers=invented()) for _ in range(10)]
    assert [r.status_code for r in refused] == [429] * 10
    body = refused[-1].json()
    assert body["error"] == "PUBLIC_API_RATE_LIMIT_EXCEEDED"
    assert body["message"].startswith("Public API rate limit exceeded: 3 per minute per address.")
    assert ietf(refused[-1].headers["RateLimit"])["public/address"]["r"] == 0
    # The AI tier: two syntheses for the address, whatever keys come with them.
    ai = [box.get(f"http://api.test/v1/things/{i}", headers=invented()) for i in range(10)]
    sources = [r.headers["X-MockBox-Source"] for r in ai]  # the offline provider answers
    assert sources == ["ai"] * 2 + ["ratelimit"] * 8
    assert ai[-1].json()["error"] == "AI_RATE_LIMIT_EXCEEDED"
    recent = limits_api(box, recent=100)["violations"]["recent"]
    assert {v["identity"] for v in recent} == {"ip:127.0.0.1"}  # the address was over


def test_per_address_raises_the_ceiling_for_keys_behind_one_address(boxes: Boxes) -> None:
    box = boxes("rate_limit: {public: {limit: 2/minute, per_address: 5/minute}}\n")
    alpha, beta = {"X-API-Key": "alpha"}, {"X-API-Key": "beta"}
    codes = [box.get(URL, headers=h).status_code for h in (alpha, alpha, alpha, beta, beta)]
    assert codes == [200, 200, 429, 200, 200]  # each key its own 2; the address 4 of its 5
    assert box.get(URL).status_code == 200  # the fifth, without a key
    r = box.get(URL, headers={"X-API-Key": "gamma"})  # a fresh key: the address is spent
    assert r.status_code == 429
    assert r.headers["RateLimit-Policy"] == '"public";q=2;w=60, "public/address";q=5;w=60'


def test_a_spoofed_forwarded_for_does_not_change_identity(boxes: Boxes) -> None:
    limit = "rate_limit:\n  public: {limit: 2/minute}\n"
    untrusted = boxes(limit + "  identity: {trusted_proxies: [10.0.0.0/8]}\n")
    codes = [
        untrusted.get(URL, headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code
        for i in range(3)
    ]
    assert codes == [200, 200, 429]  # all three are 127.0.0.1, whatever they claim
    assert limits_api(untrusted)["violations"]["recent"][0]["identity"] == "ip:127.0.0.1"

    # Behind a trusted proxy (here: the test itself, on 127.0.0.1) the header tells.
    behind = boxes(limit + "  identity: {trusted_proxies: [127.0.0.0/8]}\n")

    def via_cdn(forwarded_for: str) -> int:
        return behind.get(URL, headers={"X-Forwarded-For": forwarded_for}).status_code

    assert [via_cdn("203.0.113.1"), via_cdn("203.0.113.1")] == [200, 200]
    assert via_cdn("203.0.113.2") == 200  # another client
    # A client that prepends its own entry still gets the address the proxy saw.
    assert via_cdn("6.6.6.6, 203.0.113.1") == 429
    recent = limits_api(behind)["violations"]["recent"]
    assert [v["identity"] for v in recent] == ["ip:203.0.113.1"]


def test_two_instances_sharing_redis_enforce_one_limit(boxes: Boxes, redis_url: str) -> None:
    config = "rate_limit: {public: {limit: 10/minute, per_address: 100/minute}}\n"
    a = boxes(config, "--redis", redis_url)
    b = boxes(config, "--redis", redis_url)
    assert [a.get(URL).status_code for _ in range(5)] == [200] * 5
    assert [b.get(URL).status_code for _ in range(5)] == [200] * 5
    assert a.get(URL).status_code == 429  # a counts what b allowed

    # A concurrent burst from one client across both instances: exactly the limit passes.
    def send(i: int) -> int:
        box = (a, b)[i % 2]
        return box.get(URL, headers={"X-API-Key": "burst"}).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(send, range(40)))
    assert codes.count(200) == 10 and codes.count(429) == 30


@pytest.fixture
def own_redis(tmp_path: Path) -> Any:
    """A redis-server for this test alone, so stopping it disturbs no other test."""
    server = RedisServer(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_outage_policies_and_recovery(boxes: Boxes, own_redis: RedisServer) -> None:
    started = {
        policy: boxes(  # per_address none: each box's key counts alone
            f"rate_limit: {{public: {{limit: 2/minute, per_address: none}}, "
            f"on_redis_error: {policy}}}\n",
            "--redis",
            own_redis.url,
        )
        for policy in ("open", "closed", "local")
    }

    def get(policy: str) -> requests.Response:
        return started[policy].get(URL, headers={"X-API-Key": policy})  # a counter each

    for policy in started:
        assert get(policy).headers["X-RateLimit-Remaining"] == "1"

    own_redis.stop()
    opened = [get("open") for _ in range(4)]
    assert [r.status_code for r in opened] == [200] * 4
    assert all("X-RateLimit-Limit" not in r.headers for r in opened)

    closed = get("closed")
    assert closed.status_code == 503 and closed.headers["Retry-After"] == "1"
    assert closed.headers["X-MockBox-Source"] == "ratelimit"
    assert closed.json()["error"] == "RATE_LIMIT_UNAVAILABLE"

    # Local: this instance's memory counts from zero while Redis is away.
    assert [get("local").status_code for _ in range(3)] == [200, 200, 429]

    for policy, box in started.items():
        assert box.log().count("rate limiting lost Redis") == 1, policy
        assert f"on_redis_error: {policy}" in box.log()
        assert metric(box, "mockbox_ratelimit_redis_up") == 0.0
        assert metric(box, "mockbox_ratelimit_redis_outages_total") == 1.0
        api = limits_api(box)
        assert api["storage"]["reachable"] is False and api["violations"]["scope"] == "instance"
    unavailable = 'mockbox_ratelimit_redis_unavailable_total{on_error="open"}'
    assert metric(started["open"], unavailable) == 4.0

    own_redis.start()  # empty: it kept nothing
    for policy, box in started.items():
        wait_until(
            lambda policy=policy: "X-RateLimit-Limit" in get(policy).headers,  # type: ignore[misc]
            10,
            f"{policy}: limits counted in Redis again",
        )
        assert "reaches Redis at" in box.log() and metric(box, "mockbox_ratelimit_redis_up") == 1
        assert get(policy).status_code == 200  # the second of two in the new window
        assert get(policy).status_code == 429
    assert own_redis.client().keys("mockbox:limits:*")


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), {"MOCKBOX_RATE_LIMIT_PUBLIC": "lots"}, "rate_limit.public.limit: 'lots' is not"),
        (("--redis", "http://user:pw@cache"), {}, "redis_url 'http://user:REDACTED@cache'"),
    ],
)
def test_bad_settings_stop_with_a_clear_message(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], message: str
) -> None:
    done = subprocess.run(
        [str(BIN / "mockbox"), "run", "--port", "0", "--admin-port", "0", *args],
        capture_output=True,
        text=True,
        env=clean_env(**env),
        cwd=tmp_path,
        timeout=60,
    )
    assert done.returncode == 2
    assert message in done.stderr and "pw" not in done.stderr


def test_requests_that_reach_ai_synthesis_count_in_the_ai_tier(boxes: Boxes) -> None:
    config = "rate_limit: {ai: {limit: 2/minute}, public: {limit: 5/minute}}\n"
    box = boxes(config, "--unmatched", "ai")
    synthesized = [box.get("http://api.test/v1/things/3") for _ in range(3)]
    assert [r.headers["X-MockBox-Source"] for r in synthesized[:2]] == ["ai", "ai"]
    assert synthesized[0].headers["RateLimit-Policy"] == '"ai";q=2;w=60'
    assert synthesized[2].status_code == 429
    assert synthesized[2].json()["error"] == "AI_RATE_LIMIT_EXCEEDED"
    mocked = box.get(URL)  # a mock answers: the public tier, untouched by the AI requests
    assert mocked.headers["RateLimit-Policy"] == '"public";q=5;w=60'
    assert mocked.headers["X-RateLimit-Remaining"] == "4"


def test_one_global_limit_across_regions_behind_a_cdn(tmp_path: Path) -> None:
    """Three regions sharing one Redis, behind Varnish (deploy/local): uncached requests spread
    round-robin over the regions, and the client gets the limit once, not once per region."""
    sys.path.insert(0, str(REPO / "deploy" / "local"))
    from run import LocalEdge

    mocks = tmp_path / "mocks"
    shutil.copytree(REPO / "deploy" / "local" / "mocks", mocks)
    config = {"rate_limit": {"public": {"limit": "5/minute"}}}  # the edge is trusted already
    edge = LocalEdge.create(["iad", "fra", "sin"], mocks, tmp_path / "edge", extra_config=config)
    try:
        edge.start()
        answers = [requests.get(f"{edge.url}/cart/{i}", timeout=10) for i in range(8)]
    finally:
        edge.stop()
    assert [r.status_code for r in answers] == [200] * 5 + [429] * 3
    assert {r.headers["X-MockBox-Region"] for r in answers[:5]} == {"iad", "fra", "sin"}
    assert answers[-1].json()["error"] == "PUBLIC_API_RATE_LIMIT_EXCEEDED"
