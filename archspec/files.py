"""Writing output files whole: a reader sees the old file or the new one, never a partial one."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

#: A new file's mode before the umask: the owner reads and writes, everyone else reads.
NEW_FILE_MODE = 0o644


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call `write` on a temporary file beside `path`, then move it onto `path` in one step.

    On any exception, KeyboardInterrupt included, the temporary file is removed and an existing
    `path` is left as it was. A new file gets mode 0o644 minus the umask; a replaced one keeps
    its mode.
    """
    temporary, descriptor = _create_beside(path)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            write(stream)
            stream.flush()
            # the data reaches the disk before the rename, so a crash cannot leave an empty file
            os.fsync(stream.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, stat.S_IMODE(os.stat(path).st_mode))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _create_beside(path: Path) -> tuple[Path, int]:
    """A new, empty file in `path`'s directory (so os.replace stays one rename) and its fd."""
    while True:
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            # O_CREAT applies the umask itself; reading it (os.umask) would race other threads
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            return temporary, os.open(temporary, flags, NEW_FILE_MODE)
        except FileExistsError:
            continue


__all__ = ["atomic_write"]
