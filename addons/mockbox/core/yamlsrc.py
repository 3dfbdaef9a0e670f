"""YAML loading that remembers where every value came from, so errors can name a line."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import yaml

type DocPath = tuple[str | int, ...]


@dataclass(frozen=True, slots=True)
class SourcedDocument:
    """A parsed YAML document plus the 1-based line of every node, keyed by its path."""

    data: Any
    lines: dict[DocPath, int]

    def line_of(self, path: DocPath) -> int:
        """The line of `path`, or of its nearest ancestor that has one."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


class YamlSyntaxError(ValueError):
    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


MAX_QUOTED = 32  # longest value a message quotes as written


def shown(value: Any, limit: int = MAX_QUOTED) -> str:
    """A value from a file as a message may quote it: a short one-line scalar as written, else
    its kind and size. A problem is shown in /healthz, /api and the log, so it must never carry
    a body, nor the text of a secret file that a symlink or a typo made MockBox read."""
    if isinstance(value, str):
        if len(value) <= limit and value.isprintable():
            return repr(value)
        return f"a text of {len(value):,} characters"
    if isinstance(value, (list, dict)):
        if not value:
            return repr(value)
        return f"a {'list' if isinstance(value, list) else 'mapping'} of {len(value):,} entries"
    if value is None or isinstance(value, (bool, int, float)):
        text = repr(value)
        return text if len(text) <= limit else f"a number of {len(text):,} digits"
    return f"a value of type {type(value).__name__}"


# libyaml's parser is ~10x faster than the pure-Python one; a folder of 10,000 mocks loads
# in a couple of seconds instead of half a minute.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


# Longest integer literal read: far beyond any real id, far below the 4,300 digits past which
# Python refuses to convert an integer to or from text (a ValueError while checking the file).
MAX_INT_CHARS = 1000
_INT_TAG = "tag:yaml.org,2002:int"


class _UniqueKeyLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that refuses duplicate mapping keys instead of silently keeping the last, and
    turns every value it cannot construct into a YamlSyntaxError with that value's line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        line = node.start_mark.line + 1
        if node.tag == _INT_TAG and len(node.value) > MAX_INT_CHARS:
            raise YamlSyntaxError(f"a number longer than {MAX_INT_CHARS} characters", line)
        try:
            return super().construct_object(node, deep=deep)  # type: ignore[no-untyped-call]
        except (YamlSyntaxError, yaml.YAMLError):
            raise
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as e:
            # `2001-13-45` (a timestamp), `!!int x`, `!!bool x`: the constructor's own message
            # may quote the value, so only the kind is named.
            kind = str(node.tag).rpartition(":")[2]
            raise YamlSyntaxError(
                f"not a valid {kind} (put it in quotes if it is meant as text)", line
            ) from e

    def construct_undefined(self, node: yaml.Node) -> Any:
        raise YamlSyntaxError(
            "a tag MockBox does not read (only YAML's standard types are allowed)",
            node.start_mark.line + 1,
        )

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if not isinstance(key, Hashable):  # `? [a, b]`: PyYAML would raise TypeError
                raise YamlSyntaxError("mapping keys must be scalars", key_node.start_mark.line + 1)
            if key in seen:
                raise YamlSyntaxError(f"duplicate key {shown(key)}", key_node.start_mark.line + 1)
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


_UniqueKeyLoader.add_constructor(None, _UniqueKeyLoader.construct_undefined)


def load_sourced(text: str) -> SourcedDocument:
    """Parse one YAML document, raising YamlSyntaxError with a line number on failure."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return SourcedDocument(None, {(): 1})
        _check_shape(node)
        data = loader.construct_document(node)
    except YamlSyntaxError:
        raise
    except RecursionError as e:  # PyYAML's pure-Python composer, when libyaml is missing
        raise YamlSyntaxError(f"nests deeper than {MAX_DEPTH} levels", 1) from e
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark else 1
        raise YamlSyntaxError(f"{e.problem or e.context or 'invalid YAML'}", line) from e
    except yaml.YAMLError as e:
        raise YamlSyntaxError(str(e), 1) from e
    finally:
        loader.dispose()
    lines: dict[DocPath, int] = {}
    _collect_lines(node, (), lines)
    return SourcedDocument(data, lines)


# How many nodes aliases may add beyond the file's own: generous for shared headers or bodies,
# far below what a "billion laughs" file (ten aliases of ten aliases of ...) expands to.
MAX_ALIAS_EXPANSION = 100_000
# How deep values may nest (the top mapping is level 1, a mock's body starts at level 5):
# far beyond any real body, and shallow enough for every recursive walk that follows (the line
# map, the schema check, template compilation, JSON encoding) to stay well inside Python's
# recursion limit. libyaml alone stops at 1,000 levels, and 600 overflowed those walks.
MAX_DEPTH = 100


def _check_shape(root: yaml.Node) -> None:
    """Refuse alias bombs, recursive aliases and deep nesting before anything walks the tree.

    PyYAML shares one node (and one object) per anchor, so parsing stays cheap, but the schema
    check, the line map and every later walk visit each alias in full: nine levels of ten
    aliases are 10**9 visits (a hang), and an anchor used inside itself never ends.
    """
    sizes: dict[int, int] = {}  # node id → nodes in its expansion
    heights: dict[int, int] = {}  # node id → levels from it down to its deepest leaf
    distinct = 0
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()  # on the current path: meeting one again is a cycle
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            open_nodes.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            heights[key] = 1 + max((heights[id(c)] for c in children), default=0)
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            raise YamlSyntaxError("an alias refers to its own anchor", node.start_mark.line + 1)
        open_nodes.add(key)
        distinct += 1
        stack.append((node, True))
        for child in children:
            if id(child) in open_nodes:
                raise YamlSyntaxError(
                    "an alias refers to its own anchor", child.start_mark.line + 1
                )
            if id(child) not in sizes:
                stack.append((child, False))
    if heights[id(root)] > MAX_DEPTH:
        node = root
        for _ in range(MAX_DEPTH):  # down the deepest branch to the first level too many
            node = max(_children(node), key=lambda c: heights[id(c)])
        raise YamlSyntaxError(f"nests deeper than {MAX_DEPTH} levels", node.start_mark.line + 1)
    if sizes[id(root)] - distinct > MAX_ALIAS_EXPANSION:
        raise YamlSyntaxError(
            f"anchors and aliases expand to {sizes[id(root)]:,} values, more than "
            f"{MAX_ALIAS_EXPANSION:,} beyond the file's own (an alias bomb?)",
            1,
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _collect_lines(node: yaml.Node, path: DocPath, out: dict[DocPath, int]) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node)
            _collect_lines(value_node, (*path, key), out)
            out[(*path, key)] = key_node.start_mark.line + 1  # point at `key:`, not below it
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _collect_lines(item, (*path, i), out)
