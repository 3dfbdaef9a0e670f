"""The pure core: the match index, matchers and templating, without a proxy."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from mockbox.core.ai_answer import check_answer
from mockbox.core.bodypath import MAX_STEPS
from mockbox.core.library import MockLibrary
from mockbox.core.openapi_import import generate
from mockbox.core.render import render
from mockbox.core.request import Headers, RequestView
from mockbox.core.templating import TemplateEngine
from mockbox.core.work import MatchTimeout, Work

from .fuzzing import time_bound


def library(tmp_path: Path, text: str) -> MockLibrary:
    (tmp_path / "m.yaml").write_text(text)
    lib = MockLibrary(tmp_path, TemplateEngine())
    report = lib.refresh()
    assert not report.problems, report.problems
    return lib


def req(
    method: str = "GET",
    path: str = "/",
    host: str = "api.test",
    query: tuple[tuple[str, str], ...] = (),
    headers: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
    port: int = 80,
) -> RequestView:
    return RequestView(method, "http", host, port, path, query, Headers(headers), body)


def matched_name(lib: MockLibrary, request: RequestView) -> str | None:
    m = lib.index.match(request)
    return m.mock.name if m else None


SPECIFICITY = """
mocks:
  - {name: catchall, request: {path: "/users/{rest*}"}, response: {body: c}}
  - {name: param, request: {path: "/users/{id}"}, response: {body: p}}
  - {name: literal, request: {path: /users/me}, response: {body: l}}
  - {name: any-method, request: {method: "*", path: /users/me/settings}, response: {body: a}}
  - {name: post-only, request: {method: POST, path: /users/me/settings}, response: {body: s}}
  - {name: hosted, request: {host: api.test, path: "/users/{id}"}, response: {body: h}}
  - {name: wildcard, request: {host: "*.other.test", path: "/users/{id}"}, response: {body: w}}
"""


def test_more_specific_mock_wins(tmp_path: Path) -> None:
    lib = library(tmp_path, SPECIFICITY)
    assert matched_name(lib, req(path="/users/me")) == "literal"
    assert matched_name(lib, req(path="/users/42")) == "hosted"  # host given beats no host
    assert matched_name(lib, req(path="/users/42", host="x.test")) == "param"
    assert matched_name(lib, req(path="/users/42", host="eu.other.test")) == "wildcard"
    assert matched_name(lib, req(path="/users/42/a/b")) == "catchall"
    assert matched_name(lib, req(path="/users")) == "catchall"  # zero segments for {rest*}
    assert matched_name(lib, req("POST", "/users/me/settings")) == "post-only"
    assert matched_name(lib, req("PUT", "/users/me/settings")) == "any-method"
    assert matched_name(lib, req(path="/orders")) is None


def test_priority_beats_specificity_and_file_order_breaks_ties(tmp_path: Path) -> None:
    lib = library(
        tmp_path,
        """
mocks:
  - {name: first, request: {path: "/a/{x}"}, response: {body: 1}}
  - {name: second, request: {path: "/a/{y}"}, response: {body: 2}}
  - {name: urgent, priority: 5, request: {path: "/b/{x}"}, response: {body: 3}}
  - {name: literal, request: {path: /b/c}, response: {body: 4}}
""",
    )
    assert matched_name(lib, req(path="/a/z")) == "first"
    assert matched_name(lib, req(path="/b/c")) == "urgent"


def test_query_header_and_body_matchers(tmp_path: Path) -> None:
    lib = library(
        tmp_path,
        """
mocks:
  - name: query
    request:
      path: /q
      query: {page: "2", q: {regex: "^ab+$"}, debug: {present: false}}
    response: {body: q}
  - name: header
    request:
      path: /h
      headers: {X-Token: {contains: secret}, Accept: application/json}
    response: {body: h}
  - name: jsonpath
    request:
      method: POST
      path: /b
      body:
        - {jsonpath: "$.items[*].sku", equals: A-2}
        - {jsonpath: "$.count", equals: 2}
    response: {body: jp}
  - name: includes
    request: {method: POST, path: /i, body: {json_includes: {user: {role: admin}}}}
    response: {body: inc}
  - name: exact
    request: {method: POST, path: /e, body: "ping"}
    response: {body: pong}
  - name: regex-body
    request: {method: POST, path: /r, body: {regex: "^id=[0-9]+$"}}
    response: {body: r}
""",
    )
    assert matched_name(lib, req(path="/q", query=(("page", "2"), ("q", "abbb")))) == "query"
    assert matched_name(lib, req(path="/q", query=(("page", "2"), ("q", "ac")))) is None
    debug = (("page", "2"), ("q", "ab"), ("debug", "1"))
    assert matched_name(lib, req(path="/q", query=debug)) is None
    headers = (("x-token", "my-secret-1"), ("ACCEPT", "application/json"))
    assert matched_name(lib, req(path="/h", headers=headers)) == "header"
    assert matched_name(lib, req(path="/h", headers=headers[:1])) is None
    good = json.dumps({"items": [{"sku": "A-1"}, {"sku": "A-2"}], "count": 2}).encode()
    assert matched_name(lib, req("POST", "/b", body=good)) == "jsonpath"
    bad = json.dumps({"items": [{"sku": "A-1"}], "count": 2}).encode()
    assert matched_name(lib, req("POST", "/b", body=bad)) is None
    assert matched_name(lib, req("POST", "/b", body=b"{not json")) is None
    admin = json.dumps({"user": {"role": "admin", "name": "x"}, "extra": 1}).encode()
    assert matched_name(lib, req("POST", "/i", body=admin)) == "includes"
    assert matched_name(lib, req("POST", "/i", body=b'{"user": {"role": "dev"}}')) is None
    assert matched_name(lib, req("POST", "/e", body=b"ping")) == "exact"
    assert matched_name(lib, req("POST", "/e", body=b"ping!")) is None
    assert matched_name(lib, req("POST", "/r", body=b"id=12")) == "regex-body"


def test_nearest_candidates_say_why(tmp_path: Path) -> None:
    lib = library(
        tmp_path,
        """
mocks:
  - {name: add item, request: {method: POST, path: "/orders/{id}/items"}, response: {body: a}}
  - {name: get order, request: {method: GET, path: "/orders/{id}"}, response: {body: g}}
  - {name: v2, request: {method: POST, path: "/orders/{id}/lines"}, response: {body: v}}
  - name: needs token
    request: {method: GET, path: /account, headers: {X-Token: {regex: "^t-"}}}
    response: {body: t}
""",
    )
    nearest = lib.index.nearest(req("DELETE", "/orders/5/items"))
    assert [c.mock.name for c in nearest][:1] == ["add item"]
    assert nearest[0].reasons == ("method differs: mock expects POST, got DELETE",)
    assert len(nearest) == 3
    nearest = lib.index.nearest(req("POST", "/orders/5/itemz"))
    assert nearest[0].mock.name in ("add item", "v2")
    assert "path segment 3 differs: mock expects 'items', got 'itemz'" in [
        r for c in nearest for r in c.reasons
    ]
    nearest = lib.index.nearest(req("GET", "/account", headers=(("X-Token", "bad"),)))
    assert nearest[0].mock.name == "needs token"
    assert nearest[0].reasons == ("header 'x-token' should be matching /^t-/, got 'bad'",)


def test_many_mocks_each_found(tmp_path: Path) -> None:
    text = "mocks:\n" + "".join(
        f"  - {{name: m{i}, request: {{path: /items/{i}/detail}}, response: {{body: '{i}'}}}}\n"
        for i in range(3000)
    )
    lib = library(tmp_path, text)
    assert len(lib.index) == 3000
    for i in (0, 17, 2999):
        assert matched_name(lib, req(path=f"/items/{i}/detail")) == f"m{i}"
    assert matched_name(lib, req(path="/items/3000/detail")) is None


# --- issue 13: user regexes on RE2, bounded JSONPath and bodies ---------------------------------


def test_hostile_regexes_match_in_linear_time(tmp_path: Path) -> None:
    """The findings: `^(a+)+$` against 27 characters took 5.7 s, `^(\\w+\\s?)*$` against 29 took
    44.5 s (also when explaining the nearest mocks), Python's `re` in a JSONPath `=~` alike."""
    lib = library(
        tmp_path,
        r"""
mocks:
  - {name: header, request: {path: /h, headers: {X-A: {regex: "^(a+)+$"}}}, response: {body: h}}
  - {name: query, request: {path: /q, query: {a: {regex: "^(a|aa)+$"}}}, response: {body: q}}
  - name: body
    request: {method: POST, path: /b, body: {regex: '^(\w+\s?)*$'}}
    response: {body: b}
  - name: jsonpath
    request: {method: POST, path: /j, body: {jsonpath: '$[?(@.n =~ "^(a+)+$")]'}}
    response: {body: j}
""",
    )
    evil = "a" * 40 + "!"
    requests = [
        req(path="/h", headers=(("X-A", evil),)),
        req(path="/q", query=(("a", evil),)),
        req("POST", "/b", body=evil.encode()),
        req("POST", "/j", body=json.dumps([{"n": evil}]).encode()),
    ]
    with time_bound(2.0):
        for r in requests:
            assert lib.index.match(r) is None
            (nearest,) = lib.index.nearest(r, limit=1)
            assert nearest.reasons
    assert matched_name(lib, req(path="/h", headers=(("X-A", "aaa"),))) == "header"
    assert matched_name(lib, req("POST", "/b", body=b"ab cd")) == "body"
    assert matched_name(lib, req("POST", "/j", body=b'[{"n": "aa"}]')) == "jsonpath"


REFUSED = """
mocks:
  - name: lookahead
    request: {path: /a, headers: {X-A: {regex: "^(?=admin)"}}}
    response: {body: a}
  - name: backreference
    request: {path: /b, query: {q: {regex: '(\\w)\\1'}}}
    response: {body: b}
  - name: possessive
    request: {method: POST, path: /c, body: {regex: "a*+b"}}
    response: {body: c}
  - name: jsonpath regex
    request: {method: POST, path: /d, body: {jsonpath: '$[?(@.n =~ "(?<!x)y")]'}}
    response: {body: d}
  - name: jsonpath arithmetic
    request: {method: POST, path: /e, body: {jsonpath: "$.a * $.b"}}
    response: {body: e}
  - name: schema pattern
    request: {path: /f}
    response: {body: {id: x}}
    openapi:
      response_schema:
        type: object
        properties:
          id: {type: string, pattern: "^(?P<c>.)(?P=c)$"}
"""


def test_patterns_re2_cannot_run_are_refused_with_file_line_and_the_re2_way(
    tmp_path: Path,
) -> None:
    (tmp_path / "m.yaml").write_text(REFUSED)
    (tmp_path / "ok.yaml").write_text("mocks:\n  - {name: fine, request: {path: /}, response: {}}")
    lib = MockLibrary(tmp_path, TemplateEngine())
    report = lib.refresh()
    assert [m.name for m in lib.index.mocks] == ["fine"]  # the other file still serves
    found = {p.mock: (p.file.name, p.line, p.message) for p in report.problems}
    assert found["lookahead"][:2] == ("m.yaml", 4)
    assert "lookahead `(?=...)` is not supported by RE2" in found["lookahead"][2]
    assert found["backreference"][1] == 7 and "backreferences" in found["backreference"][2]
    assert found["possessive"][1] == 10 and "drop the last `+`" in found["possessive"][2]
    assert found["jsonpath regex"][1] == 13 and "lookbehind" in found["jsonpath regex"][2]
    assert found["jsonpath arithmetic"][1] == 16 and "arithmetic" in found["jsonpath arithmetic"][2]
    assert found["schema pattern"][1] == 25  # the line of the pattern inside the schema
    assert "backreferences" in found["schema pattern"][2]


def test_a_body_over_the_cap_fails_body_matchers_and_the_404_says_why(tmp_path: Path) -> None:
    lib = library(
        tmp_path,
        """
mocks:
  - {name: by body, request: {method: POST, path: /x, body: {contains: ne}}, response: {body: b}}
  - {name: any body, request: {method: POST, path: /y}, response: {body: a}}
""",
    )
    bounds = Work(max_body_bytes=100)
    small, large = b"needle", b"needle" + b" " * 100
    assert lib.index.match(req("POST", "/x", body=small), bounds) is not None
    assert lib.index.match(req("POST", "/x", body=large), bounds) is None
    assert lib.index.match(req("POST", "/y", body=large), bounds) is not None  # no body matcher
    (nearest,) = lib.index.nearest(req("POST", "/x", body=large), 1, bounds)
    assert nearest.reasons == (
        "body is 106 bytes, more than the 100 that body matchers look at (matching.max_body_bytes)",
    )


def test_jsonpath_work_is_bounded_by_steps_and_by_the_deadline(tmp_path: Path) -> None:
    lib = library(
        tmp_path,
        """
mocks:
  - {name: deep, request: {method: POST, path: /j, body: {jsonpath: "$..x"}}, response: {body: j}}
  - name: includes
    request: {method: POST, path: /i, body: {json_includes: {items: [{id: -1}, {id: -2}]}}}
    response: {body: i}
""",
    )
    many = json.dumps({"items": [{"id": i, "tags": ["a"]} for i in range(60_000)]}).encode()
    roomy = Work(max_body_bytes=len(many))
    with time_bound(5.0):
        assert lib.index.match(req("POST", "/j", body=many), roomy) is None
        (nearest,) = lib.index.nearest(req("POST", "/j", body=many), 1, roomy)
    assert nearest.reasons == (
        "body does not match: JSONPath $..x present (the JSONPath visited more than "
        f"{MAX_STEPS} values)",
    )
    soon = Work(deadline=time.monotonic() + 0.05, max_body_bytes=len(many))
    started = time.monotonic()
    with pytest.raises(MatchTimeout):
        lib.index.match(req("POST", "/i", body=many), soon)
    assert time.monotonic() - started < 0.5


def test_openapi_patterns_run_on_re2_when_answers_are_checked_and_generated() -> None:
    """A mock's OpenAPI schema is checked against AI answers and drives the offline generator,
    both on the request path: its `pattern` must not backtrack on what a model wrote."""
    schema = {"type": "object", "properties": {"id": {"type": "string", "pattern": "^(a+)+$"}}}
    evil = "a" * 40 + "!"
    with time_bound(2.0):
        checked = check_answer({"status": 200, "headers": {}, "body": {"id": evil}}, schema)
        generated = generate({**schema["properties"]["id"], "example": evil}, "k", lambda _: None)
    assert checked.answer is None
    assert any("does not match '^(a+)+$'" in e for e in checked.errors)
    assert generated is None or re.fullmatch("a+", generated)


def render_body(lib: MockLibrary, request: RequestView) -> object:
    m = lib.index.match(request)
    assert m is not None
    out = render(m.mock.response, lib.engine, request, m.params)
    return json.loads(out.body)


def test_templates_keep_types_and_fake_data_is_deterministic(tmp_path: Path) -> None:
    lib = library(
        tmp_path,
        """
mocks:
  - request: {method: POST, path: "/users/{id}"}
    response:
      body:
        id: "{{ path.id | int }}"
        text_id: "user-{{ path.id }}"
        page: "{{ query.page | default(1) | int }}"
        email: "{{ fake.email() }}"
        name: "{{ body.name }}"
        tags: "{{ body.tags }}"
        agent: "{{ headers['user-agent'] }}"
        method: "{{ request.method }}"
""",
    )
    r = req(
        "POST",
        "/users/42",
        query=(("page", "3"),),
        headers=(("User-Agent", "t/1"),),
        body=b'{"name": "Ada", "tags": ["a", "b"]}',
    )
    first = render_body(lib, r)
    assert first == {
        "id": 42,
        "text_id": "user-42",
        "page": 3,
        "email": first["email"],  # type: ignore[index]
        "name": "Ada",
        "tags": ["a", "b"],
        "agent": "t/1",
        "method": "POST",
    }
    assert "@" in first["email"]  # type: ignore[index]
    again = render_body(lib, req("POST", "/users/42", query=(("page", "3"),), body=r.body))
    assert again["email"] == first["email"]  # type: ignore[index]
    other = render_body(lib, req("POST", "/users/43", body=r.body))
    assert other["email"] != first["email"]  # type: ignore[index]


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ fake.__class__.__init__.__globals__ }}",
        "{{ request.__class__ }}",
        "{% for x in range(10**9) %}{% endfor %}",
    ],
)
def test_templates_cannot_reach_python_internals(tmp_path: Path, template: str) -> None:
    lib = library(
        tmp_path,
        "mocks:\n  - request: {path: /x}\n    response:\n      body: "
        + json.dumps(template)
        + "\n",
    )
    m = lib.index.match(req(path="/x"))
    assert m is not None
    from mockbox.core.templating import TemplateError

    try:
        out = render(m.mock.response, lib.engine, req(path="/x"), m.params)
    except TemplateError as e:
        message = str(e).lower()
        assert "unsafe" in message or "range too big" in message or "not safely" in message
    else:
        assert b"subclasses" not in out.body and b"<class" not in out.body
        assert b"__globals__" not in out.body
