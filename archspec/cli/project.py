"""The commands around specs: schema, init, zoo and completion, and --version."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec import __distribution__, __version__
from archspec.errors import UsageError, shown

if TYPE_CHECKING:
    from archspec.frontend.source import SourceDocument

EXIT_OK = 0
#: What a starter spec's modeline names: the schema written beside it.
SCHEMA_FILE = "archspec.schema.json"
MODELINE = f"# yaml-language-server: $schema={SCHEMA_FILE}"
_NETWORK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
#: The other project on PyPI called archspec, which conda and Spack depend on.
OTHER_PROJECT = "archspec"
SHELLS = ("bash", "zsh", "fish")


class VersionAction(argparse.Action):
    """`archspec --version`: the distribution and where it was imported from, and a warning when
    the unrelated `archspec` package shares the environment."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        import archspec

        where = Path(archspec.__file__).parent
        print(f"{__distribution__} {__version__} (import archspec: {where})")
        other = other_project_version()
        if other is not None:
            print(f"archspec: warning: {coexistence_warning(other)}", file=sys.stderr)
        parser.exit()


def other_project_version() -> str | None:
    """The version of the unrelated `archspec` distribution, when one is installed here."""
    try:
        return metadata.version(OTHER_PROJECT)
    except metadata.PackageNotFoundError:
        return None


def coexistence_warning(other_version: str) -> str:
    return (
        f"the package '{OTHER_PROJECT}' {other_version} (CPU microarchitectures, a dependency of "
        f"conda and Spack) is installed in this environment too. It also installs `import "
        f"archspec`, so the two overwrite each other's files. Give {__distribution__} an "
        "environment of its own: python -m venv .venv && .venv/bin/pip install archspec-nn"
    )


def _schema(subparsers: Any) -> None:
    from archspec.cli.arguments import path
    from archspec.cli.parser import command

    schema = command(
        subparsers,
        "schema",
        "print or write the JSON Schema of specs, for editors' completion and checks",
        ("archspec schema -o archspec.schema.json", "archspec schema | head"),
        write_schema,
    )
    schema.add_argument(
        "-o", "--output", type=path, metavar="FILE", help="write it here instead of stdout"
    )


def write_schema(args: argparse.Namespace) -> int:
    from archspec.frontend.schema import render_schema

    text = render_schema()
    if args.output is None:
        sys.stdout.write(text)
    else:
        _write(args.output, text)
        print(f"{args.output}: JSON Schema of archspec {__version__} specs")
    return EXIT_OK


def _write(path: Path, text: str) -> None:
    from archspec.files import atomic_write, check_writable

    check_writable(path)
    data = text.encode()
    atomic_write(path, lambda file: file.write(data))


def _init(subparsers: Any) -> None:
    from archspec.cli.arguments import path
    from archspec.cli.parser import SPEC_HELP, command, complete_spec

    init = command(
        subparsers,
        "init",
        "write a starter spec (and the schema its modeline names, beside it)",
        (
            "archspec init mynet",
            "archspec init my_resnet --from zoo:resnet18",
            "archspec init tiny --from zoo:lenet5 -o specs/tiny.yaml",
        ),
        init_spec,
    )
    init.add_argument("name", metavar="NAME", help="the network's name (letters, digits, _)")
    template = init.add_argument(
        "--from",
        dest="template",
        metavar="SPEC",
        help=f"start from this spec instead of the small starter; {SPEC_HELP}",
    )
    template.completer = complete_spec  # type: ignore[attr-defined]  # argcomplete reads it
    init.add_argument("-o", "--output", type=path, metavar="FILE", help="default: NAME.yaml")
    init.add_argument("--force", action="store_true", help="replace FILE if it exists")


def init_spec(args: argparse.Namespace) -> int:
    name: str = args.name
    if _NETWORK_NAME.fullmatch(name) is None:
        raise UsageError(
            "a network's name is letters, digits and _, and does not start with a digit: "
            f"got {shown(name)}"
        )
    output: Path = args.output or Path(f"{name}.yaml")
    if output.parent.is_dir():
        from archspec.files import check_writable

        check_writable(output)  # a folder, a device, a read-only folder: refused before any work
    if output.exists() and not args.force:
        raise UsageError(f"{str(output)!r} exists; --force replaces it")
    from archspec import analyze
    from archspec.frontend.loader import load

    template = _template(args.template)
    analyze(load(template))  # a broken --from is refused here, its errors at its own lines
    text = _with_name(_with_modeline(template.text), name)
    report = analyze(load(text))  # and what is written loads, under its new name
    _make_folder(output.parent)
    schema = output.parent / SCHEMA_FILE
    from archspec.frontend.schema import render_schema

    schema_text = render_schema()
    write_schema_too = not schema.is_file() or schema.read_text("utf-8") != schema_text
    _write(output, text)
    if write_schema_too:
        _write(schema, schema_text)
    print(f"{output}: {name}, {len(report.layers)} layers, {report.totals.params:,} params")
    if write_schema_too:
        print(f"{schema}: the JSON Schema its modeline names, for editors")
    print(f"next: archspec analyze {output}")
    return EXIT_OK


def _make_folder(folder: Path) -> None:
    from archspec.files import OutputError

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        reason = error.strerror or str(error)
        raise OutputError(f"cannot make folder {str(folder)!r}: {reason}") from error


def _template(template: str | None) -> SourceDocument:
    """The spec a new one starts from: `--from`'s, or the packaged starter."""
    from archspec.cli.commands import spec_source
    from archspec.frontend.source import read_source

    if template is None:
        starter = resources.files("archspec.cli").joinpath("starter.yaml")
        return read_source(Path(str(starter)))
    return read_source(spec_source(template))


def _with_modeline(text: str) -> str:
    lines = [line for line in text.splitlines() if "yaml-language-server:" not in line]
    return "\n".join([MODELINE, *lines]) + "\n"


def _with_name(text: str, name: str) -> str:
    renamed, count = re.subn(r"^name:.*$", f"name: {name}", text, count=1, flags=re.MULTILINE)
    return renamed if count else text.replace("\n", f"\nname: {name}\n", 1)


def _zoo(subparsers: Any) -> None:
    from archspec.cli.parser import command

    zoo = command(
        subparsers,
        "zoo",
        "list the packaged specs (zoo:NAME), with their sizes and variants",
        ("archspec zoo", "archspec analyze zoo:mobilenet_v2 --depth 1"),
        list_zoo,
    )
    zoo.add_argument("--format", choices=("table", "json"), default="table", help="what to print")


def list_zoo(args: argparse.Namespace) -> int:
    from archspec.cli.zoo_table import zoo_json, zoo_table

    sys.stdout.write(zoo_json() if args.format == "json" else zoo_table())
    return EXIT_OK


def _completion(subparsers: Any) -> None:
    from archspec.cli.parser import command

    completion = command(
        subparsers,
        "completion",
        "print the shell code that completes archspec's commands, options and zoo names",
        (
            'eval "$(archspec completion bash)"    # in ~/.bashrc',
            'eval "$(archspec completion zsh)"     # in ~/.zshrc',
            "archspec completion fish > ~/.config/fish/completions/archspec.fish",
        ),
        print_completion,
    )
    completion.add_argument("shell", choices=SHELLS, help="the shell to complete in")


def print_completion(args: argparse.Namespace) -> int:
    from argcomplete import shell_integration

    sys.stdout.write(shell_integration.shellcode(["archspec"], shell=args.shell))
    return EXIT_OK


COMMANDS = (_schema, _init, _zoo, _completion)
