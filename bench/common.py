"""Shared benchmark plumbing: start servers, drive them with wrk, summarize runs."""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"port {port} did not open")


@contextmanager
def server(
    cmd: list[str], port: int, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run `cmd` until the block ends (which gets the process); it must listen on `port`."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MOCKBOX_")}
    clean.update(env or {})
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=clean, cwd=REPO
    )
    try:
        wait_port(port, proc)
        time.sleep(0.5)  # let start-up work (mock loading, CA) settle
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@dataclass(frozen=True)
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_us: float = 0.0  # CPU per request of the server (and watched processes)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if m is None:
        raise ValueError(text)
    return float(m.group(1)) * _UNIT[m.group(2)]


def wrk(
    url: str,
    *,
    proxy_port: int | None,
    duration: int,
    connections: int,
    threads: int = 1,
    lua: str | None = None,
) -> Result:
    """One wrk run. With `proxy_port`, wrk talks to the proxy in absolute-form, as an app would."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    script = lua or ""
    target = url
    if proxy_port is not None:
        script = f'wrk.path = "{url}"\n' + script
        target = f"http://127.0.0.1:{proxy_port}"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
        lua_path = f.name
    try:
        out = subprocess.run(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{duration}s",
                "--latency",
                "-s",
                lua_path,
                target,
            ],
            capture_output=True,
            text=True,
            timeout=duration + 60,
            check=True,
        ).stdout
    finally:
        os.unlink(lua_path)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    # Anchored: "50.00%" also appears in wrk's "+/- Stdev" column.
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in m.groups())
    return Result(rps, p50, p99, errors)


def median_result(results: list[Result]) -> Result:
    return Result(
        statistics.median(r.rps for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.errors for r in results),
        statistics.median(r.cpu_us for r in results),
    )


def print_table(rows: dict[str, Result], title: str) -> None:
    print(f"\n{title}")
    print(f"{'row':<48} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'CPU us/req':>11}")
    for name, r in rows.items():
        print(
            f"{name:<48} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7} "
            f"{r.cpu_us:>11.0f}"
        )


def bench_arguments(description: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    return ap.parse_args()


def floor_command(port: int) -> list[str]:
    return [sys.executable, str(REPO / "bench" / "floor.py"), str(port)]


def mockbox_command(
    mocks: Path, confdir: Path, *extra: str, subcommand: str = "run"
) -> Callable[[int], list[str]]:
    """`mockbox run` (or record, replay) over `mocks` on the port it is given, without the
    admin server."""
    return lambda port: [
        str(BIN / "mockbox"),
        subcommand,
        "--mocks",
        str(mocks),
        "--port",
        str(port),
        "--admin-port",
        "0",
        "--set",
        f"confdir={confdir}",
        "--set",
        "termlog_verbosity=error",
        *extra,
    ]


@dataclass(frozen=True)
class Row:
    command: Callable[[int], list[str]]  # the server's command line for a port
    url: str  # what wrk asks for through it
    prepare: Callable[[int], None] | None = None  # run against the port before measuring
    lua: str | None = None  # a wrk script of its own (one that varies the requests)
    watch: tuple[int, ...] = ()  # other processes whose CPU counts, such as a redis-server
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # MOCKBOX_* for the server


# Rate limits off unless a row sets its own (bench/ratelimit_cost.py): wrk's one client, at
# hundreds of requests a second, would meet the default limits.
RATE_LIMITS_OFF = {"MOCKBOX_RATE_LIMIT_PUBLIC": "none", "MOCKBOX_RATE_LIMIT_AI": "none"}


def run_rows(rows: dict[str, Row], args: argparse.Namespace) -> dict[str, Result]:
    """Every row once per round, rows interleaved; prints and returns the medians."""
    runs: dict[str, list[Result]] = {name: [] for name in rows}
    for round_no in range(args.rounds):
        for name, row in rows.items():
            port = free_port()
            with server(row.command(port), port, {**RATE_LIMITS_OFF, **row.env}) as proc:
                if row.prepare is not None:
                    row.prepare(port)
                pids = (proc.pid, *row.watch)
                before = sum(cpu_seconds(pid) for pid in pids)
                result = wrk(
                    row.url,
                    proxy_port=port,
                    duration=args.duration,
                    connections=args.connections,
                    lua=row.lua,
                )
                used = sum(cpu_seconds(pid) for pid in pids) - before
            served = max(1.0, result.rps * args.duration)
            result = dataclasses.replace(result, cpu_us=used / served * 1e6)
            runs[name].append(result)
            print(f"round {round_no + 1}: {name}: {result.rps:.0f} req/s", file=sys.stderr)
    med = {name: median_result(r) for name, r in runs.items()}
    print_table(
        med,
        f"median of {args.rounds} rounds, {args.duration}s each, "
        f"{args.connections} connections, wrk -t1 through the proxy",
    )
    return med
