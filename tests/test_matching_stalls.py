"""Stalls from matching (issue 13): a hostile regex or JSONPath in a mock, with requests crafted
for it, must never keep other clients waiting.

Each test starts MockBox with the canary's mock and the hostile one, attacks from two clients
while the canary calls its plain mock every 50 ms, and checks that the canary never waited more
than 100 ms and that every attack got a definite answer. Each stall is tried where a mock
answers (a low-priority catch-all takes what the hostile mock refuses) and on the 404 path,
whose explanation of the nearest mocks runs every matcher once more."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from mockbox.core.work import OffLoop, Work
from mockbox.matching import QUEUE, MatchingGaveUp, MatchRunner

from .conftest import CANARY_MOCK, CANARY_URL, Canary, MockBox, MockBoxFactory, write_mocks

CATCH_ALL = """
  - name: catch-all
    priority: -10
    request: {path: "/{rest*}"}
    response: {status: 418, body: {caught: true}}
"""
MODES = ["catch-all", "404"]


def start(mockbox: MockBoxFactory, tmp_path: Path, hostile: str, mode: str) -> MockBox:
    text = "mocks:\n" + CANARY_MOCK + hostile + (CATCH_ALL if mode == "catch-all" else "")
    write_mocks(tmp_path / "mocks", "m.yaml", text)
    return mockbox(tmp_path / "mocks", "--unmatched", "404")


def attack(
    box: MockBox, url: str, seconds: float = 1.5, clients: int = 2, **request: Any
) -> list[requests.Response]:
    """`clients` clients POST to `url` through `box` for `seconds` (each at least twice)."""
    answers: list[requests.Response] = []
    errors: list[Exception] = []
    stop = time.monotonic() + seconds

    def run() -> None:
        with box.client() as session:
            sent = 0
            while sent < 2 or time.monotonic() < stop:
                try:
                    answers.append(session.post(url, timeout=60, **request))
                except requests.RequestException as e:
                    errors.append(e)
                sent += 1

    threads = [threading.Thread(target=run) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    return answers


def check_canary(canary: Canary, name: str) -> None:
    """The canary assertion, with the worst wait printed for the record (pytest -s)."""
    print(f"\n{name}: canary worst wait {canary.worst * 1000:.1f} ms ({len(canary.waits)} calls)")
    canary.assert_never_waited()


def assert_refused(answers: list[requests.Response], mode: str, reason: str) -> None:
    """Each attack was refused by the hostile mock: the catch-all answered, or the 404 names
    the hostile mock with `reason`. A 503 MATCH_TIMEOUT (or a 404 whose explanation timed out)
    is also a definite answer."""
    for r in answers:
        if r.status_code == 503:
            assert r.json()["error"] == "MATCH_TIMEOUT", r.text[:300]
        elif mode == "catch-all":
            assert r.status_code == 418, r.text[:300]
        else:
            assert r.status_code == 404, r.text[:300]
            if not r.json()["nearest"]:  # explaining gave up (timeout): still a definite 404
                assert "took longer than" in r.json()["message"], r.text[:300]
                continue
            hostile = [c for c in r.json()["nearest"] if c["mock"] == "hostile"]
            assert hostile and any(reason in why for why in hostile[0]["reasons"]), r.text[:600]


@pytest.mark.parametrize("mode", MODES)
def test_redos_header_regex_does_not_stall(
    mockbox: MockBoxFactory, tmp_path: Path, mode: str
) -> None:
    hostile = """
  - name: hostile
    request: {path: /h, headers: {X-A: {regex: "^(a+)+$"}}}
    response: {body: {matched: true}}
"""
    box = start(mockbox, tmp_path, hostile, mode)
    with Canary(box) as canary:
        answers = attack(box, "http://api.test/h", headers={"X-A": "a" * 27 + "!"})
    check_canary(canary, f"header ReDoS ({mode})")
    assert_refused(answers, mode, "header 'x-a' should be matching /^(a+)+$/")
    assert box.get("http://api.test/h", headers={"X-A": "aaaa"}).json() == {"matched": True}


@pytest.mark.parametrize("mode", MODES)
def test_redos_body_regex_does_not_stall(
    mockbox: MockBoxFactory, tmp_path: Path, mode: str
) -> None:
    hostile = r"""
  - name: hostile
    request: {method: POST, path: /b, body: {regex: '^(\w+\s?)*$'}}
    response: {body: {matched: true}}
"""
    box = start(mockbox, tmp_path, hostile, mode)
    with Canary(box) as canary:
        answers = attack(box, "http://api.test/b", data=b"a" * 28 + b"!")
    check_canary(canary, f"body ReDoS ({mode})")
    assert_refused(answers, mode, "body does not match: body regex")
    assert box.request("POST", "http://api.test/b", data=b"ab cd").json() == {"matched": True}


def big_json(size: int) -> bytes:
    """A JSON body of about `size` bytes, with many small objects (many values to visit)."""
    item = {"id": 123456, "name": "item", "tags": ["a", "b"]}
    count = size // len(json.dumps(item))
    return json.dumps({"items": [item] * count}).encode()


# Past matching.max_body_bytes (512 KiB): refused at once. Under it: on a worker thread, where
# the JSONPath step budget (or the matching timeout) stops it.
BODIES = {"2 MB": big_json(2_100_000), "500 kB": big_json(500_000)}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "expression", ["$..x", '$..[?(@.name == "needle")]'], ids=["descendants", "filter"]
)
def test_jsonpath_over_a_large_body_does_not_stall(
    mockbox: MockBoxFactory, tmp_path: Path, mode: str, expression: str
) -> None:
    hostile = f"""
  - name: hostile
    request: {{method: POST, path: /j, body: {{jsonpath: '{expression}'}}}}
    response: {{body: {{matched: true}}}}
"""
    box = start(mockbox, tmp_path, hostile, mode)
    reasons = {
        "2 MB": "more than the 524288 that body matchers look at",
        "500 kB": f"body does not match: JSONPath {expression}",
    }
    for name, body in BODIES.items():
        with Canary(box) as canary:
            answers = attack(box, "http://api.test/j", data=body, seconds=2.0)
        check_canary(canary, f"JSONPath {expression} over {name} ({mode})")
        assert_refused(answers, mode, reasons[name])
    small = json.dumps({"a": {"x": 1, "name": "needle"}}).encode()
    assert box.request("POST", "http://api.test/j", data=small).json() == {"matched": True}


def test_matching_past_its_timeout_answers_503_json(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    config = tmp_path / "mockbox.yaml"
    config.write_text("matching:\n  timeout: 0.05\n")
    hostile = """
  - name: hostile
    request: {method: POST, path: /j, body: {jsonpath: '$..[?(@.name == "needle")]'}}
    response: {body: {matched: true}}
"""
    text = "mocks:\n" + CANARY_MOCK + hostile
    write_mocks(tmp_path / "mocks", "m.yaml", text)
    box = mockbox(tmp_path / "mocks", "--unmatched", "404", "--config", str(config))
    r = box.request("POST", "http://api.test/j", data=BODIES["500 kB"])
    assert r.status_code == 503
    assert r.json()["error"] == "MATCH_TIMEOUT" and "0.05 s" in r.json()["message"]
    assert box.get(CANARY_URL).json() == {"ok": True}


# --- the runner, in-process -------------------------------------------------------------------


async def test_quick_matching_stays_on_the_loop_and_long_matching_moves_then_gives_up() -> None:
    runner = MatchRunner(timeout=0.2)
    ran_on: list[str] = []

    def endless(work: Work) -> None:
        ran_on.append(threading.current_thread().name)
        while True:
            work.tick()

    assert await runner.run(lambda work: threading.current_thread().name) == "MainThread"
    started = time.monotonic()
    with pytest.raises(MatchingGaveUp) as gave_up:
        await runner.run(endless)
    assert gave_up.value.error == "MATCH_TIMEOUT"
    assert 0.2 <= time.monotonic() - started < 0.5
    assert ran_on == ["MainThread", "mockbox-match_0"]  # a slice on the loop, then the worker
    runner.close()


async def test_too_many_large_requests_at_once_are_refused_at_once() -> None:
    runner = MatchRunner(timeout=5.0)
    release = threading.Event()

    def waits(work: Work) -> str:
        if work.loop_until is not None:
            raise OffLoop
        release.wait(5)
        return "done"

    waiting = [asyncio.ensure_future(runner.run(waits)) for _ in range(QUEUE)]
    await asyncio.sleep(0.05)
    with pytest.raises(MatchingGaveUp) as gave_up:
        await runner.run(waits)
    assert gave_up.value.error == "MATCH_BUSY" and gave_up.value.retry_after == 1
    release.set()
    assert await asyncio.gather(*waiting) == ["done"] * QUEUE
    assert await runner.run(waits) == "done"  # the slots were given back
    runner.close()
