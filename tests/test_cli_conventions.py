"""The command line's conventions: help everywhere, examples that run, suggestions, stdin,
diagnostics for editors and CI, colour switches, completion and progress."""

from __future__ import annotations

import argparse
import io
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from commands import run

from archspec.cli.parser import build_parser
from archspec.cli.terminal import github_annotations, shows_progress, use_color
from archspec.errors import Diagnostic, Position

ROOT = Path(__file__).resolve().parent.parent
TINY = "name: tiny\ninput: [3, 8, 8]\nlayers:\n  - {op: conv2d, out_channels: 4, kernel: 3}\n"


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(subparsers.choices)


COMMANDS = _commands()


@pytest.mark.parametrize("name", [None, *COMMANDS])
def test_every_argument_has_help(name):
    parser = build_parser() if name is None else COMMANDS[name]
    for action in parser._actions:
        assert action.help, (name, action.dest)
        assert action.help != argparse.SUPPRESS, (name, action.dest)


def _examples(parser: argparse.ArgumentParser) -> list[str]:
    help_text = parser.format_help()
    _head, marker, tail = help_text.rpartition("examples:\n")
    assert marker, "no examples at the end of --help"
    return [line.strip() for line in tail.splitlines() if line.strip()]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_help_ends_with_examples_that_run(name, tmp_path, monkeypatch, capsys):
    examples = _examples(COMMANDS[name])
    assert 2 <= len(examples) <= 3
    monkeypatch.chdir(tmp_path)
    for example in examples:
        for argv in _archspec_commands(example):
            code, _out, err = run(capsys, *argv)
            assert code == 0, (example, err)


def _archspec_commands(line: str) -> list[list[str]]:
    """The archspec invocations of an example's shell line: `a && b`, `$(a)`, `a | head`,
    `a > file`, `# comment`."""
    line = line.split("  #")[0].replace('eval "$(', "").replace(')"', "")
    found = []
    for part in line.split("&&"):
        words = shlex.split(part.split("|")[0].split(">")[0])
        assert words[0] == "archspec", line
        found.append(words[1:])
    return found


def test_top_level_help_has_examples():
    assert len(_examples(build_parser())) == 3


def test_mistyped_command_suggests(capsys):
    code, _, err = run(capsys, "analyse", "zoo:lenet5")
    assert code == 2
    assert "invalid choice: 'analyse'" in err
    assert "(did you mean 'analyze'?)" in err


def test_mistyped_option_suggests(capsys):
    code, _, err = run(capsys, "validate", "zoo:lenet5", "--formt", "json")
    assert code == 2
    assert "unrecognized arguments: --formt json (did you mean '--format'?)" in err


def test_mistyped_choice_suggests(capsys):
    code, _, err = run(capsys, "validate", "zoo:lenet5", "--format", "githb")
    assert code == 2
    assert "(did you mean 'github'?)" in err


def test_dash_reads_the_spec_from_stdin(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(TINY.encode())))
    code, out, _ = run(capsys, "validate", "-")
    assert code == 0
    assert out == "-: ok (1 layers, 112 params, 3,888 MACs)\n"


def test_stdin_errors_are_positioned(capsys, monkeypatch):
    broken = TINY.replace("out_channels", "out_channel")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(broken.encode())))
    code, _, err = run(capsys, "analyze", "-")
    assert code == 2
    assert err.startswith("<stdin>:4:5: error: layer '0': conv2d field 'out_channels'")


@pytest.mark.parametrize(
    ("redirect", "message"),
    [
        (
            "<&-",
            "archspec: error: cannot read spec from standard input: there is none (it is closed)",
        ),
        ("< /dev/null", "<stdin>:1:1: error: the spec is empty"),
        ("< /dev/zero", "archspec: error: <stdin>: spec is larger than 8,000,000 bytes"),
    ],
    ids=["closed", "empty", "endless"],
)
def test_a_stdin_that_holds_no_spec_is_one_line(redirect, message):
    child = subprocess.run(
        ["bash", "-c", f"{shlex.quote(sys.executable)} -m archspec validate - {redirect}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (child.returncode, child.stdout) == (2, "")
    assert child.stderr.splitlines() == [message]


def test_a_spec_argument_is_always_a_file(capsys):
    code, _, err = run(capsys, "validate", "name: x")
    assert code == 2
    assert "cannot read spec 'name: x'" in err


# -- validate --format json | github ---------------------------------------------------------


def test_validate_json_lists_diagnostics(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("out_channels: 4", "out_channels: cc"))
    code, out, err = run(capsys, "validate", str(bad), "zoo:lenet5", "--format", "json")
    assert code == 2
    assert err == ""
    diagnostics = json.loads(out)
    assert [(d["file"], d["line"], d["column"], d["severity"]) for d in diagnostics] == [
        (str(bad), 4, 32, "error"),
        (str(ROOT / "archspec" / "zoo" / "lenet5.yaml"), 15, 5, "warning"),
    ]
    assert "'cc' is not a parameter" in diagnostics[0]["message"]


def test_validate_json_of_valid_specs_has_warnings_only(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(TINY.encode())))
    code, out, err = run(capsys, "validate", "-", "--format", "json")
    assert (code, err) == (0, "")
    assert [(d["file"], d["severity"]) for d in json.loads(out)] == [("<stdin>", "warning")]


def test_validate_github_annotations(capsys, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(TINY.replace("out_channels: 4", "out_channels: cc"))
    code, out, _ = run(capsys, "validate", str(bad), "--format", "github")
    assert code == 2
    (line,) = out.splitlines()
    assert line.startswith(f"::error file={bad},line=4,col=32::layer '0': conv2d field")


def test_github_annotations_escape_what_would_end_the_command():
    where = Position("a,b:c.yaml", 1, 2)
    text = github_annotations([Diagnostic("50% of\nall", where, "warning")])
    assert text == "::warning file=a%2Cb%3Ac.yaml,line=1,col=2::50%25 of%0Aall\n"


# -- colour, progress ---------------------------------------------------------------------------


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.mark.parametrize(
    ("env", "tty", "expected"),
    [
        ({}, True, True),
        ({}, False, False),
        ({"NO_COLOR": "1"}, True, False),
        ({"NO_COLOR": ""}, True, True),  # no-color.org: only a non-empty value counts
        ({"FORCE_COLOR": "1"}, False, True),
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, True, False),
    ],
)
def test_color_switches(monkeypatch, env, tty, expected):
    for name in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert use_color(_Stream(tty)) is expected


def test_force_color_colours_a_table_off_a_terminal(capsys, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("FORCE_COLOR", "1")
    _, out, _ = run(capsys, "analyze", "zoo:lenet5")
    assert "\x1b[1m" in out
    monkeypatch.delenv("FORCE_COLOR")
    _, out, _ = run(capsys, "analyze", "zoo:lenet5")
    assert "\x1b[" not in out


def _in_a_terminal(argv: list[str], cwd: Path) -> tuple[int, str]:
    """Run `archspec ARGV` with a pseudo-terminal as stdout and stderr, as a user's shell would."""
    import pty

    command = [sys.executable, "-m", "archspec", *argv]
    env = {**os.environ, "COLUMNS": "100"}
    env.pop("NO_COLOR", None)
    leader, follower = pty.openpty()
    child = subprocess.Popen(command, cwd=cwd, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return child.wait(timeout=120), b"".join(chunks).decode(errors="replace")


def test_compile_shows_progress_on_a_terminal_only(tmp_path, capsys):
    code, shown_on_terminal = _in_a_terminal(["compile", "zoo:lenet5", "-o", "a.py"], tmp_path)
    assert code == 0
    for stage in ("importing torch", "building the modules", "writing and checking the source"):
        assert stage in shown_on_terminal
    assert "a.py: PyTorch source of lenet5" in shown_on_terminal
    code, out, err = run(capsys, "compile", "zoo:lenet5", "-o", str(tmp_path / "b.py"))
    assert code == 0
    assert "building" not in err
    assert out.startswith(f"{tmp_path / 'b.py'}: PyTorch source of lenet5")


def test_quiet_hides_progress_even_on_a_terminal(monkeypatch):
    monkeypatch.setattr(sys, "stderr", _Stream(tty=True))
    assert shows_progress(quiet=False)
    assert not shows_progress(quiet=True)
    monkeypatch.setattr(sys, "stderr", _Stream(tty=False))
    assert not shows_progress(quiet=False)


# -- completion ---------------------------------------------------------------------------------


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_shell_code(capsys, shell):
    code, out, _ = run(capsys, "completion", shell)
    assert code == 0
    assert "archspec" in out
    assert "_ARGCOMPLETE" in out


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("archspec anal", {"analyze"}),
        ("archspec analyze --dep", {"--depth"}),
        ("archspec analyze zoo:resnet1", {"zoo:resnet101", "zoo:resnet18"}),
    ],
)
def test_completion_answers_the_shell(tmp_path, line, expected):
    answer = tmp_path / "answer"
    env = {
        **os.environ,
        "_ARGCOMPLETE": "1",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE_STDOUT_FILENAME": str(answer),
    }
    subprocess.run(
        [sys.executable, "-m", "archspec"], env=env, cwd=tmp_path, timeout=60, check=False
    )
    words = {word.strip() for word in answer.read_text().split("\x0b")}
    assert words == expected
