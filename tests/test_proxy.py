"""MockBox through a real proxy process, driven by real HTTP clients."""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
import requests

from .conftest import MockBox, MockBoxFactory, Upstream, write_mocks

API = "http://api.bookshop.test"


def test_static_json_mock(example_box: MockBox) -> None:
    r = example_box.get(f"{API}/v1/books")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["X-MockBox-Source"] == "mock"
    assert r.headers["Cache-Control"] == "max-age=60"
    assert [b["title"] for b in r.json()] == ["Dune", "Neuromancer"]


def test_templated_mock_keeps_types_and_is_deterministic(example_box: MockBox) -> None:
    first = example_box.get(f"{API}/v1/books/42", headers={"X-Request-Id": "abc"})
    assert first.status_code == 200
    book = first.json()
    assert book["id"] == 42  # a JSON number, not "42"
    assert first.headers["X-Request-Id"] == "abc"
    second = example_box.get(f"{API}/v1/books/42").json()
    assert (second["title"], second["author"], second["isbn"]) == (
        book["title"],
        book["author"],
        book["isbn"],
    )
    other = example_box.get(f"{API}/v1/books/43").json()
    assert other["isbn"] != book["isbn"]


def test_literal_segment_beats_parameter(example_box: MockBox) -> None:
    assert example_box.get(f"{API}/v1/books/featured").json()["featured"] is True


def test_body_and_header_matching(example_box: MockBox) -> None:
    created = example_box.request("POST", f"{API}/v1/books", json={"title": "Ubik"})
    assert created.status_code == 201
    assert created.json() == {"title": "Ubik", "author": "unknown", "created": True}
    assert created.headers["Location"].startswith("/v1/books/")
    untitled = example_box.request("POST", f"{API}/v1/books", json={"author": "PKD"})
    assert untitled.status_code == 422
    assert example_box.get(f"{API}/v1/me").status_code == 401
    me = example_box.get(f"{API}/v1/me", headers={"Authorization": "Bearer t0k3n"})
    assert me.status_code == 200 and me.json()["name"] == "Ada"


def test_query_matching(example_box: MockBox) -> None:
    r = example_box.get(f"{API}/v1/search", params={"q": "neuro", "lang": "en"})
    assert r.json()["query"] == "neuro"
    r = example_box.get(f"{API}/v1/search", params={"q": "neuro", "lang": "fr"})
    assert r.status_code == 404
    assert any("lang" in reason for c in r.json()["nearest"] for reason in c["reasons"])


def test_body_file_and_catch_all(example_box: MockBox) -> None:
    cover = example_box.get(f"{API}/v1/books/1/cover")
    assert cover.headers["Content-Type"] == "image/svg+xml"
    assert cover.content == (Path(__file__).parents[1] / "mocks/files/cover.svg").read_bytes()
    r = example_box.get("http://cdn.bookshop.test/static/css/site/main.css")
    assert r.text == "you asked for css/site/main.css"


def test_unmatched_404_lists_nearest_with_reasons(example_box: MockBox) -> None:
    r = example_box.request("DELETE", f"{API}/v1/books/7")
    assert r.status_code == 404
    assert r.headers["Content-Type"] == "application/json"
    data = r.json()
    assert data["error"] == "NO_MOCK_MATCHED"
    assert data["request"] == {"method": "DELETE", "url": f"{API}/v1/books/7"}
    assert 1 <= len(data["nearest"]) <= 3
    top = data["nearest"][0]
    assert top["mock"] == "get book"
    assert top["reasons"] == ["method differs: mock expects GET, got DELETE"]
    assert top["file"].endswith("bookshop.yaml") and top["line"] > 1


def test_https_mock_for_a_host_that_does_not_exist(example_box: MockBox) -> None:
    r = example_box.get("https://payments.example.test/v2/charges/ch_1")
    assert r.status_code == 200
    assert r.json()["id"] == "ch_1"
    assert r.headers["X-MockBox-Source"] == "mock"
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(
            "https://payments.example.test/v2/charges/ch_1",
            proxies={"https": example_box.proxy},
            timeout=10,
        )  # without trusting mitmproxy's CA the client refuses, as it should


def test_curl_through_the_proxy(example_box: MockBox) -> None:
    out = subprocess.run(
        ["curl", "-sS", "-x", example_box.proxy, f"{API}/v1/books/7", "-H", "X-Request-Id: c1"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    assert json.loads(out.stdout)["id"] == 7
    out = subprocess.run(
        [
            "curl",
            "-sS",
            "--cacert",
            str(example_box.ca_cert),
            "-x",
            example_box.proxy,
            "-X",
            "POST",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{"amount": 300, "currency": "eur"}',
            "https://payments.example.test/v2/charges",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    charge = json.loads(out.stdout)
    assert charge["amount"] == 300 and charge["id"].startswith("ch_")


def test_faults(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    mocks = tmp_path / "mocks"
    write_mocks(
        mocks,
        "faults.yaml",
        """
mocks:
  - request: {path: /reset}
    response: {fault: connection_reset}
  - request: {path: /empty}
    response: {fault: {type: empty_reply}}
  - request: {path: /down}
    response: {body: fine, fault: {status: 503, headers: {Retry-After: "5"}, body: {error: down}}}
  - request: {path: /sometimes}
    response: {body: fine, fault: {status: 500, probability: 0.0}}
  - request: {path: /slow}
    response: {body: slow, delay_ms: 400}
""",
    )
    box = mockbox(mocks)
    with pytest.raises(requests.ConnectionError) as reset:
        box.get("http://faults.test/reset")
    assert "reset" in str(reset.value).lower()
    with pytest.raises(requests.ConnectionError) as empty:
        box.get("http://faults.test/empty")
    assert "RemoteDisconnected" in str(empty.value) or "aborted" in str(empty.value)
    down = box.get("http://faults.test/down")
    assert (down.status_code, down.json(), down.headers["Retry-After"]) == (
        503,
        {"error": "down"},
        "5",
    )
    assert box.get("http://faults.test/sometimes").text == "fine"
    slow = box.get("http://faults.test/slow")
    assert slow.text == "slow" and slow.elapsed.total_seconds() >= 0.39
    # The proxy is still fine after all that.
    assert box.get("http://faults.test/down").status_code == 503


def test_upstream_mode_forwards_what_no_mock_matches(
    mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path
) -> None:
    mocks = tmp_path / "mocks"
    write_mocks(mocks, "m.yaml", "mocks:\n  - request: {path: /mocked}\n    response: {body: m}\n")
    box = mockbox(mocks, "--unmatched", "upstream")
    mocked = box.get(f"{upstream.url}/mocked")
    assert (mocked.text, mocked.headers["X-MockBox-Source"]) == ("m", "mock")
    real = box.get(f"{upstream.url}/real?x=1")
    assert real.headers["X-MockBox-Source"] == "upstream"
    assert real.json()["echo"]["path"] == "/real?x=1"
    assert upstream.count("/mocked") == 0 and upstream.count("/real?x=1") == 1
    metrics = box.metrics()
    assert 'mockbox_requests_total{source="upstream"} 1.0' in metrics
    assert 'mockbox_requests_total{source="mock"} 1.0' in metrics


def test_reverse_mode(mockbox: MockBoxFactory, upstream: Upstream, tmp_path: Path) -> None:
    mocks = tmp_path / "mocks"
    write_mocks(
        mocks,
        "m.yaml",
        "mocks:\n  - request: {host: 127.0.0.1, path: '/users/{id}'}\n"
        "    response: {body: {id: '{{ path.id | int }}'}}\n",
    )
    box = mockbox(mocks, "--mode", f"reverse:{upstream.url}", "--unmatched", "upstream")
    direct = requests.get(f"{box.proxy}/users/5", timeout=10)
    assert direct.json() == {"id": 5}
    passed = requests.get(f"{box.proxy}/other", timeout=10)
    assert passed.json()["upstream"] is True
    assert passed.headers["X-MockBox-Source"] == "upstream"


def test_a_template_that_raises_is_a_json_error_naming_the_mock(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    mocks = tmp_path / "mocks"
    write_mocks(
        mocks,
        "t.yaml",
        "mocks:\n  - name: divides\n    request: {path: /div}\n"
        "    response:\n      body: {x: '{{ 1 // (query.n | int) }}'}\n",
    )
    box = mockbox(mocks)
    r = box.get("http://t.test/div?n=0")
    assert r.status_code == 500
    data = r.json()
    assert data["error"] == "MOCK_TEMPLATE_ERROR" and data["mock"] == "t.yaml#divides"
    assert "ZeroDivisionError" in data["message"] and data["line"] == 2
    assert box.get("http://t.test/div?n=2").json() == {"x": 0}


def test_odd_requests_get_answers_not_hangs(example_box: MockBox) -> None:
    odd = example_box.request("PROPFIND", f"{API}/v1/books")
    assert odd.status_code == 404 and odd.json()["error"] == "NO_MOCK_MATCHED"
    big = example_box.get(f"{API}/v1/books", headers={"X-Big": "x" * 60_000})
    assert big.status_code == 200
    bad_json = example_box.request(
        "POST", f"{API}/v1/books", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 422  # the JSONPath matcher does not match; the fallback does
    binary = example_box.request("POST", f"{API}/v1/books", data=bytes(range(256)) * 100)
    assert binary.status_code == 422
    # A request line that is not HTTP at all: the proxy answers 400 and closes.
    with socket.create_connection(("127.0.0.1", example_box.port), timeout=10) as s:
        s.sendall(b"HELLO THERE\r\n\r\n")
        reply = s.recv(200)
    assert reply.startswith(b"HTTP/1.1 400")
    assert example_box.get(f"{API}/v1/books").status_code == 200
