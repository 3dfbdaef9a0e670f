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


# libyaml's parser is ~10x faster than the pure-Python one; a folder of 10,000 mocks loads
# in a couple of seconds instead of half a minute.
_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """SafeLoader that refuses duplicate mapping keys instead of silently keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
            if not isinstance(key, Hashable):  # `? [a, b]`: PyYAML would raise TypeError
                raise YamlSyntaxError("mapping keys must be scalars", key_node.start_mark.line + 1)
            if key in seen:
                raise YamlSyntaxError(f"duplicate key {key!r}", key_node.start_mark.line + 1)
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def load_sourced(text: str) -> SourcedDocument:
    """Parse one YAML document, raising YamlSyntaxError with a line number on failure."""
    loader = _UniqueKeyLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return SourcedDocument(None, {(): 1})
        _check_expansion(node)
        data = loader.construct_document(node)
    except YamlSyntaxError:
        raise
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


def _check_expansion(root: yaml.Node) -> None:
    """Refuse alias bombs and recursive aliases before anything walks the expanded tree.

    PyYAML shares one node (and one object) per anchor, so parsing stays cheap, but the schema
    check, the line map and every later walk visit each alias in full: nine levels of ten
    aliases are 10**9 visits (a hang), and an anchor used inside itself never ends.
    """
    sizes: dict[int, int] = {}  # node id → nodes in its expansion
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
