"""Shared fixtures: real MockBox processes, a real upstream server, a private redis-server,
headless Chromium. Tests drive MockBox the way users do: HTTP clients with a proxy, curl -x,
the `mockbox` command, the browser."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent  # the venv's mockbox, mitmdump, ...
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


# Rate limits high enough that tests of other features never meet a 429 (the example box is
# shared by a whole session); rate-limit tests set their own, or "" to let a config file decide.
TEST_RATE_LIMITS = {
    "MOCKBOX_RATE_LIMIT_AI": "10000/minute",
    "MOCKBOX_RATE_LIMIT_PUBLIC": "10000/minute",
}


def clean_env(**overrides: str) -> dict[str, str]:
    """The test runner's environment without MOCKBOX_* or proxy variables, plus `overrides`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MOCKBOX_")
        and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")
    }
    env.update(TEST_RATE_LIMITS)
    env.update(overrides)
    return env


@dataclass
class MockBox:
    """A running `mockbox run` (or `mitmdump -s addons/mockbox.py`) process."""

    proc: subprocess.Popen[bytes]
    port: int
    admin_port: int
    confdir: Path
    log_path: Path
    mocks: Path | None

    @property
    def proxy(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def ca_cert(self) -> Path:
        return self.confdir / "mitmproxy-ca-cert.pem"

    def client(self) -> requests.Session:
        """A requests session that goes through this proxy and trusts its CA."""
        s = requests.Session()
        s.trust_env = False
        s.proxies = {"http": self.proxy, "https": self.proxy}
        s.verify = str(self.ca_cert)
        return s

    def get(self, url: str, **kw: Any) -> requests.Response:
        with self.client() as s:
            return s.get(url, timeout=kw.pop("timeout", 10), **kw)

    def request(self, method: str, url: str, **kw: Any) -> requests.Response:
        with self.client() as s:
            return s.request(method, url, timeout=kw.pop("timeout", 10), **kw)

    def health(self) -> dict[str, Any]:
        r = requests.get(f"{self.admin}/healthz", timeout=5)
        r.raise_for_status()
        data: dict[str, Any] = r.json()
        return data

    def metrics(self) -> str:
        return requests.get(f"{self.admin}/metrics", timeout=5).text

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class MockBoxFactory:
    def __init__(self, workdir: Path, confdir: Path) -> None:
        self.workdir, self.confdir = workdir, confdir
        self.started: list[MockBox] = []

    def __call__(
        self,
        mocks: Path | None = None,
        *args: str,
        env: dict[str, str] | None = None,
        stock: bool = False,
        admin: bool = True,
        wait: bool = True,
        command: str = "run",
    ) -> MockBox:
        """Start MockBox on free ports; `stock` runs a plain mitmdump with addons/mockbox.py;
        `command` picks the mockbox subcommand (run, record, replay)."""
        port, admin_port = free_port(), free_port() if admin else 0
        log_path = self.workdir / f"mockbox-{port}.log"
        if stock:
            cmd = [str(BIN / "mitmdump"), "-q", "-s", str(REPO / "addons" / "mockbox.py")]
            cmd += ["-p", str(port), "--set", f"confdir={self.confdir}"]
            cmd += ["--set", f"mockbox_admin_port={admin_port}"]
            if mocks is not None:
                cmd += ["--set", f"mockbox_mocks={mocks}"]
        else:
            cmd = [str(BIN / "mockbox"), command, "--port", str(port)]
            cmd += ["--admin-port", str(admin_port), "--set", f"confdir={self.confdir}"]
            if mocks is not None:
                cmd += ["--mocks", str(mocks)]
        cmd += list(args)
        with log_path.open("wb") as log:
            proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env or clean_env(), cwd=self.workdir
            )
        box = MockBox(proc, port, admin_port, self.confdir, log_path, mocks)
        self.started.append(box)
        if wait:
            self.wait_ready(box)
        return box

    @staticmethod
    def wait_ready(box: MockBox, timeout: float = 90.0) -> None:
        def ready() -> bool:
            if box.proc.poll() is not None:
                raise RuntimeError(f"MockBox exited with {box.proc.returncode}:\n{box.log()}")
            url = f"{box.admin}/healthz" if box.admin_port else None
            try:
                if url:
                    return requests.get(url, timeout=1).status_code == 200
                with socket.create_connection(("127.0.0.1", box.port), timeout=1):
                    return True
            except (requests.ConnectionError, OSError):
                return False

        wait_until(ready, timeout, f"MockBox on port {box.port}")
        if box.admin_port:  # the proxy port binds before the admin port; check both
            wait_until(lambda: _port_open(box.port), timeout, "proxy port")

    def stop_all(self) -> None:
        for box in self.started:
            box.stop()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def confdir() -> Iterator[Path]:
    """One mitmproxy CA for the whole run (its files are written on first start)."""
    path = Path(tempfile.mkdtemp(prefix="mockbox-confdir-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def mockbox(tmp_path: Path, confdir: Path) -> Iterator[MockBoxFactory]:
    factory = MockBoxFactory(tmp_path, confdir)
    yield factory
    factory.stop_all()


@pytest.fixture(scope="session")
def example_box(tmp_path_factory: pytest.TempPathFactory, confdir: Path) -> Iterator[MockBox]:
    """MockBox serving the repository's example mocks/ as a strict mock server (404 for
    what no mock matches; the default, AI synthesis, has its own tests)."""
    factory = MockBoxFactory(tmp_path_factory.mktemp("example"), confdir)
    yield factory(REPO / "mocks", "--unmatched", "404")
    factory.stop_all()


# --- a real upstream HTTP server ------------------------------------------------------------


@dataclass
class Upstream:
    """A local HTTP server that records what reached it.

    GET /anything → 200 JSON echo. Paths starting with /status/N answer N. Handlers can be
    overridden per path with `upstream.routes[path] = (status, headers, body)`, and made slow
    with `upstream.delays[path] = seconds`; `stop()` takes the server down for good.
    """

    server: ThreadingHTTPServer
    hits: list[dict[str, Any]] = field(default_factory=list)
    routes: dict[str, tuple[int, dict[str, str], bytes]] = field(default_factory=dict)
    delays: dict[str, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stopped: bool = False

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def count(self, path: str | None = None) -> int:
        with self.lock:
            return sum(1 for h in self.hits if path is None or h["path"] == path)

    def stop(self) -> None:
        """Stop answering and close the port: connections are refused from now on, and the
        ones still open are closed without an answer."""
        self.stopped = True
        self.server.shutdown()
        self.server.server_close()


def _upstream_handler(upstream_ref: list[Upstream]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def _handle(self) -> None:
            up = upstream_ref[0]
            if up.stopped:
                self.close_connection = True
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            hit = {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": body.decode("utf-8", "replace"),
            }
            with up.lock:
                up.hits.append(hit)
            if self.path in up.delays:
                time.sleep(up.delays[self.path])
            route = up.routes.get(self.path)
            if route is not None:
                status, headers, payload = route
            elif self.path.startswith("/status/"):
                status, headers = int(self.path.split("/")[2]), {}
                payload = json.dumps({"status": status}).encode()
            else:
                status, headers = 200, {"Content-Type": "application/json"}
                payload = json.dumps({"echo": hit, "upstream": True}).encode()
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    return Handler


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    ref: list[Upstream] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _upstream_handler(ref))
    server.daemon_threads = True
    ref.append(Upstream(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield ref[0]
    server.shutdown()
    server.server_close()


# --- a private redis-server -------------------------------------------------------------------


@dataclass
class RedisServer:
    port: int
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (./scripts/test installs it)")
        self.proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: _port_open(self.port), 10, "redis-server")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        """Die as a crash would (SIGKILL: no shutdown, no goodbye to clients); `start()` brings
        it back, empty, on the same port."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None

    def client(self) -> Any:
        import redis

        return redis.Redis.from_url(self.url)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(free_port(), tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """A Redis URL with an empty database, for one test."""
    if redis_server.proc is None:
        redis_server.start()
    redis_server.client().flushall()
    return redis_server.url


# --- headless Chromium --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Any]:
    """Per module: while Playwright's sync API runs, its event loop blocks async tests."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture
def launch_browser(playwright_instance: Any) -> Iterator[Callable[..., Any]]:
    """Launch Debian's Chromium, optionally through a proxy; closed after the test."""
    browsers: list[Any] = []

    def launch(proxy: str | None = None, extra_args: tuple[str, ...] = ()) -> Any:
        kwargs: dict[str, Any] = {"executable_path": CHROMIUM, "args": CHROMIUM_ARGS}
        if extra_args:
            kwargs["args"] = [*CHROMIUM_ARGS, *extra_args]
        if proxy:
            kwargs["proxy"] = {"server": proxy}
        browser = playwright_instance.chromium.launch(**kwargs)
        browsers.append(browser)
        return browser

    yield launch
    for b in browsers:
        b.close()


def write_mocks(folder: Path, name: str, text: str) -> Path:
    """Write a mock file atomically (as an editor would), so a reload never sees half of it."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    tmp = folder / f".{name}.tmp"
    tmp.write_text(text)
    os.replace(tmp, target)
    return target


# --- a canary: a plain mock that must keep being served while something hostile runs ------

CANARY_MOCK = """
  - name: canary
    request: {method: GET, host: canary.test, path: /ping}
    response: {body: {ok: true}}
"""  # append to a `mocks:` list: the canary's own mock
CANARY_URL = "http://canary.test/ping"
CANARY_MAX_WAIT = 0.1  # the most a canary request may wait while other clients attack


@dataclass
class Canary:
    """Requests `url` through `box` every 50 ms on its own thread and keeps every wait, so a
    test can show that another client's hostile request never kept it waiting. Use as a
    context manager: `with Canary(box) as canary: attack(); ...; canary.assert_never_waited()`."""

    box: MockBox
    url: str = CANARY_URL
    waits: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Canary:
        with self.box.client() as warm:  # connect once first: the first connection is slower
            warm.get(self.url, timeout=10)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)

    def _run(self) -> None:
        with self.box.client() as session:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    r = session.get(self.url, timeout=30)
                    if r.status_code != 200:
                        self.failures.append(f"{r.status_code} {r.text[:200]}")
                except requests.RequestException as e:
                    self.failures.append(repr(e))
                self.waits.append(time.monotonic() - started)
                self._stop.wait(0.05)

    @property
    def worst(self) -> float:
        return max(self.waits, default=0.0)

    def assert_never_waited(self, limit: float = CANARY_MAX_WAIT, at_least: int = 5) -> None:
        """Every canary request was served, none waited longer than `limit`, and enough ran to
        have overlapped the attack."""
        assert self.failures == [], self.failures[:5]
        assert len(self.waits) >= at_least, f"only {len(self.waits)} canary requests ran"
        assert self.worst <= limit, f"the canary waited {self.worst:.3f} s (limit {limit} s)"


# --- local servers speaking the OpenAI and Anthropic wire protocols ---------------------------


@dataclass
class LLMServer:
    """Answers POST /v1/chat/completions (OpenAI) and POST /v1/messages (Anthropic) for the
    real SDKs. Each call takes the next scripted step (the last one repeats):
    {"answer": obj} | {"raw": text} | {"status": 500[, "message": text]} | {"delay": seconds, ...}
    | {"http_body": bytes} (a 200 whose body is not the API's JSON)
    | {"truncate": True} (announces a body, sends half of it and closes)
    | {"huge": n, "gzip": bool, "chunked": bool} (a chat completion whose content is n bytes,
      made as it is sent: with a Content-Length or chunked, gzip-compressed or not)."""

    server: ThreadingHTTPServer
    script: list[dict[str, Any]] = field(default_factory=lambda: [{"answer": {}}])
    calls: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: tuple[int, int] = (120, 80)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def next_step(self, call: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.calls.append(call)
            index = min(len(self.calls) - 1, len(self.script) - 1)
            return self.script[index]


_HUGE_HEAD = (
    b'{"id": "chatcmpl-huge", "object": "chat.completion", "created": 0, "model": "m", '
    b'"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", '
    b'"content": "'
)
_HUGE_TAIL = b'"}}], "usage": {"prompt_tokens": 1, "completion_tokens": 1}}'


def _huge_answer(size: int) -> Iterator[bytes]:
    """A chat completion whose content is `size` bytes, 64 KiB at a time."""
    yield _HUGE_HEAD
    for start in range(0, size, 65536):
        yield b"a" * min(65536, size - start)
    yield _HUGE_TAIL


@functools.cache
def gzipped_huge_answer(size: int) -> bytes:
    """The same, gzip-compressed (54 MB of one letter are 50 KB). Made once per size; a stall
    test calls it before its canary starts, so its own work is not measured."""
    packer = zlib.compressobj(wbits=31)
    return b"".join(packer.compress(p) for p in _huge_answer(size)) + packer.flush()


def _llm_handler(ref: list[LLMServer]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            llm = ref[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            headers = {k.lower(): v for k, v in self.headers.items()}
            step = llm.next_step({"path": self.path, "headers": headers, "body": body})
            if step.get("delay"):
                time.sleep(step["delay"])
            if step.get("status"):
                message = step.get("message", "boom")
                self._send(step["status"], {"error": {"type": "server_error", "message": message}})
                return
            if "huge" in step:
                self._send_huge(
                    int(step["huge"]), bool(step.get("gzip")), bool(step.get("chunked"))
                )
                return
            if "http_body" in step or step.get("truncate"):
                cut = b'{"id": "chatcmpl-cut", "object": "chat.completion", "choices": ['
                self._send_broken(step.get("http_body", cut), bool(step.get("truncate")))
                return
            answer = step.get("answer")
            text = step["raw"] if "raw" in step else json.dumps(answer)
            tin, tout = llm.tokens
            if self.path.endswith("/chat/completions"):
                self._send(
                    200,
                    {
                        "id": "chatcmpl-test",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "finish_reason": "stop",
                                "message": {"role": "assistant", "content": text},
                            }
                        ],
                        "usage": {
                            "prompt_tokens": tin,
                            "completion_tokens": tout,
                            "total_tokens": tin + tout,
                        },
                    },
                )
            else:
                block: dict[str, Any] = (
                    {"type": "text", "text": text}
                    if "raw" in step
                    else {
                        "type": "tool_use",
                        "id": "toolu_test",
                        "name": "http_response",
                        "input": answer,
                    }
                )
                self._send(
                    200,
                    {
                        "id": "msg_test",
                        "type": "message",
                        "role": "assistant",
                        "model": body.get("model"),
                        "content": [block],
                        "stop_reason": "tool_use",
                        "stop_sequence": None,
                        "usage": {"input_tokens": tin, "output_tokens": tout},
                    },
                )

        def _send_broken(self, body: bytes, truncated: bool) -> None:
            """A 200 with a body the SDK cannot use: not JSON, or cut off mid-way (twice the
            length sent is announced, then the connection closes)."""
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) * (2 if truncated else 1)))
            self.end_headers()
            self.wfile.write(body)

        def _send_huge(self, size: int, gzip: bool, chunked: bool) -> None:
            """A valid answer with `size` bytes of content, written until the client hangs up."""
            body, length = _huge_answer(size), len(_HUGE_HEAD) + size + len(_HUGE_TAIL)
            if gzip:
                packed = gzipped_huge_answer(size)
                body = (packed[i : i + 65536] for i in range(0, len(packed), 65536))
                length = len(packed)
            self.close_connection = True
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if gzip:
                    self.send_header("Content-Encoding", "gzip")
                if chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(length))
                self.end_headers()
                for part in body:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
                if chunked:
                    self.wfile.write(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client stopped reading: what a capped client does

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

    return Handler


@pytest.fixture
def llm_server() -> Iterator[LLMServer]:
    ref: list[LLMServer] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _llm_handler(ref))
    server.daemon_threads = True
    ref.append(LLMServer(server))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield ref[0]
    server.shutdown()
    server.server_close()
