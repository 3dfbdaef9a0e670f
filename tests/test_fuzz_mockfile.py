"""Property/fuzz tests for the mock file loader (mockfile.py, yamlsrc.py, library.py,
safefile.py): hostile files give problems that name the file and a line, never an exception,
never a hang, never the text of a file outside the folder, and never take the good files of the
same folder down."""

from __future__ import annotations

import os
import string
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from mockbox.core.library import MockLibrary
from mockbox.core.mockfile import LoadedFile, load_mock_file, load_mock_text
from mockbox.core.safefile import MIB, FileLimits
from mockbox.core.templating import TemplateEngine
from mockbox.core.yamlsrc import MAX_DEPTH

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


def good_still_serves(library: MockLibrary, root: Path, bad: str = "bad.yaml") -> None:
    assert any(m.name == "good" for m in library.index.mocks), library.problems
    assert all(p.file in (root / bad, root / "bad.yaml") for p in library.problems)
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


# --- values the YAML constructor cannot build -------------------------------------------------

CONSTRUCTOR: dict[str, str] = {
    "impossible timestamp": "2001-13-45",
    "impossible time of day": "2001-01-01 25:61:61",
    "explicit int that is not": "!!int x",
    "explicit float that is not": "!!float x",
    "explicit bool that is not": "!!bool x",
    "explicit timestamp that is not": "!!timestamp x",
    "integer past Python's text limit": "9" * 5000,
    "hex integer past it once printed": "0x" + "f" * 5000,
}


@pytest.mark.parametrize("name", CONSTRUCTOR)
def test_values_yaml_cannot_build_are_problems_on_their_line(folder: Path, name: str) -> None:
    """These raised ValueError, KeyError or AttributeError out of the loader (and so out of a
    reload) instead of being the file's problem."""
    text = f"mocks:\n  - request: {{path: /v}}\n    response:\n      body: {CONSTRUCTOR[name]}\n"
    loaded, library = load_in_folder(folder, text)
    check_problems(loaded, folder / "bad.yaml", text)
    assert [p.line for p in loaded.problems] == [4], loaded.problems
    good_still_serves(library, folder)


# --- nesting depth ---------------------------------------------------------------------------


def nested(kind: str, depth: int) -> str:
    """A mock whose body value is `depth` levels deep, leaves included (`1` is one level)."""
    head = "mocks:\n  - request: {path: /d}\n    response:\n      body:"
    if depth <= 2 or kind == "flow":
        return f"{head} {'[' * (depth - 1)}1{']' * (depth - 1)}\n"
    if kind.startswith("block"):  # one level a line, from line 5 on
        step, last = ("a:", "b: 1") if kind == "block mapping" else ("-", "- 1")
        lines = ["  " * (i + 4) + step for i in range(depth - 2)] + ["  " * (depth + 2) + last]
        return head + "\n" + "\n".join(lines) + "\n"
    # anchors: every rung one line, but each alias stacks the rung before it one level deeper
    rungs = ["l0: &l0 [1]"] + [f"l{i}: &l{i} [*l{i - 1}]" for i in range(1, depth - 2)]
    return f"{head} {{{', '.join(rungs)}}}\n"


NESTING_KINDS = ["block mapping", "block list", "flow", "anchors"]
BODY_LEVEL = 5  # the body's value is level 5 (the file, mocks, the mock, response, body)


@pytest.mark.parametrize("kind", NESTING_KINDS)
def test_600_levels_of_nesting_are_a_problem_not_a_recursion_error(folder: Path, kind: str) -> None:
    """600 levels raised RecursionError out of the loader: `mockbox run` exited without naming
    the file, the validate API answered 500 and hot reload stopped."""
    text = nested(kind, 600)
    loaded, library = load_in_folder(folder, text)
    check_problems(loaded, folder / "bad.yaml", text)
    (problem,) = loaded.problems
    assert f"nests deeper than {MAX_DEPTH} levels" in problem.message
    if kind.startswith("block"):  # the line where the first level too many starts
        assert problem.line == MAX_DEPTH + 1, problem
    good_still_serves(library, folder)


@given(st.sampled_from(NESTING_KINDS), st.integers(min_value=1, max_value=900))
def test_any_nesting_loads_or_is_named_with_its_line(folder: Path, kind: str, depth: int) -> None:
    text = nested(kind, depth)
    with time_bound(20):
        loaded = load_mock_text(folder / "bad.yaml", text, folder, ENGINE)
    check_problems(loaded, folder / "bad.yaml", text)
    if BODY_LEVEL - 1 + depth <= MAX_DEPTH:
        assert loaded.problems == [] and len(loaded.mocks) == 1
    else:
        assert len(loaded.problems) == 1 and "nests deeper than" in loaded.problems[0].message


# --- files that are not what they seem: symlinks, FIFOs, devices, sizes ----------------------


@contextmanager
def placed(path: Path, make: Callable[[Path], object]) -> Iterator[Path]:
    """`make(path)` (a symlink, a FIFO...) for the duration of the block."""
    path.unlink(missing_ok=True)
    make(path)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def load_placed(root: Path, name: str) -> tuple[LoadedFile, MockLibrary]:
    with time_bound(20):
        loaded = load_mock_file(root / name, root, ENGINE)
        library = MockLibrary(root, ENGINE)
        library.refresh()
    assert [p for p in library.problems if p.file == root / name] == loaded.problems
    return loaded, library


SECRET = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n"


def test_a_mock_file_symlinked_out_of_the_folder_is_not_read(folder: Path, tmp_path: Path) -> None:
    """It was loaded, and the key's text came back in the problem (/healthz, /api, the log)."""
    secret = tmp_path / "id_ed25519"
    secret.write_text(SECRET)
    with placed(folder / "key.yaml", lambda p: p.symlink_to(secret)):
        loaded, library = load_placed(folder, "key.yaml")
    (problem,) = loaded.problems
    assert (problem.file, problem.line) == (folder / "key.yaml", 1)
    assert "leads outside the mocks folder" in problem.message
    assert "PRIVATE" not in problem.message and "b3Bl" not in problem.message
    good_still_serves(library, folder, "key.yaml")


def test_a_symlink_that_stays_inside_the_folder_loads(folder: Path) -> None:
    """The documented choice: symlinks are followed while they stay inside the folder."""
    with placed(folder / "alias.yaml", lambda p: p.symlink_to("good.yaml")):
        loaded, library = load_placed(folder, "alias.yaml")
        assert loaded.problems == [] and [m.name for m in loaded.mocks] == ["good"]
        assert folder / "alias.yaml" in library.files


def test_a_symlinked_folder_is_not_entered(folder: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "evil.yaml").write_text(SECRET)
    with placed(folder / "linked", lambda p: p.symlink_to(outside)):
        library = MockLibrary(folder, ENGINE)
        library.refresh()
    seen = [*library.files, *(p.file for p in library.problems)]
    assert folder / "good.yaml" in seen
    assert not any(path.is_relative_to(folder / "linked") for path in seen)


SPECIAL: dict[str, Callable[[Path, Path], object]] = {  # (path, a folder outside the mocks)
    "a FIFO": lambda p, _: os.mkfifo(p),  # open() would wait for a writer for good
    "a symlink to /dev/zero": lambda p, _: p.symlink_to("/dev/zero"),  # reads never end
    "a symlink to a FIFO outside": lambda p, out: (os.mkfifo(out / "f"), p.symlink_to(out / "f")),
    "a symlink loop": lambda p, _: p.symlink_to(p),
    "a dangling symlink": lambda p, _: p.symlink_to(p.with_name("gone.yaml")),
}


@pytest.mark.parametrize("name", SPECIAL)
def test_special_mock_files_are_problems_at_once(folder: Path, tmp_path: Path, name: str) -> None:
    started = time.monotonic()
    with placed(folder / "special.yaml", lambda p: SPECIAL[name](p, tmp_path)):
        loaded, library = load_placed(folder, "special.yaml")
    assert time.monotonic() - started < 5
    (problem,) = loaded.problems
    assert (problem.file, problem.line) == (folder / "special.yaml", 1)
    assert problem.message.startswith("the file ")
    good_still_serves(library, folder, "special.yaml")


@pytest.mark.parametrize("name", SPECIAL)
def test_special_body_files_are_problems_at_once(folder: Path, tmp_path: Path, name: str) -> None:
    text = "mocks:\n  - request: {path: /b}\n    response:\n      body_file: special.bin\n"
    started = time.monotonic()
    with placed(folder / "special.bin", lambda p: SPECIAL[name](p, tmp_path)):
        loaded, library = load_in_folder(folder, text)
    assert time.monotonic() - started < 5
    (problem,) = loaded.problems
    assert problem.line == 4 and problem.message.startswith("body_file 'special.bin' ")
    good_still_serves(library, folder)


def test_a_body_file_through_a_symlinked_folder_out_is_refused(
    folder: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "data.json").write_text('{"secret": true}')
    text = "mocks:\n  - request: {path: /b}\n    response:\n      body_file: linked/data.json\n"
    with placed(folder / "linked", lambda p: p.symlink_to(outside)):
        loaded, library = load_in_folder(folder, text)
    (problem,) = loaded.problems
    assert problem.line == 4 and "leads outside the mocks folder" in problem.message
    assert loaded.dependencies == set()
    good_still_serves(library, folder)


def sparse(size: int) -> Callable[[Path], object]:
    """A file of `size` bytes that takes no room on disk (and none in memory unless read)."""

    def make(path: Path) -> None:
        with path.open("wb") as f:
            f.truncate(size)

    return make


def peak_memory(load: Callable[[], LoadedFile]) -> tuple[LoadedFile, int]:
    """What `load` returns, and the most memory it held at once."""
    tracemalloc.start()
    try:
        loaded = load()
        return loaded, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_300_mb_mock_file_is_refused_without_reading_it(folder: Path) -> None:
    with placed(folder / "huge.yaml", sparse(300 * MIB)):
        loaded, peak = peak_memory(lambda: load_mock_file(folder / "huge.yaml", folder, ENGINE))
        _, library = load_placed(folder, "huge.yaml")
    (problem,) = loaded.problems
    assert "is 314,572,800 bytes, more than mock_files.max_file_bytes (16,777,216" in str(problem)
    assert peak < MIB, f"{peak:,} bytes allocated"
    good_still_serves(library, folder, "huge.yaml")


def test_a_300_mb_body_file_is_refused_without_reading_it(folder: Path) -> None:
    """It was read whole into memory, and kept there for as long as its mock served."""
    text = "mocks:\n  - request: {path: /b}\n    response:\n      body_file: huge.bin\n"
    with placed(folder / "huge.bin", sparse(300 * MIB)):
        loaded, peak = peak_memory(lambda: load_mock_text(folder / "b.yaml", text, folder, ENGINE))
        _, library = load_in_folder(folder, text)
    (problem,) = loaded.problems
    assert problem.line == 4
    assert "more than mock_files.max_body_file_bytes (16,777,216 bytes)" in problem.message
    assert peak < MIB, f"{peak:,} bytes allocated"
    good_still_serves(library, folder)


@given(st.integers(min_value=0, max_value=4096), st.integers(min_value=1, max_value=4096))
def test_size_limits_hold_exactly(folder: Path, size: int, limit: int) -> None:
    """A file is read when it has at most `limit` bytes, and refused with a reason otherwise."""
    limits = FileLimits(max_file_bytes=10_000, max_body_file_bytes=limit)
    (folder / "sized.bin").write_bytes(b"x" * size)
    text = "mocks:\n  - request: {path: /s}\n    response: {body_file: sized.bin}\n"
    loaded = load_mock_text(folder / "bad.yaml", text, folder, ENGINE, limits)
    if size <= limit:
        assert loaded.problems == [] and loaded.mocks[0].response.body_bytes == b"x" * size
    else:
        assert [p.line for p in loaded.problems] == [3]
        assert "max_body_file_bytes" in loaded.problems[0].message


def test_the_folder_total_is_bounded_and_names_the_file_past_it(tmp_path: Path) -> None:
    """Many files each under the per-file limits still cannot take unbounded memory."""
    mock = "mocks:\n  - request: {{path: /{n}}}\n    response: {{body_file: body{n}.bin}}\n"
    for n in range(5):
        (tmp_path / f"m{n}.yaml").write_text(mock.format(n=n))
        (tmp_path / f"body{n}.bin").write_bytes(b"x" * 1000)
    library = MockLibrary(tmp_path, ENGINE, FileLimits(max_total_bytes=3500))
    library.refresh()
    assert [m.path.text for m in library.index.mocks] == ["/0", "/1", "/2"]
    assert [p.file.name for p in library.problems] == ["m3.yaml", "m4.yaml"]
    assert all("mock_files.max_total_bytes" in p.message for p in library.problems)
    (tmp_path / "m0.yaml").unlink()  # room again: the next reload takes the next file
    library.refresh([tmp_path / "m3.yaml"])
    assert [m.path.text for m in library.index.mocks] == ["/1", "/2", "/3"]


# --- problems never carry a secret file's text ----------------------------------------------

SECRET_CHARS = string.ascii_letters + string.digits + "+/_-"
SECRET_SHAPES = [  # files read by mistake: a key, a .env, /etc/shadow, a netrc...
    "{t}",
    "{t}\n",
    "-----BEGIN PRIVATE KEY-----\n{t}\n-----END PRIVATE KEY-----\n",
    "API_KEY={t}\nOTHER=1\n",
    "password: {t}\n",
    "database:\n  password: {t}\n",
    "- {t}\n",
    '{{"private_key": "{t}"}}',
    "machine api.test login me password {t}\n",
    "root:{t}:19000:0:99999:7:::\n",
    "token: a: {t}\n",
    "!{t} x\n",
    "&{t} x\n",
    "*{t}\n",
    "\t{t}\n",
    "'{t}\n",
    '"{t}\\q"\n',
]
MOCK_SHAPES = [  # mock files holding a long value where a short one belongs
    "mocks: {t}\n",
    "mocks: [{t}]\n",
    "mocks:\n  - {t}\n",
    "mocks:\n  - request: {{path: /a, query: {t}}}\n    response: {{status: {t}}}\n",
    "mocks:\n  - request: {{path: /a}}\n    response: {{status: 200, {t}: 1}}\n",
    "mocks:\n  - request: {{path: /a}}\n    response: {{fault: {t}}}\n",
    "mocks:\n  - request: {{path: /a}}\n    response: {{body_file: x, body: {t}}}\n",
]


@given(
    st.sampled_from(SECRET_SHAPES).flatmap(
        lambda shape: st.tuples(st.just(shape), st.text(SECRET_CHARS, min_size=24, max_size=64))
    )
    | st.sampled_from(MOCK_SHAPES).flatmap(
        lambda shape: st.tuples(st.just(shape), st.text(SECRET_CHARS, min_size=33, max_size=64))
    )
)
def test_problems_never_quote_a_secret_file(folder: Path, case: tuple[str, str]) -> None:
    """A file that is not a mock file is reported by file and line, and not even part of its
    text reaches the problem, which /healthz, /api/mocks and the log show. In a mock file,
    only values up to 32 characters are quoted (besides the mock's name, its label)."""
    shape, token = case
    text = shape.format(t=token)
    loaded = load_mock_text(folder / "bad.yaml", text, folder, ENGINE)
    check_problems(loaded, folder / "bad.yaml", text)
    assert loaded.problems
    for problem in loaded.problems:
        shown = str(problem).lower()
        secret = token.lower()
        assert not any(secret[i : i + 12] in shown for i in range(len(secret) - 11)), shown
