"""`mockbox validate`: check mock files or folders without starting a proxy."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .library import MockLibrary
from .mockfile import Problem, load_mock_file
from .safefile import DEFAULT_LIMITS, FileLimits
from .templating import TemplateEngine


@dataclass(slots=True)
class ValidationReport:
    files: int = 0
    mocks: int = 0
    problems: list[Problem] = field(default_factory=list)


def validate_paths(paths: Iterable[Path], limits: FileLimits = DEFAULT_LIMITS) -> ValidationReport:
    """Folders are checked as mock roots; a single file is checked with the folder it is named
    in as root, so a symlink named on the command line that leads elsewhere is not read."""
    report = ValidationReport()
    engine = TemplateEngine()
    for path in paths:
        if path.is_dir():
            library = MockLibrary(path, engine, limits)
            library.refresh()
            report.files += len(library.files) + len({p.file for p in library.problems})
            report.mocks += len(library.index)
            report.problems.extend(library.problems)
        elif os.path.lexists(path):
            named = Path(os.path.abspath(path))
            loaded = load_mock_file(named, named.parent, engine, limits)
            report.files += 1
            report.mocks += len(loaded.mocks)
            report.problems.extend(loaded.problems)
        else:
            report.problems.append(Problem(path, 0, "no such file or folder"))
    return report
