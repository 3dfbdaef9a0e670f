"""Property/fuzz tests for the AI output validator (core/ai_answer.py): whatever a model says,
the result is a valid answer or a list of errors, never an exception; an accepted answer never
carries a framing/hop-by-hop header, a line break in a header, or a status out of range."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockbox.core.ai_answer import (
    FORBIDDEN_HEADERS,
    MAX_HEADER_VALUE,
    Checked,
    check_answer,
    parse_answer,
)

from .fuzzing import json_values

FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\U0010ffff]*")  # RFC 9110 field-value characters
TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def any_case(names: list[str]) -> st.SearchStrategy[str]:
    return st.sampled_from(names).flatmap(
        lambda n: st.lists(st.booleans(), min_size=len(n), max_size=len(n)).map(
            lambda flips: "".join(c.upper() if f else c for c, f in zip(n, flips, strict=True))
        )
    )


header_names = (
    any_case(sorted(FORBIDDEN_HEADERS))
    | st.sampled_from(["Content-Type", "X-Request-Id", "ETag", "Set-Cookie", "Cache-Control"])
    | st.tuples(  # good names, some with a line break or a space after them
        st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True),
        st.sampled_from(["", "", "\n", "\r\n", " ", ":"]),
    ).map("".join)
    | st.text(max_size=70)
)


header_values = (
    st.text(max_size=40)
    | st.sampled_from(
        ["a\r\nSet-Cookie: x=1", "v\n", "\r", "a\x00b", "a\x0bb", "a\x7f", "x" * 5000]
    )
    | st.integers()
    | st.floats()
    | st.booleans()
    | st.none()
    | st.lists(st.text(max_size=3), max_size=2)
)
statuses = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.integers(min_value=95, max_value=605)
    | st.booleans()
    | st.floats()
    | st.text(max_size=5)
    | st.none()
)


def _nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


bodies = (
    json_values
    | st.text(min_size=0, max_size=20).map(lambda t: t * 20_000)
    | st.integers(1, 900).map(_nested)  # json.dumps (the model's side) manages ~990 levels
)


@st.composite
def answers(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        data["status"] = draw(statuses)
    if draw(st.integers(0, 9)):
        data["headers"] = draw(
            st.dictionaries(header_names, header_values, max_size=5) | json_values
        )
    if draw(st.integers(0, 9)):
        data["body"] = draw(bodies)
    if draw(st.integers(0, 9)):
        data["explanation"] = draw(st.text(max_size=20) | json_values)
    if not draw(st.integers(0, 9)):
        data[draw(st.text(max_size=8))] = draw(json_values)
    return data


def model_text(data: Any, style: int) -> str:
    text = json.dumps(data)
    return [text, f"```json\n{text}\n```", f"```{text}```", f"  {text}\n", text[: len(text) // 2]][
        style
    ]


raw_outputs = (
    st.tuples(answers(), st.integers(0, 4)).map(lambda t: model_text(*t))
    | st.text(max_size=200)
    | json_values.map(json.dumps)
    | st.integers(1, 100_000).map(lambda n: "[" * n + "]" * n)
    | st.integers(1, 100_000).map(lambda n: '{"a":' * n + "1" + "}" * n)
    | st.sampled_from(["", "```", "``````", "null", "NaN", "Infinity", '{"status": 1e999}'])
    | answers()
    | json_values
)
body_schemas = st.sampled_from(
    [
        None,
        {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}},
        {"type": "array", "items": {"type": "string"}},
        {"type": "string", "maxLength": 10},
        {"$ref": "#/$defs/Missing"},  # refused when a mock file loads; must not crash here
    ]
)


def assert_safe(checked: Checked, max_body_bytes: int) -> None:
    if checked.answer is None:
        assert checked.errors and all(isinstance(e, str) and e for e in checked.errors)
        return
    assert checked.errors == []
    answer = checked.answer
    assert type(answer.status) is int and 200 <= answer.status <= 599
    for name, value in answer.headers.items():
        assert TOKEN.fullmatch(name), name
        assert name.lower() not in FORBIDDEN_HEADERS
        assert isinstance(value, str) and len(value) <= MAX_HEADER_VALUE
        assert "\r" not in value and "\n" not in value
        assert FIELD_VALUE.fullmatch(value), value
    assert len(json.dumps(answer.body, ensure_ascii=False).encode()) <= max_body_bytes
    assert isinstance(answer.explanation, str)


@given(raw_outputs, body_schemas, st.sampled_from([64, 1024, 262_144]))
def test_any_model_output_is_an_answer_or_errors(
    raw: Any, schema: dict[str, Any] | None, max_body_bytes: int
) -> None:
    try:
        data = parse_answer(raw)
    except ValueError as e:
        assert str(e)
        return
    assert_safe(check_answer(data, schema, max_body_bytes), max_body_bytes)


@given(answers(), body_schemas)
def test_any_answer_object_is_an_answer_or_errors(
    data: dict[str, Any], schema: dict[str, Any] | None
) -> None:
    """Tool-call input arrives already parsed (Anthropic): the checker alone must hold."""
    assert_safe(check_answer(data, schema, 262_144), 262_144)


@given(
    st.integers(200, 599),
    st.dictionaries(
        st.from_regex(r"X-[A-Za-z0-9]{1,10}", fullmatch=True),
        st.from_regex(r"[ -~]{0,30}", fullmatch=True),
        max_size=4,
    ),
    json_values,
)
def test_a_good_answer_is_accepted_unchanged(
    status: int, headers: dict[str, str], body: Any
) -> None:
    """The other side: the checker does not refuse what is fine."""
    checked = check_answer({"status": status, "headers": headers, "body": body, "explanation": "e"})
    assert checked.errors == [] and checked.answer is not None
    assert checked.answer.to_json() == {
        "status": status,
        "headers": headers,
        "body": body,
        "explanation": "e",
    }


def test_a_header_name_with_a_trailing_newline_is_refused() -> None:
    checked = check_answer({"status": 200, "headers": {"X-A\n": "v"}, "body": 1, "explanation": ""})
    assert checked.answer is None
    assert "not a valid HTTP token" in checked.errors[0]


def test_deeply_nested_output_is_an_error_not_a_crash() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        parse_answer("[" * 100_000 + "]" * 100_000)
    checked = check_answer(
        {"status": 200, "headers": {}, "body": _nested(100_000), "explanation": ""}
    )
    assert checked.answer is None and checked.errors
