"""What the request-path safety bounds cost: the same mocks served by this checkout and by an
older commit (before RE2, per-answer template budgets and the narrow `fake`), interleaved.

    .venv/bin/python bench/safety_cost.py [--base REV] [--duration 5] [--rounds 3]

The older commit is checked out into a temporary git worktree and run with this checkout's
interpreter and packages (PYTHONPATH points each side at its own `addons/`), so the only
difference between a pair of rows is MockBox's code.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, Row, run_rows

# The last commit before the safety work of issue 13 (main at the start of that work).
BEFORE_SAFETY = "dbb8031"

MOCKS = """mocks:
  - name: literal
    request: {method: GET, host: api.bench.test, path: /literal}
    response: {body: {id: 42, name: Ada Lovelace, tags: [a, b, c]}}
  - name: templated
    request: {method: GET, host: api.bench.test, path: "/users/{id}"}
    response:
      headers: {X-User: "{{ path.id }}"}
      body:
        id: "{{ path.id | int }}"
        name: "{{ fake.name() }}"
        email: "{{ fake.email() }}"
  - name: matchers
    request:
      method: POST
      host: api.bench.test
      path: /orders
      headers: {Authorization: {regex: "^Bearer [A-Za-z0-9._-]+$"}}
      body:
        - {jsonpath: "$.items[*].sku", regex: "^SKU-[0-9]{4}$"}
        - {json_includes: {currency: eur}}
    response: {status: 201, body: {created: true}}
"""

POST_LUA = """
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer abc.def-123"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"currency": "eur", "items": [{"sku": "SKU-0001"}, {"sku": "SKU-0002"}]}'
"""


def command(addons: Path, mocks: Path, confdir: Path) -> Row:
    def cmd(port: int) -> list[str]:
        return [
            sys.executable, "-c", "from mockbox.cli import main; main()",
            "run", "--mocks", str(mocks), "--port", str(port), "--admin-port", "0",
            "--unmatched", "404", "--set", f"confdir={confdir}",
            "--set", "termlog_verbosity=error",
        ]  # fmt: skip

    return Row(cmd, "", env={"PYTHONPATH": str(addons)})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default=BEFORE_SAFETY, help="the older commit to compare with")
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="mockbox-safety-"))
    old = work / "old"
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", "-q", str(old), args.base],
        check=True,
    )
    try:
        mocks = work / "mocks"
        mocks.mkdir()
        (mocks / "bench.yaml").write_text(MOCKS)
        sides = {"before": old / "addons", "now": REPO / "addons"}
        cases = {
            "literal": ("http://api.bench.test/literal", None),
            "templated+fake": ("http://api.bench.test/users/42", None),
            "regex+JSONPath": ("http://api.bench.test/orders", POST_LUA),
        }
        rows: dict[str, Row] = {}
        for case, (url, lua) in cases.items():
            for side, addons in sides.items():
                base = command(addons, mocks, work / "conf")
                rows[f"{case}, {side}"] = Row(base.command, url, lua=lua, env=base.env)
        med = run_rows(rows, args)
        failed = [name for name, result in med.items() if result.errors]
        if failed:  # a row that did not serve its mock measured something else
            raise SystemExit(f"rows with errors (not 2xx): {', '.join(failed)}")
        print()
        for case in cases:
            before, now = med[f"{case}, before"], med[f"{case}, now"]
            print(f"{case:<16} now/before {now.rps / before.rps:.3f}")
    finally:
        subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(old)])


if __name__ == "__main__":
    main()
