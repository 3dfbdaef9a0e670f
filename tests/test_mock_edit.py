"""Editing one mock in a mock file: everything else in the file stays byte for byte, the
result always reads back as intended, and client paths never leave the mocks folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from mockbox.core.mockedit import LayoutError, parse_layout
from mockbox.core.mockstore import Conflict, Invalid, MockStore, PathRefused
from mockbox.core.templating import TemplateEngine

from .conftest import REPO

FILE = """\
# Header comment: stays.
mocks:
  # About alpha.
  - name: alpha
    request: {method: GET, path: /a}   # inline comment
    response:
      body: {a: 1}

  # About beta, line one.
  # About beta, line two.
  - name: beta
    request:
      method: GET
      path: /b
    response:
      body: |
        text body
        # not a comment: part of the text
    # trailing comment inside beta (deeper than the dash)

  # About gamma.
  - name: gamma
    request: {path: /c}
    response: {status: 204}
# Footer comment: stays.
"""

NEW = "# New comment.\nname: beta2\nrequest: {path: /b2}\nresponse:\n  body: [1, 2]\n"


def lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def test_snippet_is_the_mock_with_its_own_comments() -> None:
    layout = parse_layout(FILE)
    assert [e.index for e in layout.entries] == [0, 1, 2]
    snippet = layout.snippet(1)
    assert snippet.startswith("# About beta, line one.\n# About beta, line two.\nname: beta\n")
    assert "# trailing comment inside beta" in snippet
    assert "About gamma" not in snippet and "About alpha" not in snippet
    assert yaml.safe_load(snippet)["response"]["body"].endswith("part of the text\n")
    assert parse_layout(FILE).snippet(0).splitlines()[2] == (
        "request: {method: GET, path: /a}   # inline comment"
    )


def test_replace_changes_only_the_mocks_lines() -> None:
    layout = parse_layout(FILE)
    entry = layout.entries[1]
    out = layout.replaced(1, NEW).text
    before, after = lines(FILE), lines(out)
    assert after[: entry.start] == before[: entry.start]
    tail = len(before) - entry.end - 1
    assert after[-tail:] == before[-tail:]
    assert "  # New comment.\n  - name: beta2\n    request: {path: /b2}\n" in out
    data = yaml.safe_load(out)["mocks"]
    assert [m["name"] for m in data] == ["alpha", "beta2", "gamma"]
    assert data[1]["response"]["body"] == [1, 2]


def test_delete_takes_the_mocks_comment_and_keeps_its_neighbours() -> None:
    out = parse_layout(FILE).deleted(1).text
    assert "About beta" not in out and "trailing comment inside beta" not in out
    for kept in ("# Header comment", "# About alpha", "# About gamma", "# Footer comment"):
        assert kept in out
    assert "\n\n\n" not in out  # the blank lines around the removed mock do not pile up
    assert [m["name"] for m in yaml.safe_load(out)["mocks"]] == ["alpha", "gamma"]


def test_delete_the_last_mock_leaves_an_empty_list() -> None:
    text = "mocks:  # all of them\n  - request: {path: /a}\n    response: {body: a}\n"
    out = parse_layout(text).deleted(0).text
    assert out == "mocks: []  # all of them\n"
    assert yaml.safe_load(out) == {"mocks": []}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "mocks:\n  - request: {path: /n}\n    response: {body: n}\n"),
        ("# just a comment\n", "# just a comment\nmocks:\n  - request: {path: /n}\n"),
        ("mocks:\n", "mocks:\n  - request: {path: /n}\n"),
        ("mocks: []  # none yet\n", "mocks:  # none yet\n  - request: {path: /n}\n"),
        ("mocks:\n- request: {path: /a}\n  response: {body: a}\n", "- request: {path: /n}\n"),
    ],
)
def test_insert_into_empty_and_unusual_files(text: str, expected: str) -> None:
    out = (
        parse_layout(text)
        .inserted(len(parse_layout(text).entries), "request: {path: /n}\nresponse: {body: n}\n")
        .text
    )
    assert expected in out
    assert yaml.safe_load(out)["mocks"][-1] == {
        "request": {"path": "/n"},
        "response": {"body": "n"},
    }


def test_insert_follows_the_files_spacing() -> None:
    spaced = parse_layout(FILE).inserted(1, "request: {path: /n}\nresponse: {body: n}\n").text
    assert (
        "      body: {a: 1}\n\n  - request: {path: /n}\n    response: {body: n}\n\n  # About beta"
        in (spaced)
    )
    tight = "mocks:\n  - request: {path: /a}\n    response: {body: a}\n"
    out = parse_layout(tight).inserted(1, "request: {path: /n}\nresponse: {body: n}\n").text
    assert out == tight + "  - request: {path: /n}\n    response: {body: n}\n"


def test_crlf_files_stay_crlf() -> None:
    text = FILE.replace("\n", "\r\n")
    out = (
        parse_layout(text)
        .replaced(0, "name: alpha\nrequest: {path: /a}\nresponse: {body: x}\n")
        .text
    )
    assert "\n" not in out.replace("\r\n", "")
    assert yaml.safe_load(out)["mocks"][0]["response"]["body"] == "x"


def test_dash_on_its_own_line_and_dash_with_a_comment() -> None:
    text = (
        "mocks:\n  -\n    request: {path: /a}\n    response: {body: a}\n"
        "  - # the b one\n    request: {path: /b}\n    response: {body: b}\n"
    )
    layout = parse_layout(text)
    assert layout.snippet(0) == "request: {path: /a}\nresponse: {body: a}\n"
    assert layout.snippet(1).startswith("# the b one\nrequest: {path: /b}")
    out = layout.replaced(1, "request: {path: /b}\nresponse: {body: B}\n").text
    assert yaml.safe_load(out)["mocks"][1]["response"]["body"] == "B"
    assert out.startswith("mocks:\n  -\n    request: {path: /a}\n")


def test_flow_style_lists_are_read_but_not_spliced() -> None:
    text = "mocks: [{request: {path: /a}, response: {body: a}}]\n"
    layout = parse_layout(text)
    assert yaml.safe_load(layout.snippet(0)) == {
        "request": {"path": "/a"},
        "response": {"body": "a"},
    }
    with pytest.raises(LayoutError, match="flow style"):
        layout.replaced(0, "request: {path: /a}\nresponse: {body: b}\n")


def test_broken_yaml_is_not_editable() -> None:
    with pytest.raises(LayoutError, match=r"not valid YAML \(line \d\)"):
        parse_layout("mocks:\n  - request: {path: /a\n")


def test_every_example_mock_round_trips_unchanged() -> None:
    """Replacing each mock of the shipped examples with its own snippet changes nothing."""
    for path in sorted((REPO / "mocks").glob("*.yaml")):
        text = path.read_text()
        layout = parse_layout(text)
        for i in range(len(layout.entries)):
            assert layout.replaced(i, layout.snippet(i)).text == text, f"{path.name} mock {i}"


# --- the store: paths, ETags, checks ----------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> MockStore:
    root = tmp_path / "mocks"
    root.mkdir()
    (root / "shop.yaml").write_text(FILE)
    return MockStore(root, TemplateEngine())


@pytest.mark.parametrize(
    "name",
    [
        "../outside.yaml",
        "/etc/passwd.yaml",
        "a/../../outside.yaml",
        ".hidden.yaml",
        "dir/.hidden/x.yaml",
        "notes.txt",
        "a\\b.yaml",
        "",
        "x" * 300 + ".yaml",
    ],
)
def test_paths_outside_the_folder_are_refused(store: MockStore, name: str) -> None:
    with pytest.raises(PathRefused):
        store.resolve(name)


def test_a_symlink_out_of_the_folder_is_refused(store: MockStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, store.root / "linked")
    with pytest.raises(PathRefused, match="outside the mocks folder"):
        store.create("linked/evil.yaml", "request: {path: /x}\nresponse: {body: x}\n")
    assert list(outside.iterdir()) == []


def test_stale_etag_is_a_conflict_with_the_current_version(store: MockStore) -> None:
    seen = store.get("shop.yaml", 1)
    other = store.update("shop.yaml", 1, NEW, seen.etag).stored  # someone else saves first
    assert other is not None
    assert other.etag != seen.etag
    with pytest.raises(Conflict) as raised:
        store.update("shop.yaml", 1, NEW.replace("b2", "b3"), seen.etag)
    assert raised.value.extra["current"]["etag"] == other.etag
    assert "name: beta2" in raised.value.extra["current"]["yaml"]
    store.delete("shop.yaml", 2, store.get("shop.yaml", 2).etag)
    with pytest.raises(Conflict, match="no longer exists"):
        store.update("shop.yaml", 2, NEW, "*")


def test_invalid_mock_is_refused_with_lines_of_the_snippet(store: MockStore) -> None:
    before = (store.root / "shop.yaml").read_text()
    bad = "name: x\nrequest:\n  path: /x\nresponse:\n  status: abc\n  body: '{{ oops('\n"
    with pytest.raises(Invalid) as raised:
        store.create("shop.yaml", bad)
    problems = raised.value.extra["problems"]
    assert problems[0]["line"] == 5 and "status" in problems[0]["message"]
    assert (store.root / "shop.yaml").read_text() == before


def test_a_write_can_be_undone(store: MockStore) -> None:
    """The editor reloads after each write and puts the file back if it does not load."""
    path = store.root / "shop.yaml"
    update = store.update("shop.yaml", 0, "request: {path: /a}\nresponse: {body: z}\n", "*")
    assert update.path == path.resolve() and update.previous == FILE
    store.undo(update)
    assert path.read_text() == FILE
    created = store.create("new/file.yaml", "request: {path: /n}\nresponse: {body: n}\n")
    assert created.previous is None and created.path.exists()
    store.undo(created)
    assert not created.path.exists()


def test_libyaml_positions_match_the_pure_python_parser() -> None:
    """parse_layout uses libyaml for speed; its lines and columns must be the same."""
    text = "mocks:\n" + "".join(
        f"  - {{request: {{path: '/r{i}'}}, response: {{body: 'é ü 🎉 {i}'}}}}  # ü\n"
        for i in range(50)
    )
    text += (
        "  - name: 'ünï 🎉'\n    request: {path: /b}\n    response:\n      body: |\n        🎉\n"
    )

    def marks(loader: type[yaml.SafeLoader]) -> list[tuple[int, int, int, int]]:
        root = yaml.compose(text, Loader=loader)
        return [
            (n.start_mark.line, n.start_mark.column, n.end_mark.line, n.end_mark.column)
            for n in root.value[0][1].value
        ]

    assert marks(yaml.CSafeLoader) == marks(yaml.SafeLoader)
