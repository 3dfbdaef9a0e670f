"""What every editor endpoint shares: JSON in and out, errors as JSON, the mocks folder."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..admin import ApiHandler
from ..core.library import MockLibrary
from ..core.mockfile import Problem
from ..core.mockstore import MockStore, NotEditable, StoreError, Write

MAX_BODY_BYTES = 2_000_000
_WRITES = asyncio.Lock()  # the editor's writes, one at a time (one admin server per process)


class BadRequest(StoreError):
    pass


class JsonRequired(StoreError):
    status, code = 415, "JSON_REQUIRED"


class Unavailable(StoreError):
    status, code = 503, "UNAVAILABLE"


class EditorHandler(ApiHandler):
    """Raise a StoreError (or a subclass) anywhere: the client gets its JSON and status."""

    def json_body(self) -> dict[str, Any]:
        """The request's JSON object. JSON only: a cross-site HTML form cannot send it."""
        kind = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            raise JsonRequired("send the body as JSON with Content-Type: application/json")
        if len(self.request.body) > MAX_BODY_BYTES:
            raise BadRequest(f"the body is larger than {MAX_BODY_BYTES} bytes")
        try:
            data = json.loads(self.request.body or b"null")
        except ValueError as e:
            raise BadRequest(f"the body is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise BadRequest("the body must be a JSON object")
        return data

    @property
    def library(self) -> MockLibrary:
        library = self.admin.mocks.library
        if library is None:
            raise Unavailable("no mocks folder is configured")
        return library

    @property
    def store(self) -> MockStore:
        library = self.library
        return MockStore(library.root, library.engine, library.limits)

    async def commit(self, write: Callable[[MockStore], Write]) -> Write:
        """Make `write` (a MockStore write) and serve it at once, instead of at the next reload
        interval. A file that then does not load (another of its mocks has a problem) is put
        back as it was and the problems are reported. One write at a time, so that putting a
        file back never undoes someone else's save."""
        async with _WRITES:
            store = self.store
            done = write(store)
            problems = await self._reload(done.path)
            if problems:
                store.undo(done)
                await self._reload(done.path)
                raise NotEditable(
                    f"{done.path.name} has problems in other mocks, so it cannot load; nothing "
                    "was changed. Fix them in the file first.",
                    problems=[{"line": p.line, "message": p.message} for p in problems],
                )
            return done

    async def _reload(self, path: Path) -> list[Problem]:
        report = await self.admin.mocks.reload_files([path])
        problems = report.problems if report is not None else []
        return [p for p in problems if p.file.resolve() == path]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        error = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(error, StoreError):
            self.write_json(error.to_json(), error.status)
        else:
            super().write_error(status_code, **kwargs)

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if not isinstance(value, StoreError):  # a refused request is not a server error
            super().log_exception(typ, value, tb)


def text_field(data: dict[str, Any], name: str, limit: int, required: bool = False) -> str:
    value = data.get(name, "")
    if not isinstance(value, str):
        raise BadRequest(f"{name} must be a string")
    if required and not value.strip():
        raise BadRequest(f"{name} is required")
    if len(value) > limit:
        raise BadRequest(f"{name} is limited to {limit} characters")
    return value
