"""Mock-serving throughput: the floor, MockBox with 10 and 10,000 mocks, and stock mitmdump.

    .venv/bin/python bench/mock_throughput.py [--duration 5] [--rounds 3] [--connections 8]

Every row uses the same load generator (wrk, keep-alive, through the proxy in absolute-form);
rows are interleaved round by round and the median of the rounds is printed, because these
machines are shared and noisy.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BIN, REPO, Result, free_port, median_result, print_table, server, wrk

TARGET = "http://api.bench.test/users/42"
# Mock serving alone: one client at hundreds of requests a second would meet the default
# limits. bench/ratelimit_cost.py measures what limiting costs.
NO_RATE_LIMITS = {"MOCKBOX_RATE_LIMIT_PUBLIC": "none", "MOCKBOX_RATE_LIMIT_AI": "none"}
TEMPLATED = """
  - name: get user
    request: {method: GET, host: api.bench.test, path: "/users/{id}"}
    response:
      headers: {X-User: "{{ path.id }}"}
      body:
        id: "{{ path.id | int }}"
        name: "user-{{ path.id }}"
"""


def write_mocks(folder: Path, count: int) -> None:
    """`count` mocks: the templated target plus decoys spread over hosts, methods and paths."""
    folder.mkdir(parents=True)
    lines = ["mocks:", TEMPLATED]
    for i in range(count - 1):
        host = f"svc{i % 50}.bench.test" if i % 3 else "api.bench.test"
        method = ("GET", "POST", "PUT")[i % 3]
        lines.append(
            f"  - {{request: {{method: {method}, host: {host}, path: '/r{i}/items/{{id}}'}}, "
            f"response: {{body: {{n: {i}}}}}}}"
        )
    (folder / "bench.yaml").write_text("\n".join(lines) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mockbox-bench-"))
    write_mocks(work / "m10", 10)
    write_mocks(work / "m10k", 10_000)
    confdir = work / "conf"

    def mockbox(folder: Path, port: int) -> list[str]:
        return [
            str(BIN / "mockbox"),
            "run",
            "--mocks",
            str(folder),
            "--port",
            str(port),
            "--admin-port",
            "0",
            "--set",
            f"confdir={confdir}",
            "--set",
            "termlog_verbosity=error",
        ]

    rows = {
        "(a) floor: lean master, fixed response": lambda p: [
            sys.executable,
            str(REPO / "bench" / "floor.py"),
            str(p),
        ],
        "(b) mockbox run, templated mock, 10 mocks": lambda p: mockbox(work / "m10", p),
        "(c) mockbox run, templated mock, 10,000 mocks": lambda p: mockbox(work / "m10k", p),
        "(d) stock mitmdump -s addons/mockbox.py, 10 mocks": lambda p: [
            str(BIN / "mitmdump"),
            "-q",
            "-s",
            str(REPO / "addons" / "mockbox.py"),
            "-p",
            str(p),
            "--set",
            f"mockbox_mocks={work / 'm10'}",
            "--set",
            "mockbox_admin_port=0",
            "--set",
            f"confdir={confdir}",
        ],
    }
    runs: dict[str, list[Result]] = {name: [] for name in rows}
    for round_no in range(args.rounds):
        for name, cmd in rows.items():
            port = free_port()
            with server(cmd(port), port, env=NO_RATE_LIMITS):
                result = wrk(
                    TARGET, proxy_port=port, duration=args.duration, connections=args.connections
                )
            runs[name].append(result)
            print(f"round {round_no + 1}: {name}: {result.rps:.0f} req/s", file=sys.stderr)

    med = {name: median_result(r) for name, r in runs.items()}
    print_table(
        med,
        f"median of {args.rounds} rounds, {args.duration}s each, "
        f"{args.connections} connections, wrk -t1 through the proxy",
    )
    a, b, c, d = med.values()
    print(f"\nb/a (mock serving vs floor)        {b.rps / a.rps:.3f}   aim >= 0.95")
    print(f"c/b (10,000 mocks vs 10)           {c.rps / b.rps:.3f}   aim >= 0.95")
    print(f"b/d (mockbox run vs stock mitmdump) {b.rps / d.rps:.3f}")


if __name__ == "__main__":
    main()
