"""Writing mock files: readable, diff-friendly YAML (block style, keys in a fixed order) written
atomically, and strings escaped so that recorded or imported text is never run as a template."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_TEMPLATE_MARKS = ("{{", "{%", "{#")


def literal(value: Any) -> Any:
    """`value` with every string that Jinja would read as a template made to render as itself."""
    if isinstance(value, str):
        if not any(mark in value for mark in _TEMPLATE_MARKS):
            return value
        if "{% endraw" not in value and "{%- endraw" not in value:
            return "{% raw %}" + value + "{% endraw %}"
        return "{{ " + _jinja_string(value) + " }}"
    if isinstance(value, dict):
        return {k: literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [literal(v) for v in value]
    return value


def _jinja_string(text: str) -> str:
    """A Jinja string literal: a single expression of it renders exactly `text`."""
    escaped = text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return "'" + escaped.replace("\r", "\\r").replace("\t", "\\t") + "'"


# libyaml's emitter is several times faster than PyYAML's own; a recording of thousands of
# requests is written in about a second instead of several. (It writes lists unindented under
# their key, which is plain YAML.)
_BaseDumper: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _Dumper(_BaseDumper):  # type: ignore[valid-type,misc]
    """Block style; multi-line strings as `|` blocks; no aliases, so every mock reads alone."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text and len(text) < 100_000 else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _str)


def _dump(data: Any) -> str:
    text: str = yaml.dump(
        data,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    return text


def _comment(header: str) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())


def dump_yaml(data: Any, header: str = "") -> str:
    """YAML text of `data`, keys in insertion order, preceded by `header` as comment lines."""
    return _comment(header) + _dump(data)


def dump_mock(mock: dict[str, Any]) -> str:
    """One `mocks:` list item as YAML, so a writer can cache the items that did not change."""
    return _dump([mock])


def join_mocks(items: list[str], header: str = "") -> str:
    """A mock file from items made by `dump_mock`."""
    return _comment(header) + ("mocks:\n" + "".join(items) if items else "mocks: []\n")


def atomic_write(path: Path, data: str | bytes) -> None:
    """Write `path` so that readers see the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(slots=True)
class ImportResult:
    """Mocks made from another format, the problems met on the way, and body files to copy."""

    source: Path
    mocks: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # body file name → content
    fatal: bool = False  # nothing could be read at all

    def write(self, out: Path) -> Path:
        """Write `<out>/<source stem>.yaml` (and its body files) atomically; returns its path."""
        for name, content in self.files.items():
            atomic_write(out / name, content)
        target = out / f"{self.source.stem}.yaml"
        header = f"Imported by MockBox from {self.source.name}. Edit freely."
        atomic_write(target, dump_yaml({"mocks": self.mocks}, header))
        return target
