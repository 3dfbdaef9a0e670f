"""Improving a mock on request: "add pagination", "add a 404 case", "use realistic names".

The offline provider understands a handful of common instructions and applies them as plain,
deterministic transformations (the same mock and instruction give the same proposal). An LLM
gets the mock, the instruction and the same API's other mocks, answers `{mocks, explanation}`,
and every proposed mock is checked with the file schema and compiler before anyone sees it.
A proposal is a list: the changed mock first, then any new mocks the change needs (a 404 case
is a mock of its own).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .ai_prompt import Example
from .mockfile import mock_file_schema
from .model import Mock
from .offline import LIST_ENVELOPES, faker_method
from .pathtemplate import PathTemplate, PathTemplateError

MAX_PROPOSED_MOCKS = 5


@dataclass(frozen=True, slots=True)
class Improvement:
    mocks: list[dict[str, Any]]  # the changed mock, then new ones
    explanation: str

    def to_json(self) -> dict[str, Any]:
        return {"mocks": self.mocks, "explanation": self.explanation}


class NotApplicable(ValueError):
    """The instruction was understood but cannot apply to this mock (the message says why)."""


# --- the offline improver ---------------------------------------------------------------------

type Transform = Callable[[dict[str, Any], str, list[Mock]], tuple[list[dict[str, Any]], str]]


def improve_offline(
    mock: dict[str, Any], instruction: str, siblings: Iterable[Mock]
) -> Improvement | None:
    """Apply every instruction the offline provider knows (None: it knows none of them);
    raises NotApplicable when none of the understood ones fits this mock."""
    known = [(pattern, fn) for pattern, fn in _TRANSFORMS if pattern.search(instruction)]
    if not known:
        return None
    same_api = list(siblings)
    current = copy.deepcopy(mock)
    extra: list[dict[str, Any]] = []
    notes: list[str] = []
    refusals: list[str] = []
    for _, transform in known:
        try:
            changed, note = transform(current, instruction, same_api)
        except NotApplicable as e:
            refusals.append(str(e))
            continue
        current, extra = changed[0], extra + changed[1:]
        notes.append(note)
    if not notes:
        raise NotApplicable("; ".join(refusals))
    joined = "; ".join(notes)
    explanation = joined[0].upper() + joined[1:] + "."
    if refusals:
        explanation += " Not applied: " + "; ".join(refusals) + "."
    return Improvement([current, *extra], explanation)


def understood_instructions() -> str:
    return (
        '"add pagination", "add a 404 case", "use realistic names/values", '
        '"add a delay of 300 ms", "fail 10% of the time with a 503"'
    )


def _paginate(mock: dict[str, Any], _: str, siblings: list[Mock]) -> tuple[list[Any], str]:
    response = mock.setdefault("response", {})
    body = response.get("body")
    envelope = _envelope_key(siblings)
    if isinstance(body, list):
        items, key = body, envelope
    elif isinstance(body, dict):
        key = next((k for k in LIST_ENVELOPES if isinstance(body.get(k), list)), "")
        if not key:
            raise NotApplicable("pagination needs a list in the response body")
        items = body[key]
        if "pagination" in body:
            raise NotApplicable("the body already has a pagination block")
    else:
        raise NotApplicable("pagination needs a list (JSON) response body")
    page = {
        "page": "{{ query.page | default(1) | int }}",
        "per_page": "{{ query.per_page | default(" + str(max(20, len(items))) + ") | int }}",
        "total": len(items),
    }
    new_body = dict(body) if isinstance(body, dict) else {}
    new_body[key] = items
    new_body["pagination"] = page
    response["body"] = new_body
    return [mock], (
        f"put the {len(items)} item(s) under `{key}` with a pagination block "
        "(page and per_page follow the ?page= and ?per_page= query)"
    )


def _not_found(mock: dict[str, Any], _: str, siblings: list[Mock]) -> tuple[list[Any], str]:
    request = mock.get("request", {})
    try:
        template = PathTemplate.parse(str(request.get("path", "")))
    except PathTemplateError as e:
        raise NotApplicable(str(e)) from e
    parts = [s for s in template.text.split("/") if s]
    params = [i for i, part in enumerate(parts) if part.startswith("{")]
    if not params:
        raise NotApplicable(
            "a 404 case needs a path parameter to stand for a missing item, like /books/{id}"
        )
    at = params[-1]
    name = parts[at].strip("{}*")
    missing = "0" if name.lower().endswith("id") else "missing"
    parts[at] = missing
    resource = _singular(parts[at - 1]) if at > 0 and not parts[at - 1].startswith("{") else ""
    label = mock.get("name") or f"{request.get('method', '*')} {template.text}"
    path = "/" + "/".join(parts)
    not_found: dict[str, Any] = {
        "name": f"{label}: not found",
        "request": {**copy.deepcopy(request), "path": path},
        "response": {
            "status": 404,
            "headers": {"Content-Type": "application/json"},
            "body": _error_body(siblings, resource, missing),
        },
    }
    return [mock, not_found], (
        f"added a mock answering 404 for {path} (a literal segment wins over {{{name}}})"
    )


def _realistic(mock: dict[str, Any], _: str, __: list[Mock]) -> tuple[list[Any], str]:
    response = mock.setdefault("response", {})
    changed: list[str] = []
    response["body"] = _fake_templates(response.get("body"), "", changed)
    if not changed:
        raise NotApplicable(
            "no field of the body has a name or value MockBox knows how to fake "
            "(email, name, city, url, created_at, ...)"
        )
    fields = ", ".join(sorted(set(changed)))
    return [mock], f"made {fields} realistic with Faker templates (new values per request)"


_DELAY_AMOUNT = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|milliseconds?|s|sec|seconds?)\b", re.I)


def _delay(mock: dict[str, Any], instruction: str, _: list[Mock]) -> tuple[list[Any], str]:
    amount = _DELAY_AMOUNT.search(instruction)
    delay: int | dict[str, int]
    if amount:
        value = float(amount.group(1))
        delay = int(value if amount.group(2).lower().startswith("m") else value * 1000)
    else:
        delay = {"min": 200, "max": 800}
    mock.setdefault("response", {})["delay_ms"] = delay
    shown = f"{delay} ms" if isinstance(delay, int) else "200 to 800 ms"
    return [mock], f"answers after {shown}"


_STATUS_5XX = re.compile(r"\b(5\d\d)\b")
_SERVER_ERRORS = {500: "internal_error", 502: "bad_gateway", 503: "unavailable", 504: "timeout"}
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*%")


def _flaky(mock: dict[str, Any], instruction: str, _: list[Mock]) -> tuple[list[Any], str]:
    status = int(m.group(1)) if (m := _STATUS_5XX.search(instruction)) else 503
    share = float(m.group(1)) / 100 if (m := _PERCENT.search(instruction)) else 0.1
    share = min(1.0, max(0.01, share))
    mock.setdefault("response", {})["fault"] = {
        "status": status,
        "headers": {"Content-Type": "application/json"},
        "body": {"error": _SERVER_ERRORS.get(status, "server_error"), "message": "Retry later."},
        "probability": share,
    }
    return [mock], f"fails with {status} in {share:.0%} of the requests"


_TRANSFORMS: list[tuple[re.Pattern[str], Transform]] = [
    (re.compile(r"paginat|\bpag(e|es|ing)\b", re.I), _paginate),
    (re.compile(r"\b404\b|not[ -]?found|missing", re.I), _not_found),
    (re.compile(r"realistic|\bfake\b|\bnames?\b|plausible|real data|lorem", re.I), _realistic),
    (re.compile(r"\bdelay|latency|\bslow", re.I), _delay),
    (re.compile(r"\b5\d\d\b|server error|flaky|\bfault|\bfail", re.I), _flaky),
]


def _envelope_key(siblings: Iterable[Mock]) -> str:
    """The list envelope this API already uses ({"data": [...]}, {"items": [...]}), or data."""
    for mock in siblings:
        body = mock.raw.get("response", {}).get("body")
        if isinstance(body, dict):
            for key in LIST_ENVELOPES:
                if isinstance(body.get(key), list):
                    return key
    return "data"


def _error_body(siblings: Iterable[Mock], resource: str, missing: str) -> Any:
    """The API's own 404 body when one of its mocks has one, else a plain JSON error."""
    for mock in siblings:
        response = mock.raw.get("response", {})
        if response.get("status") == 404 and isinstance(response.get("body"), dict):
            return copy.deepcopy(response["body"])
    what = resource.capitalize() if resource else "The resource"
    return {"error": "not_found", "message": f"{what} {missing} was not found."}


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _fake_templates(value: Any, key: str, changed: list[str]) -> Any:
    if isinstance(value, dict):
        return {k: _fake_templates(v, str(k), changed) for k, v in value.items()}
    if isinstance(value, list):
        return [_fake_templates(v, key, changed) for v in value]
    if not isinstance(value, str) or "{{" in value or "{%" in value:
        return value
    method = faker_method(key, value)
    if method is None:
        return value
    changed.append(key)
    if method == "iso":
        suffix = "Z" if value.endswith("Z") else ""
        return "{{ fake.date_time_this_year().isoformat() }}" + suffix
    return "{{ fake." + method + "() }}"


# --- LLM improvement: the prompt, the answer schema, the check ----------------------------------

IMPROVE_SYSTEM_PROMPT = """You edit mocks for MockBox, a mock HTTP server.
A mock is {"name", "request": {"method", "host", "path", "query", "headers", "body"},
"response": {"status", "headers", "body", "body_file", "delay_ms", "fault"}, "priority"}.
Paths may hold {name} parameters; response strings are Jinja2 templates with the variables
path, query, headers, body, request, fake (Faker) and now; a string that is exactly one
{{ expression }} keeps the expression's type. Apply the user's instruction to the mock and
change nothing else. Reply with one JSON object: {"mocks": [the changed mock, then any new
mocks the instruction needs, such as a separate 404 case], "explanation": "<one or two
sentences>"}. Match the style of the examples from the same API."""


def improve_schema() -> dict[str, Any]:
    """The answer schema for the model: the mocks follow MockBox's own mock file schema."""
    return {
        "type": "object",
        "properties": {
            "mocks": {
                "type": "array",
                "items": {"$ref": "#/$defs/mock"},
                "minItems": 1,
                "maxItems": MAX_PROPOSED_MOCKS,
            },
            "explanation": {"type": "string"},
        },
        "required": ["mocks", "explanation"],
        "additionalProperties": False,
        "$defs": mock_file_schema()["$defs"],
    }


def improve_prompt(mock: dict[str, Any], instruction: str, examples: list[Example]) -> str:
    parts: dict[str, Any] = {"mock": mock, "instruction": instruction}
    if examples:
        parts["examples_from_the_same_api"] = [e.to_json() for e in examples]
    return json.dumps(parts, indent=1, ensure_ascii=False, default=str)


def check_improvement(
    data: Any, problems_of: Callable[[dict[str, Any]], list[str]]
) -> tuple[Improvement | None, list[str]]:
    """The model's answer as an Improvement, or every reason it is not one."""
    if not isinstance(data, dict) or not isinstance(data.get("mocks"), list):
        return None, ['the answer must be a JSON object {"mocks": [...], "explanation": "..."}']
    mocks = data["mocks"]
    errors: list[str] = []
    if not 1 <= len(mocks) <= MAX_PROPOSED_MOCKS:
        errors.append(f"mocks must hold 1 to {MAX_PROPOSED_MOCKS} mocks, not {len(mocks)}")
    for i, mock in enumerate(mocks[:MAX_PROPOSED_MOCKS]):
        if not isinstance(mock, dict):
            errors.append(f"mocks[{i}] must be an object")
            continue
        errors += [f"mocks[{i}]: {p}" for p in problems_of(mock)]
    explanation = data.get("explanation", "")
    if not isinstance(explanation, str):
        errors.append("explanation must be a string")
    if errors:
        return None, errors
    return Improvement(mocks, explanation), []


def siblings_of(mocks: Iterable[Mock], host: str | None) -> list[Mock]:
    """The mocks of the same API (host): where the envelope and error styles come from."""
    if not host:
        return []
    return [m for m in mocks if m.host is not None and str(m.host) == host.lower()]
