"""Writing mocks to YAML files safely: atomically, readable, and never as accidental templates."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .ai_answer import AIAnswer
from .ai_prompt import GenerationRequest

_HOST_FILE = re.compile(r"[^A-Za-z0-9._-]+")


def write_atomic(path: Path, text: str) -> None:
    """Write via a temporary file and a rename, so a reader (or a crash) never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def literal(value: Any) -> Any:
    """`value` with every string that looks like a template wrapped in {% raw %}, so text a
    model or an upstream produced is served as written, not evaluated."""
    if isinstance(value, str):
        if "{{" in value or "{%" in value or "{#" in value:
            return "{% raw %}" + value.replace("{% endraw %}", "") + "{% endraw %}"
        return value
    if isinstance(value, dict):
        return {k: literal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [literal(v) for v in value]
    return value


def dump_mocks(mocks: list[dict[str, Any]], header: str = "") -> str:
    text = yaml.safe_dump(
        {"mocks": mocks}, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100
    )
    return (header + text) if header else text


def append_mock(path: Path, mock: dict[str, Any], header: str = "") -> None:
    """Add `mock` to the file at `path` (created when missing), replacing one with its name."""
    existing: list[dict[str, Any]] = []
    if path.exists():
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        existing = [m for m in data.get("mocks", []) if m.get("name") != mock.get("name")]
    write_atomic(path, dump_mocks([*existing, mock], header))


def host_file_name(host: str) -> str:
    return (_HOST_FILE.sub("_", host.lower()) or "any-host") + ".yaml"


def mock_from_answer(greq: GenerationRequest, answer: AIAnswer) -> dict[str, Any]:
    """A mock that answers `greq` with `answer` (text that looks like a template stays text)."""
    request: dict[str, Any] = {"method": greq.method.upper(), "path": greq.path}
    if greq.host:
        request["host"] = greq.host
    if greq.query:
        request["query"] = dict(greq.query)
    response: dict[str, Any] = {"status": answer.status}
    if answer.headers:
        response["headers"] = answer.headers
    if answer.body is not None:
        response["body"] = literal(answer.body)
    return {
        "name": f"AI: {greq.method.upper()} {greq.path}",
        "request": request,
        "response": response,
    }
