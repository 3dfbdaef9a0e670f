"""The set of mock files in a folder, reloaded file by file as they change.

A file with problems is reported and its last good version keeps serving, so one bad
edit never takes the other mocks (or the previous version of that file) down.
"""

from __future__ import annotations

import dataclasses
import gc
import hashlib
import logging
import os
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .index import MockIndex
from .mockfile import MOCK_FILE_SUFFIXES, LoadedFile, Problem, load_mock_file
from .model import Mock
from .safefile import DEFAULT_LIMITS, FileLimits
from .templating import TemplateEngine

logger = logging.getLogger(__name__)

type Signature = tuple[tuple[str, int, int], ...]


@dataclass(slots=True)
class _FileState:
    signature: Signature
    good: LoadedFile | None  # the last version without problems
    problems: list[Problem] = field(default_factory=list)

    def mocks(self) -> list[Mock]:
        return self.good.mocks if self.good is not None else []

    @property
    def size(self) -> int:
        return self.good.size if self.good is not None else 0


@dataclass(frozen=True, slots=True)
class ReloadReport:
    loaded: list[Path]  # files (re)loaded without problems
    failed: list[Path]  # files with problems (their last good version still serves)
    removed: list[Path]
    problems: list[Problem]
    # Mocks added, edited (old and new versions) or removed, for whoever keeps derived state
    # (the cache purges what they could answer).
    affected: tuple[Mock, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.loaded or self.removed)


class MockLibrary:
    def __init__(
        self, root: Path, engine: TemplateEngine, limits: FileLimits = DEFAULT_LIMITS
    ) -> None:
        self.root = root.resolve()
        self.engine = engine
        self.limits = limits
        self.index = MockIndex()
        self.reloads = 0  # bumps on every change of what is served
        self.digest = hashlib.sha256().hexdigest()  # of what is served: equal across instances
        self._files: dict[Path, _FileState] = {}
        self._lock = threading.Lock()  # the watcher thread and the editor may refresh at once

    @property
    def problems(self) -> list[Problem]:
        return [p for state in self._files.values() for p in state.problems]

    @property
    def files(self) -> list[Path]:
        return sorted(p for p, s in self._files.items() if s.good is not None)

    def refresh(self, changed: Collection[Path] = ()) -> ReloadReport:
        """Load new and changed files, forget deleted ones, rebuild the index if needed.
        Files in `changed` are reloaded even when their size and mtime look the same (two
        writes within one tick of the file system's clock)."""
        with self._lock:
            return self._refresh({p.resolve() for p in changed})

    def _refresh(self, changed: set[Path]) -> ReloadReport:
        loaded: list[Path] = []
        failed: list[Path] = []
        problems: list[Problem] = []
        affected: list[Mock] = []
        seen = set(self._scan())
        removed = [p for p in self._files if p not in seen]
        for path in removed:
            affected.extend(self._files.pop(path).mocks())
        used = sum(state.size for state in self._files.values())  # toward max_total_bytes
        for path in sorted(seen):
            state = self._files.get(path)
            signature = self._signature(path, state)
            if state is not None and signature == state.signature and path not in changed:
                continue
            others = used - (state.size if state is not None else 0)
            result = self._load(path, self.limits.max_total_bytes - others)
            signature = self._signature(path, None, result)
            if result.problems:
                failed.append(path)
                problems.extend(result.problems)
                good = state.good if state is not None else None
                self._files[path] = _FileState(signature, good, result.problems)
            else:
                loaded.append(path)
                affected.extend((*(state.mocks() if state else ()), *result.mocks))
                self._files[path] = _FileState(signature, result)
                used = others + result.size
        report = ReloadReport(loaded, failed, removed, problems, tuple(affected))
        if report.changed:
            self._rebuild()
        return report

    def _load(self, path: Path, budget: int) -> LoadedFile:
        """One file, which whatever it holds cannot stop the others from loading."""
        limits = dataclasses.replace(self.limits, max_total_bytes=max(budget, 0))
        try:
            with _collector_paused():
                return load_mock_file(path, self.root, self.engine, limits)
        except Exception as e:  # a loader bug: this file fails, the folder keeps loading
            logger.exception(f"mockbox: loading {path} failed")
            message = f"the file could not be loaded ({type(e).__name__}; the log has details)"
            return LoadedFile(path, problems=[Problem(path, 1, message)])

    def _rebuild(self) -> None:
        mocks = []
        digest = hashlib.sha256()
        for path in sorted(self._files):
            good = self._files[path].good
            if good is not None:
                mocks.extend(good.mocks)
                digest.update(f"{path.relative_to(self.root)}\0{good.digest}\n".encode())
        for order, mock in enumerate(mocks):
            mock.order = order
        self.index = MockIndex(mocks)
        self.reloads += 1
        self.digest = digest.hexdigest()

    def _scan(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        out: list[Path] = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            out.extend(
                Path(dirpath, f)
                for f in filenames
                if f.endswith(MOCK_FILE_SUFFIXES) and not f.startswith(".")
            )
        return out

    def _signature(
        self, path: Path, state: _FileState | None, loaded: LoadedFile | None = None
    ) -> Signature:
        """mtime and size of the file and of every body file it read."""
        deps: set[Path] = set()
        if loaded is not None:
            deps = loaded.dependencies
        elif state is not None:
            deps = {Path(p) for p, _, _ in state.signature[1:]}
        out = []
        for p in (path, *sorted(deps)):
            try:
                st = p.stat()
                out.append((str(p), st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((str(p), -1, -1))
        return tuple(out)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cycle collector while one file loads. A big file is millions of
    short-lived parser objects; the collector's full passes over them hold the interpreter
    lock for seconds (1.7 s for a 4 MB file), which stalls the event loop that serves every
    client. Reference counting frees the parser's objects anyway."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
