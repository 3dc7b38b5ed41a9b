"""Exit codes: 1 only for a bug in archspec (said as such), 130 and 143 for Ctrl-C and kill
with nothing left behind, and a reader that leaves early is no error."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from archspec.cli import EXIT_BUG, main
from archspec.ops.activation import ReLU

ROOT = Path(__file__).resolve().parent.parent
RESNET50 = str(ROOT / "archspec" / "zoo" / "resnet50.yaml")
#: Long enough to be killed midway: writing its source takes several seconds.
LONG_CHAIN = "name: chain\ninput: [3, 8, 8]\nlayers:\n  - {repeat: 30000, layers: [{op: relu}]}\n"


def test_a_bug_says_so_without_a_traceback(capsys, monkeypatch):
    def broken(self: ReLU, inputs: object) -> tuple[int, ...]:
        raise NotImplementedError("a facet nobody wrote")

    monkeypatch.setattr(ReLU, "output_shape", broken)
    monkeypatch.delenv("ARCHSPEC_DEBUG", raising=False)
    code = main(["validate", RESNET50])
    err = capsys.readouterr().err
    assert code == EXIT_BUG
    assert err.startswith("archspec: internal error: NotImplementedError: 'a facet nobody wrote'")
    assert "this is a bug in archspec" in err
    assert "Traceback" not in err


def test_archspec_debug_shows_the_traceback(capsys, monkeypatch):
    monkeypatch.setattr(ReLU, "output_shape", lambda self, inputs: 1 / 0)
    monkeypatch.setenv("ARCHSPEC_DEBUG", "1")
    assert main(["validate", RESNET50]) == EXIT_BUG
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert "ZeroDivisionError" in err


def _default_interrupt() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _wait_until_torch_is_loaded(pid: int, deadline: float = 60) -> None:
    """A fixed sleep raced the child's start on a busy machine: wait for its memory to show
    torch imported (over 150 MB resident), which happens only once the command runs."""
    status = Path(f"/proc/{pid}/status")
    start = time.monotonic()
    while time.monotonic() - start < deadline:
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines())
        except (OSError, ValueError):
            return  # not Linux, or the child is gone: signal it as before
        if int(fields.get("VmRSS", "0 kB").split()[0]) > 150_000:
            return
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("signum", "code", "said"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")],
)
def test_a_killed_compile_leaves_nothing_behind(tmp_path, signum, code, said):
    spec = tmp_path / "chain.yaml"
    spec.write_text(LONG_CHAIN)
    output = tmp_path / "out"
    output.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "archspec", "compile", str(spec), "-o", str(output / "chain.py")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a shell's background job (CI's, say) starts with SIGINT ignored,
        # and a child inherits that, so Ctrl-C would never reach the command
        preexec_fn=_default_interrupt,
    )
    with process:  # closes the pipes however the test ends
        try:
            _wait_until_torch_is_loaded(process.pid)  # past the imports, into the work
            time.sleep(0.5)
            process.send_signal(signum)
            # a signal waits for the C call in progress (compiling the generated forward)
            _, err = process.communicate(timeout=120)
        finally:
            process.kill()
    assert process.returncode == code, err
    assert err.strip().splitlines()[-1] == f"archspec: {said}"
    assert os.listdir(output) == []


def test_a_reader_that_leaves_early_is_no_error():
    # `archspec analyze ... | head -1`: the pipe closes while the table is being printed
    process = subprocess.Popen(
        [sys.executable, "-m", "archspec", "analyze", RESNET50, "--format", "json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    process.stdout.read(10)
    process.stdout.close()
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0
    assert b"Traceback" not in err
