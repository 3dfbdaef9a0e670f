"""What rate limiting costs: one mock served with limiting off, counted in memory, and counted
in a real redis-server (moving window, and sliding window counter), in one run.

    .venv/bin/python bench/ratelimit_cost.py [--duration 5] [--rounds 3] [--connections 8]
                                             [--clients 1000]

wrk sends each request with one of `--clients` API keys (so Redis holds that many counters,
each far below the default 100/minute: nothing is refused). Rows are interleaved round by
round, Redis is emptied before each Redis row, and the median of the rounds is printed.
A private redis-server is started on a free port.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    BIN,
    Result,
    cpu_seconds,
    free_port,
    interleaved,
    print_table,
    server,
    wait_port,
    wrk,
)

TARGET = "http://api.bench.test/users/42"
MOCKS = """\
mocks:
  - name: get user
    request: {method: GET, host: api.bench.test, path: "/users/{id}"}
    response:
      body: {id: "{{ path.id | int }}", name: "user-{{ path.id }}"}
"""
CLIENTS_LUA = """
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, {["X-API-Key"] = "client-" .. (n %% %d)})
end
"""


def start_redis(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed: apt-get install redis-server")
    port = free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=work,
    )
    wait_port(port, proc)
    return proc, f"redis://127.0.0.1:{port}/0"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--clients", type=int, default=1000)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mockbox-bench-rl-"))
    (work / "mocks").mkdir()
    (work / "mocks" / "bench.yaml").write_text(MOCKS)
    sliding = work / "sliding.yaml"
    sliding.write_text("rate_limit: {public: {strategy: sliding-window-counter}}\n")
    redis_proc, redis_url = start_redis(work)
    flush = redis.Redis.from_url(redis_url).flushall

    def mockbox(port: int, *extra: str) -> list[str]:
        return [
            str(BIN / "mockbox"),
            "run",
            "--mocks",
            str(work / "mocks"),
            "--port",
            str(port),
            "--admin-port",
            "0",
            "--set",
            f"confdir={work / 'conf'}",
            "--set",
            "termlog_verbosity=error",
            *extra,
        ]

    off = {"MOCKBOX_RATE_LIMIT_PUBLIC": "none"}
    default = {"MOCKBOX_RATE_LIMIT_PUBLIC": "100/minute"}
    rows: dict[str, tuple[Callable[[int], list[str]], dict[str, str], bool]] = {
        "(a) limiting off": (lambda p: mockbox(p), off, False),
        "(b) limits in memory, moving window": (lambda p: mockbox(p), default, False),
        "(c) limits in Redis, moving window": (
            lambda p: mockbox(p, "--redis", redis_url),
            default,
            True,
        ),
        "(d) limits in Redis, sliding window counter": (
            lambda p: mockbox(p, "--redis", redis_url, "--config", str(sliding)),
            default,
            True,
        ),
    }

    # CPU per request of the proxy and of redis-server: steadier than req/s on a shared machine.
    cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}

    def run(name: str) -> Result:
        cmd, env, uses_redis = rows[name]
        if uses_redis:
            flush()
        port = free_port()
        with server(cmd(port), port, env=env) as proc:
            before = cpu_seconds(proc.pid), cpu_seconds(redis_proc.pid)
            result = wrk(
                TARGET,
                proxy_port=port,
                duration=args.duration,
                connections=args.connections,
                lua=CLIENTS_LUA % args.clients,
            )
            after = cpu_seconds(proc.pid), cpu_seconds(redis_proc.pid)
        served = result.rps * args.duration
        cpu[name].append(tuple((b - a) / served * 1e6 for a, b in zip(before, after, strict=True)))
        return result

    try:
        med = interleaved(args.rounds, rows, run)
    finally:
        redis_proc.terminate()
        redis_proc.wait()
    print_table(
        med,
        f"median of {args.rounds} rounds, {args.duration}s each, {args.connections} "
        f"connections, {args.clients} API keys, wrk -t1 through the proxy",
    )
    print(f"\n{'row':<48} {'proxy CPU us/req':>17} {'redis CPU us/req':>17}")
    per_request = {}
    for name, samples in cpu.items():
        proxy, store = (statistics.median(s[i] for s in samples) for i in (0, 1))
        per_request[name] = proxy + store
        print(f"{name:<48} {proxy:>17.0f} {store:>17.0f}")
    a, b, c, d = med.values()
    ca, cb, cc, cd = per_request.values()
    print("\nthroughput, and CPU per request (proxy + redis-server), against limiting off:")
    print(f"b/a memory limits           {b.rps / a.rps:.3f}   CPU +{cb / ca - 1:.1%}")
    print(f"c/a Redis limits            {c.rps / a.rps:.3f}   CPU +{cc / ca - 1:.1%}   aim <= 15%")
    print(f"d/a Redis sliding counter   {d.rps / a.rps:.3f}   CPU +{cd / ca - 1:.1%}")
    if any(r.errors for r in med.values()):
        print("\nsome requests failed or were refused: see the errors column")


if __name__ == "__main__":
    main()
