"""Runs `python -m archspec` for test_hostile.py in forked children of this one process.

The process imports archspec's command line and torch once; each child is then the interpreter
of `python -m archspec ARGS`, started without the half second to two seconds its start and
imports would take (most of a hostile case's time). The child runs archspec's `__main__` as
`python -m` does, and exits with the status that interpreter would, after its atexit handlers.

Protocol, one JSON object per line: the test writes {argv, cwd, env, stdout, stderr,
address_space, seconds}; this process answers {returncode, timed_out} when the child ends.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import resource
import runpy
import signal
import sys
import time
import traceback
from typing import NoReturn

import torch  # noqa: F401  (imported for the children: compiling commands need it)

import archspec
import archspec.backends.torch
import archspec.cli
from archspec.ops import OPS


def _child(request: dict[str, object]) -> NoReturn:
    """Become `python -m archspec ARGV`."""
    os.chdir(str(request["cwd"]))
    sys.path[0] = os.getcwd()  # as `python -m` puts it, in place of this file's folder
    os.environ.clear()
    os.environ.update(request["env"])  # type: ignore[arg-type]
    limit = int(request["address_space"])  # type: ignore[call-overload]
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    stdin = os.open(os.devnull, os.O_RDONLY)
    os.dup2(stdin, 0)
    for descriptor, path in ((1, request["stdout"]), (2, request["stderr"])):
        opened = os.open(str(path), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(opened, descriptor)
        os.close(opened)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = ["archspec", *request["argv"]]  # type: ignore[misc]
    try:
        runpy.run_module("archspec", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit_:
        code = _exit_status(exit_.code)
    except BaseException:
        traceback.print_exc()
        code = 1
    # what the interpreter's exit does that anyone could see; tearing down torch's modules
    # would take longer than most commands
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)


def _exit_status(code: object) -> int:
    """The status `sys.exit(code)` ends the interpreter with."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _wait(pid: int, seconds: float) -> tuple[int, bool]:
    """The child's exit status as subprocess reports it (-N for signal N), and whether it was
    killed for running past `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status), False
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return -signal.SIGKILL, True
        time.sleep(0.005)


def _warm_up() -> None:
    """Build pydantic's validators for every op once, here, instead of in every child; no
    tensor is made, so torch starts no thread a fork would lose."""
    layers = "".join(f"  - {{name: l{i}, op: relu}}\n" for i in range(2))
    spec = archspec.load(f"name: warm\ninput: [3, 8, 8]\nlayers:\n{layers}")
    archspec.analyze(spec)
    for op in OPS.values():
        op.model_rebuild()


def main() -> None:
    _warm_up()
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(request)
        returncode, timed_out = _wait(pid, float(request["seconds"]))
        print(json.dumps({"returncode": returncode, "timed_out": timed_out}), flush=True)


if __name__ == "__main__":
    main()
