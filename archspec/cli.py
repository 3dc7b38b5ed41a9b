"""The `archspec` command: a thin layer over the library; ArchspecError becomes exit code 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from archspec import __version__
from archspec.errors import ArchspecError, Diagnostic, UsageError

EXIT_OK = 0
EXIT_INVALID = 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.run(args)
    except ArchspecError as error:
        _print_diagnostics(error.diagnostics)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("archspec: interrupted", file=sys.stderr)
        return 130
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archspec",
        description="Declarative CNN architectures: validate, analyse and compile YAML specs.",
    )
    parser.add_argument("--version", action="version", version=f"archspec {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    validate = commands.add_parser(
        "validate", help="check specs; report every error with its position"
    )
    validate.add_argument("specs", nargs="+", metavar="SPEC")
    _add_overrides(validate)
    validate.set_defaults(run=_validate)

    analyze = commands.add_parser(
        "analyze", help="shapes, params, MACs and receptive field per layer"
    )
    analyze.add_argument("spec", metavar="SPEC")
    analyze.add_argument(
        "--input-shape",
        type=_input_shape,
        metavar="CxHxW",
        help="analyse at this input shape instead of the spec's, e.g. 3x320x320",
    )
    analyze.add_argument("--format", choices=("table", "json", "markdown"), default="table")
    analyze.add_argument(
        "--plot",
        type=Path,
        metavar="PATH",
        help="also draw receptive field, feature-map size, params and MACs per layer "
        "(.png or .svg; needs matplotlib)",
    )
    _add_overrides(analyze)
    analyze.set_defaults(run=_analyze)

    compile_ = commands.add_parser(
        "compile", help="write the network as PyTorch source (.py) or its weights (.pt)"
    )
    compile_.add_argument("spec", metavar="SPEC")
    compile_.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="OUT",
        help="model.py: standalone PyTorch source; weights.pt: the state_dict",
    )
    _add_weights(compile_)
    _add_overrides(compile_)
    compile_.set_defaults(run=_compile)

    export = commands.add_parser(
        "export", help="write the network as ONNX, verified against onnxruntime"
    )
    export.add_argument("spec", metavar="SPEC")
    export.add_argument("-o", "--output", required=True, type=Path, metavar="OUT.onnx")
    _add_weights(export)
    export.add_argument("--opset", type=int, metavar="N", help="ONNX opset (default 18)")
    export.add_argument(
        "--batch",
        type=_batch,
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
    export.add_argument("--quiet", action="store_true", help="no progress lines")
    _add_overrides(export)
    export.set_defaults(run=_export)

    graph = commands.add_parser(
        "graph", help="draw the network: Mermaid (.mmd), Graphviz (.dot), or .svg/.png via dot"
    )
    graph.add_argument("spec", metavar="SPEC")
    graph.add_argument("-o", "--output", required=True, type=Path, metavar="OUT")
    graph.add_argument(
        "--depth",
        type=int,
        metavar="K",
        help="collapse groups and blocks below depth K into one box each",
    )
    graph.add_argument("--params", action="store_true", help="show parameter counts")
    _add_overrides(graph)
    graph.set_defaults(run=_graph)
    return parser


def _add_weights(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--weights",
        type=Path,
        metavar="PATH",
        help="load this state_dict (read with weights_only=True)",
    )
    parser.add_argument(
        "--no-strict",
        dest="strict",
        action="store_false",
        help="load the weights whose shapes match and list the rest",
    )


def _add_overrides(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--freeze",
        action="append",
        default=[],
        metavar="PATTERN",
        help="freeze layers matching a dotted-name pattern (layer1.*); !PATTERN unfreezes; "
        "repeatable, later ones win",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        type=_override,
        metavar="NAME=VALUE",
        help="override a spec parameter (repeatable)",
    )


def _override(text: str) -> tuple[str, Any]:
    name, equals, raw = text.partition("=")
    if not equals or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    value = yaml.safe_load(raw) if raw.strip() else raw
    if not isinstance(value, int | float | bool | str):
        raise argparse.ArgumentTypeError(f"{name}: a value is a number, a boolean or an expression")
    return name.strip(), value


def _batch(text: str) -> int | None:
    if text == "dynamic":
        return None
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected a batch size or 'dynamic', got {text!r}")


def _input_shape(text: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected sizes joined by x (3x224x224), got {text!r}"
        ) from None
    return dims


def _validate(args: argparse.Namespace) -> int:
    from archspec.analysis import analyze
    from archspec.loader import load

    failed = False
    for path in args.specs:
        try:
            report = analyze(load(path, dict(args.overrides), args.freeze))
        except UsageError:
            raise
        except ArchspecError as error:
            _print_diagnostics(error.diagnostics)
            failed = True
            continue
        _print_diagnostics(report.warnings)
        totals = report.totals
        print(
            f"{path}: ok ({len(report.layers)} layers, {totals.params:,} params, "
            f"{totals.macs:,} MACs)"
        )
    return EXIT_INVALID if failed else EXIT_OK


def _analyze(args: argparse.Namespace) -> int:
    from archspec.analysis import analyze
    from archspec.loader import load
    from archspec.render import to_json, to_markdown, to_table

    if args.plot is not None:
        from archspec.plots import plot_format

        plot_format(args.plot)  # before the analysis: a bad name fails fast, printing nothing
    report = analyze(load(args.spec, dict(args.overrides), args.freeze), args.input_shape)
    _print_diagnostics(report.warnings)
    if args.format == "json":
        print(to_json(report))
    elif args.format == "markdown":
        print(to_markdown(report), end="")
    else:
        color = sys.stdout.isatty() and "NO_COLOR" not in os.environ
        print(to_table(report, color), end="")
    if args.plot is not None:
        # matplotlib is imported only now: analyze without --plot stays light
        from archspec.plots import plot_report

        plot_report(report, args.plot)
    return EXIT_OK


OUTPUT_KINDS = {".py": "PyTorch source", ".pt": "state_dict", ".pth": "state_dict"}


def _compile(args: argparse.Namespace) -> int:
    output: Path = args.output
    if output.suffix not in OUTPUT_KINDS:
        kinds = ", ".join(f"{suffix} ({kind})" for suffix, kind in OUTPUT_KINDS.items())
        raise UsageError(f"cannot tell what to write to {str(output)!r}: use {kinds}")
    from archspec.analysis import analyze
    from archspec.loader import load

    spec = load(args.spec, dict(args.overrides), args.freeze)
    report = analyze(spec)
    _print_diagnostics(report.warnings)
    # torch is imported only now: validate and analyze stay fast
    from archspec.backends.torch import class_name, compile_module
    from archspec.files import atomic_write

    module = compile_module(spec, report, args.weights, args.strict)
    if module.weights_report is not None:
        _print_diagnostics(
            [
                Diagnostic(f"weights not loaded: {line}", severity="warning")
                for line in module.weights_report.lines()
            ]
        )
    if output.suffix == ".py":
        from archspec.backends.torch_source import generate_source

        source = generate_source(
            module, class_name(spec.name), spec_name=spec.name, input_shape=report.input_shape
        ).encode()
        atomic_write(output, lambda file: file.write(source))
    else:
        import torch

        atomic_write(output, lambda file: torch.save(module.state_dict(), file))
    print(
        f"{output}: {OUTPUT_KINDS[output.suffix]} of {spec.name} "
        f"({report.totals.params:,} params, {report.totals.trainable_params:,} trainable)"
    )
    return EXIT_OK


def _export(args: argparse.Namespace) -> int:
    output: Path = args.output
    if output.suffix != ".onnx":
        raise UsageError(f"export writes ONNX: name the output *.onnx, not {str(output)!r}")
    from archspec.loader import load

    spec = load(args.spec, dict(args.overrides), args.freeze)
    # progress goes to a terminal only: logs and pipes get the result line alone
    talk = not args.quiet and sys.stderr.isatty()
    from archspec.backends.onnx import export_onnx

    result = export_onnx(
        spec,
        output,
        args.weights,
        args.strict,
        args.opset,
        args.batch,
        args.verify,
        progress=(lambda message: print(f"archspec: {message}...", file=sys.stderr))
        if talk
        else None,
    )
    checks = (
        f"; {result.checked_shapes} layer shapes match, onnxruntime agrees at batch "
        f"{' and '.join(map(str, result.batches))} (worst difference {result.worst_difference:.1e})"
        if args.verify and result.worst_difference is not None
        else "; not verified"
    )
    print(
        f"{output}: ONNX opset {result.opset}, {result.nodes} nodes, "
        f"{'batch ' + str(args.batch) if args.batch else 'dynamic batch'}{checks} "
        f"({result.seconds:.1f} s)"
    )
    return EXIT_OK


GRAPH_FORMATS = (".mmd", ".dot", ".svg", ".png")


def _graph(args: argparse.Namespace) -> int:
    output: Path = args.output
    if output.suffix not in GRAPH_FORMATS:
        raise UsageError(f"cannot tell how to draw {str(output)!r}: use {', '.join(GRAPH_FORMATS)}")
    if args.depth is not None and args.depth < 1:
        raise UsageError(f"--depth must be 1 or more, got {args.depth}")
    from archspec.analysis import analyze
    from archspec.diagram import build_diagram, render_dot, to_dot, to_mermaid
    from archspec.files import atomic_write
    from archspec.loader import load

    report = analyze(load(args.spec, dict(args.overrides), args.freeze))
    diagram = build_diagram(report, args.depth)
    if output.suffix == ".mmd":
        data = to_mermaid(diagram, args.params).encode()
    elif output.suffix == ".dot":
        data = to_dot(diagram, args.params).encode()
    else:
        data = render_dot(diagram, output.suffix[1:], args.params)
    atomic_write(output, lambda file: file.write(data))
    skips = sum(edge.skip for edge in diagram.edges)
    print(
        f"{output}: {len(diagram.boxes)} boxes, {len(diagram.edges)} edges "
        f"({skips} skip connections)"
    )
    return EXIT_OK


def _print_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    for diagnostic in diagnostics:
        print(diagnostic if diagnostic.position else f"archspec: {diagnostic}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
