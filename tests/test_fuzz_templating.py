"""Property/fuzz tests for templating (templating.py, sandbox.py, render.py): any template
either answers or fails with a TemplateError (a clear error answer), never another exception;
no template reaches Python internals or the file system; none hangs or eats memory."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mockbox.core import sandbox
from mockbox.core.mockwriter import literal
from mockbox.core.model import ResponseSpec
from mockbox.core.render import Rendered, render
from mockbox.core.request import Headers, RequestView
from mockbox.core.sandbox import MAX_SIZE
from mockbox.core.templating import TemplateEngine, TemplateError

from .fuzzing import json_values, time_bound

ENGINE = TemplateEngine()
REQUEST = RequestView(
    "POST",
    "http",
    "api.test",
    80,
    "/users/42",
    (("q", "1"), ("q", "2")),
    Headers([("Authorization", "Bearer t"), ("X-A", "a")]),
    b'{"name": "Ann", "tags": ["a"]}',
)
PARAMS = {"id": "42"}


def render_value(value: Any, header: Any = None) -> Rendered:
    """Compile `value` as a response body (and `header` as a header) and render it; raises
    TemplateError, and only that, when the template is bad."""
    body = ENGINE.compile(value)
    headers = () if header is None else (("X-T", ENGINE.compile(header)),)
    spec = ResponseSpec(200, headers, body=body)
    with time_bound(15):
        return render(spec, ENGINE, REQUEST, PARAMS)


def outcome(value: Any, header: Any = None) -> Rendered | TemplateError:
    try:
        return render_value(value, header)
    except TemplateError as e:
        return e


# --- random templates -------------------------------------------------------------------------

jinja_tokens = st.sampled_from(
    [
        "{{", "}}", "{%", "%}", "{#", "#}", "{%-", "-%}", " ", "x", "'", '"', "(", ")", "[", "]",
        ".", "|", "~", "*", "**", "+", "%", ",", ":", "=", "0", "9", "10", "-1", "path", "query",
        "headers", "body", "request", "fake", "now", "id", "name", "q", "int", "upper", "length",
        "list", "join", "default", "if", "else", "endif", "for", "in", "endfor", "set", "raw",
        "endraw", "macro", "endmacro", "call", "namespace", "range", "loop", "cycler", "joiner",
        "lipsum", "dict", "None", "true", "\n", "\\", "__class__", "_x", "mro", "format",
        "attr", "map", "select", "items", "keys", "tojson", "safe", "e",
    ]
)  # fmt: skip
templates = st.lists(jinja_tokens, max_size=30).map("".join) | st.text(max_size=60)


@given(templates)
def test_a_random_template_answers_or_fails_cleanly(text: str) -> None:
    try:
        result = render_value(text, header=text)
    except TemplateError as e:
        assert str(e)
        return
    assert len(result.body) <= 4 * MAX_SIZE
    for _, value in result.headers:
        assert "\r" not in value and "\n" not in value


@given(json_values, templates)
def test_templates_inside_json_answer_or_fail_cleanly(doc: Any, text: str) -> None:
    value = {"doc": literal(doc), "list": [text, {"t": text}]}
    result = outcome(value)
    if isinstance(result, Rendered):
        assert json.loads(result.body)["doc"] == doc


@given(st.text(max_size=80).filter(lambda t: not any(m in t for m in ("{{", "{%", "{#"))))
def test_text_without_template_marks_is_served_as_is(text: str) -> None:
    assert render_value(text).body == text.encode()


literal_text = st.lists(
    st.sampled_from(["{{", "}}", "{%", "%}", "{#", "#}", "raw", "endraw", " endraw ", "-", "+"])
    | st.sampled_from(["'", '"', "\\", "\n", "\r", "\t", "x", "é", "\x00", "\\n", "\\u0041"]),
    max_size=20,
).map("".join)


@given(literal_text)
def test_literal_text_renders_exactly_as_itself(text: str) -> None:
    """What the recorder and AI persistence rely on: an upstream's text is never evaluated."""
    assert render_value(literal(text)).body == text.encode()
    assert json.loads(render_value({"k": literal(text)}).body) == {"k": text}


# --- sandbox escapes --------------------------------------------------------------------------

ESCAPES = [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ ''.__class__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__['os'] }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ range.__init__.__globals__ }}",
    "{{ fake.__class__ }}",
    "{{ fake.__class__.__init__.__globals__ }}",
    "{{ fake.random.__class__.__init__.__globals__ }}",
    "{{ fake.factories[0].__dict__ }}",
    "{{ fake._factory_map }}",
    "{{ fake.providers[0].__module__ }}",
    "{{ fake.seed_instance.__func__.__globals__ }}",
    "{{ request.__dict__ }}",
    "{{ request.__class__.__base__ }}",
    "{{ headers._map }}",
    "{{ headers.__class__.__init__.__globals__ }}",
    "{{ now.__class__.__subclasses__() }}",
    "{{ self.__dict__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ body.__class__ }}",
    "{{ path.__class__.__base__.__subclasses__() }}",
    "{{ (query|attr('__class__')).__mro__ }}",
    "{{ path|attr('__class__') }}",
    "{{ ''|attr('\\x5f\\x5fclass\\x5f\\x5f') }}",
    "{{ ''['__class__'] }}",
    "{{ dict.__init__ }}",
    "{{ config }}",
    "{{ get_flashed_messages.__globals__ }}",
    "{% set x = ''.__class__ %}{{ x }}",
    "{{ '{0.__class__}'.format('') }}",
    "{{ '{0.__class__.__mro__}'.format_map({'0': ''}) }}",
    "{{ '%s'|format(''.__class__) }}",
    "{{ [].__class__.__base__.__subclasses__() }}",
    "{{ query.items.__self__.__class__ }}",
    "{{ fake.random.seed.__self__.__class__ }}",
    "{{ fake.file_path.__globals__ }}",
    "{{ (fake.name|attr('__globals__'))['os'] }}",
    "{% for c in ''.__class__.__mro__ %}{{ c }}{% endfor %}",
    "{{ request.items().__iter__.__self__ }}",
    "{{ fake.providers[0].generator.__dict__ }}",
]
LEAKS = ("<class", "<function", "<module", "__globals__", "__builtins__", "subprocess", "uid=")


@pytest.mark.parametrize("template", ESCAPES)
def test_a_template_cannot_reach_python_internals(template: str) -> None:
    result = outcome(template)
    if isinstance(result, TemplateError):
        return
    text = result.body.decode()
    for leak in LEAKS:
        assert leak not in text, (template, text[:200])


@pytest.mark.parametrize(
    "template",
    [
        "text {{ request.method.lower }} {{ fake.name }}",
        {"a": "{{ request.method.lower }}", "b": ["{{ fake.name }}"]},
        {"a": "{{ [request.method.lower, 1] }}"},
        "{{ range }}{{ cycler }}{{ ''.join }}",
    ],
)
def test_a_function_shows_as_nothing_not_its_address(template: Any) -> None:
    """`{{ body.title }}` on a text body is a method: its repr would tell memory addresses."""
    text = render_value(template).body.decode()
    assert " at 0x" not in text and "method" not in text, text
    assert "<" not in text, text


FILE_ACCESS = [
    "{% include '/etc/passwd' %}",
    "{% include '../../etc/passwd' %}",
    "{% import '/etc/passwd' as p %}",
    "{% from '/etc/passwd' import x %}",
    "{% extends '/etc/passwd' %}",
    "{{ fake.file_path() | list | length }}{% include fake.file_path() %}",
    "{{ self._TemplateReference__context.environment.loader }}",
]


@pytest.mark.parametrize("template", FILE_ACCESS)
def test_a_template_cannot_read_files(template: str) -> None:
    result = outcome(template)
    if isinstance(result, Rendered):
        assert b"root:" not in result.body
        assert template.startswith(("{{ fake", "{{ self"))  # the include/import ones must fail


# --- resource exhaustion ----------------------------------------------------------------------

EXHAUSTION = [
    "{{ range(10**9) | list }}",
    "{{ range(10**9) | length }}",
    "x{{ 'a' * 10**9 }}",
    "{{ 'a' * 10**9 }}",
    "{{ [0] * 10**9 }}",
    "{{ 10 ** (10 ** 10) }}",
    "{{ 10 ** (10 ** (10 ** 10)) }}",
    "{{ 2 ** (2 ** (2 ** (2 ** (2 ** 2)))) }}",
    "{{ (10 ** 10000) * (10 ** 10000) * (10 ** 10000) * (10 ** 10000) }}",
    "{{ '%999999999d' % 1 }}",
    "{{ '%.999999999f' % 1.0 }}",
    "{{ '%*d' % (999999999, 1) }}",
    "{{ '%(a)999999999s' % {'a': 1} }}",
    "{{ '{:999999999}'.format(1) }}",
    "{{ '{:{}}'.format(1, 999999999) }}",
    "{{ '{0:>999999999}'.format_map({'0': 1}) }}",
    "{{ '%999999999s' | format(1) }}",
    "{{ 'x' | center(10**9) }}",
    "{{ 'x'.center(10**9) }}",
    "{{ 'x'.ljust(10**9) }}",
    "{{ '1'.zfill(10**9) }}",
    "{{ '\t'.expandtabs(10**9) }}",
    "{{ 'x' | indent(10**9) }}",
    "{{ 'x' | wordwrap(10**9) }}",
    "{{ [1] | batch(10**9, 0) | list }}",
    "{{ [1] | slice(10**9) | list }}",
    "{{ ('a' * 1000000) | replace('a', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') }}",
    "{{ ('a' * 1000000).replace('a', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') }}",
    "{{ ('a' * 4000000).join(['x'] * 1000) }}",
    "{{ ['a' * 4000000] * 1000 | join }}",
    "{{ lipsum(10**6) }}",
    "{{ lipsum(1, max=10**9) }}",
    "{{ fake.pystr(max_chars=10**9) }}",
    "{{ fake.paragraphs(nb=10**8) }}",
    "{{ fake.pylist(nb_elements=10**8, variable_nb_elements=False) }}",
    "{{ fake.binary(length=10**9) }}",
    "{{ fake.text(max_nb_chars=10**9) }}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    "{% set s = 'x' * 100000 %}{% for i in s %}{% for j in s %}{% endfor %}{% endfor %}",
    "{% for i in range(100000) %}{% for j in range(100000) %}{{ j }}{% endfor %}{% endfor %}",
    "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}"
    "{% endfor %}{{ ns.s | length }}",
    "{% set ns = namespace(s=[1]) %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
    "{% endfor %}{{ ns.s | length }}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(64) }}",
    "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}",
    "{% for x in range(100000) recursive %}{{ loop(range(100000)) }}{% endfor %}",
]


@pytest.mark.parametrize("template", EXHAUSTION)
def test_resource_exhaustion_is_a_template_error(
    template: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A shorter deadline than the real 2 s keeps the loops that run into it quick to test.
    monkeypatch.setattr(sandbox, "MAX_RENDER_SECONDS", 0.3)
    with time_bound(10):  # far above the deadline: this catches a missing bound
        result = outcome(template)
    assert isinstance(result, TemplateError), (template, len(result.body))


@pytest.mark.parametrize(
    "template,expected",
    [
        ("{{ range(3) | list }}", b"[0, 1, 2]"),
        ("{% for i in range(3) %}{{ loop.index }}/{{ loop.length }} {% endfor %}", b"1/3 2/3 3/3 "),
        ("{{ range(4) | reverse | join(',') }}", b"3,2,1,0"),
        ("{{ 'order 1234567: %s' % path.id }}", b"order 1234567: 42"),
        ("{{ '{} 1234567 {:>5}'.format(path.id, 'x') }}", b"42 1234567     x"),
        ("{{ 2 ** 64 }}", b"18446744073709551616"),
        ("{{ 'ab' * 3 ~ path.id }}", b"ababab42"),
        ("{{ fake.random_int(0, 10**12) >= 0 }}", b"true"),
        ("{{ [1, 2] + [3] }}", b"[1, 2, 3]"),
        ("{{ 'x' | center(5) }}", b"  x  "),
    ],
)
def test_ordinary_templates_are_unaffected_by_the_bounds(template: str, expected: bytes) -> None:
    assert render_value(template).body == expected
