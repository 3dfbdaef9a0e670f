"""The mocks folder as the editor sees it: mocks addressed by file and position, read, created,
replaced and deleted with optimistic concurrency (ETags), checked before anything is written.

A mock's id is `<file relative to the mocks folder>/<index in its mocks: list>`, for example
`bookshop.yaml/1`. Names are optional and may repeat, so they cannot address a mock; an index
can, and the ETag (a hash of the mock's text) makes sure a client that addresses a position
acts on the mock it last saw there: if the file changed under it, it gets a conflict, never
someone else's mock.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .library import MockLibrary
from .mockedit import LayoutError, MockFileLayout, parse_layout
from .mockfile import MOCK_FILE_SUFFIXES, Problem, check_mock_text
from .mockwriter import write_atomic
from .model import ANY_METHOD, Mock
from .safefile import (
    DEFAULT_LIMITS,
    FileLimits,
    FileMissing,
    FileRefused,
    read_inside,
    resolve_inside,
)
from .templating import TemplateEngine

MAX_MOCK_CHARS = 1_000_000
_FILE_PART = re.compile(r"^[\w][\w.-]*$")


class StoreError(Exception):
    status = 400
    code = "BAD_REQUEST"

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.extra = extra

    def to_json(self) -> dict[str, Any]:
        return {"error": self.code, "message": str(self), **self.extra}


class PathRefused(StoreError):
    code = "PATH_REFUSED"


class NotFound(StoreError):
    status, code = 404, "MOCK_NOT_FOUND"


class Invalid(StoreError):
    status, code = 422, "INVALID_MOCK"


class NotEditable(StoreError):
    status, code = 409, "FILE_NOT_EDITABLE"


class Conflict(StoreError):
    status, code = 412, "CONFLICT"


@dataclass(frozen=True, slots=True)
class StoredMock:
    file: str
    index: int
    line: int  # 1-based line of the mock's `-` in its file
    etag: str
    yaml: str
    data: Any

    @property
    def id(self) -> str:
        return mock_id(self.file, self.index)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "file": self.file,
            "index": self.index,
            "line": self.line,
            "etag": self.etag,
            "yaml": self.yaml,
            "mock": self.data,
        }


@dataclass(frozen=True, slots=True)
class Write:
    """A write that happened, and what undoes it: the file is reloaded next, and if it does
    not load (a problem in another of its mocks) the previous text goes back."""

    path: Path
    previous: str | None  # None: the file did not exist
    stored: StoredMock | None  # the mock as saved; None after a delete


def mock_id(file: str, index: int) -> str:
    return f"{file}/{index}"


@dataclass(slots=True)
class SearchQuery:
    """Case-insensitive filters; `text` looks at method, host, path, name and file at once."""

    text: str = ""
    method: str = ""
    host: str = ""
    path: str = ""
    name: str = ""
    file: str = ""

    def accepts(self, s: dict[str, Any]) -> bool:
        methods = s["methods"]
        if self.method and self.method.upper() not in methods and ANY_METHOD not in methods:
            return False
        for want, have in (
            (self.host, s["host"] or ""),
            (self.path, s["path"]),
            (self.name, s["name"]),
            (self.file, s["file"]),
        ):
            if want and want.lower() not in have.lower():
                return False
        if self.text:
            hay = " ".join([*methods, s["host"] or "", s["path"], s["name"], s["file"]])
            return all(word in hay.lower() for word in self.text.lower().split())
        return True


@dataclass(slots=True)
class MockStore:
    root: Path
    engine: TemplateEngine
    limits: FileLimits = DEFAULT_LIMITS
    _resolved: Path = field(init=False)

    def __post_init__(self) -> None:
        self._resolved = self.root.resolve()

    # --- reading ---------------------------------------------------------------------------

    def catalog(self, library: MockLibrary, query: SearchQuery) -> Iterator[dict[str, Any]]:
        """The mocks being served (the last good version of each file), filtered."""
        position: dict[Path, int] = {}
        for mock in library.index.mocks:
            index = position.get(mock.file, 0)
            position[mock.file] = index + 1
            summary = self._summary(mock, index)
            if summary is not None and query.accepts(summary):
                yield summary

    def get(self, file: str, index: int) -> StoredMock:
        path = self.resolve(file)
        layout = self._layout(path, file, must_exist=True)
        if not 0 <= index < len(layout.entries):
            raise NotFound(f"{file} has no mock {index} (it has {len(layout.entries)})")
        return self._stored(file, layout, index)

    def check(self, file: str, text: str) -> tuple[Any, list[Problem]]:
        """The mock in `text`, and its problems as if it were saved into `file`."""
        path = self.resolve(file)
        if len(text) > MAX_MOCK_CHARS:
            raise Invalid(f"a mock is limited to {MAX_MOCK_CHARS} characters")
        checked = check_mock_text(text, path, self.root, self.engine, self.limits)
        return checked.data, checked.problems

    # --- writing ---------------------------------------------------------------------------

    def create(self, file: str, text: str, index: int | None = None) -> Write:
        path = self.resolve(file)
        self._valid(file, text)
        layout = self._layout(path, file, must_exist=False)
        at = len(layout.entries) if index is None else index
        if not 0 <= at <= len(layout.entries):
            raise Invalid(f"position {at} is outside 0..{len(layout.entries)} in {file}")
        edited = self._edit(lambda: layout.inserted(at, text))
        previous = layout.text if path.exists() else None
        return self._write(path, previous, edited, self._stored(file, edited, at))

    def update(self, file: str, index: int, text: str, if_match: str) -> Write:
        path = self.resolve(file)
        self._valid(file, text)
        layout = self._current(path, file, index, if_match)
        edited = self._edit(lambda: layout.replaced(index, text))
        return self._write(path, layout.text, edited, self._stored(file, edited, index))

    def delete(self, file: str, index: int, if_match: str) -> Write:
        path = self.resolve(file)
        layout = self._current(path, file, index, if_match)
        return self._write(path, layout.text, self._edit(lambda: layout.deleted(index)), None)

    def undo(self, write: Write) -> None:
        """Put the file back as it was before `write`."""
        if write.previous is None:
            write.path.unlink(missing_ok=True)
        else:
            write_atomic(write.path, write.previous)

    def resolve(self, file: str) -> Path:
        """`file` inside the mocks folder, or PathRefused: never `..`, absolute paths, hidden
        names, other suffixes, or a symlink that leads out of the folder."""
        if not isinstance(file, str) or not file or len(file) > 255 or "\\" in file:
            raise PathRefused("file must be a relative path like books.yaml or shop/books.yaml")
        rel = PurePosixPath(unicodedata.normalize("NFC", file))
        if rel.is_absolute() or not all(_FILE_PART.match(part) for part in rel.parts):
            raise PathRefused(
                f"file {file!r} is refused: use a relative path inside the mocks folder "
                "(letters, digits, '.', '-', '_'; no '..', no hidden names)"
            )
        if rel.suffix not in MOCK_FILE_SUFFIXES:
            raise PathRefused(f"file {file!r} must end in .yaml or .yml")
        try:
            return resolve_inside(self._resolved, self._resolved / rel)
        except FileRefused as e:
            raise PathRefused(f"file {file!r} {e}") from None

    # --- helpers -----------------------------------------------------------------------------

    def _summary(self, mock: Mock, index: int) -> dict[str, Any] | None:
        if not mock.file.is_relative_to(self._resolved):
            return None
        file = mock.file.relative_to(self._resolved).as_posix()
        raw_status = mock.raw.get("response", {}).get("status", 200)
        return {
            "id": mock_id(file, index),
            "file": file,
            "index": index,
            "line": mock.line,
            "name": mock.name,
            "methods": sorted(mock.methods),
            "host": str(mock.host) if mock.host else None,
            "path": mock.path.text,
            "status": raw_status,
            "priority": mock.priority,
        }

    def _layout(self, path: Path, file: str, must_exist: bool) -> MockFileLayout:
        """The file's layout, read as the loader reads it: a FIFO or a file over the size
        limit is refused rather than read (a FIFO would block the event loop for good)."""
        try:
            data = read_inside(
                self._resolved, path, self.limits.max_file_bytes, "mock_files.max_file_bytes"
            )
            text = data.decode("utf-8")
        except FileMissing:
            if must_exist:
                raise NotFound(f"no mock file {file}") from None
            text = ""
        except FileRefused as e:
            raise NotEditable(f"{file} {e}") from None
        except UnicodeDecodeError as e:
            raise NotEditable(f"{file} is not UTF-8 text (byte {e.start + 1} is not)") from None
        try:
            return parse_layout(text)
        except LayoutError as e:
            raise NotEditable(f"{file}: {e}") from e

    def _stored(self, file: str, layout: MockFileLayout, index: int) -> StoredMock:
        entry = layout.entries[index]
        return StoredMock(
            file,
            index,
            entry.dash + 1,
            layout.etag(index),
            layout.snippet(index),
            layout.data[index],
        )

    def _current(self, path: Path, file: str, index: int, if_match: str) -> MockFileLayout:
        """The file's layout, if mock `index` is still the version the client saw."""
        layout = self._layout(path, file, must_exist=True)
        if not 0 <= index < len(layout.entries):
            raise Conflict(
                f"{mock_id(file, index)} no longer exists: {file} now has "
                f"{len(layout.entries)} mocks. Someone else changed the file; reload it.",
                current=None,
            )
        etag = layout.etag(index)
        given = {tag.strip() for tag in if_match.split(",")}
        if "*" not in given and etag not in given:
            raise Conflict(
                f"{mock_id(file, index)} was changed by someone else (or in its file) since "
                "you loaded it. Your change was not saved: reload the mock, then apply your "
                "change again.",
                current=self._stored(file, layout, index).to_json(),
            )
        return layout

    def _valid(self, file: str, text: str) -> None:
        _, problems = self.check(file, text)
        if problems:
            raise Invalid(
                f"the mock has {len(problems)} problem(s); nothing was saved",
                problems=[{"line": p.line, "message": p.message} for p in problems],
            )

    @staticmethod
    def _edit(splice: Callable[[], MockFileLayout]) -> MockFileLayout:
        try:
            edited = splice()
        except LayoutError as e:
            raise NotEditable(str(e)) from e
        return edited

    @staticmethod
    def _write(
        path: Path, previous: str | None, edited: MockFileLayout, stored: StoredMock | None
    ) -> Write:
        write_atomic(path, edited.text)
        return Write(path, previous, stored)
