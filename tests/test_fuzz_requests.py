"""A request fuzzer through a running proxy, over raw sockets (HTTP clients refuse to send
malformed requests): odd methods and targets, long and repeated headers, bytes that are not
UTF-8, broken framing, huge, truncated and slow requests, pipelining, HTTP/1.0, and hostile
input for body matchers and templates. Each case has a right answer (mitmproxy's 4xx for what
is not HTTP, MockBox's JSON for what is), and throughout a canary client keeps being served."""

from __future__ import annotations

import http.client
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import MockBox, MockBoxFactory, write_mocks

MOCKS = """
mocks:
  - name: canary
    request: {method: GET, host: canary.test, path: /ping}
    response: {body: {ok: true}}
  - name: order one
    request:
      method: POST
      host: api.fuzz.test
      path: /orders
      body: {jsonpath: $.id, equals: 1}
    response: {status: 201, body: {created: true}}
  - name: echo
    request: {host: api.fuzz.test, path: "/echo/{id}"}
    response:
      headers: {X-Echo: "{{ headers['x-h'] | default('none') }}"}
      body: {id: "{{ path.id }}", q: "{{ query.q }}", title: "{{ body.title }}"}
"""

TIMEOUT = 10.0  # generous: only a hang fails a case
MB = 1024 * 1024
FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,
    ],
)


@dataclass
class Reply:
    """What came back on one connection: parsed responses, then whether it was closed."""

    responses: list[tuple[int, dict[str, str], bytes]]
    closed: bool

    @property
    def status(self) -> int | None:
        return self.responses[0][0] if self.responses else None

    @property
    def headers(self) -> dict[str, str]:
        return self.responses[0][1]

    def json(self, index: int = 0) -> Any:
        return json.loads(self.responses[index][2])


class _Buffered:
    """Lets several http.client.HTTPResponse read one socket's stream in turn (pipelining):
    each gets the same buffered reader, and closing it leaves the stream open."""

    def __init__(self, stream: io.BufferedReader) -> None:
        self.stream = stream

    def makefile(self, mode: str) -> _Buffered:
        return self

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)

    def close(self) -> None:
        pass


@dataclass
class Fuzzer:
    box: MockBox
    cases: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(
        self,
        data: bytes | list[bytes],
        *,
        responses: int = 1,
        pause: float = 0.0,
        close_after_send: bool = False,
    ) -> Reply:
        """Send `data` (pieces `pause` seconds apart), then read up to `responses` answers."""
        with self.lock:
            self.cases += 1
        pieces = [data] if isinstance(data, bytes) else data
        with socket.create_connection(("127.0.0.1", self.box.port), timeout=TIMEOUT) as sock:
            try:
                for piece in pieces:
                    sock.sendall(piece)
                    if pause:
                        time.sleep(pause)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the proxy gave up on us first: read what it said
            if close_after_send:
                sock.shutdown(socket.SHUT_WR)
            return read_replies(sock, responses)


def read_replies(sock: socket.socket, count: int) -> Reply:
    stream = sock.makefile("rb")
    got: list[tuple[int, dict[str, str], bytes]] = []
    for _ in range(count):
        response = http.client.HTTPResponse(_Buffered(stream))  # type: ignore[arg-type]
        try:
            response.begin()
            body = response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, http.client.BadStatusLine):
            return Reply(got, True)
        got.append((response.status, {k.lower(): v for k, v in response.getheaders()}, body))
    try:
        closed = stream.read(1) == b""
    except (TimeoutError, ConnectionResetError):
        closed = False
    return Reply(got, closed)


def request(
    method: bytes = b"GET",
    target: bytes = b"http://canary.test/ping",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
    version: bytes = b"HTTP/1.1",
    length: int | None = None,
) -> bytes:
    lines = [method + b" " + target + b" " + version]
    for name, value in headers if headers is not None else [(b"Host", b"canary.test")]:
        lines.append(name + b": " + value)
    if body or length is not None:
        lines.append(b"Content-Length: " + str(len(body) if length is None else length).encode())
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def post(target: bytes, body: bytes, **kw: Any) -> bytes:
    return request(b"POST", target, [(b"Host", b"api.fuzz.test")], body, **kw)


def assert_mockbox_json(reply: Reply, status: int) -> Any:
    assert reply.status == status, reply.responses
    assert reply.headers["x-mockbox-source"] == "mock"
    return reply.json()


def assert_refused_by_mitmproxy(reply: Reply) -> None:
    """Not HTTP: mitmproxy answers 400 itself (or closes) and nothing reaches a mock."""
    if reply.responses:
        assert reply.status == 400, reply.responses
        assert "x-mockbox-source" not in reply.headers
    assert reply.closed


def assert_sane(reply: Reply) -> None:
    """Whatever was sent: mitmproxy's 400 for what is not HTTP, otherwise MockBox's own JSON
    (a mock, or the 404 that lists the nearest mocks). Never a 5xx: with `--unmatched 404`
    nothing is forwarded, so a 502 means an addon failed and the request leaked upstream."""
    assert reply.responses or reply.closed
    for status, headers, body in reply.responses:
        if "x-mockbox-source" in headers:
            assert status in (200, 201, 404), (status, body[:500])
            json.loads(body)
        else:
            assert status == 400, (status, body[:500])


# --- the proxy under fuzz, and a canary that must keep being served -------------------------


@dataclass
class Canary:
    box: MockBox
    stop: threading.Event = field(default_factory=threading.Event)
    served: int = 0
    failures: list[str] = field(default_factory=list)
    slowest: float = 0.0

    def run(self) -> None:
        with self.box.client() as session:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    r = session.get("http://canary.test/ping", timeout=TIMEOUT)
                    if r.status_code != 200 or r.json() != {"ok": True}:
                        self.failures.append(f"{r.status_code} {r.text[:200]}")
                    else:
                        self.served += 1
                except requests.RequestException as e:
                    self.failures.append(repr(e))
                self.slowest = max(self.slowest, time.monotonic() - started)
                self.stop.wait(0.05)


@pytest.fixture(scope="module")
def fuzz_box(
    tmp_path_factory: pytest.TempPathFactory, confdir: Path, request: pytest.FixtureRequest
) -> Iterator[tuple[Fuzzer, Canary]]:
    workdir = tmp_path_factory.mktemp("fuzz")
    write_mocks(workdir / "mocks", "fuzz.yaml", MOCKS)
    factory = MockBoxFactory(workdir, confdir)
    box = factory(workdir / "mocks", "--unmatched", "404")
    canary = Canary(box)
    thread = threading.Thread(target=canary.run, daemon=True)
    thread.start()
    fuzzer = Fuzzer(box)
    try:
        yield fuzzer, canary
    finally:
        canary.stop.set()
        thread.join(TIMEOUT)
        capture = request.config.pluginmanager.get_plugin("capturemanager")
        with capture.global_and_fixture_disabled():  # the figure the closing note quotes
            print(
                f"\nrequest fuzzer: {fuzzer.cases} fuzz cases sent; canary served "
                f"{canary.served} requests, {len(canary.failures)} failed, "
                f"slowest {canary.slowest:.2f}s"
            )
        factory.stop_all()


@pytest.fixture
def fuzz(fuzz_box: tuple[Fuzzer, Canary]) -> Iterator[Fuzzer]:
    """After every case group: the canary was always served and the proxy still answers its
    health probes on both ports."""
    fuzzer, canary = fuzz_box
    box = fuzzer.box
    seen = len(box.log())
    yield fuzzer
    assert canary.failures == [], canary.failures[:5]
    assert box.proc.poll() is None, box.log()[-3000:]
    probe = box.get("http://anything.test/__mockbox/healthz")
    assert probe.status_code == 200 and probe.json()["status"] == "ok"
    assert box.health()["status"] == "ok"
    log = box.log()[seen:]
    assert "Traceback" not in log and "Addon error" not in log, log[-3000:]


# --- request lines ---------------------------------------------------------------------------


def test_methods(fuzz: Fuzzer) -> None:
    assert assert_mockbox_json(fuzz.send(request()), 200) == {"ok": True}
    # Methods match case-insensitively; other tokens are not GET, so no mock matches.
    assert assert_mockbox_json(fuzz.send(request(b"get")), 200) == {"ok": True}  # lenient
    for method in (b"FOO", b"M-SEARCH", b"PURGE", b"X" * 8000):
        data = assert_mockbox_json(fuzz.send(request(method)), 404)
        assert data["error"] == "NO_MOCK_MATCHED"
    assert_refused_by_mitmproxy(fuzz.send(request(b"G ET")))
    assert_refused_by_mitmproxy(fuzz.send(request(b"")))
    # Bytes that are not UTF-8 in the method: the 404 still says which request it was.
    data = assert_mockbox_json(fuzz.send(request(b"G\xffT")), 404)
    assert data["request"]["method"] == "G\udcffT"


def test_targets(fuzz: Fuzzer) -> None:
    origin = request(target=b"/ping", headers=[(b"Host", b"canary.test")])
    assert assert_mockbox_json(fuzz.send(origin), 200) == {"ok": True}
    # The absolute-form target outranks the Host header.
    other_host = request(headers=[(b"Host", b"elsewhere.test")])
    assert assert_mockbox_json(fuzz.send(other_host), 200) == {"ok": True}
    assert_refused_by_mitmproxy(fuzz.send(request(target=b"/ping", headers=[])))
    assert_refused_by_mitmproxy(fuzz.send(request(target=b"*", headers=[])))
    long_url = b"http://canary.test/" + b"a/" * 50_000
    data = assert_mockbox_json(fuzz.send(request(target=long_url)), 404)
    assert data["error"] == "NO_MOCK_MATCHED"
    many_params = b"http://api.fuzz.test/echo/1?" + b"&".join(b"q=%d" % i for i in range(5000))
    assert assert_mockbox_json(fuzz.send(request(target=many_params)), 200)["q"] == "0"
    # Invalid percent-encoding and encoded non-UTF-8 bytes are passed through, not decoded.
    for target, segment in (
        (b"http://api.fuzz.test/echo/%zz", "%zz"),
        (b"http://api.fuzz.test/echo/%ff%fe", "\ufffd\ufffd"),
        (b"http://api.fuzz.test/echo/%", "%"),
        (b"http://api.fuzz.test/echo/%00", "\x00"),
    ):
        data = assert_mockbox_json(fuzz.send(request(target=target + b"?q=%e9%zz")), 200)
        assert data["id"] in (segment, target.rsplit(b"/", 1)[1].decode()), data
    # Raw non-UTF-8 bytes in the target are not a valid request line for mitmproxy.
    assert_refused_by_mitmproxy(fuzz.send(request(target=b"http://api.fuzz.test/echo/\xff")))
    for version in (b"HTTP/1.0", b"HTTP/9.9"):
        one_oh = request(version=version, headers=[])
        assert assert_mockbox_json(fuzz.send(one_oh), 200) == {"ok": True}
    assert_refused_by_mitmproxy(fuzz.send(request(version=b"HTTP/x")))
    for bad in (
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",  # an HTTP/2 preface on an HTTP/1 port
        b"CONNECT not a host HTTP/1.1\r\nHost: x\r\n\r\n",
        b"CONNECT canary.test:99999 HTTP/1.1\r\n\r\n",
        request(target=b"http://user:pw@canary.test/ping"),
        request(target=b"http://canary.test:99999/ping"),
        request(target=b"http://[::1/ping"),
        request(target=b"http:///ping"),
        request(target=b"ftp://canary.test/ping"),
    ):
        assert_refused_by_mitmproxy(fuzz.send(bad))
    bare_lf = b"GET http://canary.test/ping HTTP/1.1\nHost: canary.test\nConnection: close\n\n"
    assert assert_mockbox_json(fuzz.send(bare_lf), 200) == {"ok": True}


# --- headers ---------------------------------------------------------------------------------


def test_headers(fuzz: Fuzzer) -> None:
    repeated = [(b"Host", b"canary.test")] + [(b"X-Repeat", b"%d" % i) for i in range(2000)]
    assert assert_mockbox_json(fuzz.send(request(headers=repeated)), 200) == {"ok": True}
    long_value = [(b"Host", b"canary.test"), (b"X-Long", b"v" * 200_000)]
    assert assert_mockbox_json(fuzz.send(request(headers=long_value)), 200) == {"ok": True}
    for bad_name in (b"Bad Header", b"Bad\x01", b"B\xffd", b"(x)", b""):
        headers = [(b"Host", b"canary.test"), (bad_name, b"x")]
        assert_refused_by_mitmproxy(fuzz.send(request(headers=headers)))
    for odd in (
        [(b"Expect", b"100-continue")],
        [(b"Upgrade", b"websocket"), (b"Connection", b"Upgrade")],
        [(b"X-Folded", b"a\r\n folded")],  # obsolete line folding
        [(b"Content-Encoding", b"gzip"), (b"Content-Length", b"4")],  # and the body is not
    ):
        data = request(headers=[(b"Host", b"canary.test"), *odd])
        assert assert_mockbox_json(fuzz.send(data + b"abcd"), 200) == {"ok": True}
    # Non-UTF-8 header values reach templates as replacement characters, never a crash.
    hostile = [(b"Host", b"api.fuzz.test"), (b"X-H", b"\xff\xfe{{ 7*7 }}")]
    reply = fuzz.send(request(target=b"http://api.fuzz.test/echo/1", headers=hostile))
    assert_mockbox_json(reply, 200)
    assert "{{ 7*7 }}" in reply.headers["x-echo"] and "49" not in reply.headers["x-echo"]


# --- bodies and framing ----------------------------------------------------------------------


def test_framing(fuzz: Fuzzer) -> None:
    target = b"http://api.fuzz.test/orders"
    good = b'{"id": 1}'
    assert assert_mockbox_json(fuzz.send(post(target, good)), 201) == {"created": True}
    for length in (b"5, 6", b"abc", b"-1", b"99999999999999999999999"):
        headers = [(b"Host", b"api.fuzz.test"), (b"Content-Length", length)]
        assert_refused_by_mitmproxy(fuzz.send(request(b"POST", target, headers, good)))
    chunked = [(b"Host", b"api.fuzz.test"), (b"Transfer-Encoding", b"chunked")]
    ok = request(b"POST", target, chunked) + b"9\r\n" + good + b"\r\n0\r\n\r\n"
    assert assert_mockbox_json(fuzz.send(ok), 201) == {"created": True}
    for broken in (b"zz\r\nabc\r\n0\r\n\r\n", b"3\r\nabcdef\r\n0\r\n\r\n", b"-1\r\n\r\n"):
        assert_refused_by_mitmproxy(fuzz.send(request(b"POST", target, chunked) + broken))
    both = [*chunked, (b"Content-Length", b"9")]
    assert_refused_by_mitmproxy(fuzz.send(request(b"POST", target, both) + b"0\r\n\r\n"))
    # A body shorter than its Content-Length: the client closes mid-body; nothing answers it.
    short = fuzz.send(post(target, b'{"id"', length=9), close_after_send=True)
    assert short.responses == [] and short.closed
    # Longer than announced: the rest is read as the next request, which is not HTTP.
    longer = fuzz.send(post(target, good + b"garbage\r\n\r\n", length=9), responses=2)
    assert longer.status == 201
    assert len(longer.responses) == 1 or longer.responses[1][0] == 400


def test_huge_and_truncated_bodies(fuzz: Fuzzer) -> None:
    target = b"http://api.fuzz.test/orders"
    padding = b"a" * (5 * MB)
    huge = b'{"id": 1, "pad": "' + padding + b'"}'
    # Past matching.max_body_bytes (512 KiB) body matchers do not look, and the 404 says so.
    refused = assert_mockbox_json(fuzz.send(post(target, huge)), 404)["nearest"][0]
    assert refused["mock"] == "order one" and refused["reasons"] == [
        f"body is {len(huge)} bytes, more than the 524288 that body matchers look at "
        "(matching.max_body_bytes)"
    ]
    big = b'{"id": 1, "pad": "' + padding[: MB // 4] + b'"}'
    assert assert_mockbox_json(fuzz.send(post(target, big)), 201) == {"created": True}
    not_json = fuzz.send(post(target, padding))
    assert assert_mockbox_json(not_json, 404)["error"] == "NO_MOCK_MATCHED"
    # The client sends 2 MB of an announced 8 MB and goes away.
    cut = post(target, b"", length=8 * MB) + padding[: 2 * MB]
    reply = fuzz.send(cut, close_after_send=True)
    assert reply.responses == [] and reply.closed
    # An absurd announced length: refused or waited for, never allocated up front.
    absurd = post(target, b"", length=10**15) + b"{"
    reply = fuzz.send(absurd, close_after_send=True)
    assert reply.status in (None, 400, 413)


def test_json_path_matchers_with_bodies_that_are_not_json(fuzz: Fuzzer) -> None:
    target = b"http://api.fuzz.test/orders"
    for body in (
        b"{bad json",
        b"\xff\xfe\x00{",
        b'{"id": 1',
        b"[" * 100_000 + b"]" * 100_000,  # deeper than the JSON parser recurses
        b'{"id": ' + b"9" * 10_000 + b"}",  # longer than int() converts by default
        b'{"id": NaN}',
        b'{"id": 1, "id": 2}',
        b"",
        b"null",
    ):
        reply = fuzz.send(post(target, body))
        assert assert_mockbox_json(reply, 404)["error"] == "NO_MOCK_MATCHED", body[:40]


def test_templates_fed_hostile_input(fuzz: Fuzzer) -> None:
    """Request values are data to a template, never templates themselves."""
    hostile = [
        "{{ 7*7 }}",
        "{% for x in range(10**9) %}x{% endfor %}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ config }}{{ self }}",
        "\x00\ud800",
        "x" * 100_000,
    ]
    for text in hostile:
        body = json.dumps({"title": text}).encode()
        reply = fuzz.send(post(b"http://api.fuzz.test/echo/7?q={{7*7}}", body))
        data = assert_mockbox_json(reply, 200)
        assert data["id"] == "7" and data["q"] == "{{7*7}}"
        assert data["title"] in (text, text.encode("utf-8", "replace").decode("utf-8", "replace"))
    # A body that is not JSON is text: still data, never evaluated.
    for raw in (b"{{ 7*7 }}", b"\xff\xfe{% raw %}"):
        data = assert_mockbox_json(fuzz.send(post(b"http://api.fuzz.test/echo/8", raw)), 200)
        assert data["id"] == "8" and "49" not in json.dumps(data)


# --- connections -----------------------------------------------------------------------------


def test_pipelined_requests(fuzz: Fuzzer) -> None:
    keep = [(b"Host", b"canary.test")]
    one = b"GET http://canary.test/ping HTTP/1.1\r\nHost: canary.test\r\n\r\n"
    two = b"POST http://api.fuzz.test/orders HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n"
    reply = fuzz.send(one + two + b'{"id": 1}' + one + request(headers=keep), responses=4)
    assert [r[0] for r in reply.responses] == [200, 201, 200, 200]
    assert json.loads(reply.responses[1][2]) == {"created": True}
    assert reply.closed
    # A bad request in the middle of a pipeline: the ones before it are answered.
    reply = fuzz.send(one + b"NOT HTTP AT ALL\r\n\r\n" + one, responses=3)
    assert [r[0] for r in reply.responses][:2] == [200, 400]


def test_slow_clients_do_not_stall_others(fuzz: Fuzzer) -> None:
    """Slowloris: several clients send one byte every 100 ms while the canary (checked after
    this test) and a normal client keep being served."""
    slow = b"GET /ping HTTP/1.1\r\nHost: canary.test\r\nConnection: close\r\n\r\n"
    replies: list[Reply] = []

    def crawl() -> None:
        replies.append(fuzz.send([bytes([b]) for b in slow], pause=0.1))

    threads = [threading.Thread(target=crawl) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    assert assert_mockbox_json(fuzz.send(request()), 200) == {"ok": True}
    for t in threads:
        t.join(3 * TIMEOUT)
    assert [r.status for r in replies] == [200] * 4
    # A client that opens a connection and sends nothing ties up nothing else.
    with socket.create_connection(("127.0.0.1", fuzz.box.port), timeout=TIMEOUT):
        assert assert_mockbox_json(fuzz.send(request()), 200) == {"ok": True}


# --- generated cases -------------------------------------------------------------------------

TOKEN = st.text(
    alphabet="!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    min_size=1,
    max_size=40,
)
ANY_BYTES = st.binary(min_size=0, max_size=60).map(
    lambda b: b.replace(b"\r", b"").replace(b"\n", b"")
)
PATH = st.lists(
    st.one_of(
        st.sampled_from([b"echo", b"orders", b"ping", b"%zz", b"%ff", b"%", b"..", b"{id}", b""]),
        ANY_BYTES,
    ),
    max_size=6,
).map(lambda parts: b"/" + b"/".join(p.replace(b" ", b"") for p in parts))


@FUZZ
@given(
    method=st.one_of(TOKEN.map(str.encode), ANY_BYTES),
    host=st.sampled_from([b"canary.test", b"api.fuzz.test", b"unknown.test"]),
    path=PATH,
    headers=st.lists(st.tuples(st.one_of(TOKEN.map(str.encode), ANY_BYTES), ANY_BYTES), max_size=8),
    body=st.one_of(st.just(b""), st.binary(max_size=2000), st.just(b'{"id": 1}')),
)
def test_generated_requests(
    fuzz: Fuzzer,
    method: bytes,
    host: bytes,
    path: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
) -> None:
    target = b"http://" + host + path
    assert_sane(fuzz.send(request(method, target, [(b"Host", host), *headers], body)))
