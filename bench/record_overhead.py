"""What recording costs: passthrough vs `mockbox record` vs `mockbox replay` of the recording,
and how fast a large HAR imports.

    .venv/bin/python bench/record_overhead.py [--duration 5] [--rounds 3] [--connections 8]

Each proxied row asks for 1,000 different paths of a local upstream (a threaded Python server,
the same for every row), so the recorder keeps writing new mocks. Each round records a new
session (every path visited once before measuring, so the replay row can answer them all) and
replays it. Rows are interleaved per round and the median is printed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BIN, Row, bench_arguments, mockbox_command, run_rows

PATHS = 1000


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "items": list(range(20))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Sessions:
    """A new session name for each round's recording; the replay row serves the latest."""

    def __init__(self, mocks: Path, confdir: Path) -> None:
        self.mocks, self.confdir, self.round = mocks, confdir, 0

    def record(self, port: int) -> list[str]:
        self.round += 1
        name = f"r{self.round}"
        return mockbox_command(self.mocks, self.confdir, "--session", name, subcommand="record")(
            port
        )

    def replay(self, port: int) -> list[str]:
        name = f"r{self.round}"
        return mockbox_command(self.mocks, self.confdir, "--session", name, subcommand="replay")(
            port
        )


def _visit_all(upstream_port: int) -> Callable[[int], None]:
    def visit(proxy_port: int) -> None:
        with requests.Session() as s:
            s.trust_env = False
            s.proxies = {"http": f"http://127.0.0.1:{proxy_port}"}
            for i in range(PATHS):
                s.get(f"http://127.0.0.1:{upstream_port}/items/{i}", timeout=10).raise_for_status()

    return visit


def _lua(upstream_port: int) -> str:
    return (
        "counter = 0\nrequest = function()\n  counter = counter + 1\n"
        f'  return wrk.format("GET", "http://127.0.0.1:{upstream_port}/items/" .. '
        f"(counter % {PATHS}))\nend\n"
    )


def _har(entries: int, path: Path) -> None:
    items = [
        {
            "startedDateTime": "2026-01-01T00:00:00.000Z",
            "time": 1,
            "request": {
                "method": "GET",
                "url": f"https://api.har.test/items/{i % 2000}?page={i % 7}",
                "httpVersion": "HTTP/1.1",
                "headers": [{"name": "Authorization", "value": f"Bearer secret-{i % 3}"}],
                "queryString": [],
                "cookies": [],
                "headersSize": -1,
                "bodySize": 0,
            },
            "response": {
                "status": 200,
                "statusText": "OK",
                "httpVersion": "HTTP/1.1",
                "headers": [{"name": "Content-Type", "value": "application/json"}],
                "cookies": [],
                "content": {"size": 30, "mimeType": "application/json",
                            "text": json.dumps({"id": i % 2000, "n": i})},
                "redirectURL": "",
                "headersSize": -1,
                "bodySize": 30,
            },
            "cache": {},
            "timings": {"send": 0, "wait": 1, "receive": 0},
        }
        for i in range(entries)
    ]  # fmt: skip
    path.write_text(json.dumps({"log": {"version": "1.2", "entries": items}}))


def main() -> None:
    args = bench_arguments(__doc__.splitlines()[0])
    work = Path(tempfile.mkdtemp(prefix="mockbox-bench-record-"))
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    up_port = int(upstream.server_address[1])
    confdir = work / "conf"
    sessions = _Sessions(work / "mocks", confdir)
    url, lua = f"http://127.0.0.1:{up_port}/items/1", _lua(up_port)
    rows = {
        "(a) passthrough": Row(
            mockbox_command(work / "empty", confdir, "--unmatched", "upstream"), url, lua=lua
        ),
        "(b) record": Row(sessions.record, url, prepare=_visit_all(up_port), lua=lua),
        "(c) replay": Row(sessions.replay, url, lua=lua),
    }
    a, b, c = run_rows(rows, args).values()
    print(f"\nb/a (recording vs passthrough)   {b.rps / a.rps:.3f}")
    print(f"c/a (replay vs passthrough)      {c.rps / a.rps:.3f}")

    har = work / "big.har"
    entries = 5000
    _har(entries, har)
    start = time.monotonic()
    subprocess.run(
        [str(BIN / "mockbox"), "import", "har", str(har), "--out", str(work / "har-out")],
        check=True,
        capture_output=True,
    )
    took = time.monotonic() - start
    mocks = sum(f.read_text().count("\n- name:") for f in (work / "har-out").glob("*.yaml"))
    print(
        f"\nimport har: {entries} entries → {mocks} mocks in {took:.2f}s "
        f"({entries / took:.0f} entries/s, including process start)"
    )
    upstream.shutdown()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
