"""Every console block of the README is run as a shell session and must print what it shows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from readme_blocks import ConsoleBlock, matches, read_readme

ROOT = Path(__file__).resolve().parent.parent
README = read_readme(ROOT / "README.md")
SECTIONS = sorted({block.section for block in README.blocks}, key=lambda s: s or " ")
MARK = "@@readme-command"
#: Seconds a section's commands may take together: an ONNX export and torchrun are among them.
SECONDS = 300


def test_the_readme_has_console_blocks_to_check():
    commands = sum(len(block.commands) for block in README.blocks)
    assert len(README.blocks) >= 10
    assert commands >= 20
    for block in README.blocks:
        assert block.commands, f"README line {block.line}: a console block without a command"


@pytest.mark.parametrize("section", SECTIONS)
def test_console_blocks_print_what_they_show(section, tmp_path):
    blocks = [block for block in README.blocks if block.section == section]
    for name, text in README.files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "docs").symlink_to(ROOT / "docs")
    outputs = _run_session(blocks, tmp_path)
    commands = [command for block in blocks for command in block.commands]
    assert len(outputs) == len(commands)
    for command, output in zip(commands, outputs, strict=True):
        assert matches(command.expected, output), (
            f"README line {command.line}: `{command.text}` printed\n"
            + "\n".join(output)
            + "\n\ninstead of\n"
            + "\n".join(command.expected)
        )


def _run_session(blocks: list[ConsoleBlock], folder: Path) -> list[list[str]]:
    """Each command's lines (stdout and stderr as a terminal interleaves them), run in order
    by one bash, as a reader would type them."""
    script = ["set +e"]
    for block in blocks:
        for command in block.commands:
            # the mark keeps the exit status, for a README's `echo $?`
            script += [f"status=$?; echo {MARK}; (exit $status)", command.text]
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",  # stderr and stdout in the order they were written
        "COLUMNS": "100",
    }
    env.pop("FORCE_COLOR", None)
    session = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=SECONDS,
        check=False,
    )
    outputs: list[list[str]] = []
    for line in session.stdout.splitlines():
        if line == MARK:
            outputs.append([])
        else:
            outputs[-1].append(line)
    return outputs
