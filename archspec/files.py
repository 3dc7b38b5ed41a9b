"""Writing output files whole: a reader sees the old file or the new one, never a partial one."""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from archspec.errors import UsageError

#: A new file's mode before the umask: the owner reads and writes, everyone else reads.
NEW_FILE_MODE = 0o644


class OutputError(UsageError):
    """An output file cannot be written where it was asked for."""


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def file_kind(mode: int) -> str:
    """`a FIFO`, `a directory`, ...: what a file of this `st_mode` is, for messages."""
    return "a regular file" if stat.S_ISREG(mode) else _KINDS.get(stat.S_IFMT(mode), "not a file")


class UnreadableFile(Exception):
    """Why a file cannot be read, as a phrase that ends a message: `No such file or directory`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def open_regular(path: Path) -> BinaryIO:
    """`path` opened for reading when it is a regular file, else UnreadableFile.

    Opened without blocking and checked before any read: reading a FIFO would wait forever, a
    terminal until someone typed, and /dev/zero would never end.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except (OSError, ValueError) as error:  # ValueError: a NUL byte in the path
        reason = error.strerror if isinstance(error, OSError) else str(error)
        raise UnreadableFile(reason or str(error)) from error
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise UnreadableFile(f"it is {file_kind(mode)}, not a regular file")
    return os.fdopen(descriptor, "rb")


def check_readable(path: Path, what: str) -> None:
    """UsageError now, before any work, unless `path` is a regular file archspec may read."""
    try:
        open_regular(path).close()
    except UnreadableFile as error:
        raise UsageError(f"cannot read {what} from {str(path)!r}: {error.reason}") from error


def check_writable(path: Path) -> None:
    """OutputError now, before any work, if `path` cannot be written: a missing or read-only
    folder, a folder or other non-file in its place, a name longer than the system allows."""
    where = repr(str(path))
    folder = path.parent
    if not folder.is_dir():
        raise OutputError(f"cannot write {where}: folder {str(folder)!r} does not exist")
    longest = _name_max(folder)
    if len(os.fsencode(path.name)) > longest:
        raise OutputError(f"cannot write {where}: the name is longer than {longest} bytes")
    if path.is_dir():
        raise OutputError(f"cannot write {where}: it is a folder")
    if path.exists() and not path.is_file():
        raise OutputError(f"cannot write {where}: it exists and is not a regular file")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {where}: folder {str(folder)!r} is not writable")


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def atomic_write(
    path: Path,
    write: Callable[[BinaryIO], object],
    check: Callable[[Path], object] | None = None,
) -> None:
    """Call `write` on a temporary file beside `path`, then move it onto `path` in one step.

    `check`, when given, reads the complete temporary file before the move (onnxruntime loads an
    exported model from it, so the bytes need not stay in memory as well); what it raises
    propagates, and `path` is left as it was.

    On any exception, KeyboardInterrupt included, the temporary file is removed and an existing
    `path` is left as it was. A new file gets mode 0o644 minus the umask; a replaced one keeps
    its mode. OutputError when the file system refuses (no room, no permission).
    """
    try:
        _write_then_rename(path, write, check)
    except OSError as error:
        raise OutputError(f"cannot write {str(path)!r}: {error.strerror or error}") from error


def _write_then_rename(
    path: Path, write: Callable[[BinaryIO], object], check: Callable[[Path], object] | None
) -> None:
    temporary, descriptor = _create_beside(path)
    try:
        with os.fdopen(descriptor, "wb") as stream:
            write(stream)
            stream.flush()
            # the data reaches the disk before the rename, so a crash cannot leave an empty file
            os.fsync(stream.fileno())
        if check is not None:
            check(temporary)
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
        # a short name of its own: the output's name plus a suffix could pass NAME_MAX
        temporary = path.with_name(f".archspec-{secrets.token_hex(6)}.tmp")
        try:
            # O_CREAT applies the umask itself; reading it (os.umask) would race other threads
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            return temporary, os.open(temporary, flags, NEW_FILE_MODE)
        except FileExistsError:
            continue


__all__ = [
    "OutputError",
    "UnreadableFile",
    "atomic_write",
    "check_readable",
    "check_writable",
    "open_regular",
]
