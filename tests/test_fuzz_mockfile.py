"""Property/fuzz tests for the mock file loader (mockfile.py, yamlsrc.py, library.py): hostile
files give problems that name the file and a line, never an exception, never a hang, and never
take the good files of the same folder down."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from mockbox.core.library import MockLibrary
from mockbox.core.mockfile import LoadedFile, load_mock_file, load_mock_text
from mockbox.core.templating import TemplateEngine

from .fuzzing import json_values, time_bound

ENGINE = TemplateEngine()
GOOD = """\
mocks:
  - name: good
    request: {method: GET, path: "/good/{id}"}
    response: {status: 200, body: {id: "{{ path.id }}"}}
"""


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    """One folder for all examples (a tmp_path per example would be thousands of folders)."""
    with tempfile.TemporaryDirectory(prefix="mockbox-fuzz-") as name:
        root = Path(name).resolve()
        (root / "good.yaml").write_text(GOOD)
        (root / "data.json").write_text('{"ok": true}')
        yield root


def check_problems(loaded: LoadedFile, path: Path, text: str | None = None) -> None:
    """Every problem names the file and a real line of it."""
    lines = (text.count("\n") + 2) if text is not None else None
    for p in loaded.problems:
        assert p.file == path
        assert isinstance(p.line, int) and p.line >= 1, p
        if lines is not None:
            assert p.line <= lines, (p, lines)
        assert p.message
    if loaded.problems:
        assert loaded.mocks == []


def load_in_folder(root: Path, data: str | bytes) -> tuple[LoadedFile, MockLibrary]:
    """Write `data` as bad.yaml next to good.yaml, load it alone and as part of the library."""
    bad = root / "bad.yaml"
    if isinstance(data, bytes):
        bad.write_bytes(data)
    else:
        bad.write_text(data, encoding="utf-8", errors="surrogatepass")
    with time_bound(20):
        loaded = load_mock_file(bad, root, ENGINE)
        library = MockLibrary(root, ENGINE)
        library.refresh()
    return loaded, library


def good_still_serves(library: MockLibrary, root: Path) -> None:
    assert any(m.name == "good" for m in library.index.mocks), library.problems
    assert all(p.file in (root / "bad.yaml", root / "good.yaml") for p in library.problems)
    assert not any(p.file == root / "good.yaml" for p in library.problems)


# --- random text and bytes ------------------------------------------------------------------


@given(st.binary(max_size=400))
def test_random_bytes_never_raise(folder: Path, data: bytes) -> None:
    loaded, library = load_in_folder(folder, data)
    check_problems(loaded, folder / "bad.yaml")
    good_still_serves(library, folder)


@given(st.text(max_size=400))
def test_random_text_never_raises(folder: Path, text: str) -> None:
    loaded = load_mock_text(folder / "bad.yaml", text, folder, ENGINE)
    check_problems(loaded, folder / "bad.yaml", text)


yaml_tokens = st.sampled_from(
    [
        "mocks:", "\n", "  ", "- ", "request:", "response:", "path: /a", "{", "}", "[", "]",
        ": ", ",", "&x ", "*x", "!!python/object:os.system", "!!binary", "? ", "|", ">",
        "'", '"', "#", "---", "...", "%YAML 1.1", "\t", "{{", "}}", "~", "null", "0x1F",
        "status: 99999999999999999999", "body_file: ", "regex: '('", "jsonpath: '$[?'",
    ]
)  # fmt: skip


@given(st.lists(yaml_tokens, max_size=40).map("".join))
def test_yaml_token_soup_never_raises(folder: Path, text: str) -> None:
    loaded = load_mock_text(folder / "bad.yaml", text, folder, ENGINE)
    check_problems(loaded, folder / "bad.yaml", text)


# --- structurally valid files with wrong types in random places ----------------------------

VALID_MOCK: dict[str, Any] = {
    "name": "n",
    "priority": 1,
    "request": {
        "method": "GET",
        "host": "api.test",
        "path": "/a/{id}",
        "query": {"q": {"regex": "^x"}},
        "headers": {"X-H": "v"},
        "body": {"jsonpath": "$.a", "equals": 1},
    },
    "response": {
        "status": 200,
        "headers": {"X-R": "{{ path.id }}"},
        "body": {"id": "{{ path.id }}"},
        "delay_ms": {"min": 0, "max": 1},
        "fault": {"status": 500, "probability": 0.5},
    },
    "rate_limit": "5/minute",
}


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out.extend(_paths(v, (*prefix, k)))
    return out


FIELD_PATHS = _paths(VALID_MOCK)[1:]


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    if not isinstance(value, dict) or path[0] not in value:
        return value  # an earlier change made a parent a scalar: nothing left to descend into
    out = dict(value)
    out[path[0]] = _replaced(value[path[0]], path[1:], new)
    return out


hostile_values = (
    json_values
    | st.text(alphabet="(){}[]$?*\\^.+|@!", max_size=20)  # invalid regexes and JSONPaths
    | st.sampled_from(
        [
            "../../etc/passwd", "/etc/passwd", "a\x00b", "{{ ''.__class__ }}", "{% include 'x' %}",
            "{{", "{% for %}", "(a", "$[?(@.a ==", "$..[", -1, 10**30, 1e308, True, [], {},
        ]
    )
)  # fmt: skip


@given(st.lists(st.tuples(st.sampled_from(FIELD_PATHS), hostile_values), min_size=1, max_size=3))
def test_wrong_types_in_any_field_give_problems(
    folder: Path, changes: list[tuple[tuple[Any, ...], Any]]
) -> None:
    mock: Any = VALID_MOCK
    for path, new in changes:
        mock = _replaced(mock, path, new)
    text = yaml.safe_dump({"mocks": [mock]}, allow_unicode=True)
    loaded = load_mock_text(folder / "bad.yaml", text, folder, ENGINE)
    check_problems(loaded, folder / "bad.yaml", text)
    assert loaded.problems or len(loaded.mocks) == 1


def test_the_valid_mock_loads(folder: Path) -> None:
    """The baseline of the property above: unchanged, the mock is accepted."""
    loaded = load_mock_text(
        folder / "x.yaml", yaml.safe_dump({"mocks": [VALID_MOCK]}), folder, ENGINE
    )
    assert loaded.problems == [] and len(loaded.mocks) == 1


# --- named hostile files ---------------------------------------------------------------------


def alias_bomb(levels: int = 9) -> str:
    """Billion laughs: each level is ten aliases of the one before (10**levels leaves)."""
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    lines.append(f"mocks: *a{levels}")
    return "\n".join(lines) + "\n"


def mock_bomb() -> str:
    """An alias bomb inside a valid-looking mock (the body is walked by the schema check)."""
    return (
        "x0: &x0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
        + "".join(f"x{i}: &x{i} [{', '.join([f'*x{i - 1}'] * 10)}]\n" for i in range(1, 9))
        + "mocks:\n  - request: {path: /b}\n    response: {body: *x8}\n"
    )


HOSTILE: dict[str, str | bytes] = {
    "alias bomb": alias_bomb(),
    "alias bomb in a body": mock_bomb(),
    "deep flow nesting": "mocks: " + "[" * 20000 + "]" * 20000,
    "deep block nesting": "mocks:\n" + "".join("  " * i + "- \n" for i in range(3000)),
    "deep mapping in a body": "mocks:\n  - request: {path: /d}\n    response:\n      body: "
    + "{a: " * 5000
    + "1"
    + "}" * 5000,
    "invalid regex": "mocks:\n  - request: {path: /r, query: {q: {regex: '(unclosed'}}}\n"
    "    response: {status: 200}\n",
    "invalid JSONPath": "mocks:\n  - request: {path: /j, body: {jsonpath: '$[?(@.a =='}}\n"
    "    response: {status: 200}\n",
    "body_file escaping with ..": "mocks:\n  - request: {path: /e}\n"
    "    response: {body_file: ../../../../etc/passwd}\n",
    "body_file absolute": "mocks:\n  - request: {path: /e}\n"
    "    response: {body_file: /etc/passwd}\n",
    "body_file with NUL": 'mocks:\n  - request: {path: /n}\n    response: {body_file: "a\\0b"}\n',
    "body_file a folder": "mocks:\n  - request: {path: /f}\n    response: {body_file: .}\n",
    "non-UTF-8": b"mocks:\n  - request: {path: /\xff\xfe}\n    response: {status: 200}\n",
    "UTF-16": "mocks: []\n".encode("utf-16"),
    "python tag": "mocks: !!python/object/apply:os.system ['true']\n",
    "duplicate keys": "mocks:\n  - request: {path: /a}\n    request: {path: /b}\n"
    "    response: {}\n",
    "non-string keys": "mocks:\n  - {1: 2, [a]: b, request: {path: /a}, response: {}}\n",
    "complex key": "? [a, b]\n: c\nmocks: []\n",
    "template syntax error": "mocks:\n  - request: {path: /t}\n    response: {body: '{{ x'}\n",
    "regex nested too deeply": "mocks:\n  - request: {path: /r, query: {q: {regex: '"
    + "(" * 5000
    + ")" * 5000
    + "'}}}\n    response: {status: 200}\n",
    "template nested too deeply": "mocks:\n  - request: {path: /t}\n    response: {body: 'x{{ "
    + "(" * 5000
    + "1"
    + ")" * 5000
    + " }}'}\n",
    "template with too many blocks": "mocks:\n  - request: {path: /t}\n    response: {body: '"
    + "{% if 1 %}" * 3000
    + "{% endif %}" * 3000
    + "'}\n",
    "header template too deep": "mocks:\n  - request: {path: /t}\n"
    + "    response: {headers: {X-A: '{{ "
    + "-" * 5000
    + "1 }}'}}\n",
    "openapi $ref to nowhere": "mocks:\n  - request: {path: /o}\n    response: {status: 200}\n"
    "    openapi: {response_schema: {$ref: '#/$defs/Missing'}}\n",
    "openapi remote $ref": "mocks:\n  - request: {path: /o}\n    response: {status: 200}\n"
    "    openapi: {request_schema: {items: {$ref: 'http://example.com/s.json'}}}\n",
    "null in a method list, no name": "mocks:\n  - {name: null, response: {},"
    " request: {path: /a, method: [null]}}\n",
    "recursive alias": "mocks: &m\n  - request: {path: /r}\n    response: {body: *m}\n",
    "two documents": "mocks: []\n---\nmocks: []\n",
    "header with newline": "mocks:\n  - request: {path: /h}\n"
    '    response: {headers: {"X-A": "a\\r\\nSet-Cookie: x"}}\n',
}


# Files that are valid (or fail only when answering) but must still load in bounded time.
BIG: dict[str, str] = {
    "huge scalar": "mocks:\n  - request: {path: /h}\n    response: {body: '"
    + "x" * 5_000_000
    + "'}\n",
    "huge key count": "mocks:\n  - request: {path: /k}\n    response:\n      body:\n"
    + "".join(f"        k{i}: {i}\n" for i in range(5_000)),
    "sandbox escape": "mocks:\n  - request: {path: /s}\n"
    "    response: {body: \"{{ ''.__class__.__mro__[1].__subclasses__() }}\"}\n",
    "constant power": "mocks:\n  - request: {path: /p}\n"
    "    response: {body: 'x{{ 10**10**10 }}'}\n",
    "anchors within bounds": "mocks:\n  - request: {path: /a}\n"
    "    response: &r {headers: {X-A: a}}\n"
    + "".join(f"  - request: {{path: /a{i}}}\n    response: *r\n" for i in range(50)),
}


@pytest.mark.parametrize("name", BIG)
def test_big_but_valid_file_loads_in_bounded_time(folder: Path, name: str) -> None:
    loaded, library = load_in_folder(folder, BIG[name])
    assert loaded.problems == [] and loaded.mocks, loaded.problems
    good_still_serves(library, folder)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_file_gives_problems_and_spares_the_folder(folder: Path, name: str) -> None:
    data = HOSTILE[name]
    loaded, library = load_in_folder(folder, data)
    check_problems(loaded, folder / "bad.yaml")
    assert loaded.problems, f"{name}: accepted"
    good_still_serves(library, folder)


def test_body_file_symlink_out_of_the_folder_is_refused(folder: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    link = folder / "link.txt"
    link.unlink(missing_ok=True)
    link.symlink_to(secret)
    try:
        text = "mocks:\n  - request: {path: /l}\n    response: {body_file: link.txt}\n"
        loaded, library = load_in_folder(folder, text)
    finally:
        link.unlink()
    assert [p.line for p in loaded.problems] == [3]
    assert "outside the mocks folder" in loaded.problems[0].message
    good_still_serves(library, folder)


def test_body_file_symlink_loop_is_a_problem(folder: Path) -> None:
    link = folder / "loop.txt"
    link.unlink(missing_ok=True)
    link.symlink_to(link)
    try:
        text = "mocks:\n  - request: {path: /l}\n    response: {body_file: loop.txt}\n"
        loaded, library = load_in_folder(folder, text)
    finally:
        link.unlink()
    assert [p.line for p in loaded.problems] == [3]
    good_still_serves(library, folder)


@given(
    st.lists(
        st.sampled_from(["..", ".", "data.json", "sub", "%2e%2e", "..\\..", "", "/", "~"]),
        min_size=1,
        max_size=8,
    ).map("/".join)
)
def test_body_file_never_reads_outside_the_folder(folder: Path, name: str) -> None:
    text = yaml.safe_dump({"mocks": [{"request": {"path": "/f"}, "response": {"body_file": name}}]})
    loaded = load_mock_text(folder / "bad.yaml", text, folder, ENGINE)
    check_problems(loaded, folder / "bad.yaml", text)
    for dep in loaded.dependencies:
        assert dep.is_relative_to(folder)
    if loaded.mocks:
        target = (folder / name).resolve()
        assert target.is_relative_to(folder) and target.is_file()
