"""Soak: minutes of mixed traffic through one `mockbox run`, its memory sampled throughout.

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 200] [--redis private|memory|URL]
                                   [--unmatched ai|upstream] [--sample 5]

A steady, moderate load (`--rate` requests a second, the point is memory and errors over time,
not peak throughput) from a few client threads with keep-alive connections, in this mix:
- mock:    templated mocks with path parameters, a new id on every request (distinct URLs);
- cache:   GETs of a fixed set of 50 URLs no mock answers: the first of each is synthesized
           (or, with `--unmatched upstream`, fetched from a local cacheable upstream), the
           rest are cache HITs;
- ai:      distinct unmatched paths (GET, POST, and PUTs the stateful AI remembers) through the
           offline provider; with `--unmatched upstream`, distinct upstream paths instead;
- limited: clients over the public limit (100/minute), a new set of API keys every 30 s:
           their 429s are expected and counted apart;
- admin:   /api/traffic, /metrics, /api/limits, /healthz on the admin port.
Every proxied request carries an `X-API-Key`, and the keys keep changing, so state kept per
client identity sees many of them. The MockBox process's RSS (VmRSS of /proc/PID/status) is
read every `--sample` seconds; at the end come the counts per kind, the errors (unexpected
statuses and connection errors), throughput, p50/p99, memory at start and end, and the memory
slope: least squares in MiB per minute over the second half of the run (after warm-up).
Aim: flat memory (slope <= `--flat` MiB/minute) and zero errors.

With `--redis private` (the default) a private redis-server is started on a free port, when
one is installed (else the run uses memory and says so); `memory` runs without Redis.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BIN, cpu_seconds, free_port, server
from ratelimit_cost import start_redis

MOCKS = """\
mocks:
  - name: get user
    request: {method: GET, host: api.soak.test, path: "/users/{id}"}
    response:
      body:
        id: "{{ path.id | int }}"
        name: "{{ fake.name() }}"
        email: "{{ fake.email() }}"
  - name: order item
    request: {method: GET, host: api.soak.test, path: "/orders/{order}/items/{item}"}
    response:
      headers: {X-Order: "{{ path.order }}"}
      body: {order: "{{ path.order }}", item: "{{ path.item | int }}", sku: "{{ fake.ean13() }}"}
  - name: get product
    request: {method: GET, host: shop.soak.test, path: "/products/{id}"}
    response:
      body: {id: "{{ path.id | int }}", title: "{{ fake.catch_phrase() }}", price: 12.5}
  - name: list products
    request: {method: GET, host: shop.soak.test, path: "/products"}
    response:
      body: [{id: 1, title: "a lamp", price: 12.5}]
  - name: list reviews
    request: {method: GET, host: shop.soak.test, path: "/reviews"}
    response:
      body: [{id: 1, product: 1, stars: 4, text: "bright enough"}]
"""
# Out of 100 requests. Admin calls are few: /api/traffic answers the whole log.
MIX = (("mock", 40), ("cache", 20), ("ai", 15), ("limited", 22), ("admin", 3))
CACHED_URLS = 50
LIMITED_EVERY = 30.0  # seconds a set of limited clients lives before the next set
LIMITED_CLIENTS = 4  # at once; each sends far more than 100/minute
ADMIN_PATHS = ("/api/traffic", "/metrics", "/api/limits", "/healthz")
MIB = 1024 * 1024


class Origin(BaseHTTPRequestHandler):
    """The upstream of `--unmatched upstream`: cacheable JSON for every path."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "n": len(self.path)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "max-age=3600")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@dataclass
class Tally:
    """What the clients saw; every thread adds to it under the lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    sent: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # "kind: what"
    limited: int = 0  # expected 429s
    hits: int = 0  # X-Cache-Status: HIT
    latencies: list[float] = field(default_factory=list)  # seconds, proxied requests
    examples: list[str] = field(default_factory=list)  # the first few errors, in full

    def add(
        self,
        kind: str,
        error: str | None,
        latency: float | None,
        limited: bool = False,
        hit: bool = False,
        detail: str = "",
    ) -> None:
        with self.lock:
            self.sent[kind] += 1
            if error is not None:
                self.errors[f"{kind}: {error}"] += 1
                if len(self.examples) < 5:
                    self.examples.append(f"{kind}: {error}: {detail[:300]}")
            self.limited += limited
            self.hits += hit
            if latency is not None and kind != "admin":
                self.latencies.append(latency)


class Client(threading.Thread):
    """One keep-alive connection to the proxy and one to the admin port, at rate/threads."""

    def __init__(self, run: Run, index: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.run_, self.index, self.interval = run, index, interval
        self.proxy: http.client.HTTPConnection | None = None
        self.admin: http.client.HTTPConnection | None = None

    def run(self) -> None:
        at = self.run_.start + self.index * self.interval / len(self.run_.clients)
        while at < self.run_.end:
            time.sleep(max(0.0, at - time.monotonic()))
            n = next(self.run_.numbers)
            self.once(self.run_.kinds[n % len(self.run_.kinds)], n)
            # Behind (a slow answer, a busy machine): the missed slots are dropped, not sent
            # in a burst, and the run ends on time; the throughput line shows the rate reached.
            at = max(at + self.interval, time.monotonic())

    def once(self, kind: str, n: int) -> None:
        run = self.run_
        if kind == "admin":
            path = ADMIN_PATHS[n % len(ADMIN_PATHS)]
            status, _headers, took, error, text = self.send(True, "GET", path, {}, None)
            run.tally.add(kind, error or _unexpected(status, {200}), took, detail=path + text)
            return
        method, url, headers, body, expected = run.request(kind, n)
        status, got, took, error, text = self.send(False, method, url, headers, body)
        if error is None and kind == "limited" and status == 429:
            run.tally.add(kind, None, took, limited=True)
            return
        hit = got.get("x-cache-status") == "HIT"
        problem = error or _unexpected(status, expected)
        run.tally.add(kind, problem, took, hit=hit, detail=f"{method} {url} {text}")

    def send(
        self, admin: bool, method: str, target: str, headers: dict[str, str], body: bytes | None
    ) -> tuple[int, dict[str, str], float | None, str | None, str]:
        """(status, headers, seconds, connection error, body text) of one request."""
        run = self.run_
        port = run.admin_port if admin else run.proxy_port
        conn = self.admin if admin else self.proxy
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if admin:
                self.admin = conn
            else:
                self.proxy = conn
        began = time.monotonic()
        try:
            conn.request(method, target, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            if admin:
                self.admin = None
            else:
                self.proxy = None
            return 0, {}, None, type(e).__name__, str(e)
        took = time.monotonic() - began
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, took, None, text


def _unexpected(status: int, expected: set[int]) -> str | None:
    return None if status in expected else f"status {status}"


class Run:
    def __init__(
        self, args: argparse.Namespace, proxy_port: int, admin_port: int, origin: str
    ) -> None:
        self.args = args
        self.proxy_port, self.admin_port, self.origin = proxy_port, admin_port, origin
        self.tally = Tally()
        self.numbers = itertools.count()
        self.kinds = [kind for kind, weight in MIX for _ in range(weight)]
        # Spread each kind over the hundred instead of bunching it.
        self.kinds = [self.kinds[(i * 37) % 100] for i in range(100)]
        self.start = time.monotonic() + 0.2
        self.end = self.start + args.minutes * 60
        threads = args.threads
        self.clients = [Client(self, i, threads / args.rate) for i in range(threads)]

    def request(self, kind: str, n: int) -> tuple[str, str, dict[str, str], bytes | None, set[int]]:
        """(method, absolute URL, headers, body, expected statuses) of request number n."""
        epoch = int((time.monotonic() - self.start) // LIMITED_EVERY)
        upstream = self.args.unmatched == "upstream"
        # Keys change all the time: each is used a few times (far below any limit) and then
        # never again, so per-client state sees a stream of new identities.
        headers = {"X-API-Key": f"{kind}-{n // 4}"}
        if kind == "mock":
            if n % 2:
                return "GET", f"http://api.soak.test/users/{n}", headers, None, {200}
            url = f"http://api.soak.test/orders/o{n % 9973}/items/{n}"
            return "GET", url, headers, None, {200}
        if kind == "limited":
            headers = {"X-API-Key": f"limited-{epoch}-{n % LIMITED_CLIENTS}"}
            return "GET", f"http://api.soak.test/users/{n % 100}", headers, None, {200}
        if kind == "cache":
            base = self.origin if upstream else "http://shop.soak.test"
            return "GET", f"{base}/reviews/{10**7 + n % CACHED_URLS}", headers, None, {200}
        if upstream:
            return "GET", f"{self.origin}/things/{n}", headers, None, {200}
        if n % 3 == 0:  # the stateful AI keeps the review, for later GETs of its URL
            body = json.dumps({"product": n % 100, "stars": n % 5}).encode()
            headers["Content-Type"] = "application/json"
            return "PUT", f"http://shop.soak.test/reviews/{n}", headers, body, {200, 201}
        if n % 3 == 1:
            body = json.dumps({"title": f"widget {n}", "price": n % 100}).encode()
            headers["Content-Type"] = "application/json"
            return "POST", "http://shop.soak.test/products", headers, body, {200, 201}
        return "GET", f"http://shop.soak.test/reviews/{n}", headers, None, {200}


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def slope_per_minute(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of RSS in MiB per minute."""
    if len(samples) < 2:
        return 0.0
    xs = [t / 60 for t, _ in samples]
    ys = [rss / MIB for _, rss in samples]
    return statistics.linear_regression(xs, ys).slope


def arguments() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=200.0, help="requests a second, all kinds")
    ap.add_argument("--threads", type=int, default=8, help="client threads (connections)")
    ap.add_argument("--redis", default="private", help="private (default), memory, or a URL")
    ap.add_argument("--unmatched", choices=("ai", "upstream"), default="ai")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    ap.add_argument("--flat", type=float, default=0.5, help="MiB/minute still called flat")
    ap.add_argument(
        "--state-mib",
        type=float,
        help="state.memory_max_bytes in MiB (memory state): a small cap fills during warm-up",
    )
    return ap.parse_args()


def main() -> None:
    args = arguments()
    work = Path(tempfile.mkdtemp(prefix="mockbox-soak-"))
    (work / "mocks").mkdir()
    (work / "mocks" / "soak.yaml").write_text(MOCKS)
    redis_proc = None
    redis_url = "" if args.redis == "memory" else args.redis
    if args.redis == "private":
        if shutil.which("redis-server") is None:
            print("redis-server is not installed: running with memory state", file=sys.stderr)
            redis_url = ""
        else:
            redis_proc, redis_url = start_redis(work)
    origin = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    proxy_port, admin_port = free_port(), free_port()
    command = [
        str(BIN / "mockbox"), "run", "--mocks", str(work / "mocks"),
        "--port", str(proxy_port), "--admin-port", str(admin_port),
        "--unmatched", args.unmatched,
        "--set", f"confdir={work / 'conf'}", "--set", "termlog_verbosity=error",
        *(["--redis", redis_url] if redis_url else []),
    ]  # fmt: skip
    if args.state_mib is not None:
        config = work / "mockbox.yaml"
        config.write_text(f"state: {{memory_max_bytes: {int(args.state_mib * MIB)}}}\n")
        command += ["--config", str(config)]
    backend = f"redis ({redis_url})" if redis_url else "memory"
    if args.state_mib is not None and not redis_url:
        backend += f" (cap {args.state_mib:g} MiB)"
    print(
        f"soak: {args.minutes:g} min at {args.rate:g} req/s, state in {backend}, "
        f"unmatched {args.unmatched}",
        file=sys.stderr,
    )
    try:
        with server(command, proxy_port) as proc:
            run = Run(args, proxy_port, admin_port, f"http://127.0.0.1:{origin.server_address[1]}")
            redis_start = rss_bytes(redis_proc.pid) if redis_proc else 0
            cpu = cpu_seconds(proc.pid)
            samples = drive(run, proc.pid)
            cpu = cpu_seconds(proc.pid) - cpu
            redis_end = rss_bytes(redis_proc.pid) if redis_proc else 0
    finally:
        origin.shutdown()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait()
    report(run, samples, backend)
    total = sum(run.tally.sent.values())
    print(
        f"MockBox CPU: {cpu / samples[-1][0]:.0%} of a core, "
        f"{cpu / max(1, total) * 1e6:.0f} us per request"
    )
    if redis_proc is not None:  # not judged: Redis holds the caches by design
        print(f"redis-server RSS: start {redis_start / MIB:.1f} MiB, end {redis_end / MIB:.1f} MiB")


def drive(run: Run, pid: int) -> list[tuple[float, int]]:
    """Run the clients to the end; (seconds since start, RSS) every `--sample` seconds."""
    samples = [(0.0, rss_bytes(pid))]
    for client in run.clients:
        client.start()
    next_at = run.start + run.args.sample
    while any(c.is_alive() for c in run.clients):
        time.sleep(max(0.0, min(next_at, run.end) - time.monotonic()))
        now = time.monotonic()
        if now >= next_at:
            samples.append((now - run.start, rss_bytes(pid)))
            next_at += run.args.sample
            minute = int(now - run.start) // 60
            if int(now - run.start - run.args.sample) // 60 != minute:
                with run.tally.lock:
                    sent = sum(run.tally.sent.values())
                    errors = sum(run.tally.errors.values())
                print(
                    f"  {now - run.start:6.0f}s  RSS {samples[-1][1] / MIB:7.1f} MiB  "
                    f"sent {sent}  errors {errors}",
                    file=sys.stderr,
                )
        if now >= run.end:
            for client in run.clients:
                client.join()
    samples.append((time.monotonic() - run.start, rss_bytes(pid)))
    return samples


def report(run: Run, samples: list[tuple[float, int]], backend: str) -> None:
    tally, args = run.tally, run.args
    elapsed = samples[-1][0]
    total = sum(tally.sent.values())
    errors = sum(tally.errors.values())
    lat = sorted(tally.latencies) or [0.0]
    p50 = lat[len(lat) // 2] * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    half = [s for s in samples if s[0] >= elapsed / 2]
    slope = slope_per_minute(half)
    print(f"\nsoak: {elapsed / 60:.1f} min, state in {backend}, unmatched {args.unmatched}")
    print("requests sent: " + ", ".join(f"{k} {tally.sent[k]}" for k, _ in MIX))
    print(f"  cache HITs {tally.hits}, expected 429s (limited clients) {tally.limited}")
    print(f"errors: {errors}" + "".join(f"\n  {k}: {v}" for k, v in tally.errors.most_common()))
    for example in tally.examples:
        print(f"  e.g. {example}")
    print(
        f"throughput: {total / elapsed:.0f} req/s (target {args.rate:g});"
        f"  proxied p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    start_mib, end_mib = samples[0][1] / MIB, samples[-1][1] / MIB
    peak = max(s[1] for s in samples) / MIB
    print(f"memory (RSS): start {start_mib:.1f} MiB, end {end_mib:.1f} MiB, peak {peak:.1f} MiB")
    print(f"memory slope, second half ({len(half)} samples): {slope:+.3f} MiB/min")
    flat = slope <= args.flat
    verdict = "PASS" if flat and errors == 0 else "FAIL"
    print(
        f"verdict: {verdict} (aim: flat memory, slope <= {args.flat:g} MiB/min: "
        f"{'yes' if flat else 'no'}; zero errors: {'yes' if errors == 0 else 'no'})"
    )


if __name__ == "__main__":
    main()
