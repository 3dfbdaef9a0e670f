"""What an AI answer must look like, and the checks that keep a bad one off the wire.

The model answers `{status, headers, body, explanation}`. Before it is sent, the answer is
checked: a real status, safe header names and values (no hop-by-hop or framing headers, no line
breaks), a body that fits the operation's JSON Schema when one is known, and a size cap.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from referencing.exceptions import Unresolvable

from .schemacheck import validator
from .userregex import PatternError

# The JSON Schema the model is asked to follow (OpenAI structured output, Anthropic tool input).
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "status": {"type": "integer", "description": "HTTP status code, 200-599"},
        "headers": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Response headers, e.g. Content-Type. No framing headers.",
        },
        "body": {"description": "The response body: JSON (object, array, ...) or a string."},
        "explanation": {"type": "string", "description": "One or two sentences: why this answer."},
    },
    "required": ["status", "headers", "body", "explanation"],
    "additionalProperties": False,
}

# Headers the proxy itself owns: a model must not set framing or connection management.
FORBIDDEN_HEADERS = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "content-length",
        "content-encoding",
        "host",
    }
)
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
MAX_HEADER_VALUE = 4096
MAX_BODY_DEPTH = 100  # far beyond any real API's JSON; deeper would overflow the checkers


@dataclass(frozen=True, slots=True)
class AIAnswer:
    status: int
    headers: dict[str, str]
    body: Any
    explanation: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "headers": self.headers,
            "body": self.body,
            "explanation": self.explanation,
        }


@dataclass(slots=True)
class Checked:
    answer: AIAnswer | None
    errors: list[str] = field(default_factory=list)


def parse_answer(raw: Any) -> Any:
    """A model's text (or already-parsed tool input) as a JSON value; raises ValueError."""
    if isinstance(raw, (dict, list)):
        return raw
    text = str(raw).strip()
    if text.startswith("```"):  # some models wrap JSON in a code fence despite instructions
        text = text.strip("`")
        text = text[text.find("\n") + 1 :] if "\n" in text else text
    try:
        return json.loads(text)
    except ValueError as e:
        raise ValueError(f"the answer is not JSON: {e}") from e
    except RecursionError as e:  # "[[[[..." from a model: the documented error, not a crash
        raise ValueError("the answer is not JSON: nested too deeply") from e


def check_answer(
    data: Any, body_schema: dict[str, Any] | None = None, max_body_bytes: int = 262_144
) -> Checked:
    """Every problem with `data` as an answer; `answer` is set only when there is none."""
    errors: list[str] = []
    if not isinstance(data, dict):
        return Checked(None, ["the answer must be a JSON object with status, headers, body"])
    unknown = set(data) - set(ANSWER_SCHEMA["properties"])
    if unknown:
        errors.append(f"unknown fields: {', '.join(sorted(unknown))}")
    status = data.get("status")
    if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
        errors.append(f"status must be an integer from 200 to 599, got {status!r}")
    headers = data.get("headers", {})
    clean_headers: dict[str, str] = {}
    if not isinstance(headers, dict):
        errors.append("headers must be an object of strings")
    else:
        for name, value in headers.items():
            problem = _header_problem(str(name), value)
            if problem:
                errors.append(problem)
            else:
                clean_headers[str(name)] = str(value)
    if "body" not in data:
        errors.append("body is missing")
    body = data.get("body")
    if _depth(body) > MAX_BODY_DEPTH:
        errors.append(f"body nests deeper than {MAX_BODY_DEPTH} levels")
        body = None  # serializing or schema-checking it would raise RecursionError
    size = len(json.dumps(body, ensure_ascii=False).encode()) if body is not None else 0
    if size > max_body_bytes:
        errors.append(f"body is {size} bytes, more than the {max_body_bytes} allowed")
    if body_schema is not None and not errors:
        errors.extend(_schema_errors(body, body_schema))
    explanation = data.get("explanation", "")
    if not isinstance(explanation, str):
        errors.append("explanation must be a string")
    if errors:
        return Checked(None, errors)
    return Checked(AIAnswer(int(status), clean_headers, body, explanation))  # type: ignore[arg-type]


def _schema_errors(body: Any, body_schema: dict[str, Any]) -> list[str]:
    try:
        errors = validator(body_schema).iter_errors(body)  # its regexes run on RE2
        found = sorted(errors, key=lambda e: list(e.absolute_path))[:10]
    except (Unresolvable, PatternError) as e:  # a schema loaded unchecked: refuse, don't crash
        return [f"the API's schema cannot be used: {e}"]
    return [
        f"body does not match the API's schema at "
        f"{'/'.join(str(p) for p in err.absolute_path) or '(root)'}: {err.message}"
        for err in found
    ]


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (iterative: a deep value must not recurse)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            if level > MAX_BODY_DEPTH:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _header_problem(name: str, value: Any) -> str | None:
    # fullmatch: with match, `$` also matched before a trailing "\n", so "X-A\n" passed.
    if not _TOKEN.fullmatch(name):
        return f"header name {name[:40]!r} is not a valid HTTP token"
    if name.lower() in FORBIDDEN_HEADERS:
        return f"header {name!r} is managed by the proxy and must not be set"
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        return f"header {name!r} must have a string value"
    text = str(value)
    if any(c in text for c in "\r\n\0"):
        return f"header {name!r} must not contain line breaks"
    if _CONTROL.search(text):  # RFC 9110 field values: no control characters but tab
        return f"header {name!r} must not contain control characters"
    if len(text) > MAX_HEADER_VALUE:
        return f"header {name!r} is longer than {MAX_HEADER_VALUE} characters"
    return None
