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
from typing import Any

import jinja2
from jinja2 import meta, nodes
from jinja2.parser import Parser
from jinja2.runtime import Context
from jinja2.utils import consume

from .fakedata import FakeData, warm
from .request import NOT_JSON, RequestView
from .sandbox import (
    MAX_OUTPUT,
    BoundedSandbox,
    SliceExpired,
    bounded_concat,
    charge_output,
    shown,
    weigh,
)

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


def request_seed(request: RequestView) -> int:
    """A seed that is the same for the same request in every process and every run."""
    digest = hashlib.blake2b(
        f"{request.method} {request.url}".encode() + b"\0" + request.body, digest_size=8
    ).digest()
    return int.from_bytes(digest, "big")


# Called with the answer's Jinja context; static values ignore it (and get None).
type Renderer = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class Compiled:
    """A value (string, mapping, list, scalar) with its templates compiled once."""

    render: Renderer
    needs: frozenset[str]
    static: bool


class TemplateEngine:
    def __init__(self, faker_locale: str = "en_US") -> None:
        self.env = BoundedSandbox(autoescape=False, keep_trailing_newline=True)
        self.faker_locale = faker_locale
        warm(faker_locale)
        self._anchor = self.env.from_string("")

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
                return Compiled(_typed(self._expression(single.group(1))), needs, False)
            return Compiled(_text(self.env.from_string(text)), needs, False)
        except jinja2.TemplateSyntaxError as e:
            raise TemplateError(f"template syntax error: {e.message} in {text!r}") from e
        except RecursionError as e:  # Jinja's parser and compiler recurse once per nesting level
            raise TemplateError(f"template nests too deeply: {text[:80]!r}...") from e

    def _expression(self, source: str) -> jinja2.Template:
        """`{% set result = <source> %}` as a template, the way Jinja's compile_expression
        builds one, so it can run in a context shared with the other parts of the answer."""
        parser = Parser(self.env, source, state="variable")
        expr = parser.parse_expression()
        if not parser.stream.eos:
            raise jinja2.TemplateSyntaxError("chunk after expression", 1, None, None)
        body: list[nodes.Node] = [nodes.Assign(nodes.Name("result", "store"), expr, lineno=1)]
        return self.env.from_string(self.env.guard(nodes.Template(body, lineno=1)))

    def inputs(
        self, needs: frozenset[str], request: RequestView, params: Mapping[str, str]
    ) -> AnswerInputs:
        """What one answer's templates see, fixed once (an answer redone in a worker thread
        sees the same request data, the same time and the same fake data)."""
        values: dict[str, Any] = {}
        if "path" in needs:
            values["path"] = dict(params)
        if "query" in needs:
            values["query"] = {k: v[0] for k, v in request.query_map.items()}
        if "headers" in needs:
            values["headers"] = request.headers
        if "body" in needs:
            parsed = request.json
            values["body"] = request.text if parsed is NOT_JSON else parsed
        if "request" in needs:
            values["request"] = {
                "method": request.method,
                "url": request.url,
                "scheme": request.scheme,
                "host": request.host,
                "port": request.port,
                "path": request.path,
                "query": {k: list(v) for k, v in request.query_map.items()},
            }
        if "now" in needs:
            values["now"] = datetime.now(UTC)
        seed = request_seed(request) if "fake" in needs else None
        return AnswerInputs(values, seed)

    def new_context(self, inputs: AnswerInputs) -> Context:
        """A fresh template context for one render of an answer; every template of the answer
        shares it (creating a Jinja context is most of the cost of a small template). `fake`
        is bound to this thread's Faker, seeded from the request."""
        ctx: dict[str, Any] = dict(self.env.globals)
        ctx.update(inputs.values)
        if inputs.seed is not None:
            ctx["fake"] = FakeData(self.faker_locale, inputs.seed)
        return self._anchor.new_context(ctx, shared=True)

    def context(
        self, needs: frozenset[str], request: RequestView, params: Mapping[str, str]
    ) -> Context:
        return self.new_context(self.inputs(needs, request, params))


@dataclass(frozen=True, slots=True)
class AnswerInputs:
    values: Mapping[str, Any]  # path, query, headers, body, request, now: what the answer uses
    seed: int | None  # Faker's seed when the answer uses `fake`


def _typed(template: jinja2.Template) -> Renderer:
    def render(ctx: Context) -> Any:
        try:
            consume(template.root_render_func(ctx))  # `{% set result = ... %}`: no output
            value = shown(ctx.vars.pop("result", None))
            charge_output(weigh(value, MAX_OUTPUT, strict=False))
        except SliceExpired:
            raise
        except Exception as e:  # a template may raise anything; it must never escape
            raise TemplateError(f"{type(e).__name__}: {e}") from e
        return None if isinstance(value, jinja2.Undefined) else value

    return render


def _text(template: jinja2.Template) -> Renderer:
    def render(ctx: Context) -> str:
        try:
            return bounded_concat(template.root_render_func(ctx))
        except SliceExpired:
            raise
        except Exception as e:  # a template may raise anything; it must never escape
            raise TemplateError(f"{type(e).__name__}: {e}") from e

    return render


def _static(value: Any) -> Compiled:
    return Compiled(lambda _ctx: value, frozenset(), True)
