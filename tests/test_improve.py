"""The offline provider's mock improvements and schema-hint drafts: deterministic, useful, and
always valid mocks (checked with the file schema and compiler)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mockbox.core.ai_prompt import GenerationRequest
from mockbox.core.improve import NotApplicable, check_improvement, improve_offline
from mockbox.core.index import MockIndex
from mockbox.core.mockedit import dump_mock
from mockbox.core.mockfile import check_mock_text, load_mock_text
from mockbox.core.model import Mock
from mockbox.core.offline import OfflineGenerator
from mockbox.core.render import render
from mockbox.core.request import Headers, RequestView
from mockbox.core.templating import TemplateEngine

ENGINE = TemplateEngine()
ROOT = Path("/nonexistent/mocks")

LIST = {
    "name": "list users",
    "request": {"method": "GET", "host": "api.shop.test", "path": "/users"},
    "response": {
        "body": [
            {"id": 1, "name": "foo", "email": "a@b.co", "status": "active", "city": "x"},
            {"id": 2, "name": "bar", "email": "c@d.co", "status": "blocked", "city": "y"},
        ]
    },
}
ITEM = {
    "name": "get user",
    "request": {"method": "GET", "host": "api.shop.test", "path": "/users/{id}"},
    "response": {"body": {"id": "{{ path.id | int }}", "name": "foo"}},
}
API = """
mocks:
  - request: {method: GET, host: api.shop.test, path: /orders}
    response: {body: {items: [{id: 1}], count: 1}}
  - request: {method: GET, host: api.shop.test, path: /orders/404}
    response: {status: 404, body: {code: NOT_FOUND, detail: no such order}}
"""


def siblings() -> list[Mock]:
    return load_mock_text(ROOT / "api.yaml", API, ROOT, ENGINE).mocks


def valid(mock: dict[str, Any]) -> dict[str, Any]:
    """The mock is accepted by the same checks as a mock file."""
    problems = check_mock_text(dump_mock(mock), ROOT / "x.yaml", ROOT, ENGINE).problems
    assert problems == [], problems
    return mock


def served(mock: dict[str, Any], path: str, query: tuple[tuple[str, str], ...] = ()) -> Any:
    """What the mock answers to GET `path` (rendered by the real templating)."""
    (compiled,) = load_mock_text(ROOT / "x.yaml", dump_mock({"mocks": [mock]}), ROOT, ENGINE).mocks
    segments = tuple(s for s in path.split("/") if s)
    params = compiled.path.match(segments)
    assert params is not None
    view = RequestView("GET", "http", "api.shop.test", 80, path, query, Headers(), b"")
    return json.loads(render(compiled.response, ENGINE, view, params).body)


def test_pagination_wraps_a_list_in_the_apis_own_envelope() -> None:
    result = improve_offline(LIST, "add pagination", siblings())
    assert result is not None
    (mock,) = result.mocks
    body = served(valid(mock), "/users", (("page", "3"),))
    assert body["items"] == LIST["response"]["body"]  # "items", as /orders of this API
    assert body["pagination"] == {"page": 3, "per_page": 20, "total": 2}
    assert "pagination" in result.explanation
    assert LIST["response"]["body"] == served(LIST, "/users")  # the input is left alone


def test_pagination_needs_a_list() -> None:
    with pytest.raises(NotApplicable, match="list"):
        improve_offline(ITEM, "paginate it", [])


def test_a_404_case_is_a_new_mock_shaped_like_the_apis_errors() -> None:
    result = improve_offline(ITEM, "add a 404 case", siblings())
    assert result is not None
    original, missing = result.mocks
    assert original == ITEM
    valid(missing)
    assert missing["request"]["path"] == "/users/0"
    assert missing["response"]["status"] == 404
    assert missing["response"]["body"] == {"code": "NOT_FOUND", "detail": "no such order"}
    plain = improve_offline(ITEM, "what if the user is not found?", [])
    assert plain is not None
    assert plain.mocks[1]["response"]["body"]["message"] == "User 0 was not found."


def test_realistic_values_become_faker_templates_by_field_name() -> None:
    result = improve_offline(LIST, "use realistic names", [])
    assert result is not None
    (mock,) = result.mocks
    first = mock["response"]["body"][0]
    assert first["name"] == "{{ fake.name() }}" and first["email"] == "{{ fake.email() }}"
    assert first["city"] == "{{ fake.city() }}"
    assert first["status"] == "active" and first["id"] == 1  # states and ids are kept
    body = served(valid(mock), "/users")
    assert "@" in body[0]["email"] and body[0]["name"] not in ("foo", "")
    assert body[0]["name"] != body[1]["name"]


def test_delay_and_faults_from_the_instruction() -> None:
    slow = improve_offline(ITEM, "add a delay of 1.5 s", [])
    assert slow is not None and valid(slow.mocks[0])["response"]["delay_ms"] == 1500
    flaky = improve_offline(ITEM, "fail 25% of the time with a 502", [])
    assert flaky is not None
    fault = valid(flaky.mocks[0])["response"]["fault"]
    assert (fault["status"], fault["probability"]) == (502, 0.25)


def test_several_instructions_at_once_and_unknown_ones() -> None:
    both = improve_offline(LIST, "add pagination and realistic names", [])
    assert both is not None
    body = both.mocks[0]["response"]["body"]
    assert "pagination" in body and body["data"][0]["email"] == "{{ fake.email() }}"
    assert improve_offline(LIST, "translate it to French", []) is None


def test_the_same_request_gets_the_same_proposal() -> None:
    a = improve_offline(LIST, "add pagination, a 404 case and realistic names", [])
    b = improve_offline(LIST, "add pagination, a 404 case and realistic names", [])
    assert a == b
    assert a is not None and "Not applied" in a.explanation  # /users has no parameter


def test_an_llm_answer_is_checked_mock_by_mock() -> None:
    def problems(mock: dict[str, Any]) -> list[str]:
        return [
            p.message
            for p in check_mock_text(dump_mock(mock), ROOT / "x.yaml", ROOT, ENGINE).problems
        ]

    bad = {"mocks": [{"request": {"path": "/a"}, "response": {"status": "x"}}], "explanation": ""}
    improvement, errors = check_improvement(bad, problems)
    assert improvement is None and "mocks[0]: response.status" in errors[0]
    improvement, errors = check_improvement({"mocks": [LIST], "explanation": "ok"}, problems)
    assert errors == [] and improvement is not None and improvement.mocks == [LIST]
    assert check_improvement("nope", problems)[0] is None


def test_a_schema_hint_drafts_a_route_nothing_is_known_about() -> None:
    generator = OfflineGenerator(ENGINE)
    hint = "id, title, author, price, tags[], created_at, in_stock: boolean"
    for url, complexity, count in (
        ("https://api.new.test/books", "simple", 2),
        ("https://api.new.test/books", "complex", 5),
    ):
        req = GenerationRequest("GET", url, schema_hint=hint, complexity=complexity)
        answer = generator.generate(req, MockIndex(), req.seed())
        assert answer is not None and len(answer.body) == count
        book = answer.body[0]
        assert set(book) == {"id", "title", "author", "price", "tags", "created_at", "in_stock"}
        assert isinstance(book["id"], int) and isinstance(book["price"], float)
        assert isinstance(book["in_stock"], bool) and len(book["tags"]) == 2
    item = GenerationRequest("GET", "https://api.new.test/books/42", schema_hint=hint)
    answer = generator.generate(item, MockIndex(), item.seed())
    assert answer is not None and answer.body["id"] == 42
    nothing = GenerationRequest("GET", "https://api.new.test/books/42")
    assert generator.generate(nothing, MockIndex(), nothing.seed()) is None
