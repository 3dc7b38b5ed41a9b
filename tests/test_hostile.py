"""The hostile-input contract, command by command, in subprocesses with time and memory limits.

Whatever the input, a command ends in time with exit 0, or with exit 2 and one line per problem
(`FILE:LINE:COL: error: ...` when the problem is inside the spec); it never shows a traceback,
never runs code from its input, and writes no output file when it fails.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
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


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


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
def test_a_command_keeps_the_contract(case: Case, command: str, tmp_path: Path) -> None:
    folder, output = tmp_path / "case", tmp_path / "out"
    folder.mkdir()
    output.mkdir()
    for make in case.files.values():
        make(folder)
    spec = _spec_path(case, folder)
    before = set(os.listdir(folder))
    argv = _argv(case, command, spec, folder, output)
    done = subprocess.run(
        [sys.executable, "-m", "archspec", *argv],
        cwd=folder,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=SECONDS.get(command, DEFAULT_SECONDS),
        preexec_fn=_limit_memory,
        env={**os.environ, "NO_COLOR": "1"},
    )
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
