"""Hostile things in the mocks folder, on a real `mockbox run`: a symlink to a private key or to
/dev/zero, a FIFO, a 600-level file, 300 MB files. MockBox starts, names each with its file and
line, never shows the key's text, keeps its memory bounded and keeps serving the other mocks;
the editor's file API refuses them the same way; a body file at the size limit is served
without holding other clients up."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests

from .conftest import CANARY_MOCK, Canary, MockBox, MockBoxFactory, wait_until
from .test_editor_api import Admin

MIB = 1024 * 1024
SECRET = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"
GOOD = f"""mocks:
  - request: {{method: GET, host: files.test, path: /good}}
    response: {{body: good}}
{CANARY_MOCK}"""
DEEP = "mocks:\n  - request: {path: /deep}\n    response:\n      body:\n" + "".join(
    "  " * (i + 4) + "a:\n" for i in range(600)
)
BIG_BODY = "mocks:\n  - request: {method: GET, host: files.test, path: /big}\n" + (
    "    response: {body_file: big.bin}\n"
)


def sparse(path: Path, size: int) -> None:
    """A file of `size` bytes that takes no room on disk (nor in memory, unless read)."""
    with path.open("wb") as f:
        f.truncate(size)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


@contextmanager
def peak_rss(box: MockBox) -> Iterator[Callable[[], float]]:
    """Samples the process's resident memory every 50 ms; yields a function for the peak."""
    peak = [rss_mb(box.proc.pid)]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.05):
            peak[0] = max(peak[0], rss_mb(box.proc.pid))

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: peak[0]
    finally:
        stop.set()
        thread.join()


def problems_by_file(box: MockBox) -> dict[str, dict[str, Any]]:
    return {Path(p["file"]).name: p for p in box.health()["mocks"]["problems"]}


def plant(mocks: Path, outside: Path) -> dict[str, tuple[int, str]]:
    """Every hostile file at once; returns file → (line, part of its problem)."""
    secret = outside / "id_ed25519"
    secret.write_text(SECRET)
    (mocks / "key.yaml").symlink_to(secret)
    (mocks / "zero.yaml").symlink_to("/dev/zero")
    os.mkfifo(mocks / "fifo.yaml")
    (mocks / "deep.yaml").write_text(DEEP)
    sparse(mocks / "huge.yaml", 300 * MIB)
    sparse(mocks / "huge.bin", 300 * MIB)
    (mocks / "huge-body.yaml").write_text(
        "mocks:\n  - request: {path: /huge}\n    response: {body_file: huge.bin}\n"
    )
    return {
        "key.yaml": (1, "leads outside the mocks folder"),
        "zero.yaml": (1, "leads outside the mocks folder"),
        "fifo.yaml": (1, "is not a regular file"),
        "deep.yaml": (101, "nests deeper than 100 levels"),
        "huge.yaml": (1, "is 314,572,800 bytes, more than mock_files.max_file_bytes"),
        "huge-body.yaml": (3, "is 314,572,800 bytes, more than mock_files.max_body_file_bytes"),
    }


def assert_named(box: MockBox, expected: dict[str, tuple[int, str]]) -> None:
    found = problems_by_file(box)
    assert set(found) == set(expected), found
    for name, (line, message) in expected.items():
        assert found[name]["line"] == line, found[name]
        assert message in found[name]["message"], found[name]


def assert_secret_nowhere(box: MockBox) -> None:
    for text in (
        requests.get(f"{box.admin}/healthz", timeout=5).text,
        requests.get(f"{box.admin}/api/mocks", timeout=5).text,
        box.log(),
    ):
        assert "PRIVATE KEY" not in text and "b3BlbnNzaC1rZXkt" not in text


def test_mockbox_starts_and_names_every_hostile_file(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    """Before: the FIFO kept `mockbox run` from ever starting, /dev/zero took gigabytes, the
    600-level file made it exit without naming the file, the key showed in the problems and
    the 300 MB body was read into memory."""
    mocks, outside = tmp_path / "mocks", tmp_path / "outside"
    mocks.mkdir()
    outside.mkdir()
    (mocks / "good.yaml").write_text(GOOD)
    expected = plant(mocks, outside)
    started = time.monotonic()
    box = mockbox(mocks, "--unmatched", "404")
    assert time.monotonic() - started < 30
    assert box.get("http://files.test/good").text == "good"
    assert_named(box, expected)
    assert_secret_nowhere(box)
    assert rss_mb(box.proc.pid) < 300, "a 300 MB file was read"


def test_hostile_files_added_while_serving(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    """The same files appearing under a running proxy: reloading goes on, memory stays
    bounded and a client of a plain mock never waits."""
    mocks, outside = tmp_path / "mocks", tmp_path / "outside"
    mocks.mkdir()
    outside.mkdir()
    (mocks / "good.yaml").write_text(GOOD)
    box = mockbox(mocks, "--unmatched", "404")
    with peak_rss(box) as peak, Canary(box) as canary:
        expected = plant(mocks, outside)
        wait_until(lambda: set(problems_by_file(box)) == set(expected), 20, "every problem")
        (mocks / "good.yaml").write_text(GOOD.replace("body: good", "body: edited"))
        wait_until(lambda: box.get("http://files.test/good").text == "edited", 10, "an edit")
        time.sleep(1)  # the canary keeps going over a few more reloads
    print(f"canary waits {sorted(canary.waits)[-5:]}, peak RSS {peak():.0f} MB")
    canary.assert_never_waited()
    assert_named(box, expected)
    assert_secret_nowhere(box)
    assert peak() < 300, "a hostile file was read"


def test_a_body_file_at_the_limit_is_served_without_holding_others_up(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    """16 MiB, the default mock_files.max_body_file_bytes, fetched again and again while the
    canary asks for its plain mock every 50 ms."""
    mocks = tmp_path / "mocks"
    mocks.mkdir()
    body = os.urandom(16 * MIB)
    (mocks / "big.bin").write_bytes(body)
    (mocks / "big.yaml").write_text(BIG_BODY)
    (mocks / "good.yaml").write_text(GOOD)
    box = mockbox(mocks, "--unmatched", "404")
    assert box.health()["mocks"]["problems"] == []
    with Canary(box) as canary, box.client() as client:
        for _ in range(10):
            r = client.get("http://files.test/big", timeout=30)
            assert r.status_code == 200 and r.content == body
    canary.assert_never_waited()
    print(f"canary worst wait {canary.worst * 1000:.0f} ms over {len(canary.waits)} requests")


def test_the_editor_refuses_what_the_loader_refuses(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    """A FIFO opened by the editor blocked the event loop for good; a 600-level mock made the
    validate API answer 500; a symlinked folder leading out is refused for reads too."""
    mocks, outside = tmp_path / "mocks", tmp_path / "outside"
    mocks.mkdir()
    outside.mkdir()
    (mocks / "good.yaml").write_text(GOOD)
    (outside / "evil.yaml").write_text(GOOD)
    (mocks / "linked").symlink_to(outside)
    box = mockbox(mocks, "--unmatched", "404")
    os.mkfifo(mocks / "fifo.yaml")
    admin = Admin(box)
    # Each answer comes at all: the event loop that gives it did not block on the FIFO.
    r = admin("GET", "/api/mocks/fifo.yaml/0", timeout=5)
    assert r.status_code == 409 and "is not a regular file" in r.json()["message"]
    mock = {"request": {"path": "/x"}, "response": {"body": "x"}}
    r = admin("POST", "/api/mocks", json={"file": "fifo.yaml", "mock": mock}, timeout=5)
    assert r.status_code == 409 and r.json()["error"] == "FILE_NOT_EDITABLE"
    deep = "request: {path: /d}\nresponse:\n  body:\n" + "".join(
        "  " * (i + 2) + "a:\n" for i in range(600)
    )
    r = admin("POST", "/api/mocks/validate", json={"yaml": deep}, timeout=5)
    assert r.status_code == 200, r.text
    (problem,) = r.json()["problems"]
    assert "nests deeper than 100 levels" in problem["message"]
    for method in ("GET", "PUT", "DELETE"):
        r = admin(
            method,
            "/api/mocks/linked/evil.yaml/0",
            json={"mock": mock},
            headers={"If-Match": "*"},
            timeout=5,
        )
        assert r.json()["error"] == "PATH_REFUSED", (method, r.text)
    assert (outside / "evil.yaml").read_text() == GOOD
