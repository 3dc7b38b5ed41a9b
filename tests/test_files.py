"""atomic_write: the whole new file or the untouched old one, whatever happens while writing."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

import pytest

from archspec.files import OutputError, atomic_write, check_writable


@pytest.fixture
def umask():
    """Sets the process umask for one test, restoring the old one afterwards."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def fail_halfway(error: BaseException):
    def write(file: BinaryIO) -> None:
        file.write(b"half of the new")
        file.flush()
        raise error

    return write


def test_writes_a_new_file(tmp_path):
    path = tmp_path / "net.py"
    atomic_write(path, lambda file: file.write(b"new"))
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["net.py"]


def test_replaces_an_existing_file(tmp_path):
    path = tmp_path / "net.py"
    path.write_bytes(b"a longer old content")
    atomic_write(path, lambda file: file.write(b"new"))
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == ["net.py"]


@pytest.mark.parametrize(
    ("error", "message"),
    [(RuntimeError("disk full"), r"^disk full$"), (KeyboardInterrupt("stop"), r"^stop$")],
    ids=["exception", "keyboard_interrupt"],
)
def test_failure_mid_write_keeps_the_old_file_and_leaves_nothing(tmp_path, error, message):
    path = tmp_path / "net.pt"
    path.write_bytes(b"old weights")
    with pytest.raises(type(error), match=message):
        atomic_write(path, fail_halfway(error))
    assert path.read_bytes() == b"old weights"
    assert os.listdir(tmp_path) == ["net.pt"]


def test_failure_mid_write_creates_no_file(tmp_path):
    path = tmp_path / "net.pt"
    with pytest.raises(RuntimeError, match=r"^disk full$"):
        atomic_write(path, fail_halfway(RuntimeError("disk full")))
    assert os.listdir(tmp_path) == []


def test_failure_to_rename_removes_the_temporary_file(tmp_path, monkeypatch):
    path = tmp_path / "net.pt"
    path.write_bytes(b"old")

    def refuse(source: object, destination: object) -> None:
        raise PermissionError("read-only directory entry")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OutputError, match=r"cannot write '.*net\.pt': read-only directory entry"):
        atomic_write(path, lambda file: file.write(b"new"))
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["net.pt"]


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o077, 0o600), (0o002, 0o644)])
def test_new_file_mode_is_0o644_minus_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    path = tmp_path / "net.py"
    atomic_write(path, lambda file: None)
    assert mode(path) == expected


def test_replaced_file_keeps_its_mode(tmp_path, umask):
    path = tmp_path / "net.py"
    path.write_bytes(b"old")
    path.chmod(0o600)
    atomic_write(path, lambda file: None)
    assert mode(path) == 0o600
    assert path.read_bytes() == b""


def test_a_name_at_the_length_limit_is_written(tmp_path):
    path = tmp_path / ("n" * 252 + ".pt")  # 255 bytes: a temporary name built on it would not fit
    check_writable(path)
    atomic_write(path, lambda file: file.write(b"new"))
    assert path.read_bytes() == b"new"
    assert os.listdir(tmp_path) == [path.name]


@pytest.mark.parametrize(
    ("relative", "reason"),
    [
        ("missing/net.pt", r"folder '.*missing' does not exist"),
        ("file.txt/net.pt", r"folder '.*file\.txt' does not exist"),
        ("folder", r"it is a folder"),
        ("n" * 256 + ".pt", r"the name is longer than 255 bytes"),
        ("fifo.pt", r"it exists and is not a regular file"),
    ],
)
def test_unwritable_outputs_are_refused_before_any_work(tmp_path, relative, reason):
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "fifo.pt")
    with pytest.raises(OutputError, match=rf"cannot write '.*': {reason}"):
        check_writable(tmp_path / relative)


def test_a_read_only_folder_is_refused(tmp_path, monkeypatch):
    # the tests run as root in CI, where chmod cannot make a folder read-only
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(OutputError, match=r"folder '.*' is not writable"):
        check_writable(tmp_path / "net.pt")
