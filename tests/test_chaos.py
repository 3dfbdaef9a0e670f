"""Chaos: what MockBox leans on fails while it works. Redis is killed and restarted under load;
the upstream and the LLM endpoint turn slow, failing and garbage-speaking; the recorder is
killed with SIGKILL mid-session. Each time MockBox answers as configured, keeps serving other
clients, and loses nothing it had already answered."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from .conftest import (
    BIN,
    LLMServer,
    MockBox,
    MockBoxFactory,
    RedisServer,
    Upstream,
    clean_env,
    free_port,
    wait_until,
    write_mocks,
)

TIMEOUT = 10.0  # generous: only a hang fails
CANARY = "http://api.chaos.test/ping"
MOCKS = """
mocks:
  - name: canary
    request: {method: GET, host: api.chaos.test, path: /ping}
    response: {body: {ok: true}}
"""


def metric(box: MockBox, name: str) -> float:
    found = re.search(rf"^{re.escape(name)} (\S+)$", box.metrics(), re.M)
    assert found is not None, name
    return float(found.group(1))


def assert_alive(box: MockBox) -> None:
    assert box.proc.poll() is None, box.log()[-3000:]
    probe = box.get("http://any.test/__mockbox/healthz")
    assert probe.status_code == 200 and probe.json()["status"] == "ok"
    assert box.health()["status"] == "ok"
    assert "Traceback" not in box.log(), box.log()[-3000:]


@dataclass
class Load:
    """Clients that keep calling `urls` through `box` until stopped; every outcome is kept with
    when it started and ended, so a test can look at one phase."""

    box: MockBox
    urls: list[str]
    headers: dict[str, str] = field(default_factory=dict)
    outcomes: list[tuple[float, float, str, requests.Response | Exception]] = field(
        default_factory=list
    )
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self, clients: int = 1) -> Load:
        for _ in range(clients):
            t = threading.Thread(target=self._run, daemon=True)
            t.start()
            self.threads.append(t)
        return self

    def _run(self) -> None:
        with self.box.client() as session:
            while not self.stop.is_set():
                for url in self.urls:
                    began = time.monotonic()
                    outcome: requests.Response | Exception
                    try:
                        outcome = session.get(url, headers=self.headers, timeout=TIMEOUT)
                    except requests.RequestException as e:
                        outcome = e
                    self.outcomes.append((began, time.monotonic(), url, outcome))
                self.stop.wait(0.02)

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(2 * TIMEOUT)

    def between(self, start: float, end: float, url: str) -> list[requests.Response]:
        """Answers to `url` that began after `start` and ended before `end` (all must be
        answers: a client error is a failure whatever the phase)."""
        picked = [o for b, e, u, o in self.outcomes if u == url and b >= start and e <= end]
        assert all(isinstance(o, requests.Response) for o in picked), picked
        return picked  # type: ignore[return-value]

    def errors(self) -> list[Exception]:
        return [o for *_, o in self.outcomes if isinstance(o, Exception)]


# --- 1. redis-server killed and restarted under load -----------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server for this test alone: killing it disturbs no other test."""
    server = RedisServer(free_port(), tmp_path)
    server.start()
    yield server
    server.stop()


def test_redis_killed_and_restarted_under_load(
    mockbox: MockBoxFactory, tmp_path: Path, upstream: Upstream, own_redis: RedisServer
) -> None:
    write_mocks(tmp_path / "mocks", "chaos.yaml", MOCKS)
    for policy in ("local", "open", "closed"):
        upstream.routes[f"/cached/{policy}"] = (200, {"Cache-Control": "max-age=60"}, b"cached")
    cached = upstream.url + "/cached"
    boxes: dict[str, MockBox] = {}
    for policy in ("local", "open", "closed"):
        config = tmp_path / f"{policy}.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "rate_limit": {
                        "public": {"limit": "1000/minute"},
                        "on_redis_error": policy,
                        "redis_timeout": 0.2,
                    }
                }
            )
        )
        args = ["--config", str(config), "--redis", own_redis.url, "--unmatched", "upstream"]
        boxes[policy] = mockbox(tmp_path / "mocks", *args, wait=False)
    for box in boxes.values():
        mockbox.wait_ready(box)
    loads = {
        policy: Load(box, [CANARY, f"{cached}/{policy}"], {"X-API-Key": policy}).start()
        for policy, box in boxes.items()
    }
    redis = own_redis.client()
    wait_until(lambda: bool(redis.keys("mockbox:cache:e:*")), TIMEOUT, "answers cached in Redis")
    assert redis.keys("mockbox:limits:*")

    own_redis.kill()
    killed = time.monotonic()
    time.sleep(2.5)  # the outage, under load
    own_redis.start()  # empty: it kept nothing
    restarted = time.monotonic()
    redis = own_redis.client()
    wait_until(lambda: len(redis.keys("mockbox:cache:e:*")) >= 2, TIMEOUT, "cache in Redis again")
    wait_until(lambda: bool(redis.keys("mockbox:limits:*")), TIMEOUT, "limits in Redis again")
    recovered = time.monotonic()
    time.sleep(0.3)
    for load in loads.values():
        load.finish()

    # During the outage each policy answers as configured; the cache answers uncached.
    outage = (killed + 0.3, restarted)
    local = loads["local"].between(*outage, CANARY)
    opened = loads["open"].between(*outage, CANARY)
    closed = loads["closed"].between(*outage, CANARY)
    assert local and opened and closed
    assert all(r.status_code == 200 and "X-RateLimit-Limit" in r.headers for r in local)
    assert all(r.status_code == 200 and "X-RateLimit-Limit" not in r.headers for r in opened)
    for r in closed:
        assert r.status_code == 503 and r.headers["Retry-After"] == "1"
        assert r.json()["error"] == "RATE_LIMIT_UNAVAILABLE"
    for policy in ("local", "open"):
        answers = loads[policy].between(*outage, f"{cached}/{policy}")
        assert answers and all(r.status_code == 200 and r.text == "cached" for r in answers)
        assert {r.headers["X-Cache-Status"] for r in answers} == {"BYPASS"}
    # After the restart: limits counted in Redis again, answers cached there again.
    for policy, load in loads.items():
        assert load.errors() == [], policy
        after = load.between(recovered, time.monotonic(), CANARY)
        assert after and all(r.status_code == 200 for r in after), policy
        assert all("X-RateLimit-Limit" in r.headers for r in after), policy
    hits = loads["local"].between(recovered, time.monotonic(), f"{cached}/local")
    assert hits and hits[-1].headers["X-Cache-Status"] == "HIT"
    for policy, box in boxes.items():
        log = box.log()
        assert log.count("rate limiting lost Redis") == 1, policy  # once per outage
        assert log.count("rate limiting reaches Redis") == 1, policy
        assert log.count("cache unavailable") == 1, policy  # the cache's warning, once too
        assert metric(box, "mockbox_ratelimit_redis_up") == 1.0
        assert metric(box, "mockbox_ratelimit_redis_outages_total") == 1.0
        assert box.health()["redis"] == "ok"
        assert_alive(box)


# --- 2. the upstream: slow, failing, garbage-speaking ----------------------------------------

FRESH_THEN_STALE = b"Cache-Control: max-age=1, stale-if-error=300\r\n"


class ChaosUpstream:
    """A raw-socket origin whose behaviour per path can change at any time: `ok`, `slow`
    (answers after 5 s), `reset` (half an answer, then a TCP reset), `garbage` (bytes that are
    not HTTP), `error` (500) or `drop` (closes without a byte). `stop()` closes the port."""

    def __init__(self) -> None:
        self.modes: dict[str, str] = {}
        self.hits = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self.sock.close()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            self.hits += 1
            path = data.split(b" ")[1].decode()
            mode = self.modes.get(path.split("?")[0], "ok")
            body = b'{"path": "%s"}' % path.encode()
            ok = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + FRESH_THEN_STALE
                + b"Content-Length: %d\r\n\r\n" % len(body)
                + body
            )
            try:
                if mode == "slow":
                    time.sleep(5)
                    conn.sendall(ok)
                elif mode == "reset":
                    conn.sendall(ok[:40])
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                elif mode == "garbage":
                    conn.sendall(b"\x00\xffSSH-2.0-not-http\r\n\r\n" * 20)
                elif mode == "error":
                    conn.sendall(b"HTTP/1.1 500 Oops\r\nContent-Length: 4\r\n\r\nboom")
                elif mode == "ok":
                    conn.sendall(ok)
            except OSError:
                pass  # the proxy gave up waiting (a timeout test)


@pytest.fixture
def chaos_upstream() -> Iterator[ChaosUpstream]:
    server = ChaosUpstream()
    yield server
    server.stop()


FAILURES = ("slow", "reset", "garbage", "error", "drop")


def test_upstream_slow_failing_and_garbage(
    mockbox: MockBoxFactory, tmp_path: Path, chaos_upstream: ChaosUpstream
) -> None:
    write_mocks(tmp_path / "mocks", "chaos.yaml", MOCKS)
    config = tmp_path / "mockbox.yaml"
    config.write_text(yaml.safe_dump({"cache": {"refresh_timeout": 1.0}}))
    box = mockbox(
        tmp_path / "mocks",
        "--config",
        str(config),
        "--unmatched",
        "upstream",
        "--set",
        "tcp_timeout=2",  # a silent upstream is given up on after 2 s
    )
    canary = Load(box, [CANARY]).start()

    # Nothing cached: each failure gets the proxy's answer, never a hang.
    answers: dict[str, requests.Response | Exception] = {}
    timings: dict[str, float] = {}

    def call(mode: str) -> None:
        chaos_upstream.modes[f"/fresh/{mode}"] = mode
        began = time.monotonic()
        try:
            answers[mode] = box.get(chaos_upstream.url(f"/fresh/{mode}"), timeout=TIMEOUT)
        except requests.RequestException as e:
            answers[mode] = e
        timings[mode] = time.monotonic() - began

    threads = [threading.Thread(target=call, args=(mode,)) for mode in FAILURES]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2 * TIMEOUT)
    refused = box.get(f"http://127.0.0.1:{free_port()}/nobody-listens")
    for mode, cause in (
        ("reset", "unexpected server response"),
        ("garbage", "Bad HTTP response line"),
        ("drop", "server closed connection"),
    ):
        r = answers[mode]
        assert isinstance(r, requests.Response) and r.status_code == 502, (mode, r)
        assert cause in r.text, (mode, r.text)
    assert refused.status_code == 502 and "Connect call failed" in refused.text
    error = answers["error"]
    assert isinstance(error, requests.Response)
    assert (error.status_code, error.text) == (500, "boom")  # the origin's own answer
    assert error.headers["X-MockBox-Source"] == "upstream"
    # A silent upstream: the proxy closes the connection after tcp_timeout.
    assert isinstance(answers["slow"], requests.ConnectionError)
    assert timings["slow"] < TIMEOUT - 1

    # Cached answers under stale-if-error: each failure serves the stale answer.
    for mode in FAILURES:
        first = box.get(chaos_upstream.url(f"/stale/{mode}"))
        assert first.status_code == 200 and first.headers["X-Cache-Status"] == "MISS"
    time.sleep(1.1)  # past max-age=1
    for mode in FAILURES:
        chaos_upstream.modes[f"/stale/{mode}"] = mode
    stale: dict[str, requests.Response] = {}
    threads = [
        threading.Thread(
            target=lambda m=mode: stale.__setitem__(  # type: ignore[misc]
                m, box.get(chaos_upstream.url(f"/stale/{m}"))
            )
        )
        for mode in FAILURES
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2 * TIMEOUT)
    for mode in FAILURES:
        r = stale[mode]
        assert r.status_code == 200, (mode, r.text)
        assert r.headers["X-Cache-Status"] == "STALE", mode
        assert r.json() == {"path": f"/stale/{mode}"}
    chaos_upstream.stop()  # now: connection refused
    down = box.get(chaos_upstream.url("/stale/drop"))
    assert down.status_code == 200 and down.headers["X-Cache-Status"] == "STALE"

    canary.finish()
    assert canary.errors() == []
    assert all(o.status_code == 200 for *_, o in canary.outcomes)  # type: ignore[union-attr]
    assert_alive(box)


# --- 3. the LLM endpoint: slow, failing, garbage-speaking ------------------------------------

SHOP = """
mocks:
  - name: canary
    request: {method: GET, host: api.chaos.test, path: /ping}
    response: {body: {ok: true}}
  - name: get user
    request: {method: GET, host: api.shop.test, path: "/users/3"}
    response: {body: {id: 3, email: ada@example.com, name: Ada Lovelace}}
"""
GOOD = {
    "status": 200,
    "headers": {"Content-Type": "application/json"},
    "body": {"id": 7, "email": "grace@example.com", "name": "Grace Hopper"},
}


def test_llm_slow_failing_and_garbage(
    mockbox: MockBoxFactory, tmp_path: Path, llm_server: LLMServer
) -> None:
    write_mocks(tmp_path / "mocks", "shop.yaml", SHOP)
    config = tmp_path / "mockbox.yaml"
    ai = {
        "provider": "openai",
        "base_url": f"{llm_server.url}/v1",
        "model": "gpt-4o-mini",
        "timeout": 1,
        "max_retries": 0,
        "breaker": {"failures": 3, "cooldown": 60},
    }
    config.write_text(yaml.safe_dump({"unmatched": "ai", "ai": ai}))
    box = mockbox(
        tmp_path / "mocks", "--config", str(config), env=clean_env(OPENAI_API_KEY="sk-chaos")
    )
    canary = Load(box, [CANARY]).start()
    user = iter(range(100, 200))

    def ask(script: list[dict[str, Any]]) -> requests.Response:
        llm_server.script = script
        llm_server.calls.clear()
        return box.get(f"http://api.shop.test/users/{next(user)}", timeout=TIMEOUT)

    def healthy() -> None:  # a good answer ends the run of failures the breaker counts
        r = ask([{"answer": GOOD}])
        assert r.status_code == 200 and r.json() == GOOD["body"]

    # Garbage: invalid JSON in the answer is repaired once, then refused.
    r = ask([{"raw": "Sure! {not json"}])
    assert r.status_code == 502 and r.json()["error"] == "AI_GENERATION_FAILED"
    assert len(llm_server.calls) == 2
    healthy()
    # Garbage on the wire: a body that is not the API's JSON, a body cut off mid-way.
    for step in ({"http_body": b"<html>upstream proxy error</html>"}, {"truncate": True}):
        r = ask([step])
        assert r.status_code == 502 and r.json()["error"] == "AI_PROVIDER_ERROR", r.text
        assert "internal error" not in r.json()["message"]
        healthy()
    # Slow: beyond ai.timeout gives 504 while mocks keep being answered.
    r = ask([{"delay": 3, "answer": GOOD}])
    assert r.status_code == 504 and r.json()["error"] == "AI_TIMEOUT"
    healthy()
    # Failing: 500s and garbage in a row trip the breaker; then 503 says so without calling
    # the provider.
    llm_server.script = [{"status": 500}, {"http_body": b"<html>"}, {"truncate": True}]
    llm_server.calls.clear()
    for _ in range(3):
        r = box.get(f"http://api.shop.test/users/{next(user)}", timeout=TIMEOUT)
        assert r.status_code == 502 and r.json()["error"] == "AI_PROVIDER_ERROR"
    assert len(llm_server.calls) == 3
    r = ask([{"status": 500}])
    assert r.status_code == 503 and r.json()["error"] == "AI_PROVIDER_UNAVAILABLE"
    assert "stopped calling it" in r.json()["message"] and int(r.headers["Retry-After"]) > 0
    assert llm_server.calls == []

    canary.finish()
    assert canary.errors() == []
    assert all(o.status_code == 200 for *_, o in canary.outcomes)  # type: ignore[union-attr]
    assert "sk-chaos" not in box.log()
    assert_alive(box)


# --- 4. recording while the upstream fails and the recorder is killed ------------------------


def recorded_paths(folder: Path) -> set[str]:
    """Paths of every mock in the session's files (each file must parse)."""
    paths: set[str] = set()
    for file in folder.glob("*.yaml"):
        doc = yaml.safe_load(file.read_text())
        for mock in doc["mocks"]:
            paths.add(mock["request"]["path"])
    return paths


def test_recording_survives_a_failing_upstream_and_sigkill(
    mockbox: MockBoxFactory, tmp_path: Path, chaos_upstream: ChaosUpstream
) -> None:
    mocks = tmp_path / "mocks"
    mocks.mkdir()
    box = mockbox(mocks, "--session", "chaos", command="record")
    folder = mocks / "recorded" / "chaos"
    modes = ("ok", "ok", "error", "reset", "ok", "garbage", "drop")
    answered: list[tuple[float, str]] = []  # (when, path) of requests the upstream answered
    lock = threading.Lock()

    def call(n: int) -> None:
        path = f"/item/{n}"
        chaos_upstream.modes[path] = modes[n % len(modes)]
        try:
            r = box.get(chaos_upstream.url(path), timeout=TIMEOUT)
        except requests.RequestException:
            return  # the recorder died under us
        if r.headers.get("X-MockBox-Source") == "upstream":  # a whole answer from the origin
            with lock:
                answered.append((time.monotonic(), path))

    for n in range(14):  # the recorder writes as it goes: no stop needed to see them
        call(n)
    wait_until(lambda: folder.is_dir() and len(recorded_paths(folder)) >= 8, TIMEOUT, "flushes")
    phase_one = {p for _, p in answered}
    assert recorded_paths(folder) == phase_one

    counter = iter(range(14, 10_000))
    stop = threading.Event()

    def load() -> None:
        while not stop.is_set():
            call(next(counter))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    box.proc.send_signal(signal.SIGKILL)
    killed = time.monotonic()
    box.proc.wait(TIMEOUT)
    stop.set()
    for t in threads:
        t.join(2 * TIMEOUT)

    files = sorted(p.name for p in folder.iterdir())
    assert all(name.endswith(".yaml") for name in files), files  # no half-written leftovers
    validate = subprocess.run(
        [str(BIN / "mockbox"), "validate", str(folder)], capture_output=True, text=True, timeout=60
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr
    kept = recorded_paths(folder)
    # Everything answered a flush interval (0.5 s, here with a margin) before the kill is kept.
    settled = {p for when, p in answered if when < killed - 1.0}
    assert settled > phase_one and settled <= kept, settled - kept
    assert kept <= {p for _, p in answered}  # and nothing that was not answered
