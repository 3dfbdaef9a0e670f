"""Property/fuzz tests for matching (matchers.py, pathtemplate.py, index.py, request.py): any
request is matched or explained without an exception, a path built from a template matches it
with the same parameters, the index answers exactly what a linear scan would (and the nearest
mocks what explaining every mock would). User regexes: RE2 agrees with `re` where both apply,
and hostile patterns and inputs stay linear; any JSONPath is refused or bounded."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from hypothesis import given
from hypothesis import strategies as st

from mockbox.core.bodypath import BodyPathError, TooMuchWork, compile_path
from mockbox.core.index import Candidate, MockIndex, accepts, explain
from mockbox.core.mockfile import load_mock_text
from mockbox.core.model import ANY_METHOD, Mock
from mockbox.core.pathtemplate import Param, PathTemplate
from mockbox.core.request import Headers, RequestView
from mockbox.core.templating import TemplateEngine
from mockbox.core.userregex import PatternError, compile_pattern
from mockbox.core.work import Work

from .fuzzing import json_values, time_bound

ENGINE = TemplateEngine()
ROOT = Path("/nonexistent-mockbox-root")


def load(mocks: list[dict[str, Any]]) -> list[Mock]:
    text = yaml.safe_dump({"mocks": mocks}, allow_unicode=True)
    loaded = load_mock_text(ROOT / "m.yaml", text, ROOT, ENGINE)
    assert loaded.problems == [], loaded.problems
    for order, mock in enumerate(loaded.mocks):
        mock.order = order
    return loaded.mocks


# A library with every kind of matcher, for the "never raises" property.
EVERY_MATCHER = load(
    [
        {**spec, "response": {}}
        for spec in [
            {"request": {"path": "/users/{id}", "query": {"q": {"regex": "^(a|b)+$"}}}},
            {"request": {"method": ["GET", "POST"], "host": "*.test", "path": "/files/{rest*}"}},
            {
                "request": {
                    "host": "api.test:8443",
                    "path": "/",
                    "headers": {"X-A": {"present": False}},
                }
            },
            {"request": {"path": "/b", "body": {"jsonpath": "$..id", "equals": 3}}},
            {"request": {"path": "/b", "body": [{"jsonpath": "$.a[*]", "regex": "x"}, "exact"]}},
            {"request": {"path": "/b", "body": {"json_includes": {"a": [1, {"b": None}]}}}},
            {"request": {"path": "/b", "body": {"json": {"k": [1.5, "x"]}}}},
            {"request": {"path": "/b", "body": {"regex": "\\d+"}}},
            {"request": {"path": "/b", "body": {"contains": "é"}}},
            {
                "request": {
                    "path": "/%E2%82%AC/{x}",
                    "headers": {"Authorization": {"contains": "B"}},
                }
            },
        ]
    ]
)

methods = st.sampled_from(["GET", "get", "POST", "PuT", "DELETE", "OPTIONS", "*"]) | st.text(
    max_size=12
)
path_pieces = st.sampled_from(
    ["/", "//", "/.", "/..", "users", "files", "b", "%", "%2F", "%E2%82%AC", "%ff", "%zz", "é"]
) | st.text(max_size=8)
paths = st.lists(path_pieces, max_size=30).map(lambda parts: "/" + "/".join(parts)) | st.just(
    "/" + "a/" * 3000
)
hosts = st.sampled_from(["api.test", "API.TEST", "x.test", "", "[::1]", "é.test"]) | st.text(
    max_size=20
)
pairs = st.lists(st.tuples(st.text(max_size=10), st.text(max_size=20)), max_size=6)
bodies = (
    st.binary(max_size=200)
    | json_values.map(lambda v: json.dumps(v).encode())
    | st.sampled_from([b"[" * 5000, b'{"a":' * 3000, b"\xff\xfe", b'{"id": 3}', b"NaN"])
)


def request(
    method: str, host: str, port: int, path: str, query: Any, headers: Any, body: bytes
) -> RequestView:
    return RequestView(method, "http", host, port, path, tuple(query), Headers(headers), body)


requests = st.builds(request, methods, hosts, st.integers(0, 65535), paths, pairs, pairs, bodies)


@given(requests)
def test_any_request_is_matched_or_explained_without_raising(req: RequestView) -> None:
    index = MockIndex(EVERY_MATCHER)
    found = index.match(req)
    if found is not None:
        assert found.mock.path.match(req.segments) == found.params
        assert accepts(found.mock, req)
    for candidate in index.nearest(req):
        assert candidate.to_json()["file"]
    for mock in EVERY_MATCHER:
        assert explain(mock, req).score >= 0


# --- templates round-trip ---------------------------------------------------------------------

segment_text = st.text(min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))


@st.composite
def template_and_values(draw: st.DrawFn) -> tuple[str, dict[str, str], str]:
    """A path template, the parameter values to put in it, and the concrete request path."""
    shape = draw(st.lists(st.booleans(), max_size=6))  # True: a parameter
    catchall = draw(st.booleans())
    template, concrete, values = [], [], {}
    for i, is_param in enumerate(shape):
        if is_param:
            template.append(f"{{p{i}}}")
            value = draw(segment_text)
            values[f"p{i}"] = value
            concrete.append(quote(value, safe=""))
        else:
            literal = draw(st.from_regex(r"[A-Za-z0-9._~-]{1,10}", fullmatch=True))
            template.append(literal)
            concrete.append(literal)
    if catchall:
        template.append("{rest*}")
        rest = draw(st.lists(segment_text, max_size=4))
        values["rest"] = "/".join(rest)
        concrete.extend(quote(s, safe="") for s in rest)
    return "/" + "/".join(template), values, "/" + "/".join(concrete)


@given(template_and_values(), st.booleans())
def test_a_path_built_from_a_template_matches_it_with_its_params(
    case: tuple[str, dict[str, str], str], trailing_slash: bool
) -> None:
    text, values, concrete = case
    template = PathTemplate.parse(text)
    path = concrete + ("/" if trailing_slash else "")
    req = RequestView("GET", "http", "h.test", 80, path)
    assert template.match(req.segments) == values
    [mock] = load([{"request": {"path": text}, "response": {}}])
    found = MockIndex([mock]).match(req)
    assert found is not None and found.params == values


@given(template_and_values(), st.text(min_size=1, max_size=5))
def test_an_extra_segment_does_not_match_a_template_without_catchall(
    case: tuple[str, dict[str, str], str], extra: str
) -> None:
    text, _values, concrete = case
    template = PathTemplate.parse(text)
    req = RequestView("GET", "http", "h.test", 80, f"{concrete}/{quote(extra, safe='')}")
    if template.catchall is None:
        assert template.match(req.segments) is None


# --- the index against a linear scan ----------------------------------------------------------

small_segment = st.sampled_from(["a", "b", "c"])
template_segments = st.lists(st.sampled_from(["a", "b", "c", "P"]), max_size=3)


@st.composite
def mock_specs(draw: st.DrawFn) -> dict[str, Any]:
    segments = draw(template_segments)
    path = "/" + "/".join(f"{{p{i}}}" if s == "P" else s for i, s in enumerate(segments))
    if draw(st.booleans()):
        path = path.rstrip("/") + "/{rest*}"
    req: dict[str, Any] = {"path": path}
    method = draw(st.sampled_from([None, "GET", "POST", "*", ["GET", "delete"]]))
    if method is not None:
        req["method"] = method
    host = draw(st.sampled_from([None, "api.test", "API.test:8080", "*.test", "*.api.test"]))
    if host is not None:
        req["host"] = host
    if draw(st.booleans()):
        req["query"] = {"q": draw(st.sampled_from(["1", {"present": False}, {"regex": "^[12]$"}]))}
    if draw(st.booleans()):
        req["headers"] = {"X-V": draw(st.sampled_from(["1", {"contains": "2"}]))}
    spec: dict[str, Any] = {"request": req, "response": {}}
    if draw(st.booleans()):
        spec["priority"] = draw(st.integers(-2, 2))
    return spec


test_requests = st.builds(
    request,
    st.sampled_from(["GET", "get", "POST", "DELETE", "PATCH"]),
    st.sampled_from(["api.test", "API.TEST", "x.api.test", "other.test", "test"]),
    st.sampled_from([80, 8080]),
    st.lists(small_segment, max_size=4).map(lambda s: "/" + "/".join(s)),
    st.lists(st.tuples(st.just("q"), st.sampled_from(["1", "2", "3"])), max_size=2),
    st.lists(st.tuples(st.sampled_from(["X-V", "x-v"]), st.sampled_from(["1", "12"])), max_size=2),
    st.just(b""),
)


def linear_scan(mocks: list[Mock], req: RequestView) -> Mock | None:
    """What the index must answer, found the slow and obvious way."""
    method = req.method.upper()
    fits = [
        m
        for m in mocks
        if (ANY_METHOD in m.methods or method in m.methods)
        and (m.host is None or m.host.test(req.host, req.port))
        and m.path.match(req.segments) is not None
        and accepts(m, req)
    ]
    return max(fits, key=lambda m: m.sort_key, default=None)


@given(st.lists(mock_specs(), min_size=1, max_size=12), st.lists(test_requests, max_size=10))
def test_the_index_answers_what_a_linear_scan_answers(
    specs: list[dict[str, Any]], reqs: list[RequestView]
) -> None:
    mocks = load(specs)
    index = MockIndex(mocks)
    for req in reqs:
        expected = linear_scan(mocks, req)
        found = index.match(req)
        assert (found.mock if found else None) is expected, (req.method, req.host, req.path)
        if found is not None:
            assert found.params == found.mock.path.match(req.segments)


def test_template_segments_are_parameters_or_decoded_literals() -> None:
    """The parser's view that the properties above rely on."""
    template = PathTemplate.parse("/a%20b/{id}/{rest*}")
    assert template.segments == ("a b", Param("id")) and template.catchall == "rest"


def brute_nearest(mocks: list[Mock], req: RequestView, limit: int) -> list[Candidate]:
    """What `nearest` must answer: every mock explained, the `limit` lowest scores."""
    same_host = [m for m in mocks if m.host is None or m.host.test(req.host.lower(), req.port)]
    explained = [explain(m, req) for m in same_host or mocks]
    best = sorted(explained, key=lambda c: (c.score, tuple(-k for k in c.mock.sort_key)))
    return best[:limit]


@given(st.lists(mock_specs(), min_size=1, max_size=12), st.lists(test_requests, max_size=10))
def test_nearest_answers_what_explaining_every_mock_answers(
    specs: list[dict[str, Any]], reqs: list[RequestView]
) -> None:
    """`nearest` explains only the mocks a cheap lower bound cannot rule out; the answer must
    be the one explaining every mock gives."""
    mocks = load(specs)
    index = MockIndex(mocks)
    for req in reqs:
        for limit in (1, 3):
            got = [(c.mock, c.reasons) for c in index.nearest(req, limit)]
            assert got == [(c.mock, c.reasons) for c in brute_nearest(mocks, req, limit)]


# --- user regexes: RE2 agrees with `re`, and hostile ones stay linear --------------------------

atoms = st.sampled_from(
    [
        "a",
        "b",
        "0",
        " ",
        "-",
        "é",
        ".",
        r"\d",
        r"\w",
        r"\s",
        r"\D",
        r"\W",
        "[ab]",
        "[^a]",
        "[a-c0-9]",
    ]
)


def _quantified(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    quantifiers = st.sampled_from(["*", "+", "?", "*?", "+?", "{2}", "{0,2}", "{1,3}", ""])
    return st.tuples(inner, quantifiers).map(lambda t: t[0] + t[1])


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    groups = inner.map(lambda p: f"({p})") | inner.map(lambda p: f"(?:{p})")
    sequence = st.lists(_quantified(atoms | groups), min_size=1, max_size=4).map("".join)
    return sequence | st.tuples(inner, inner).map("|".join)


patterns = st.recursive(atoms, _extend, max_leaves=8)
anchored = st.tuples(st.sampled_from(["", "^", r"\A", r"\b"]), patterns, st.sampled_from(["", "$"]))
# No newline: Python's `$` also matches before a final newline, RE2's only at the very end.
texts = st.text(alphabet="ab0 _-\té", max_size=20)


@given(anchored.map("".join), texts)
def test_re2_and_re_agree_on_patterns_both_support(pattern: str, text: str) -> None:
    """RE2's `\\d \\w \\s \\b` are ASCII, so `re` is asked with re.ASCII (userregex says so)."""
    assert compile_pattern(pattern).search(text) == bool(re.search(pattern, text, re.ASCII))


nested = st.sampled_from(
    [
        r"^(a+)+$",
        r"^(a|a)*$",
        r"^(a|aa)+$",
        r"^(\w+\s?)*$",
        r"(.*a){12}",
        r"^(a*)*b",
        r"(a?){25}a{25}",
    ]
)


@given(
    nested | anchored.map(lambda t: f"^({t[1]})+$"),
    st.sampled_from(["a", "ab", "a ", "é"]),
    st.integers(1, 20_000),
    st.sampled_from(["", "!", "b", "\n"]),
)
def test_hostile_patterns_against_hostile_inputs_take_linear_time(
    pattern: str, unit: str, repeat: int, end: str
) -> None:
    compiled = compile_pattern(pattern)
    with time_bound(1.0):
        compiled.search(unit * repeat + end)


@given(st.text(max_size=40))
def test_any_pattern_compiles_or_is_refused_with_a_reason(pattern: str) -> None:
    try:
        compile_pattern(pattern)
    except PatternError as e:
        assert str(e)


# --- JSONPath: any expression is refused at load or evaluated within its step budget -----------

path_steps = st.sampled_from(
    ["..", ".*", "[*]", ".a", "['a','a','a']", "[0,0,0]", "[?(@.a)]", '[?(@ =~ "(a+)+$")]', "[0:5]"]
)
deep_doc = st.recursive(
    st.sampled_from([0, "a" * 30 + "!", None]),
    lambda inner: (
        st.lists(inner, min_size=3, max_size=6)
        | st.dictionaries(st.sampled_from(["a", "b"]), inner, min_size=1)
    ),
    max_leaves=60,
)


@given(st.lists(path_steps, min_size=1, max_size=12).map(lambda s: "$" + "".join(s)), deep_doc)
def test_any_jsonpath_is_refused_or_bounded_by_its_budget(expression: str, doc: Any) -> None:
    try:
        path = compile_path(expression)
    except BodyPathError:
        return
    with time_bound(5.0):
        try:
            path.find(doc, Work())
        except TooMuchWork as e:
            assert str(e)
