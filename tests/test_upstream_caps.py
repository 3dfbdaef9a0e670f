"""Upstream answers too large to keep (issue 13). A local upstream makes 50 MB bodies on the
fly, with a Content-Length or chunked; the client gets them whole through the proxy while the
cache (`cache.max_body_bytes`) and the recorder (`record.max_body_bytes`) stream them through
instead of holding them: memory stays flat, nothing is stored or recorded, the log names the URL
and the size. Small answers of unknown length are still cached and recorded."""

from __future__ import annotations

import hashlib
import re
import threading
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from .conftest import MockBox, MockBoxFactory

BIG = 50 * 1024 * 1024
_BLOCK = hashlib.sha256(b"mockbox").hexdigest().encode() * 16384  # 1 MiB, not compressible to 0
SMALL = b'{"small": true, "note": "{{ 7*7 }}"}'
# 50 MiB of one letter, gzip-compressed: about 50 KB on the wire.
_BOMB = zlib.compress(b"a" * BIG, wbits=31)


def _big_body() -> Iterator[bytes]:
    for _ in range(BIG // len(_BLOCK)):
        yield _BLOCK


BIG_SHA256 = hashlib.sha256(b"".join(_big_body())).hexdigest()


class BigUpstream:
    """GET /big (Content-Length), /big-chunked, /small-chunked, /bomb (gzip: 50 KB → 50 MiB),
    all cacheable for a minute; counts hits per path."""

    def __init__(self) -> None:
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                with owner.lock:
                    owner.hits[self.path] = owner.hits.get(self.path, 0) + 1
                chunked = self.path.endswith("-chunked")
                if self.path.startswith("/big"):
                    parts, size = _big_body(), BIG
                elif self.path == "/bomb":
                    parts, size = iter([_BOMB]), len(_BOMB)
                else:
                    parts, size = iter([SMALL[:10], SMALL[10:]]), len(SMALL)
                try:
                    self.send_response(200)
                    self.send_header("Cache-Control", "max-age=60")
                    self.send_header("Content-Type", "application/octet-stream")
                    if self.path == "/bomb":
                        self.send_header("Content-Encoding", "gzip")
                    if chunked:
                        self.send_header("Transfer-Encoding", "chunked")
                    else:
                        self.send_header("Content-Length", str(size))
                    self.end_headers()
                    for part in parts:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part) if chunked else part)
                    if chunked:
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def big_upstream() -> Iterator[BigUpstream]:
    up = BigUpstream()
    yield up
    up.close()


def _memory_kib(box: MockBox, field: str) -> int:
    status = Path(f"/proc/{box.proc.pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    assert found is not None
    return int(found.group(1))


def _fetch(box: MockBox, url: str) -> tuple[requests.Response, int, str]:
    """The answer, its size and SHA-256 as sent (not decoded), read as it streams."""
    digest, size = hashlib.sha256(), 0
    with box.client() as s:
        r = s.get(url, stream=True, timeout=120)
        for chunk in r.raw.stream(1 << 20, decode_content=False):
            digest.update(chunk)
            size += len(chunk)
    return r, size, digest.hexdigest()


def test_the_cache_streams_answers_over_its_cap_and_keeps_small_ones(
    mockbox: MockBoxFactory, big_upstream: BigUpstream, tmp_path: Path
) -> None:
    mocks = tmp_path / "mocks"
    mocks.mkdir()
    config = tmp_path / "config.yaml"
    rule = {"host": "127.0.0.1", "path": "/small-*", "cdn_ttl": 300}
    config.write_text(yaml.safe_dump({"cache": {"rules": [rule]}}))
    box = mockbox(mocks, "--unmatched", "upstream", "--config", str(config))
    before = _memory_kib(box, "VmRSS")
    for path in ("/big", "/big-chunked") * 2:
        r, size, sha = _fetch(box, big_upstream.url + path)
        assert (r.status_code, size, sha) == (200, BIG, BIG_SHA256), path
        # Streamed: the headers left before the body, with what the client always gets.
        assert r.headers["X-Cache-Status"] == "MISS" and r.headers["X-MockBox-Source"] == "upstream"
    grown = _memory_kib(box, "VmHWM") - before
    assert grown < 40 * 1024, f"the peak grew by {grown} KiB for 50 MiB answers"
    assert big_upstream.hits == {"/big": 2, "/big-chunked": 2}  # never stored, so never a HIT
    stats = requests.get(f"{box.admin}/api/cache", timeout=5).json()
    assert stats["entries"] == 0
    assert "mockbox_cache_too_large_total 4.0" in box.metrics()
    log = box.log()
    assert f"not caching {big_upstream.url}/big-chunked: its body is {BIG} bytes" in log

    # An answer of unknown length that fits is held (a copy, as it streams) and stored; the
    # route's CDN headers were on the streamed answer as they are on the stored one.
    small = [box.get(big_upstream.url + "/small-chunked") for _ in range(2)]
    assert [r.headers["X-Cache-Status"] for r in small] == ["MISS", "HIT"]
    assert small[0].content == small[1].content == SMALL
    for r in small:
        assert r.headers["Cache-Control"] == "max-age=60, s-maxage=300"
        assert r.headers["Surrogate-Key"] == "mockbox host:127.0.0.1"
    assert big_upstream.hits["/small-chunked"] == 1
    print(f"cache: peak +{grown} KiB for four 50 MiB answers")


def test_the_recorder_streams_answers_over_its_cap_and_notes_them(
    mockbox: MockBoxFactory, big_upstream: BigUpstream, tmp_path: Path
) -> None:
    mocks = tmp_path / "mocks"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"record": {"max_body_bytes": 4 * 1024 * 1024}}))
    box = mockbox(mocks, "--session", "big", "--config", str(config), command="record")
    before = _memory_kib(box, "VmRSS")
    for path in ("/big", "/big-chunked"):
        r, size, sha = _fetch(box, big_upstream.url + path)
        assert (r.status_code, size, sha) == (200, BIG, BIG_SHA256), path
        assert r.headers["X-MockBox-Source"] == "upstream"
    bomb, size, _ = _fetch(box, big_upstream.url + "/bomb")  # 50 KB that decode to 50 MiB
    assert (bomb.status_code, size) == (200, len(_BOMB))
    _, size, _ = _fetch(box, big_upstream.url + "/small-chunked")
    assert size == len(SMALL)
    grown = _memory_kib(box, "VmHWM") - before
    box.stop()
    assert grown < 40 * 1024, f"the peak grew by {grown} KiB for 50 MiB answers"

    folder = mocks / "recorded" / "big"
    (host_file,) = folder.glob("*.yaml")
    text = host_file.read_text()
    mocks_in = yaml.safe_load(text)["mocks"]
    assert [m["request"]["path"] for m in mocks_in] == ["/small-chunked"]
    assert mocks_in[0]["response"]["body"]["small"] is True
    assert "# Not recorded: answers over record.max_body_bytes (4194304)" in text
    assert f"#   GET /big ({BIG} bytes)" in text and f"#   GET /big-chunked ({BIG} bytes)" in text
    assert f"#   GET /bomb ({len(_BOMB)} bytes, more than 4194304 decoded)" in text
    assert all(p.stat().st_size < 1024 * 1024 for p in folder.rglob("*") if p.is_file())
    assert f"not recording {big_upstream.url}/big: its body is {BIG} bytes" in box.log()
    print(f"recorder: peak +{grown} KiB for two 50 MiB answers and a gzip bomb")
