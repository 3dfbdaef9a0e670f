"""Turning a matched mock into the bytes of an answer."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .model import ResponseSpec
from .request import RequestView
from .sandbox import shown
from .templating import TemplateEngine


@dataclass(frozen=True, slots=True)
class Rendered:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json_default(value: Any) -> Any:
    """A value JSON has no type for (a date, a Faker object...) as its text; a function as null."""
    return None if shown(value) is None else str(value)


def encode_body(value: Any) -> bytes:
    """Text is sent as UTF-8; anything else (mapping, list, number...) as JSON. Lone
    surrogates from the request (non-UTF-8 bytes decoded with surrogateescape, or `\\ud800`
    in a JSON body) cannot be UTF-8: text gets "?", JSON a `\\udcff` escape."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode("utf-8", "replace")
    text = json.dumps(value, ensure_ascii=False, default=_json_default)
    return text.encode("utf-8", "backslashreplace")


def render(
    spec: ResponseSpec,
    engine: TemplateEngine,
    request: RequestView,
    params: Mapping[str, str],
) -> Rendered:
    """Render `spec` for `request` (raises TemplateError when a template fails)."""
    ctx = engine.context(spec.needs, request, params) if spec.templated else None
    headers = [(name, _text(value.render(ctx))) for name, value in spec.headers]
    body = encode_body(spec.body.render(ctx)) if spec.body is not None else spec.body_bytes or b""
    # content_type is known only when there is a body; an explicit header wins.
    if spec.content_type and not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", spec.content_type))
    return Rendered(spec.status, headers, body)


def _text(value: Any) -> str:
    text = value if isinstance(value, str) else "" if value is None else str(value)
    # A rendered header value must stay one line, whatever the template produced.
    return text.replace("\r", " ").replace("\n", " ")
