"""`mockbox validate`: check mock files or folders without starting a proxy."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .library import MockLibrary
from .mockfile import Problem, load_mock_file
from .templating import TemplateEngine


@dataclass(slots=True)
class ValidationReport:
    files: int = 0
    mocks: int = 0
    problems: list[Problem] = field(default_factory=list)


def validate_paths(paths: Iterable[Path]) -> ValidationReport:
    """Folders are checked as mock roots; a single file is checked with its folder as root."""
    report = ValidationReport()
    engine = TemplateEngine()
    for path in paths:
        if path.is_dir():
            library = MockLibrary(path, engine)
            library.refresh()
            report.files += len(library.files) + len({p.file for p in library.problems})
            report.mocks += len(library.index)
            report.problems.extend(library.problems)
        elif path.is_file():
            loaded = load_mock_file(path.resolve(), path.resolve().parent, engine)
            report.files += 1
            report.mocks += len(loaded.mocks)
            report.problems.extend(loaded.problems)
        else:
            report.problems.append(Problem(path, 0, "no such file or folder"))
    return report
