"""Cache-HIT throughput beside the floor and mock serving, in one run.

    .venv/bin/python bench/cache_throughput.py [--duration 5] [--rounds 3] [--connections 8]

Rows: (a) the floor (lean master, fixed response), (b) a templated mock, (c) a cache HIT on the
memory backend, (d) a cache HIT on Redis (a private redis-server on a free port). The cache
rows run `--unmatched upstream` over the same 10 mocks as (b), so every request is first
looked up in the mock index and then answered from the cache; a local upstream answers
`Cache-Control: max-age=3600` and is asked once per server start. Rows are interleaved round
by round and the median of the rounds is printed, because these machines are shared and noisy.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    Row,
    bench_arguments,
    floor_command,
    free_port,
    mockbox_command,
    run_rows,
    wait_port,
)
from mock_throughput import TARGET, write_mocks

BODY = b'{"id": 42, "name": "user-42"}'


class Origin(BaseHTTPRequestHandler):
    """The upstream: a cacheable answer the size of the mock's."""

    protocol_version = "HTTP/1.1"
    hits = 0

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        Origin.hits += 1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "max-age=3600")
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)


def expect_hit(url: str) -> Callable[[int], None]:
    """Before measuring: ask twice through the proxy; the second answer must be a HIT."""

    def prepare(proxy_port: int) -> None:
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{proxy_port}"})
        )
        for _ in range(2):
            with opener.open(url, timeout=10) as r:
                r.read()
                state = r.headers.get("X-Cache-Status")
        if state != "HIT":
            raise SystemExit(f"expected a cache HIT for {url}, got {state}")

    return prepare


def main() -> None:
    args = bench_arguments(__doc__.splitlines()[0])
    work = Path(tempfile.mkdtemp(prefix="mockbox-bench-cache-"))
    write_mocks(work / "m10", 10)
    confdir = work / "conf"

    origin = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    cached = f"http://127.0.0.1:{origin.server_address[1]}/users/42"

    redis_port = free_port()
    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        raise SystemExit("redis-server is not installed: apt-get install redis-server")
    redis = subprocess.Popen(
        [
            redis_bin,
            "--port",
            str(redis_port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(work),
        ],
        stdout=subprocess.DEVNULL,
    )
    wait_port(redis_port, redis)
    redis_url = f"redis://127.0.0.1:{redis_port}/0"

    rows = {
        "(a) floor: lean master, fixed response": Row(floor_command, TARGET),
        "(b) mockbox run, templated mock, 10 mocks": Row(
            mockbox_command(work / "m10", confdir), TARGET
        ),
        "(c) mockbox run, cache HIT, memory": Row(
            mockbox_command(work / "m10", confdir, "--unmatched", "upstream"),
            cached,
            expect_hit(cached),
        ),
        "(d) mockbox run, cache HIT, redis": Row(
            mockbox_command(work / "m10", confdir, "--unmatched", "upstream", "--redis", redis_url),
            cached,
            expect_hit(cached),
        ),
    }
    try:
        med = run_rows(rows, args)
    finally:
        redis.terminate()
        redis.wait(timeout=10)
        origin.shutdown()
    a, b, c, d = med.values()
    print(f"\nc/b (cache HIT memory vs mock)     {c.rps / b.rps:.3f}   aim >= 1.0")
    print(f"d/b (cache HIT redis vs mock)      {d.rps / b.rps:.3f}")
    print(f"c/a (cache HIT memory vs floor)    {c.rps / a.rps:.3f}")
    # The memory rows ask once per server start; Redis keeps its entry from round to round.
    print(f"upstream requests: {Origin.hits} (expected {args.rounds + 1})")


if __name__ == "__main__":
    main()
