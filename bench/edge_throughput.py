"""The regional deployment's system-level figure: wrk against Varnish in front of three MockBox
regions, for a cacheable mock and a non-cacheable one, beside a single MockBox instance
measured in the same run.

    .venv/bin/python bench/edge_throughput.py [--duration 5] [--rounds 3] [--connections 16]

Prints requests/s, p50/p99, the ratio edge/single for each, and the edge hit ratio from
varnishstat (cache_hit / (cache_hit + cache_miss)) over the cacheable runs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "local"))

from common import Result, median_result, print_table, wrk
from run import HERE, LocalEdge


def varnish_counters(edge: LocalEdge) -> tuple[int, int]:
    out = subprocess.run(
        [
            "varnishstat",
            "-n",
            str(edge.workdir / "varnish"),
            "-1",
            "-j",
            "-f",
            "MAIN.cache_hit",
            "-f",
            "MAIN.cache_miss",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    counters = json.loads(out)
    counters = counters.get("counters", counters)
    return int(counters["MAIN.cache_hit"]["value"]), int(counters["MAIN.cache_miss"]["value"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=16)
    args = ap.parse_args()

    # Throughput, not limits: wrk's one client would meet the default rate limit at once.
    edge = LocalEdge.create(
        ["iad", "fra", "sin"], HERE / "mocks", extra_config="rate_limit: {enabled: false}\n"
    )
    edge.start()
    single = f"http://127.0.0.1:{edge.regions[0].port}"  # one region, straight, no CDN
    targets = {
        "edge (Varnish + 3 regions), cacheable /catalog": f"{edge.url}/catalog",
        "single MockBox, cacheable /catalog": f"{single}/catalog",
        "edge (Varnish + 3 regions), non-cacheable /cart/7": f"{edge.url}/cart/7",
        "single MockBox, non-cacheable /cart/7": f"{single}/cart/7",
    }
    runs: dict[str, list[Result]] = {name: [] for name in targets}
    hits = misses = 0
    try:
        for round_no in range(args.rounds):
            for name, url in targets.items():
                before = varnish_counters(edge)
                result = wrk(
                    url, proxy_port=None, duration=args.duration, connections=args.connections
                )
                after = varnish_counters(edge)
                if name.startswith("edge") and "non-cacheable" not in name:
                    hits += after[0] - before[0]
                    misses += after[1] - before[1]
                runs[name].append(result)
                print(f"round {round_no + 1}: {name}: {result.rps:.0f} req/s", file=sys.stderr)
    finally:
        edge.stop()
    med = {name: median_result(r) for name, r in runs.items()}
    print_table(
        med,
        f"median of {args.rounds} rounds, {args.duration}s each, "
        f"{args.connections} connections, wrk -t1",
    )
    names = list(med)
    print(
        f"\ncacheable: edge / single      {med[names[0]].rps / med[names[1]].rps:.1f}x   aim >= 20x"
    )
    print(f"non-cacheable: edge / single  {med[names[2]].rps / med[names[3]].rps:.2f}x")
    print(f"edge hit ratio (cacheable)    {hits / max(1, hits + misses):.4f}   aim >= 0.95")


if __name__ == "__main__":
    main()
