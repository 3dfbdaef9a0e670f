"""The editor's costs: what the traffic log adds to every proxied request, and how long a save
through /api/mocks takes (check, splice, atomic write, reload) as the file grows.

    .venv/bin/python bench/editor.py [--duration 5] [--rounds 3] [--saves 10]

The traffic log's cost is measured twice: in process (the addon's response hook on one flow,
many times: steady even on a busy machine) and end to end with wrk (rows interleaved round by
round, median printed; on a shared machine the difference drowns in noise). Save latency is
the median of --saves saves of one mock, per file size.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BIN, Result, free_port, median_result, print_table, server, wrk

TARGET = "http://api.bench.test/users/42"
MOCK = """\
  - name: get user
    request: {method: GET, host: api.bench.test, path: "/users/{id}"}
    response:
      body: {id: "{{ path.id | int }}", name: "user-{{ path.id }}", bio: "%s"}
"""


def mockbox(folder: Path, config: Path, port: int, admin: int, confdir: Path) -> list[str]:
    return [
        str(BIN / "mockbox"),
        "run",
        "--mocks",
        str(folder),
        "--config",
        str(config),
        "--port",
        str(port),
        "--admin-port",
        str(admin),
        "--set",
        f"confdir={confdir}",
        "--set",
        "termlog_verbosity=error",
    ]


def record_cost(n: int = 20000) -> None:
    """Microseconds the Traffic addon's response hook spends on one flow with a 4 KB answer."""
    from mitmproxy.test import tflow

    from mockbox.core.redaction import Policy
    from mockbox.core.traffic import TrafficLog
    from mockbox.traffic import Traffic

    addon = Traffic.__new__(Traffic)
    addon.log, addon.max_body = TrafficLog(200, Policy.default()), 65536
    flow = tflow.tflow(resp=True)
    assert flow.response is not None
    flow.response.content = b"x" * 4000
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(n):
            addon.response(flow)
        samples.append((time.perf_counter() - started) / n * 1e6)
    print(f"traffic log: {statistics.median(samples):.1f} us per flow (median of 5 x {n})")


def throughput(work: Path, duration: int, rounds: int) -> None:
    folder = work / "tp"
    folder.mkdir()
    (folder / "m.yaml").write_text("mocks:\n" + MOCK % ("x" * 4000))  # a 4 KB answer
    configs = {
        "(a) traffic log off (traffic.size: 0)": "traffic: {size: 0}\n",
        "(b) traffic log on (traffic.size: 200)": "traffic: {size: 200}\n",
    }
    runs: dict[str, list[Result]] = {name: [] for name in configs}
    for round_no in range(rounds):
        for name, text in configs.items():
            config = work / f"c{round_no}{len(runs[name])}.yaml"
            config.write_text(text)
            port = free_port()
            with server(mockbox(folder, config, port, 0, work / "conf"), port):
                result = wrk(TARGET, proxy_port=port, duration=duration, connections=8)
            runs[name].append(result)
            print(f"round {round_no + 1}: {name}: {result.rps:.0f} req/s", file=sys.stderr)
    med = {name: median_result(r) for name, r in runs.items()}
    print_table(med, f"median of {rounds} rounds, {duration}s each, 8 connections, 4 KB answers")
    a, b = med.values()
    print(f"\nb/a (with the traffic log vs without)  {b.rps / a.rps:.3f}")


def save_latency(work: Path, saves: int) -> None:
    print(f"\nsave latency: PUT /api/mocks/big.yaml/<middle> (median of {saves})")
    print(f"{'mocks in the file':<20} {'median ms':>10} {'p90 ms':>8}")
    for count in (10, 1000):
        folder = work / f"s{count}"
        folder.mkdir()
        lines = ["mocks:"]
        for i in range(count):
            lines.append(f"  # mock {i}\n  - request: {{method: GET, path: /r{i}}}")
            lines.append(f"    response: {{body: {{n: {i}}}}}\n")
        (folder / "big.yaml").write_text("\n".join(lines))
        config = work / f"s{count}.yaml"
        config.write_text("reload: {interval: 0}\n")
        port, admin = free_port(), free_port()
        with server(mockbox(folder, config, port, admin, work / "conf"), port):
            s = requests.Session()
            s.trust_env = False
            url = f"http://127.0.0.1:{admin}/api/mocks/big.yaml/{count // 2}"
            for _ in range(100):
                try:
                    s.get(url, timeout=5)
                    break
                except requests.ConnectionError:
                    time.sleep(0.2)
            times = []
            for n in range(saves):
                etag = s.get(url, timeout=30).headers["ETag"]
                body = {
                    "yaml": f"request: {{method: GET, path: /r{count // 2}}}\n"
                    f"response: {{body: {{n: {n}}}}}\n"
                }
                started = time.perf_counter()
                r = s.put(url, json=body, headers={"If-Match": etag}, timeout=60)
                times.append((time.perf_counter() - started) * 1000)
                r.raise_for_status()
        times.sort()
        p90 = times[min(len(times) - 1, int(len(times) * 0.9))]
        print(f"{count:<20} {statistics.median(times):>10.1f} {p90:>8.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--saves", type=int, default=10)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mockbox-bench-editor-"))
    record_cost()
    throughput(work, args.duration, args.rounds)
    save_latency(work, args.saves)


if __name__ == "__main__":
    main()
