"""Request matchers for query parameters, headers and bodies (exact, regex, JSONPath).

Regexes run on RE2 (userregex) and JSONPath with a step budget (bodypath), so no mock and no
request can make a matcher run for long; body tests also keep the request's Work bound.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .bodypath import BodyPath, BodyPathError, TooMuchWork, compile_path
from .request import NOT_JSON, RequestView
from .userregex import PatternError, UserPattern, compile_pattern
from .work import Work

type ValueKind = Literal["equals", "regex", "contains", "present"]

# The text a JSONPath's values may add up to (each non-string value is written as JSON).
MAX_VALUE_TEXT = 8 << 20


class MatcherError(ValueError):
    """A matcher that cannot be compiled (bad regex, bad JSONPath)."""


def _compile_regex(pattern: str) -> UserPattern:
    try:
        return compile_pattern(pattern)
    except PatternError as e:
        raise MatcherError(f"bad regex {pattern[:80]!r}: {e}") from e


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class ValueMatcher:
    """One test on a text value that may be absent (a query parameter, a header)."""

    kind: ValueKind
    text: str = ""
    pattern: UserPattern | None = None
    present: bool = True

    @classmethod
    def compile(cls, spec: Any) -> ValueMatcher:
        if not isinstance(spec, dict):
            return cls("equals", _scalar_text(spec))
        ((kind, arg),) = spec.items()
        if kind == "regex":
            return cls("regex", arg, _compile_regex(arg))
        if kind == "present":
            return cls("present", present=bool(arg))
        return cls(kind, _scalar_text(arg))

    def test(self, values: Sequence[str]) -> bool:
        """True when any of the values passes (or, for `present`, when presence agrees)."""
        if self.kind == "present":
            return bool(values) == self.present
        return any(self._test_one(v) for v in values)

    def _test_one(self, value: str) -> bool:
        if self.kind == "equals":
            return value == self.text
        if self.kind == "contains":
            return self.text in value
        assert self.pattern is not None
        return self.pattern.search(value)

    def describe(self) -> str:
        if self.kind == "present":
            return "present" if self.present else "absent"
        if self.kind == "regex":
            return f"matching /{self.text}/"
        return f"{self.kind} {self.text!r}"


@dataclass(frozen=True, slots=True)
class BodyMatcher:
    """One test on the request body."""

    kind: Literal["equals", "regex", "contains", "json", "json_includes", "jsonpath"]
    expected: Any = None
    pattern: UserPattern | None = None
    path: BodyPath | None = None
    value: ValueMatcher | None = None  # for jsonpath: a text test on each found value
    json_value: Any = None  # for jsonpath `equals` a number/bool/object: compared as JSON
    compare_json: bool = False

    @classmethod
    def compile(cls, spec: Any) -> BodyMatcher:
        if isinstance(spec, str):
            return cls("equals", spec)
        if "jsonpath" in spec:
            try:
                path = compile_path(spec["jsonpath"])
            except BodyPathError as e:
                raise MatcherError(str(e)) from e
            rest = {k: v for k, v in spec.items() if k != "jsonpath"}
            if not rest:
                return cls("jsonpath", path=path)
            ((kind, arg),) = rest.items()
            if kind == "equals" and not isinstance(arg, str):
                return cls("jsonpath", path=path, json_value=arg, compare_json=True)
            return cls("jsonpath", path=path, value=ValueMatcher.compile(rest))
        ((kind, arg),) = spec.items()
        if kind == "regex":
            return cls("regex", arg, _compile_regex(arg))
        return cls(kind, arg)

    def test(self, request: RequestView, work: Work | None = None) -> bool:
        """Whether the body passes; TooMuchWork when it needs more work than a matcher may do
        (the caller says so), OffLoop/MatchTimeout from `work`."""
        work = work or Work()
        if self.kind == "equals":
            return bool(request.text == self.expected)
        if self.kind == "contains":
            return bool(self.expected in request.text)
        if self.kind == "regex":
            assert self.pattern is not None
            return self.pattern.search(request.text)
        doc = request.json
        if doc is NOT_JSON:
            return False
        if self.kind == "json":
            return bool(doc == self.expected)
        if self.kind == "json_includes":
            return _includes(doc, self.expected, work)
        assert self.path is not None
        found = self.path.find(doc, work)
        if self.compare_json:
            return any(bool(v == self.json_value) for v in found)
        if self.value is None:
            return bool(found)
        return self.value.test(_texts(found, work))

    def describe(self) -> str:
        if self.kind == "jsonpath":
            assert self.path is not None
            if self.compare_json:
                return f"JSONPath {self.path.text} equals {json.dumps(self.json_value)}"
            tail = f" {self.value.describe()}" if self.value else " present"
            return f"JSONPath {self.path.text}{tail}"
        if self.kind in ("json", "json_includes"):
            return f"{self.kind.replace('_', ' ')} {json.dumps(self.expected)[:80]}"
        return f"body {self.kind} {str(self.expected)[:80]!r}"


def _texts(values: list[Any], work: Work) -> list[str]:
    """The found values as text (JSON for non-strings): a value's text is as large as its
    subtree, so `$..*` over a deep body could write gigabytes; MAX_VALUE_TEXT stops it."""
    out, total = [], 0
    for value in values:
        work.tick()
        text = value if isinstance(value, str) else json.dumps(value)
        total += len(text)
        if total > MAX_VALUE_TEXT:
            raise TooMuchWork(
                f"the JSONPath's values add up to more than {MAX_VALUE_TEXT} characters"
            )
        out.append(text)
    return out


def _includes(actual: Any, expected: Any, work: Work) -> bool:
    """True when every key/item of `expected` is found in `actual` (objects recurse). Each
    expected list item is looked for in every actual item: `work` bounds that product."""
    work.tick()
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _includes(actual[k], v, work) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and all(
            any(_includes(a, e, work) for a in actual) for e in expected
        )
    return bool(actual == expected)
