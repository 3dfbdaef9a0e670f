"""Property/fuzz tests for matching (matchers.py, pathtemplate.py, index.py, request.py): any
request is matched or explained without an exception, a path built from a template matches it
with the same parameters, and the index answers exactly what a linear scan would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from hypothesis import given
from hypothesis import strategies as st

from mockbox.core.index import MockIndex, accepts, explain
from mockbox.core.mockfile import load_mock_text
from mockbox.core.model import ANY_METHOD, Mock
from mockbox.core.pathtemplate import Param, PathTemplate
from mockbox.core.request import Headers, RequestView
from mockbox.core.templating import TemplateEngine

from .fuzzing import json_values

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
