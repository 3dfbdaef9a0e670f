"""Reading files that mock files name or that sit in the mocks folder, which are untrusted.

Only a regular file that resolves inside the mocks folder is read, and only up to a size
limit: a symlink to a private key outside the folder, `/dev/zero`, a FIFO (whose open or read
would block the reloading thread for good) or a 300 MB body file are refused with a reason.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class FileLimits:
    """Sizes read from the mocks folder (the `mock_files:` section of the configuration)."""

    max_file_bytes: int = 16 * MIB  # one mock file
    max_body_file_bytes: int = 16 * MIB  # one body_file
    max_total_bytes: int = 256 * MIB  # every mock file and body file served at once

    @classmethod
    def from_config(cls, section: dict[str, Any]) -> FileLimits:
        return cls(
            max_file_bytes=int(section["max_file_bytes"]),
            max_body_file_bytes=int(section["max_body_file_bytes"]),
            max_total_bytes=int(section["max_total_bytes"]),
        )


DEFAULT_LIMITS = FileLimits()


class FileRefused(Exception):
    """A file that is not read; the message says why, never what the file holds."""


class FileMissing(FileRefused):
    """The file does not exist (which a caller about to create it may accept)."""


def resolve_inside(root: Path, path: Path) -> Path:
    """`path` with every symlink followed, or FileRefused when that leads outside `root`
    (which must be resolved already) or cannot be resolved (a symlink loop, a NUL)."""
    try:
        target = path.resolve()
    except (OSError, ValueError, RuntimeError) as e:  # RuntimeError: a loop, on Python 3.12
        raise FileRefused(f"cannot be resolved ({_reason(e)})") from e
    if not target.is_relative_to(root):
        raise FileRefused("leads outside the mocks folder (a symlink?); not read")
    return target


def read_inside(root: Path, path: Path, limit: int, setting: str) -> bytes:
    """The bytes of the regular file `path` resolves to inside `root`, at most `limit` of them
    (`setting` names the limit in the refusal). The file is opened without blocking and
    without following a last symlink, then checked on the open descriptor, so a FIFO or a
    symlink swapped in after the check is refused too."""
    target = resolve_inside(root, path)
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(target, flags)
    except FileNotFoundError as e:
        raise FileMissing(f"cannot be read ({_reason(e)})") from e
    except OSError as e:  # ELOOP: the last part became a symlink after resolving
        raise FileRefused(f"cannot be read ({_reason(e)})") from e
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise FileRefused("is not a regular file (a folder, FIFO, device or socket); not read")
        if st.st_size > limit:
            raise FileRefused(f"is {st.st_size:,} bytes, {_more(limit, setting)}")
        with os.fdopen(os.dup(fd), "rb") as f:
            data = f.read(limit + 1)  # it may have grown since fstat
    finally:
        os.close(fd)
    if len(data) > limit:
        raise FileRefused(f"grew while being read to {_more(limit, setting)}")
    return data


def _more(limit: int, setting: str) -> str:
    return f"more than {setting} ({limit:,} bytes); not read"


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    if isinstance(e, RuntimeError):
        return "a symlink loop"
    return type(e).__name__
