"""Bad mock files give clear errors naming file, line and mock; `mockbox validate` reports them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from mockbox.core.mockfile import load_mock_file
from mockbox.core.templating import TemplateEngine

from .conftest import BIN, REPO

GOOD = """\
mocks:
  - name: ok
    request: {path: /ok}
    response: {body: fine}
"""

BROKEN = {
    "yaml syntax": ("mocks:\n  - request: {path: /a\n    response: {}\n", 3, "invalid YAML"),
    "unknown key": (
        "mocks:\n  - name: typo\n    request: {path: /a}\n    response:\n      stauts: 200\n",
        5,
        "unknown key 'stauts' (expected one of: status, headers, body,",
    ),
    "bad regex": (
        "mocks:\n  - name: rx\n    request:\n      path: /a\n      query:\n"
        "        q: {regex: '(unclosed'}\n    response: {body: x}\n",
        6,
        "bad regex '(unclosed'",
    ),
    "bad jsonpath": (
        "mocks:\n  - name: jp\n    request:\n      path: /a\n      body: {jsonpath: '$..['}\n"
        "    response: {body: x}\n",
        5,
        "bad JSONPath",
    ),
    "body_file outside": (
        "mocks:\n  - name: escape\n    request: {path: /a}\n    response:\n"
        "      body_file: ../../etc/passwd\n",
        5,
        "leads outside the mocks folder",
    ),
    "missing body_file": (
        "mocks:\n  - name: gone\n    request: {path: /a}\n    response:\n"
        "      body_file: nope.json\n",
        5,
        "body_file 'nope.json'",
    ),
    "template syntax": (
        "mocks:\n  - name: tpl\n    request: {path: /a}\n    response:\n      body:\n"
        "        x: '{{ path.id | }}'\n",
        6,
        "template syntax error",
    ),
    "path template": (
        "mocks:\n  - name: pt\n    request: {path: '/a/{rest*}/b'}\n    response: {body: x}\n",
        3,
        "must be the last segment",
    ),
    "duplicate key": (
        "mocks:\n  - name: dup\n    request: {path: /a}\n    request: {path: /b}\n"
        "    response: {body: x}\n",
        4,
        "duplicate key 'request'",
    ),
    "body and body_file": (
        "mocks:\n  - name: both\n    request: {path: /a}\n    response:\n      body: x\n"
        "      body_file: y.txt\n",
        4,
        "either `body` or `body_file`",
    ),
    "status out of range": (
        "mocks:\n  - name: st\n    request: {path: /a}\n    response: {status: 99}\n",
        4,
        "99 is less than the minimum of 100",
    ),
    "not a list": ("mocks: {request: {path: /a}}\n", 1, "is not of type 'array'"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_problem_names_file_line_and_message(tmp_path: Path, case: str) -> None:
    text, line, message = BROKEN[case]
    path = tmp_path / "broken.yaml"
    path.write_text(text)
    loaded = load_mock_file(path, tmp_path, TemplateEngine())
    assert loaded.mocks == []
    assert loaded.problems, case
    problem = loaded.problems[0]
    assert problem.file == path
    assert message in problem.message, str(problem)
    assert problem.line == line, str(problem)
    assert str(problem).startswith(f"{path}:{line}:")


def test_every_problem_in_a_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "two.yaml"
    path.write_text(
        "mocks:\n  - name: a\n    request: {path: /a, query: {q: {regex: '['}}}\n"
        "    response: {body: x}\n  - name: b\n    request: {path: '/b/{x}/{x}'}\n"
        "    response: {body: y}\n"
    )
    problems = load_mock_file(path, tmp_path, TemplateEngine()).problems
    assert [(p.mock, p.line) for p in problems] == [("a", 3), ("b", 6)]


def run_validate(*args: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "mockbox"), "validate", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_validate_command(tmp_path: Path) -> None:
    ok = run_validate(REPO / "mocks")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "0 problem" not in ok.stderr and ": ok" in ok.stderr
    (tmp_path / "good.yaml").write_text(GOOD)
    text, line, message = BROKEN["unknown key"]
    (tmp_path / "bad.yaml").write_text(text)
    bad = run_validate(tmp_path)
    assert bad.returncode == 1
    assert f"{tmp_path / 'bad.yaml'}:{line}: mock 'typo':" in bad.stdout
    assert message in bad.stdout
    assert "2 file(s), 1 mock(s): 1 problem(s)" in bad.stderr
    missing = run_validate(tmp_path / "nope.yaml")
    assert missing.returncode == 1 and "no such file or folder" in missing.stdout


def test_validate_names_hostile_files_and_never_prints_their_text(tmp_path: Path) -> None:
    """`mockbox validate` in CI on a pull request's folder: a FIFO kept it waiting forever, a
    symlink printed the key it led to, 600 levels ended in a RecursionError traceback."""
    mocks, outside = tmp_path / "mocks", tmp_path / "outside"
    mocks.mkdir()
    outside.mkdir()
    (outside / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1r\n")
    (mocks / "good.yaml").write_text(GOOD)
    (mocks / "key.yaml").symlink_to(outside / "id_ed25519")
    os.mkfifo(mocks / "fifo.yaml")
    (mocks / "deep.yaml").write_text(
        "mocks:\n  - request: {path: /d}\n    response:\n      body:\n"
        + "".join("  " * (i + 4) + "a:\n" for i in range(600))
    )
    with (mocks / "huge.yaml").open("wb") as f:
        f.truncate(300 * 1024 * 1024)
    result = run_validate(mocks)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = sorted(result.stdout.splitlines())
    assert lines == [
        f"{mocks / 'deep.yaml'}:101: invalid YAML: nests deeper than 100 levels",
        f"{mocks / 'fifo.yaml'}:1: the file is not a regular file (a folder, FIFO, device or "
        "socket); not read",
        f"{mocks / 'huge.yaml'}:1: the file is 314,572,800 bytes, more than "
        "mock_files.max_file_bytes (16,777,216 bytes); not read",
        f"{mocks / 'key.yaml'}:1: the file leads outside the mocks folder (a symlink?); not read",
    ]
    assert "5 file(s), 1 mock(s): 4 problem(s)" in result.stderr
    assert "PRIVATE" not in result.stdout + result.stderr and "Traceback" not in result.stderr
    # Named on its own, the symlink is checked against its own folder, not where it leads.
    alone = run_validate(mocks / "key.yaml")
    assert alone.returncode == 1 and "leads outside the mocks folder" in alone.stdout


def test_validate_takes_its_limits_from_the_configuration(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    config = tmp_path / "mockbox.yaml"
    config.write_text("mock_files: {max_file_bytes: 10}\n")
    result = run_validate(tmp_path / "good.yaml", "--config", config)
    assert result.returncode == 1
    assert "more than mock_files.max_file_bytes (10 bytes)" in result.stdout
