"""Response templating with Jinja2's sandbox.

A string that is exactly one `{{ expression }}` keeps the expression's type, so
`id: "{{ path.id | int }}"` is sent as a JSON number. Everything else renders to text.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import jinja2
from faker import Faker
from jinja2 import meta
from jinja2.sandbox import SandboxedEnvironment

from .request import NOT_JSON, RequestView

_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{((?:(?!\}\}|\{\{).)*)\}\}\s*$", re.DOTALL)
VARIABLES = frozenset({"path", "query", "headers", "body", "request", "fake", "now"})


class TemplateError(ValueError):
    """A template that does not compile, or that failed while rendering."""

    def __init__(self, message: str, where: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.where = where  # the key path of the failing string inside the compiled value

    def within(self, key: str | int) -> TemplateError:
        self.where = (key, *self.where)
        return self


@cache
def _faker(locale: str) -> Faker:
    return Faker(locale)


def request_seed(request: RequestView) -> int:
    """A seed that is the same for the same request in every process and every run."""
    digest = hashlib.blake2b(
        f"{request.method} {request.url}".encode() + b"\0" + request.body, digest_size=8
    ).digest()
    return int.from_bytes(digest, "big")


type Renderer = Callable[[Mapping[str, Any]], Any]


@dataclass(frozen=True, slots=True)
class Compiled:
    """A value (string, mapping, list, scalar) with its templates compiled once."""

    render: Renderer
    needs: frozenset[str]
    static: bool


class TemplateEngine:
    def __init__(self, faker_locale: str = "en_US") -> None:
        self.env = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)
        self.faker_locale = faker_locale

    def compile(self, value: Any) -> Compiled:
        """Compile every templated string inside `value` (raises TemplateError)."""
        if isinstance(value, str):
            return self._compile_string(value)
        if isinstance(value, dict):
            items = [(k, self._compile_at(k, v)) for k, v in value.items()]
            if all(c.static for _, c in items):
                return _static(value)
            return Compiled(
                lambda ctx: {k: c.render(ctx) for k, c in items},
                frozenset().union(*(c.needs for _, c in items)),
                False,
            )
        if isinstance(value, list):
            parts = [self._compile_at(i, v) for i, v in enumerate(value)]
            if all(c.static for c in parts):
                return _static(value)
            return Compiled(
                lambda ctx: [c.render(ctx) for c in parts],
                frozenset().union(*(c.needs for c in parts)),
                False,
            )
        return _static(value)

    def _compile_at(self, key: str | int, value: Any) -> Compiled:
        try:
            return self.compile(value)
        except TemplateError as e:
            raise e.within(key) from e.__cause__

    def _compile_string(self, text: str) -> Compiled:
        if "{{" not in text and "{%" not in text and "{#" not in text:
            return _static(text)
        try:
            needs = frozenset(meta.find_undeclared_variables(self.env.parse(text))) & VARIABLES
            single = _SINGLE_EXPRESSION.match(text)
            if single:
                expression = self.env.compile_expression(single.group(1))
                return Compiled(lambda ctx: _guard(lambda: expression(**ctx)), needs, False)
            template = self.env.from_string(text)
        except jinja2.TemplateSyntaxError as e:
            raise TemplateError(f"template syntax error: {e.message} in {text!r}") from e
        return Compiled(lambda ctx: _guard(lambda: template.render(ctx)), needs, False)

    def context(
        self, needs: frozenset[str], request: RequestView, params: Mapping[str, str]
    ) -> dict[str, Any]:
        """The template variables `needs` asks for, computed only when used."""
        ctx: dict[str, Any] = {}
        if "path" in needs:
            ctx["path"] = dict(params)
        if "query" in needs:
            ctx["query"] = {k: v[0] for k, v in request.query_map.items()}
        if "headers" in needs:
            ctx["headers"] = request.headers
        if "body" in needs:
            parsed = request.json
            ctx["body"] = request.text if parsed is NOT_JSON else parsed
        if "request" in needs:
            ctx["request"] = {
                "method": request.method,
                "url": request.url,
                "scheme": request.scheme,
                "host": request.host,
                "port": request.port,
                "path": request.path,
                "query": {k: list(v) for k, v in request.query_map.items()},
            }
        if "fake" in needs:
            fake = _faker(self.faker_locale)
            fake.seed_instance(request_seed(request))
            ctx["fake"] = fake
        if "now" in needs:
            ctx["now"] = datetime.now(UTC)
        return ctx


def _static(value: Any) -> Compiled:
    return Compiled(lambda _ctx: value, frozenset(), True)


def _guard(fn: Callable[[], Any]) -> Any:
    try:
        value = fn()
    except TemplateError:
        raise
    except Exception as e:  # a template may raise anything; it must never escape as a crash
        raise TemplateError(f"{type(e).__name__}: {e}") from e
    if isinstance(value, jinja2.Undefined):
        return None
    return value
