"""Writing mocks to YAML files safely: atomically, readable, and never as accidental templates.

Shared by everything that writes mocks: the recorder, the importers, AI persistence, "Save as
mock" from traffic and `mockbox generate`, so their files look alike (block style, keys in a
fixed order). Whatever came from the network or another tool (an upstream's or a model's
answer, a HAR, an OpenAPI document, WireMock stubs) goes through `literal_mock` once, just
before it is written, so no text of theirs is ever evaluated as a template, and through
`literal_path` / `plain_host` / `body_file_name`, so their paths, hosts and file names mean only
what they say.
"""

from __future__ import annotations

import os
import posixpath
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from .ai_answer import AIAnswer
from .ai_prompt import GenerationRequest
from .mockfile import MOCK_FILE_SUFFIXES

_HOST_FILE = re.compile(r"[^A-Za-z0-9._-]+")
_PLAIN_HOST = re.compile(r"^[a-z0-9.-]+(:[0-9]{1,5})?$")  # as the mock file schema allows
_PATH_RESERVED = re.compile(r"[{}?#\s]")  # what a path template reads as more than text
_TEMPLATE_MARKS = ("{{", "{%", "{#")
_RAW_END = re.compile(r"\{%[-+]?\s*endraw")  # every spelling Jinja's lexer ends a raw block at


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write via a temporary file and a rename, so a reader (or a crash) never sees half."""
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


def literal(value: Any) -> Any:
    """`value` with every string that Jinja would read as a template made to render exactly as
    itself, so text a model or an upstream produced is served as written, not evaluated."""
    if isinstance(value, str):
        if not any(mark in value for mark in _TEMPLATE_MARKS):
            return value
        if "\r" not in value and not _RAW_END.search(value):
            return "{% raw %}" + value + "{% endraw %}"
        # Cannot be wrapped in raw: a string literal. (Jinja ends raw at any `{%endraw`,
        # `{%+ endraw`..., and turns a raw CR or CRLF into LF: only an escape keeps "\r".)
        return "{{ " + _jinja_string(value) + " }}"
    if isinstance(value, dict):
        return {k: literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [literal(v) for v in value]
    return value


def literal_response(response: dict[str, Any]) -> dict[str, Any]:
    """A mock's answer (`response:`, an item of `responses:`) whose every templated field (header
    values, the body, a `fault:` answer's) renders exactly as the data given."""
    out = dict(response)
    if isinstance(out.get("headers"), dict):
        out["headers"] = {name: literal(value) for name, value in out["headers"].items()}
    if "body" in out:
        out["body"] = literal(out["body"])
    if isinstance(out.get("fault"), dict):
        out["fault"] = literal_response(out["fault"])
    return out


def literal_mock(mock: dict[str, Any]) -> dict[str, Any]:
    """`mock`, built from data (an upstream's or a model's answer, an imported document), as it
    must be written: its answers served as that data, never evaluated. Apply it once, last:
    applied twice, the escapes of the first pass would be served as text."""
    out = dict(mock)
    if isinstance(out.get("response"), dict):
        out["response"] = literal_response(out["response"])
    if isinstance(out.get("responses"), list):
        out["responses"] = [
            literal_response(r) if isinstance(r, dict) else r for r in out["responses"]
        ]
    return out


def literal_path(path: str) -> str:
    """A request path as a mock's `path:` that matches exactly it: the characters a path
    template reserves (`{`, `}`, `?`, `#`, spaces) percent-encoded, as a client sends them."""
    path = path or "/"
    return quote(path, safe="/%:@!$&'()*+,;=-._~") if _PATH_RESERVED.search(path) else path


def plain_host(host: str) -> str | None:
    """`host` (with `:port`) as a mock's `host:` when it is a plain name or address that the
    schema accepts and that means only itself (no `*.` wildcard); else None."""
    host = host.lower()
    return host if _PLAIN_HOST.match(host) else None


def body_file_name(folder: str, name: str) -> str:
    """`<folder>/<name>` as a body file beside a mock file: relative, without `..` or hidden
    parts, and never named like a mock file (the loader would read it as one, templates and
    all): `x.yaml` becomes `x.yaml.txt`."""
    normal = posixpath.normpath("/" + name.replace("\\", "/"))  # `..` cannot climb above "/"
    parts = [p for p in normal.split("/") if p]
    parts = [("_" + p) if p.startswith(".") else p for p in parts] or ["body"]
    if parts[-1].lower().endswith(MOCK_FILE_SUFFIXES):
        parts[-1] += ".txt"
    return "/".join([folder, *parts])


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


def comment(header: str) -> str:
    """`header` as YAML comment lines."""
    return "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())


def dump_mocks(mocks: list[dict[str, Any]], header: str = "") -> str:
    """A mock file's text; `header` is put first as it is (comment lines)."""
    return header + _dump({"mocks": mocks})


def dump_mock(mock: dict[str, Any]) -> str:
    """One `mocks:` list item as YAML, so a writer can cache the items that did not change."""
    return _dump([mock])


def join_mocks(items: list[str], header: str = "") -> str:
    """A mock file from items made by `dump_mock`."""
    return header + ("mocks:\n" + "".join(items) if items else "mocks: []\n")


def append_mock(path: Path, mock: dict[str, Any], header: str = "") -> None:
    """Add `mock` to the file at `path` (created when missing), replacing one with its name."""
    existing: list[dict[str, Any]] = []
    if path.exists():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        existing = [m for m in data.get("mocks", []) if m.get("name") != mock.get("name")]
    write_atomic(path, dump_mocks([*existing, mock], header))


def host_file_name(host: str) -> str:
    return (_HOST_FILE.sub("_", host.lower()) or "any-host") + ".yaml"


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
            write_atomic(inside(out, name), content)
        target = out / f"{self.source.stem}.yaml"
        header = comment(f"Imported by MockBox from {self.source.name}. Edit freely.")
        write_atomic(target, dump_mocks(self.mocks, header))
        return target


def inside(folder: Path, name: str) -> Path:
    """`folder / name`, refused (ValueError) when it would lead outside `folder` or be read as
    a mock file: the last guard before a body file named by imported data is written."""
    target = folder / name
    resolved, root = target.resolve(), folder.resolve()
    if not resolved.is_relative_to(root) or resolved == root:
        raise ValueError(f"body file {name!r} would be written outside {folder}; refused")
    if target.name.lower().endswith(MOCK_FILE_SUFFIXES):
        raise ValueError(f"body file {name!r} would be read as a mock file; refused")
    return target


def mock_from_answer(greq: GenerationRequest, answer: AIAnswer) -> dict[str, Any]:
    """A mock that answers `greq` with `answer`, as it is written: the answer literal (text
    that looks like a template stays text), the path and host meaning only themselves."""
    path = literal_path(greq.path)
    request: dict[str, Any] = {"method": greq.method.upper(), "path": path}
    host = plain_host(greq.host) if greq.host else None
    if host:
        request["host"] = host
    if greq.query:
        request["query"] = dict(greq.query)
    response: dict[str, Any] = {"status": answer.status}
    if answer.headers:
        response["headers"] = dict(answer.headers)
    if answer.body is not None:
        response["body"] = answer.body
    return literal_mock(
        {
            "name": f"AI: {greq.method.upper()} {path}",
            "request": request,
            "response": response,
        }
    )
