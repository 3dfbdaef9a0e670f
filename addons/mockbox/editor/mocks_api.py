"""/api/mocks: list and search, read, create, replace, delete and check mocks.

Replacing and deleting need `If-Match` with the ETag the client read (428 without it, 412 when
the mock changed since); every write is checked with the schema and compiler file loading
uses, written atomically, and reloaded at once.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from ..core.mockedit import dump_mock
from ..core.mockstore import MAX_MOCK_CHARS, SearchQuery, StoreError, mock_id
from .base import BadRequest, EditorHandler, text_field

DEFAULT_LIMIT = 500
MAX_LIMIT = 5000


class PreconditionRequired(StoreError):
    status, code = 428, "IF_MATCH_REQUIRED"


class MocksHandler(EditorHandler):
    def get(self) -> None:
        arg = self.get_query_argument
        query = SearchQuery(
            text=arg("q", ""),
            method=arg("method", ""),
            host=arg("host", ""),
            path=arg("path", ""),
            name=arg("name", ""),
            file=arg("file", ""),
        )
        limit = min(_int(arg("limit", str(DEFAULT_LIMIT)), "limit"), MAX_LIMIT)
        offset = _int(arg("offset", "0"), "offset")
        library = self.library
        found = self.store.catalog(library, query)
        page = list(itertools.islice(found, offset, offset + limit))
        total = offset + len(page) + sum(1 for _ in found)
        self.write_json(
            {
                "mocks": page,
                "total": total,
                "offset": offset,
                "limit": limit,
                "folder": str(library.root),
                "files": [p.relative_to(library.root).as_posix() for p in library.files],
                "problems": [_problem(p.to_json(), library.root) for p in library.problems],
                "version": library.digest[:16],
            }
        )

    async def post(self) -> None:
        data = self.json_body()
        file = text_field(data, "file", 255, required=True)
        position = data.get("index")
        if position is not None and (not isinstance(position, int) or isinstance(position, bool)):
            raise BadRequest("index must be an integer (the position of the new mock)")
        text = mock_text(data)
        stored = (await self.commit(lambda store: store.create(file, text, position))).stored
        assert stored is not None
        self.set_header("Location", f"/api/mocks/{stored.id}")
        self.set_header("ETag", stored.etag)
        self.write_json(stored.to_json(), 201)


class MockHandler(EditorHandler):
    def get(self, file: str, index: str) -> None:
        stored = self.store.get(file, int(index))
        self.set_header("ETag", stored.etag)
        self.write_json(stored.to_json())

    async def put(self, file: str, index: str) -> None:
        if_match = self._if_match(file, index)
        text = mock_text(self.json_body())
        done = await self.commit(lambda store: store.update(file, int(index), text, if_match))
        assert done.stored is not None
        self.set_header("ETag", done.stored.etag)
        self.write_json(done.stored.to_json())

    async def delete(self, file: str, index: str) -> None:
        if_match = self._if_match(file, index)
        await self.commit(lambda store: store.delete(file, int(index), if_match))
        self.write_json({"deleted": mock_id(file, int(index))})

    def _if_match(self, file: str, index: str) -> str:
        value = self.request.headers.get("If-Match")
        if not value:
            raise PreconditionRequired(
                f"send If-Match with the ETag from GET /api/mocks/{mock_id(file, int(index))}, "
                "so a change made meanwhile by someone else is not overwritten"
            )
        return value


class ValidateHandler(EditorHandler):
    """Checks a mock without saving it: the editor's inline errors as you type."""

    def post(self) -> None:
        data = self.json_body()
        file = text_field(data, "file", 255) or "draft.yaml"
        mock, problems = self.store.check(file, mock_text(data))
        self.write_json(
            {
                "valid": not problems,
                "mock": mock if isinstance(mock, dict) else None,
                "problems": [{"line": p.line, "message": p.message} for p in problems],
            }
        )


def mock_text(data: dict[str, Any]) -> str:
    """The mock as YAML text: `yaml` (the editor's buffer, comments kept) or `mock` (JSON)."""
    if "yaml" in data:
        return text_field(data, "yaml", MAX_MOCK_CHARS, required=True)
    mock = data.get("mock")
    if not isinstance(mock, dict):
        raise BadRequest('send the mock as "yaml" (text) or "mock" (a JSON object)')
    return dump_mock(mock)


def _int(text: str, name: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise BadRequest(f"{name} must be a whole number") from None
    if value < 0:
        raise BadRequest(f"{name} must not be negative")
    return value


def _problem(problem: dict[str, Any], root: Path) -> dict[str, Any]:
    """A library problem with its file relative to the mocks folder, as ids use it."""
    file = str(problem["file"])
    prefix = f"{root}/"
    return {**problem, "file": file.removeprefix(prefix)}
