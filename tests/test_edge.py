"""The regional deployment, proven on one machine: three MockBox regions in reverse mode sharing
a real redis-server, behind real varnishd (deploy/local/run.py)."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import REPO, wait_until

sys.path.insert(0, str(REPO / "deploy" / "local"))
from run import LocalEdge


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[LocalEdge]:
    mocks = tmp_path / "mocks"
    shutil.copytree(REPO / "deploy" / "local" / "mocks", mocks)
    stack = LocalEdge.create(["iad", "fra", "sin"], mocks, workdir=tmp_path / "edge")
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


def test_cacheable_mock_is_a_cdn_miss_then_hit_with_growing_age(edge: LocalEdge) -> None:
    first = requests.get(f"{edge.url}/catalog", timeout=10)
    assert first.status_code == 200
    assert first.headers["X-Edge-Cache"] == "MISS"
    assert first.headers["X-Edge-Region"] == "local-edge"
    assert "s-maxage=60" in first.headers["Cache-Control"]
    assert "Surrogate-Key" not in first.headers  # internal to the edge
    time.sleep(1.2)
    second = requests.get(f"{edge.url}/catalog", timeout=10)
    assert second.headers["X-Edge-Cache"] == "HIT"
    assert second.json() == first.json()
    assert second.headers["X-MockBox-Region"] == first.headers["X-MockBox-Region"]
    time.sleep(1.2)
    third = requests.get(f"{edge.url}/catalog", timeout=10)
    assert int(third.headers["Age"]) > int(second.headers["Age"]) >= 1
    cart = [requests.get(f"{edge.url}/cart/{i}", timeout=10) for i in range(6)]
    assert {r.headers["X-Edge-Cache"] for r in cart} == {"MISS"}  # private: never cached
    assert {r.headers["X-MockBox-Region"] for r in cart} == {"iad", "fra", "sin"}


def test_a_region_going_down_fails_no_request(edge: LocalEdge) -> None:
    down = edge.regions[1]
    edge.stop_region(down)
    answers = []
    for i in range(40):
        answers.append(requests.get(f"{edge.url}/cart/{i}", timeout=10))
        time.sleep(0.05)
    assert [r.status_code for r in answers] == [200] * 40
    assert down.name not in {r.headers["X-MockBox-Region"] for r in answers}
    edge.start_region(down)
    wait_until(
        lambda: (
            down.name
            in {
                requests.get(f"{edge.url}/cart/{i}", timeout=10).headers["X-MockBox-Region"]
                for i in range(6)
            }
        ),
        20,
        "the region back in rotation",
    )


def test_editing_a_mock_purges_it_from_the_cdn(edge: LocalEdge) -> None:
    assert requests.get(f"{edge.url}/catalog", timeout=10).json()["version"] == 1
    assert requests.get(f"{edge.url}/catalog", timeout=10).headers["X-Edge-Cache"] == "HIT"
    path = edge.mocks / "edge.yaml"
    path.write_text(path.read_text().replace("version: 1", "version: 2"))
    # s-maxage is 60 s: only a purge makes the new body appear within seconds.
    wait_until(
        lambda: requests.get(f"{edge.url}/catalog", timeout=10).json()["version"] == 2,
        15,
        "the edited mock through the CDN",
    )

    def health() -> list[dict[str, Any]]:
        return [requests.get(f"{r.admin}/healthz", timeout=5).json() for r in edge.regions]

    # Every region reloads on its own, then purges: once all serve the same mocks version,
    # the edge can only hold the new body.
    wait_until(lambda: len({h["mocks"]["version"] for h in health()}) == 1, 15, "regions agree")
    time.sleep(0.5)
    assert {
        requests.get(f"{edge.url}/catalog", timeout=10).json()["version"] for _ in range(6)
    } == {2}
    assert {h["region"] for h in health()} == {"iad", "fra", "sin"}
    assert {h["redis"] for h in health()} == {"ok"}
    metrics = requests.get(f"{edge.regions[0].admin}/metrics", timeout=5).text
    assert 'mockbox_cdn_purges_total{cdn="varnish",outcome="ok"}' in metrics
