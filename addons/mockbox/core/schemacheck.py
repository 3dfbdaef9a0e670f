"""JSON Schema for the schemas mocks carry (an OpenAPI operation's request and response), with
every regex on RE2.

jsonschema runs `pattern`, `patternProperties` (and the `additionalProperties` beside them)
and the `regex` format with Python's `re`, so a schema in a mock file plus a crafted answer or
request could backtrack for minutes. Here those keywords use userregex; a pattern RE2 cannot
run is found by `check_schema` when the mock loads. `unevaluatedProperties` also runs the
`patternProperties` of its subschemas inside jsonschema, so the two are refused together.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import jsonschema
from jsonschema import Draft202012Validator, FormatChecker, ValidationError
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator

from .userregex import PatternError, check_pattern, compile_pattern


class SchemaProblem(ValueError):
    """A schema that cannot be used; `where` is its path inside the schema."""

    def __init__(self, message: str, where: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.where = where


def _search(pattern: str, text: str) -> bool:
    return compile_pattern(pattern).search(text)


def _pattern(validator: Any, pattern: str, instance: Any, _schema: Any) -> Iterator[Any]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, patterns: dict[str, Any], instance: Any, _schema: Any
) -> Iterator[Any]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: dict[str, Any]
) -> Iterator[Any]:
    """jsonschema's own, with the patterns of `patternProperties` on RE2."""
    if not validator.is_type(instance, "object"):
        return
    known = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = [
        key
        for key in instance
        if key not in known and not any(_search(pattern, key) for pattern in patterns)
    ]
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        names = ", ".join(repr(e) for e in sorted(extras))
        if patterns:
            verb = "does" if len(extras) == 1 else "do"
            listed = ", ".join(repr(p) for p in sorted(patterns))
            yield ValidationError(f"{names} {verb} not match any of the regexes: {listed}")
        else:
            verb = "was" if len(extras) == 1 else "were"
            yield ValidationError(
                f"Additional properties are not allowed ({names} {verb} unexpected)"
            )


def _regex_format(instance: object) -> bool:
    if isinstance(instance, str):
        check_pattern(instance)
    return True


FORMATS = FormatChecker(formats=())
FORMATS.checkers = dict(Draft202012Validator.FORMAT_CHECKER.checkers)
FORMATS.checks("regex", raises=PatternError)(_regex_format)

RE2Validator = jsonschema.validators.extend(
    Draft202012Validator,
    {
        "pattern": _pattern,
        "patternProperties": _pattern_properties,
        "additionalProperties": _additional_properties,
    },
    format_checker=FORMATS,
)


def validator(schema: Any, formats: bool = False) -> Validator:
    """A validator for `schema` (checked with `check_schema`); `formats`: check `format` too."""
    checker: Validator = RE2Validator(schema, format_checker=FORMATS if formats else None)
    return checker


def check_schema(schema: Any) -> None:
    """Raise SchemaProblem when `schema` is not valid JSON Schema 2020-12 or has a pattern
    RE2 cannot run (the message then names the feature and the RE2 way)."""
    try:
        Draft202012Validator.check_schema(schema, format_checker=FORMATS)
    except SchemaError as e:
        where = tuple(e.absolute_path)
        if isinstance(e.cause, PatternError):
            raise SchemaProblem(f"bad regex {e.instance!r}: {e.cause}", where) from e
        raise SchemaProblem(e.message, where) from e
    if _has_key(schema, "unevaluatedProperties") and _has_key(schema, "patternProperties"):
        raise SchemaProblem(
            "`unevaluatedProperties` with `patternProperties` is not supported (jsonschema would "
            "run the patterns with Python's re): use `additionalProperties`"
        )


def _has_key(node: Any, key: str) -> bool:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if key in item:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False
