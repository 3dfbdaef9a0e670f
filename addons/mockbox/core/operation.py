"""The OpenAPI operation kept with a mock: its request and response schemas, so later
features (request validation, AI synthesis) can ground and check answers against them."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from jsonschema.protocols import Validator
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from .schemacheck import SchemaProblem, check_schema, validator


class OperationSchemaError(ValueError):
    """A schema kept with a mock that is not valid JSON Schema."""

    def __init__(self, message: str, key: str, where: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.key = key  # "request_schema" or "response_schema"
        self.where = where  # the place inside that schema


@dataclass(frozen=True)
class OperationSchema:
    """`openapi:` of a mock. Schemas are JSON Schema 2020-12 with their $refs under `$defs`."""

    operation_id: str | None = None
    method: str | None = None
    path: str | None = None
    status: str | None = None
    content_type: str | None = None
    request_schema: Any = None
    response_schema: Any = None
    source: str | None = None

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> OperationSchema:
        """Build from a schema-valid `openapi:` mapping; raises OperationSchemaError."""
        for key in ("request_schema", "response_schema"):
            if key in raw:
                try:
                    check_schema(raw[key])
                except SchemaProblem as e:
                    where = "/".join(str(p) for p in e.where) or "(root)"
                    raise OperationSchemaError(
                        f"{key} is not a valid JSON Schema at {where}: {e}", key, e.where
                    ) from e
                bad_ref = _unresolvable_ref(raw[key])
                if bad_ref is not None:
                    raise OperationSchemaError(f"{key}: $ref {bad_ref!r} does not resolve", key)
        return cls(**{k: raw[k] for k in cls.__dataclass_fields__ if k in raw})

    def response_problems(self, body: Any) -> list[str]:
        """Why `body` does not fit the response schema; empty when it fits (or there is none)."""
        return _problems(self._response_validator, body)

    def request_problems(self, body: Any) -> list[str]:
        """Why a request `body` does not fit the request schema; empty when it fits."""
        return _problems(self._request_validator, body)

    @cached_property
    def _response_validator(self) -> Validator | None:
        return _validator(self.response_schema)

    @cached_property
    def _request_validator(self) -> Validator | None:
        return _validator(self.request_schema)


def _validator(schema: Any) -> Validator | None:
    return None if schema is None else validator(schema, formats=True)


def _problems(checker: Validator | None, body: Any) -> list[str]:
    if checker is None:
        return []
    out = []
    for error in checker.iter_errors(body):
        where = "$" + "".join(f"[{p!r}]" if isinstance(p, int) else f".{p}" for p in error.path)
        out.append(f"{where}: {error.message}")
    return out


def _unresolvable_ref(schema: Any) -> str | None:
    """The first `$ref` in `schema` that does not resolve within it (check_schema does not look):
    left in, it raised at request time, out of request validation and the AI answer check."""
    resolver = Registry().resolver_with_root(DRAFT202012.create_resource(schema))
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str):
                try:
                    resolver.lookup(ref)
                except Unresolvable:
                    return ref
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return None
