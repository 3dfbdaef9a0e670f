"""What running user regexes on RE2 costs against Python's `re`.

    .venv/bin/python bench/regex_cost.py [--repeat 15]
    .venv/bin/python bench/regex_cost.py --throughput [--old REV] [--duration 5] [--rounds 3]

First a micro-benchmark: typical matcher patterns on typical values, `re.search` against what a
matcher now calls (userregex: encode to UTF-8, RE2 search), median µs per call and the ratio;
then one backtracking pattern, where the point is the other way round. With --throughput, mock
throughput with a header-regex mock through the proxy (wrk), this checkout (RE2) interleaved
with the code at REV (default: the commit before RE2, Python's `re`).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, Row, mockbox_command, run_rows

from mockbox.core.userregex import compile_pattern

TOKEN = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV"
ORDER = json.dumps({"type": "order", "items": [{"sku": f"A-{i}", "qty": i} for i in range(60)]})
TYPICAL = [
    ("query id", r"^[0-9]{1,6}$", "123456"),
    ("header bearer", r"^Bearer [A-Za-z0-9._-]+$", TOKEN),
    ("header contains-like", r"application/(vnd\.api\+)?json", "application/vnd.api+json"),
    ("body field, 2 KB", r'"type"\s*:\s*"order"', ORDER),
    ("body no match, 64 KB", r"needle-[0-9]+", "x" * 65536),
]
HOSTILE = ("backtracking ^(a+)+$", r"^(a+)+$", "a" * 22 + "!")


def per_call_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    return statistics.median(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def micro(repeat: int) -> None:
    print(f"{'matcher':<24} {'text':>7} {'re µs':>9} {'RE2 µs':>9} {'RE2/re':>7}")
    ratios = []
    for case in [*TYPICAL, HOSTILE]:
        name, pattern, text = case
        py, ours = re.compile(pattern), compile_pattern(pattern)
        assert bool(py.search(text)) == ours.search(text), name
        hostile = case == HOSTILE
        number = 1 if hostile else max(10, 200_000 // max(len(text), 50))
        r = per_call_us(partial(py.search, text), number, 3 if hostile else repeat)
        o = per_call_us(partial(ours.search, text), number, repeat)
        if not hostile:
            ratios.append(o / r)
        print(f"{name:<24} {len(text):>7} {r:>9.2f} {o:>9.2f} {o / r:>7.2f}")
    print(f"\nmedian RE2/re over the typical matchers: {statistics.median(ratios):.2f}")


REGEX_MOCK = """mocks:
  - name: by token
    request:
      method: GET
      host: api.bench.test
      path: "/users/{id}"
      headers: {Authorization: {regex: "^Bearer [A-Za-z0-9._-]+$"}, Accept: {regex: "json"}}
      query: {v: {regex: "^[0-9]+$"}}
    response: {body: {ok: true}}
"""
TARGET = "http://api.bench.test/users/42?v=2"
LUA = f'wrk.headers["Authorization"] = "{TOKEN}"\nwrk.headers["Accept"] = "application/json"\n'


def throughput(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="mockbox-regex-bench-"))
    (work / "mocks").mkdir()
    (work / "mocks" / "m.yaml").write_text(REGEX_MOCK)
    old = work / "old"
    old.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", args.old, "addons"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
    command = mockbox_command(work / "mocks", work / "conf")
    rows = {
        "(a) this checkout: regexes on RE2": Row(command, TARGET, lua=LUA),
        f"(b) {args.old}: regexes on Python re": Row(
            command, TARGET, lua=LUA, env={"PYTHONPATH": str(old / "addons")}
        ),
    }
    med = run_rows(rows, args)
    a, b = med.values()
    print(f"\na/b (RE2 vs re, three regex matchers per request) {a.rps / b.rps:.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--throughput", action="store_true")
    ap.add_argument("--old", default="dbb8031")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()
    micro(args.repeat)
    if args.throughput:
        throughput(args)


if __name__ == "__main__":
    main()
