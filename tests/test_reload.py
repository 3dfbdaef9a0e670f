"""Mock files reload without a restart; a broken edit keeps the last good version serving."""

from __future__ import annotations

from pathlib import Path

from .conftest import MockBoxFactory, wait_until, write_mocks

V1 = "mocks:\n  - request: {path: /greeting}\n    response: {body: {text: hello}}\n"
V2 = "mocks:\n  - request: {path: /greeting}\n    response: {body: {text: bonjour}}\n"
BROKEN = (  # line 5 is indented one space too little
    "mocks:\n  - request: {path: /greeting}\n    response:\n      status: 200\n     body: x\n"
)


def test_add_edit_break_fix_delete(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    mocks = tmp_path / "mocks"
    write_mocks(
        mocks, "other.yaml", "mocks:\n  - request: {path: /other}\n    response: {body: o}\n"
    )
    box = mockbox(mocks, "--unmatched", "404")
    url = "http://reload.test/greeting"
    assert box.get(url).status_code == 404

    write_mocks(mocks, "greeting.yaml", V1)
    wait_until(lambda: box.get(url).status_code == 200, 10, "new file served")
    assert box.get(url).json() == {"text": "hello"}

    write_mocks(mocks, "greeting.yaml", V2)
    wait_until(lambda: box.get(url).json() == {"text": "bonjour"}, 10, "edit served")

    write_mocks(mocks, "greeting.yaml", BROKEN)
    wait_until(lambda: bool(box.health()["mocks"]["problems"]), 10, "problem reported")
    problem = box.health()["mocks"]["problems"][0]
    assert problem["file"].endswith("greeting.yaml") and problem["line"] == 5
    assert "invalid YAML" in problem["message"]
    assert box.get(url).json() == {"text": "bonjour"}  # the last good version still serves
    assert box.get("http://reload.test/other").text == "o"  # and so do the other files
    assert "greeting.yaml:5" in box.log()
    assert "mockbox_reload_errors_total 1.0" in box.metrics()

    write_mocks(mocks, "greeting.yaml", V1)
    wait_until(lambda: box.get(url).json() == {"text": "hello"}, 10, "fixed file served")
    assert box.health()["mocks"]["problems"] == []

    (mocks / "greeting.yaml").unlink()
    wait_until(lambda: box.get(url).status_code == 404, 10, "deleted file gone")
    assert box.health()["mocks"]["loaded"] == 1


def test_body_file_change_reloads(mockbox: MockBoxFactory, tmp_path: Path) -> None:
    mocks = tmp_path / "mocks"
    write_mocks(mocks, "data.json", '{"v": 1}')
    write_mocks(
        mocks, "m.yaml", "mocks:\n  - request: {path: /d}\n    response: {body_file: data.json}\n"
    )
    box = mockbox(mocks, "--unmatched", "404")
    assert box.get("http://r.test/d").json() == {"v": 1}
    write_mocks(mocks, "data.json", '{"v": 2}')
    wait_until(lambda: box.get("http://r.test/d").json() == {"v": 2}, 10, "body file reloaded")


def test_a_new_broken_file_serves_nothing_and_says_why(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    mocks = tmp_path / "mocks"
    write_mocks(mocks, "bad.yaml", "mocks:\n  - request: {path: /x}\n    response: {status: 42}\n")
    write_mocks(mocks, "good.yaml", "mocks:\n  - request: {path: /y}\n    response: {body: y}\n")
    box = mockbox(mocks, "--unmatched", "404")
    health = box.health()
    assert health["mocks"]["loaded"] == 1
    assert health["mocks"]["problems"][0]["line"] == 3
    assert box.get("http://r.test/y").text == "y"
    assert box.get("http://r.test/x").status_code == 404


def test_a_file_that_broke_the_loader_stops_no_reloading(
    mockbox: MockBoxFactory, tmp_path: Path
) -> None:
    """600 levels of nesting raised RecursionError out of the reload: every file after it (by
    name) stopped reloading. Now it is one file's problem, and the others go on."""
    mocks = tmp_path / "mocks"
    other = "mocks:\n  - request: {path: /other}\n    response: {body: o}\n"
    write_mocks(mocks, "other.yaml", other)
    box = mockbox(mocks, "--unmatched", "404")
    deep = "mocks:\n  - request: {path: /deep}\n    response:\n      body:\n" + "".join(
        "  " * (i + 4) + "a:\n" for i in range(600)
    )
    write_mocks(mocks, "a-deep.yaml", deep)  # named to load before other.yaml
    wait_until(lambda: bool(box.health()["mocks"]["problems"]), 10, "problem reported")
    (problem,) = box.health()["mocks"]["problems"]
    assert problem["file"].endswith("a-deep.yaml") and problem["line"] == 101
    assert "nests deeper than 100 levels" in problem["message"]

    write_mocks(mocks, "other.yaml", other.replace("body: o", "body: p"))
    wait_until(lambda: box.get("http://r.test/other").text == "p", 10, "an edit after it")

    (mocks / "a-deep.yaml").unlink()
    wait_until(lambda: box.health()["mocks"]["problems"] == [], 10, "the problem cleared")
    assert "Traceback" not in box.log() and "RecursionError" not in box.log()
