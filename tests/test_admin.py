"""The admin port: /healthz and /metrics."""

from __future__ import annotations

import re

import requests

from .conftest import REPO, MockBoxFactory


def test_healthz(mockbox: MockBoxFactory) -> None:
    box = mockbox(REPO / "mocks", "--region", "fra")
    health = box.health()
    assert health["status"] == "ok"
    assert health["region"] == "fra"
    assert health["mocks"]["loaded"] == 16 and health["mocks"]["files"] == 2
    assert health["mocks"]["problems"] == []
    assert health["redis"] == "disabled"
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", health["version"])


def test_metrics_count_sources_and_latency(mockbox: MockBoxFactory) -> None:
    box = mockbox(REPO / "mocks")
    for _ in range(3):
        box.get("http://api.bookshop.test/v1/books")
    box.get("http://api.bookshop.test/v1/recommendations")  # 200-400 ms delay
    text = requests.get(f"{box.admin}/metrics", timeout=5).text
    assert 'mockbox_requests_total{source="mock"} 4.0' in text
    assert "mockbox_mocks_loaded 16.0" in text
    assert "mockbox_reload_errors_total 0.0" in text
    assert 'mockbox_request_duration_seconds_count{source="mock"} 4.0' in text
    slow = re.search(
        r'mockbox_request_duration_seconds_bucket\{le="0\.1",source="mock"\} (\S+)', text
    )
    assert slow is not None and float(slow.group(1)) == 3.0  # the delayed one is above 100 ms
