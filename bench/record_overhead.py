"""What recording costs: passthrough vs `mockbox record` vs `mockbox replay` of the recording,
and how fast a large HAR imports.

    .venv/bin/python bench/record_overhead.py [--duration 5] [--rounds 3] [--connections 8]

Each proxied row sends requests for 1,000 different paths to a local upstream (a threaded
Python server, the same for every row), so the recorder keeps writing new mocks throughout.
Rows are interleaved per round and the median is printed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BIN, Result, free_port, median_result, print_table, server, wrk


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


def _lua(upstream_port: int) -> str:
    return (
        "counter = 0\nrequest = function()\n  counter = counter + 1\n"
        f'  return wrk.format("GET", "http://127.0.0.1:{upstream_port}/items/" .. '
        "(counter % 1000))\nend\n"
    )


def _visit_all(proxy_port: int, upstream_port: int) -> None:
    import requests

    with requests.Session() as s:
        s.trust_env = False
        s.proxies = {"http": f"http://127.0.0.1:{proxy_port}"}
        for i in range(1000):
            s.get(f"http://127.0.0.1:{upstream_port}/items/{i}", timeout=10).raise_for_status()


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
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--har-entries", type=int, default=5000)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mockbox-bench-record-"))
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    up_port = upstream.server_address[1]
    confdir = work / "conf"

    def mockbox(command: str, port: int, *extra: str) -> list[str]:
        return [
            str(BIN / "mockbox"), command, "--mocks", str(work / "mocks"), "--port", str(port),
            "--admin-port", "0", "--set", f"confdir={confdir}",
            "--set", "termlog_verbosity=error", *extra,
        ]  # fmt: skip

    runs: dict[str, list[Result]] = {"(a) passthrough": [], "(b) record": [], "(c) replay": []}
    for round_no in range(args.rounds):
        shutil.rmtree(work / "mocks", ignore_errors=True)
        rows = {
            "(a) passthrough": ["run", "--unmatched", "upstream"],
            "(b) record": ["record", "--session", "bench"],
            "(c) replay": ["replay", "--session", "bench"],
        }
        for name, argv in rows.items():
            port = free_port()
            with server(mockbox(argv[0], port, *argv[1:]), port):
                if name == "(b) record":
                    _visit_all(port, up_port)  # so the replay row can answer every path
                result = wrk(
                    f"http://127.0.0.1:{up_port}/items/1",
                    proxy_port=port,
                    duration=args.duration,
                    connections=args.connections,
                    lua=_lua(up_port),
                )
            runs[name].append(result)
            print(f"round {round_no + 1}: {name}: {result.rps:.0f} req/s", file=sys.stderr)
    med = {name: median_result(r) for name, r in runs.items()}
    print_table(
        med,
        f"median of {args.rounds} rounds, {args.duration}s each, {args.connections} connections, "
        "1,000 distinct paths, wrk -t1 through the proxy",
    )
    a, b, c = med.values()
    print(f"\nb/a (recording vs passthrough)   {b.rps / a.rps:.3f}")
    print(f"c/a (replay vs passthrough)      {c.rps / a.rps:.3f}")

    har = work / "big.har"
    _har(args.har_entries, har)
    start = time.monotonic()
    subprocess.run(
        [str(BIN / "mockbox"), "import", "har", str(har), "--out", str(work / "har-out")],
        check=True,
        capture_output=True,
    )
    took = time.monotonic() - start
    mocks = sum(f.read_text().count("\n- name:") for f in (work / "har-out").glob("*.yaml"))
    print(
        f"\nimport har: {args.har_entries} entries → {mocks} mocks in {took:.2f}s "
        f"({args.har_entries / took:.0f} entries/s, including process start)"
    )
    upstream.shutdown()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
