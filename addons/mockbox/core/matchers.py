"""Request matchers for query parameters, headers and bodies (exact, regex, JSONPath)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from jsonpath_ng import JSONPath
from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext.parser import parse as parse_jsonpath

from .request import NOT_JSON, RequestView

type ValueKind = Literal["equals", "regex", "contains", "present"]


class MatcherError(ValueError):
    """A matcher that cannot be compiled (bad regex, bad JSONPath)."""


def _compile_regex(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as e:
        raise MatcherError(f"bad regex {pattern!r}: {e}") from e
    except RecursionError as e:  # the regex parser recurses once per nested group
        raise MatcherError(f"bad regex {pattern[:80]!r}...: nested too deeply") from e


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass(frozen=True, slots=True)
class ValueMatcher:
    """One test on a text value that may be absent (a query parameter, a header)."""

    kind: ValueKind
    text: str = ""
    pattern: re.Pattern[str] | None = None
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
        return self.pattern.search(value) is not None

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
    pattern: re.Pattern[str] | None = None
    path: JSONPath | None = None
    path_text: str = ""
    value: ValueMatcher | None = None  # for jsonpath: a text test on each found value
    json_value: Any = None  # for jsonpath `equals` a number/bool/object: compared as JSON
    compare_json: bool = False

    @classmethod
    def compile(cls, spec: Any) -> BodyMatcher:
        if isinstance(spec, str):
            return cls("equals", spec)
        if "jsonpath" in spec:
            expr = spec["jsonpath"]
            try:
                path = parse_jsonpath(expr)
            except (JSONPathError, ValueError, TypeError) as e:
                raise MatcherError(f"bad JSONPath {expr!r}: {e}") from e
            rest = {k: v for k, v in spec.items() if k != "jsonpath"}
            if not rest:
                return cls("jsonpath", path=path, path_text=expr)
            ((kind, arg),) = rest.items()
            if kind == "equals" and not isinstance(arg, str):
                return cls("jsonpath", path=path, path_text=expr, json_value=arg, compare_json=True)
            return cls("jsonpath", path=path, path_text=expr, value=ValueMatcher.compile(rest))
        ((kind, arg),) = spec.items()
        if kind == "regex":
            return cls("regex", arg, _compile_regex(arg))
        return cls(kind, arg)

    def test(self, request: RequestView) -> bool:
        if self.kind == "equals":
            return bool(request.text == self.expected)
        if self.kind == "contains":
            return bool(self.expected in request.text)
        if self.kind == "regex":
            assert self.pattern is not None
            return self.pattern.search(request.text) is not None
        doc = request.json
        if doc is NOT_JSON:
            return False
        if self.kind == "json":
            return bool(doc == self.expected)
        if self.kind == "json_includes":
            return _includes(doc, self.expected)
        assert self.path is not None
        found = [m.value for m in self.path.find(doc)]
        if self.compare_json:
            return any(bool(v == self.json_value) for v in found)
        if self.value is None:
            return bool(found)
        return self.value.test([_json_text(v) for v in found])

    def describe(self) -> str:
        if self.kind == "jsonpath":
            if self.compare_json:
                return f"JSONPath {self.path_text} equals {json.dumps(self.json_value)}"
            tail = f" {self.value.describe()}" if self.value else " present"
            return f"JSONPath {self.path_text}{tail}"
        if self.kind in ("json", "json_includes"):
            return f"{self.kind.replace('_', ' ')} {json.dumps(self.expected)[:80]}"
        return f"body {self.kind} {str(self.expected)[:80]!r}"


def _json_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _includes(actual: Any, expected: Any) -> bool:
    """True when every key/item of `expected` is found in `actual` (objects recurse)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and _includes(actual[k], v) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and all(
            any(_includes(a, e) for a in actual) for e in expected
        )
    return bool(actual == expected)
