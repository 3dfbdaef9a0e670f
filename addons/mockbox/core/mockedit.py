"""Changing one mock inside a mock file while every other byte of the file stays as it was.

An edit is a line splice: the lines of the mock being replaced, inserted or deleted change, and
nothing else (comments, blank lines, quoting, key order and flow style of the other mocks are
the user's). A round-trip YAML library re-emits the whole file and moves comments between
neighbouring mocks (a comment above mock 3 is stored on mock 2's last key), so it is not used.

A mock's block is its `- ` entry plus the comment lines directly above it at the same
indentation: that comment describes it, is shown with it in the editor, and goes when it goes.
Every splice is checked by parsing the result again: the edited entry must read back as the
text that was given, or nothing is written.
"""

from __future__ import annotations

import hashlib
import textwrap
from dataclasses import dataclass
from typing import Any

import yaml


class LayoutError(ValueError):
    """The file cannot be edited line by line (flow-style list, unusual layout, bad YAML)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """Where one mock sits: lines are 0-based and `end` is inclusive."""

    index: int
    start: int  # first line of the block (a leading comment, or the dash line)
    dash: int  # the line holding the entry's `-`
    end: int
    column: int  # column of the `-`
    content: int  # column where the mapping starts
    inline: bool  # the mapping starts on the dash line (`- name: ...`)


@dataclass(frozen=True, slots=True)
class MockFileLayout:
    lines: list[str]  # with their line endings
    entries: list[Entry]
    data: list[Any]  # the parsed mocks, for reading
    key_line: int | None  # the line of `mocks:`, None when the file has no such key
    flow: bool  # `mocks: [...]`: readable, but not editable line by line

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def block(self, index: int) -> str:
        e = self.entries[index]
        return "".join(self.lines[e.start : e.end + 1])

    def etag(self, index: int) -> str:
        """Changes whenever the mock's text changes, comments included."""
        digest = hashlib.sha256(self.block(index).encode()).hexdigest()[:24]
        return f'"{digest}"'

    def snippet(self, index: int) -> str:
        """The mock's own text, as the editor shows it: a mapping starting at column 0."""
        e = self.entries[index]
        if self.flow:
            return dump_mock(self.data[index])
        out = [line[e.column :].rstrip() for line in self.lines[e.start : e.dash]]
        dash_line = self.lines[e.dash]
        if e.inline:
            out.append(dash_line[e.content :].rstrip())
        elif dash_line[e.column + 1 :].strip():  # `- # comment`, the mapping below
            out.append(dash_line[e.column + 1 :].strip())
        out += [
            _dedent(line.rstrip("\r\n"), e.content) for line in self.lines[e.dash + 1 : e.end + 1]
        ]
        return "\n".join(out) + "\n"

    def replaced(self, index: int, snippet: str) -> MockFileLayout:
        self._editable()
        e = self.entries[index]
        new = _render(snippet, e.column, self._newline)
        text = "".join([*self.lines[: e.start], *new, *self.lines[e.end + 1 :]])
        want = list(self.data)
        want[index] = _data_of(snippet)
        return _verified(text, want)

    def inserted(self, index: int, snippet: str) -> MockFileLayout:
        """The file with `snippet` as entry `index` (0 <= index <= number of entries)."""
        self._editable()
        nl = self._newline
        lines = list(self.lines)
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += nl
        if self.entries:
            gap = [nl] if self._blank_between_entries() else []
            new = _render(snippet, self.entries[0].column, nl)
            if index < len(self.entries):
                at = self.entries[index].start
                lines[at:at] = [*new, *gap]
            else:
                at = self.entries[-1].end + 1
                lines[at:at] = [*gap, *new]
        elif self.key_line is None:
            lines += [f"mocks:{nl}", *_render(snippet, 2, nl)]
        else:
            lines[self.key_line] = _with_value(lines[self.key_line], "", nl)
            lines[self.key_line + 1 : self.key_line + 1] = _render(snippet, 2, nl)
        want = list(self.data)
        want.insert(index, _data_of(snippet))
        return _verified("".join(lines), want)

    def deleted(self, index: int) -> MockFileLayout:
        self._editable()
        e = self.entries[index]
        lines = [*self.lines[: e.start], *self.lines[e.end + 1 :]]
        at = e.start
        # Two separating blank runs would meet: keep the one above.
        while 0 < at < len(lines) and _blank(lines[at]) and _blank(lines[at - 1]):
            del lines[at]
        if len(self.entries) == 1 and self.key_line is not None:
            lines[self.key_line] = _with_value(lines[self.key_line], " []", self._newline)
        return _verified("".join(lines), [*self.data[:index], *self.data[index + 1 :]])

    @property
    def _newline(self) -> str:
        first = self.lines[0] if self.lines else "\n"
        return "\r\n" if first.endswith("\r\n") else "\n"

    def _blank_between_entries(self) -> bool:
        pairs = zip(self.entries, self.entries[1:], strict=False)
        return any(any(_blank(x) for x in self.lines[a.end + 1 : b.start]) for a, b in pairs)

    def _editable(self) -> None:
        if self.flow and self.entries:
            raise LayoutError(
                "the mocks list of this file is written in flow style (mocks: [...]); "
                "the editor changes block-style lists (one `- ` per mock) only"
            )


def _data_of(snippet: str) -> Any:
    try:
        return _compose(snippet)[1]
    except yaml.YAMLError as e:
        raise LayoutError(f"the mock is not valid YAML: {e}") from e


def _verified(text: str, want: list[Any]) -> MockFileLayout:
    """Every splice is read back: all mocks must be exactly what was meant, or no write."""
    layout = parse_layout(text)
    if layout.data != want:
        raise LayoutError("the edited file would not read back as written; file left unchanged")
    return layout


def _with_value(key_line: str, value: str, nl: str) -> str:
    """The `mocks:` line with `value` after the colon, keeping a trailing comment."""
    head, sep, comment = key_line.rstrip("\r\n").partition("#")
    key = head.split(":", 1)[0]
    return f"{key}:{value}" + (f"  #{comment}" if sep else "") + nl


def parse_layout(text: str) -> MockFileLayout:
    """Where each mock of a mock file starts and ends."""
    lines = text.splitlines(keepends=True)
    try:
        root, parsed = _compose(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise LayoutError(f"the file is not valid YAML{where}; fix it before editing") from e
    if root is None:
        return MockFileLayout(lines, [], [], None, False)
    if not isinstance(root, yaml.MappingNode):
        raise LayoutError("the file is not a mapping with a `mocks:` list")
    key_line, seq, next_key = None, None, len(lines)
    for i, (key, value) in enumerate(root.value):
        if isinstance(key, yaml.ScalarNode) and key.value == "mocks":
            key_line, seq = key.start_mark.line, value
            if i + 1 < len(root.value):
                next_key = root.value[i + 1][0].start_mark.line
    if seq is None or (isinstance(seq, yaml.ScalarNode) and seq.tag.endswith(":null")):
        return MockFileLayout(lines, [], [], key_line, False)
    if not isinstance(seq, yaml.SequenceNode):
        raise LayoutError("`mocks:` must be a list")
    data = list(parsed["mocks"])
    if seq.flow_style:
        if seq.start_mark.line != seq.end_mark.line and not seq.value:
            raise LayoutError("write an empty list as `mocks: []` on one line")
        return MockFileLayout(lines, _flow_entries(seq), data, key_line, True)
    dashes = [_dash(lines, node) for node in seq.value]
    starts = [_leading_comments(lines, line, column) for line, column in dashes]
    entries = []
    for i, node in enumerate(seq.value):
        line, column = dashes[i]
        boundary = starts[i + 1] if i + 1 < len(seq.value) else next_key
        end = boundary - 1
        while end > line and _outside(lines[end], column):
            end -= 1
        inline = node.start_mark.line == line
        entries.append(Entry(i, starts[i], line, end, column, node.start_mark.column, inline))
    return MockFileLayout(lines, entries, data, key_line, False)


class _Dumper(yaml.SafeDumper):
    """Indents list entries under their key, as people write mock files."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


# libyaml: the same lines and columns as the pure-Python parser (checked in the tests), and a
# file of 10,000 mocks parses in a fraction of a second instead of most of a minute.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _compose(text: str) -> tuple[yaml.Node | None, Any]:
    """The node tree (with positions) and the data, from one parse."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        return node, (loader.construct_document(node) if node is not None else None)
    finally:
        loader.dispose()


def dump_mock(mock: Any) -> str:
    """A mock (JSON-like data) as the editor's YAML text."""
    text: str = yaml.dump(
        mock,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )
    return text


def _flow_entries(seq: yaml.SequenceNode) -> list[Entry]:
    return [
        Entry(
            i, n.start_mark.line, n.start_mark.line, n.end_mark.line, n.start_mark.column, 0, True
        )
        for i, n in enumerate(seq.value)
    ]


def _dash(lines: list[str], node: yaml.Node) -> tuple[int, int]:
    """The line and column of the `-` that introduces `node` (searching upwards)."""
    line, column = node.start_mark.line, node.start_mark.column
    head = lines[line][:column]
    while True:
        stripped = head.strip()
        if stripped.startswith("-") and (stripped == "-" or stripped[1] in " \t#"):
            return line, len(head) - len(head.lstrip())
        if stripped and not stripped.startswith("#"):
            raise LayoutError(f"line {line + 1}: unusual layout for a list entry")
        line -= 1
        if line < 0:
            raise LayoutError("a list entry without its `-`")
        head = lines[line]


def _leading_comments(lines: list[str], dash: int, column: int) -> int:
    """The first of the comment lines directly above `dash`, at the dash's indentation."""
    start = dash
    while start > 0:
        above = lines[start - 1]
        if above.lstrip().startswith("#") and _indent(above) == column:
            start -= 1
        else:
            break
    return start


def _outside(line: str, column: int) -> bool:
    """A blank line, or a comment no deeper than the dash: between entries, not in one."""
    return _blank(line) or (line.lstrip().startswith("#") and _indent(line) <= column)


def _blank(line: str) -> bool:
    return not line.strip()


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _dedent(line: str, width: int) -> str:
    return line[min(width, _indent(line)) :]


def _render(snippet: str, column: int, nl: str) -> list[str]:
    """`snippet` (a mapping at column 0) as lines of a list entry whose `-` is at `column`."""
    body = textwrap.dedent(snippet.replace("\r\n", "\n")).strip("\n").split("\n")
    pad = " " * column
    out: list[str] = []
    dashed = False
    for line in body:
        line = line.rstrip()
        if not dashed and not line:
            continue
        if not dashed and line.startswith("#"):
            out.append(f"{pad}{line}{nl}")
        elif not dashed:
            out.append(f"{pad}- {line}{nl}")
            dashed = True
        else:
            out.append(f"{pad}  {line}{nl}" if line else nl)
    if not dashed:
        raise LayoutError("the mock is empty")
    return out
