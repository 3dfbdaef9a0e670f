"""Mock-serving throughput: the floor, MockBox with 10 and 10,000 mocks, and stock mitmdump.

    .venv/bin/python bench/mock_throughput.py [--duration 5] [--rounds 3] [--connections 8]

Every row uses the same load generator (wrk, keep-alive, through the proxy in absolute-form);
rows are interleaved round by round and the median of the rounds is printed, because these
machines are shared and noisy.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BIN, REPO, Row, bench_arguments, floor_command, mockbox_command, run_rows

TARGET = "http://api.bench.test/users/42"
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
    args = bench_arguments(__doc__.splitlines()[0])
    work = Path(tempfile.mkdtemp(prefix="mockbox-bench-"))
    write_mocks(work / "m10", 10)
    write_mocks(work / "m10k", 10_000)
    confdir = work / "conf"

    rows = {
        "(a) floor: lean master, fixed response": Row(floor_command, TARGET),
        "(b) mockbox run, templated mock, 10 mocks": Row(
            mockbox_command(work / "m10", confdir), TARGET
        ),
        "(c) mockbox run, templated mock, 10,000 mocks": Row(
            mockbox_command(work / "m10k", confdir), TARGET
        ),
        "(d) stock mitmdump -s addons/mockbox.py, 10 mocks": Row(
            lambda p: [
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
            TARGET,
        ),
    }
    med = run_rows(rows, args)
    a, b, c, d = med.values()
    print(f"\nb/a (mock serving vs floor)        {b.rps / a.rps:.3f}   aim >= 0.95")
    print(f"c/b (10,000 mocks vs 10)           {c.rps / b.rps:.3f}   aim >= 0.95")
    print(f"b/d (mockbox run vs stock mitmdump) {b.rps / d.rps:.3f}")


if __name__ == "__main__":
    main()
