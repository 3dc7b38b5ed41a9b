"""The hostile-input contract, command by command, in processes with time and memory limits.

Whatever the input, a command ends in time with exit 0, or with exit 2 and one line per problem
(`FILE:LINE:COL: error: ...` when the problem is inside the spec); it never shows a traceback,
never runs code from its input, and writes no output file when it fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hostile import CASES, COMMANDS, Case

#: Address space a command may map; importing torch and onnxruntime takes about 1.5 GiB of it.
ADDRESS_SPACE = 4 * 2**30
#: Seconds a command may take: loading the largest hostile specs takes a few, exporting more.
SECONDS = {"onnx": 120.0, "weights": 60.0, "source": 60.0}
DEFAULT_SECONDS = 30.0

#: What a line of output on stderr may be: a positioned diagnostic, archspec's own message, or
#: argparse's usage text.
ALLOWED_LINE = re.compile(
    r"^(\S.*:\d+:\d+: (error|warning): .+"
    r"|archspec( \w+)?: (error|warning): .+"
    r"|usage: archspec .*|\s+.*)$"
)


@dataclass(frozen=True)
class Completed:
    returncode: int
    stdout: str
    stderr: str


class CommandServer:
    """`python -m archspec` runs, each a fork of one process that imported archspec and torch
    already (tests/command_server.py): a case costs its own work, not an interpreter's start."""

    def __init__(self) -> None:
        server = Path(__file__).with_name("command_server.py")
        self.process = subprocess.Popen(
            [sys.executable, str(server)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, argv: list[str], cwd: Path, seconds: float, logs: Path) -> Completed:
        stdout, stderr = logs / "stdout", logs / "stderr"
        request = {
            "argv": argv,
            "cwd": str(cwd),
            "env": {**os.environ, "NO_COLOR": "1"},
            "stdout": str(stdout),
            "stderr": str(stderr),
            "address_space": ADDRESS_SPACE,
            "seconds": seconds,
        }
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer = json.loads(self.process.stdout.readline())
        assert not answer["timed_out"], f"archspec {' '.join(argv)} ran past {seconds} s"

        def read(path: Path) -> str:
            return path.read_text(encoding="utf-8", errors="replace")

        return Completed(answer["returncode"], read(stdout), read(stderr))

    def close(self) -> None:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.close()  # the server's loop ends with its input
        self.process.wait(timeout=30)
        self.process.stdout.close()


@pytest.fixture(scope="session")
def archspec_runs() -> Iterator[CommandServer]:
    server = CommandServer()
    yield server
    server.close()


def _spec_path(case: Case, folder: Path) -> Path:
    if callable(case.spec):
        return case.spec(folder)
    path = folder / "net.yaml"
    if isinstance(case.spec, bytes):
        path.write_bytes(case.spec)
    else:
        path.write_text(case.spec, encoding="utf-8")
    return path


def _argv(case: Case, command: str, spec: Path, folder: Path, output: Path) -> list[str]:
    name, *rest = COMMANDS[command]
    arguments = [name, str(spec), *rest, *case.args]
    return [
        argument.replace("OUT", str(output)).replace("DIR", str(folder)) for argument in arguments
    ]


@pytest.mark.parametrize(
    ("case", "command"),
    [
        pytest.param(case, command, id=f"{case.name}-{command}")
        for case in CASES
        for command in case.commands or ()
    ],
)
def test_a_command_keeps_the_contract(
    case: Case, command: str, tmp_path: Path, archspec_runs: CommandServer
) -> None:
    folder, output, logs = tmp_path / "case", tmp_path / "out", tmp_path / "logs"
    for made in (folder, output, logs):
        made.mkdir()
    for make in case.files.values():
        make(folder)
    spec = _spec_path(case, folder)
    before = set(os.listdir(folder))
    argv = _argv(case, command, spec, folder, output)
    done = archspec_runs.run(argv, folder, SECONDS.get(command, DEFAULT_SECONDS), logs)
    err = done.stderr
    assert done.returncode == case.exit, err[-3000:]
    assert "Traceback" not in err
    lines = err.splitlines()
    assert all(ALLOWED_LINE.match(line) for line in lines), err[-3000:]
    assert not (folder / "pwned").exists(), "the input ran code"
    if case.exit == 2:
        assert re.search(case.message, err), err[-3000:]
        assert done.stdout == ""
        assert os.listdir(output) == [], "a failed command left files behind"
        assert set(os.listdir(folder)) == before, "a failed command left files behind"
        where = re.escape(str(spec)) + r":\d+:\d+: error: "
        assert bool(re.search(where, err)) == case.positioned, err[-3000:]
    elif command == "analyze":
        assert json.loads(done.stdout)["layers"]
    elif "-o" in argv:
        written = Path(argv[len(argv) - argv[::-1].index("-o")])
        assert written.is_file()
        assert not [name for name in os.listdir(written.parent) if name.startswith(".archspec-")]
