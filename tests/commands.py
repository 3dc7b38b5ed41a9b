"""Running the `archspec` command in the test's own process."""

from __future__ import annotations

import pytest

from archspec.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The exit code, stdout and stderr of `archspec ARGV`; argparse's exits count as codes."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
