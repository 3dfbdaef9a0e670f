"""What rate limiting costs: one mock served with limiting off, counted in memory, and counted
in a real redis-server (moving window, and sliding window counter), in one run.

    .venv/bin/python bench/ratelimit_cost.py [--duration 5] [--rounds 3] [--connections 8]

wrk sends each request with one of 1000 API keys (so Redis holds that many counters, each far
below the default 100/minute: nothing is refused). Rows are interleaved round by round, Redis
is emptied before each Redis row, and the median of the rounds is printed, with the CPU each
request cost the proxy (and redis-server): steadier than req/s on a shared machine. A private
redis-server is started on a free port.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row, bench_arguments, free_port, mockbox_command, run_rows, wait_port

TARGET = "http://api.bench.test/users/42"
MOCKS = """\
mocks:
  - name: get user
    request: {method: GET, host: api.bench.test, path: "/users/{id}"}
    response:
      body: {id: "{{ path.id | int }}", name: "user-{{ path.id }}"}
"""
CLIENTS = 1000
CLIENTS_LUA = f"""
local n = 0
request = function()
  n = n + 1
  return wrk.format(nil, nil, {{["X-API-Key"] = "client-" .. (n % {CLIENTS})}})
end
"""
DEFAULT_LIMIT = {"MOCKBOX_RATE_LIMIT_PUBLIC": "100/minute"}


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
    args = bench_arguments((__doc__ or "").splitlines()[0])
    work = Path(tempfile.mkdtemp(prefix="mockbox-bench-rl-"))
    (work / "mocks").mkdir()
    (work / "mocks" / "bench.yaml").write_text(MOCKS)
    sliding = work / "sliding.yaml"
    sliding.write_text("rate_limit: {public: {strategy: sliding-window-counter}}\n")
    confdir = work / "conf"
    redis_proc, redis_url = start_redis(work)
    flush = redis.Redis.from_url(redis_url).flushall

    def row(limits: dict[str, str], *extra: str) -> Row:
        uses_redis = "--redis" in extra
        return Row(
            mockbox_command(work / "mocks", confdir, *extra),
            TARGET,
            prepare=(lambda _port: flush()) if uses_redis else None,
            lua=CLIENTS_LUA,
            watch=(redis_proc.pid,) if uses_redis else (),
            env=limits,
        )

    rows = {
        "(a) limiting off": row({}),
        "(b) limits in memory, moving window": row(DEFAULT_LIMIT),
        "(c) limits in Redis, moving window": row(DEFAULT_LIMIT, "--redis", redis_url),
        "(d) limits in Redis, sliding window counter": row(
            DEFAULT_LIMIT, "--redis", redis_url, "--config", str(sliding)
        ),
    }
    try:
        med = run_rows(rows, args)
    finally:
        redis_proc.terminate()
        redis_proc.wait()
    a, b, c, d = med.values()
    print("\nagainst limiting off: throughput, and CPU per request (proxy + redis-server)")
    print(f"b/a memory limits           {b.rps / a.rps:.3f}   CPU +{b.cpu_us / a.cpu_us - 1:.1%}")
    print(
        f"c/a Redis limits            {c.rps / a.rps:.3f}   CPU +{c.cpu_us / a.cpu_us - 1:.1%}"
        "   aim: cost <= 15%"
    )
    print(f"d/a Redis sliding counter   {d.rps / a.rps:.3f}   CPU +{d.cpu_us / a.cpu_us - 1:.1%}")
    if any(r.errors for r in med.values()):
        print("\nsome requests failed or were refused: see the errors column")


if __name__ == "__main__":
    main()
