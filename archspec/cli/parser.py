"""The command line's grammar: commands, their arguments with help and examples, and the
suggestions a mistyped command or option gets."""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any, NoReturn

from archspec.cli import arguments, commands, project
from archspec.cli.terminal import DIAGNOSTIC_FORMATS
from archspec.errors import suggest
from archspec.outputs.columns import COLUMNS

SPEC_HELP = "a spec: a YAML file, zoo:NAME for a packaged one (`archspec zoo`), or - for stdin"


class Parser(argparse.ArgumentParser):
    """argparse, with `did you mean` for a mistyped command, choice or option."""

    def error(self, message: str) -> NoReturn:
        invalid = re.search(r"invalid choice: '(.*?)' \(choose from (.*)\)", message)
        if invalid:
            choices = re.findall(r"'([^']*)'", invalid.group(2))
            message += suggest(invalid.group(1), choices)
        super().error(message)

    def unknown_arguments(self, extras: Sequence[str]) -> NoReturn:
        options = [option for action in self._actions for option in action.option_strings]
        hints = [
            suggest(extra.partition("=")[0], options) for extra in extras if extra.startswith("-")
        ]
        self.error(f"unrecognized arguments: {' '.join(extras)}{''.join(hints)}")


def parse(parser: Parser, argv: Sequence[str] | None) -> argparse.Namespace:
    """The parsed arguments; exit 2 with a suggestion for what is not understood."""
    args, extras = parser.parse_known_args(argv)
    if extras:
        # the chosen command's parser knows its options: it suggests among them
        command_parser: Parser = getattr(args, "command_parser", parser)
        command_parser.unknown_arguments(extras)
    return args


def build_parser() -> Parser:
    parser = Parser(
        prog="archspec",
        description="Declarative neural networks: validate, analyse, compile, export and draw "
        "YAML specs.",
        epilog=_examples(
            "archspec analyze zoo:resnet50 --depth 1",
            "archspec init mynet && archspec validate mynet.yaml",
            "archspec compile zoo:resnet18 --set num_classes=10 -o model.py",
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--version",
        action=project.VersionAction,
        help="print the version, and warn when another package also provides `import archspec`",
    )
    subparsers = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="one of these; `archspec COMMAND --help` shows its options and examples",
    )
    for add in (_validate, _analyze, _compile, _export, _graph, *project.COMMANDS):
        add(subparsers)
    return parser


def command(subparsers: Any, name: str, help: str, examples: Sequence[str], run: Any) -> Parser:
    """A subcommand whose --help ends with `examples`, each a command line that works as shown."""
    sub: Parser = subparsers.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=_examples(*examples),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub.set_defaults(run=run, command_parser=sub)
    return sub


def add_spec(
    parser: argparse.ArgumentParser, dest: str = "spec", help: str = SPEC_HELP, **kwargs: Any
) -> None:
    action = parser.add_argument(dest, metavar="SPEC", help=help, **kwargs)
    action.completer = complete_spec  # type: ignore[attr-defined]  # argcomplete reads it


def complete_spec(prefix: str, **_: Any) -> list[str]:
    """What a shell completes a SPEC to: zoo names and YAML files."""
    from argcomplete.completers import FilesCompleter

    from archspec.zoo import PREFIX, names

    zoo = [f"{PREFIX}{name}" for name in names() if f"{PREFIX}{name}".startswith(prefix)]
    return zoo + list(FilesCompleter(("yaml", "yml"))(prefix))


def _examples(*lines: str) -> str:
    return "examples:\n" + "".join(f"  {line}\n" for line in lines)


def _validate(subparsers: Any) -> None:
    validate = command(
        subparsers,
        "validate",
        "check specs and report every problem with its file, line and column",
        (
            "archspec validate zoo:resnet50 zoo:vit_b_16",
            "archspec validate zoo:lenet5 --format json",
            "archspec validate zoo:unet --format github",
        ),
        commands.validate,
    )
    add_spec(validate, "specs", nargs="+", help=f"{SPEC_HELP}; one or more")
    validate.add_argument(
        "--format",
        choices=DIAGNOSTIC_FORMATS,
        default="text",
        help="text: a line per problem and per spec; json: an array of {file, line, column, "
        "severity, message} on stdout; github: GitHub Actions annotations on stdout",
    )
    arguments.add_overrides(validate)


def _analyze(subparsers: Any) -> None:
    analyze = command(
        subparsers,
        "analyze",
        "print every layer's shape, parameters, MACs and receptive field, and the totals",
        (
            "archspec analyze zoo:resnet50 --depth 1",
            "archspec analyze zoo:unet --depth 1 --columns layer,inputs,output-shape,macs",
            "archspec analyze zoo:vit_b_16 --depth 2 -o report.md",
        ),
        commands.analyze,
    )
    add_spec(analyze)
    analyze.add_argument(
        "--input-shape",
        type=arguments.input_shape,
        metavar="CxHxW",
        help="analyse at this input shape instead of the spec's, e.g. 3x320x320",
    )
    analyze.add_argument(
        "--depth",
        type=arguments.depth,
        metavar="K",
        help="fold groups and blocks below depth K into one row each, with their totals "
        "(1: ResNet's stem, layer1..layer4 and head)",
    )
    analyze.add_argument(
        "--columns",
        type=arguments.column_list,
        metavar="A,B,...",
        help="the table's columns, in order, from: " + ", ".join(COLUMNS),
    )
    analyze.add_argument(
        "--format",
        choices=("table", "json", "markdown"),
        help="what to print (default: table, or what the -o suffix says)",
    )
    analyze.add_argument(
        "-o",
        "--output",
        type=arguments.path,
        metavar="FILE",
        help="write the report here instead of stdout: .md (Markdown), .json, .txt (the table)",
    )
    analyze.add_argument(
        "--plot",
        type=arguments.path,
        metavar="PATH",
        help="also draw receptive field, feature-map size, params and MACs per layer "
        "(.png or .svg; needs matplotlib: pip install 'archspec-nn[plot]')",
    )
    arguments.add_overrides(analyze)


def _compile(subparsers: Any) -> None:
    compile_ = command(
        subparsers,
        "compile",
        "write the network as standalone PyTorch source (.py) or its weights (.pt)",
        (
            "archspec compile zoo:resnet18 --set num_classes=10 -o model.py",
            "archspec compile zoo:lenet5 -o lenet5.pt",
            "archspec compile zoo:resnet18 --freeze '*' --freeze '!fc' -o frozen.py",
        ),
        commands.compile_network,
    )
    add_spec(compile_)
    compile_.add_argument(
        "-o",
        "--output",
        required=True,
        type=arguments.path,
        metavar="OUT",
        help="model.py: standalone PyTorch source; weights.pt: the state_dict",
    )
    arguments.add_weights(compile_)
    arguments.add_quiet(compile_)
    arguments.add_max_memory(compile_)
    arguments.add_overrides(compile_)


def _export(subparsers: Any) -> None:
    export = command(
        subparsers,
        "export",
        "write the network as ONNX, verified against onnxruntime",
        (
            "archspec export zoo:lenet5 -o lenet5.onnx",
            "archspec export zoo:lenet5 --batch 1 --opset 20 --quiet -o fixed.onnx",
        ),
        commands.export,
    )
    add_spec(export)
    export.add_argument(
        "-o",
        "--output",
        required=True,
        type=arguments.path,
        metavar="OUT.onnx",
        help="the ONNX file to write (written only once verified)",
    )
    arguments.add_weights(export)
    export.add_argument(
        "--opset", type=int, metavar="N", help="ONNX opset (default 18; 18 and up are supported)"
    )
    export.add_argument(
        "--batch",
        type=arguments.batch,
        default=None,
        metavar="N|dynamic",
        help="a fixed batch size, or dynamic (the default)",
    )
    export.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip the checker, shape and onnxruntime comparisons",
    )
    arguments.add_quiet(export)
    arguments.add_max_memory(export)
    arguments.add_overrides(export)


def _graph(subparsers: Any) -> None:
    graph = command(
        subparsers,
        "graph",
        "draw the network: Mermaid (.mmd), Graphviz (.dot), or .svg/.png through Graphviz's dot",
        (
            "archspec graph zoo:resnet50 --depth 1 -o resnet50.mmd",
            "archspec graph zoo:unet --params -o unet.dot",
        ),
        commands.graph,
    )
    add_spec(graph)
    graph.add_argument(
        "-o",
        "--output",
        required=True,
        type=arguments.path,
        metavar="OUT",
        help="the drawing to write; its suffix (.mmd, .dot, .svg, .png) chooses the format",
    )
    graph.add_argument(
        "--depth",
        type=arguments.depth,
        metavar="K",
        help="collapse groups and blocks below depth K into one box each",
    )
    graph.add_argument("--params", action="store_true", help="show parameter counts")
    arguments.add_overrides(graph)
