"""The README's console blocks, read as a shell session: commands after `$ `, then what they
print. A block may show less than all: a line `...` stands for any lines, and `...` inside a
line for any text. A fenced block right after `<!-- file: NAME -->` is a file the commands use."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

FENCE = re.compile(r"^```(\w*)\s*$")
FILE_MARK = re.compile(r"^<!-- file: (\S+) -->$")
ELLIPSIS = "..."


@dataclass
class Command:
    line: int  # in the README, 1-based
    text: str  # as bash runs it (continuations joined)
    expected: list[str] = field(default_factory=list)


@dataclass
class ConsoleBlock:
    section: str
    line: int
    commands: list[Command]


@dataclass
class Readme:
    blocks: list[ConsoleBlock]
    files: dict[str, str]


def read_readme(path: Path) -> Readme:
    lines = path.read_text().splitlines()
    blocks: list[ConsoleBlock] = []
    files: dict[str, str] = {}
    section = ""
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("## "):
            section = line[3:].strip()
        fence = FENCE.match(line)
        if not fence:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        body = lines[index + 1 : end]
        marked = FILE_MARK.match(lines[index - 1]) if index else None
        if marked:
            files[marked.group(1)] = "\n".join(body) + "\n"
        elif fence.group(1) == "console":
            blocks.append(ConsoleBlock(section, index + 1, _commands(body, index + 2)))
        index = end + 1
    return Readme(blocks, files)


def _commands(body: list[str], first_line: int) -> list[Command]:
    commands: list[Command] = []
    continued = False
    for offset, line in enumerate(body):
        if continued:
            commands[-1].text += "\n" + line
        elif line.startswith("$ "):
            commands.append(Command(first_line + offset, line[2:]))
        else:
            assert commands, f"README line {first_line + offset}: output before any command"
            commands[-1].expected.append(line)
            continue
        continued = line.endswith("\\")
    return commands


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether `actual` lines fit `expected`, where `...` lines and `...` in a line are wild."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head == ELLIPSIS:
        return any(matches(rest, actual[skip:]) for skip in range(len(actual) + 1))
    if not actual:
        return False
    pattern = ".*".join(re.escape(part) for part in head.rstrip().split(ELLIPSIS))
    return re.fullmatch(pattern, actual[0].rstrip()) is not None and matches(rest, actual[1:])
