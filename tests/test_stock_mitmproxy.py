"""The same addons in a stock mitmproxy: `mitmdump -s addons/mockbox.py`."""

from __future__ import annotations

from .conftest import REPO, MockBoxFactory


def test_mitmdump_serves_the_same_mocks(mockbox: MockBoxFactory) -> None:
    box = mockbox(REPO / "mocks", "--set", "mockbox_unmatched=404", stock=True)
    r = box.get("http://api.bookshop.test/v1/books/9")
    assert r.status_code == 200 and r.json()["id"] == 9
    assert r.headers["X-MockBox-Source"] == "mock"
    https = box.get("https://payments.example.test/v2/charges/ch_9")
    assert https.json()["id"] == "ch_9"  # lazy connections are set for stock mitmdump too
    missing = box.get("http://api.bookshop.test/v1/nothing")
    assert missing.status_code == 404 and missing.json()["error"] == "NO_MOCK_MATCHED"
    assert box.health()["mocks"]["loaded"] == 16
    assert 'mockbox_requests_total{source="mock"} 3.0' in box.metrics()


def test_mitmdump_options_override_config(mockbox: MockBoxFactory) -> None:
    box = mockbox(REPO / "mocks", "--set", "mockbox_unmatched=upstream", stock=True)
    assert box.health()["unmatched"] == "upstream"
