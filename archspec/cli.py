"""The `archspec` command: a thin layer over the library; ArchspecError becomes exit code 2."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from archspec import __version__
from archspec.errors import ArchspecError, Diagnostic, UsageError, shown

if TYPE_CHECKING:
    from archspec.frontend.loader import Spec

EXIT_OK = 0
#: archspec itself failed: a bug, reported with a request to tell us.
EXIT_BUG = 1
#: The input was wrong (spec, arguments, weights) or would not fit; nothing was written.
EXIT_INVALID = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
#: Largest --batch: an example tensor of a million samples is already absurd.
MAX_BATCH = 1_000_000


class _Terminated(BaseException):
    """SIGTERM, raised like Ctrl-C so that temporary files are removed on the way out."""


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command. Exit codes: 0 done, 2 bad input (one line per problem, nothing
    written), 1 a bug in archspec, 130 interrupted, 143 terminated."""
    # pydantic looks for plugins among every installed package's entry points when it first
    # builds a model: a tenth of a short command's run, for observers of archspec's own models
    os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")
    parser = _parser()
    args = parser.parse_args(argv)
    with _terminate_like_interrupt():
        try:
            code: int = args.run(args)
        except ArchspecError as error:
            _print_diagnostics(error.diagnostics)
            return EXIT_INVALID
        except KeyboardInterrupt:
            print("archspec: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except _Terminated:
            print("archspec: terminated", file=sys.stderr)
            return EXIT_TERMINATED
        except BrokenPipeError:
            # the reader of our output left (`archspec analyze ... | head`): nothing to report
            _silence_stdout()
            return EXIT_OK
        except MemoryError:
            return _out_of_memory()
        except Exception as error:
            # torch's CPU allocator fails with a RuntimeError, not a MemoryError
            if isinstance(error, RuntimeError) and "can't allocate memory" in str(error):
                return _out_of_memory()
            return _report_bug(error)  # a bug: say so instead of showing a traceback
    return code


def _out_of_memory() -> int:
    print(
        "archspec: error: ran out of memory; the process may not use more than it has "
        "(see `ulimit -v` and the README's budgets)",
        file=sys.stderr,
    )
    return EXIT_INVALID


def _report_bug(error: Exception) -> int:
    if os.environ.get("ARCHSPEC_DEBUG") == "1":
        import traceback  # only for a bug: every run would pay for the import

        traceback.print_exception(error, file=sys.stderr)
    print(
        f"archspec: internal error: {type(error).__name__}: {shown(str(error))}\n"
        f"archspec: this is a bug in archspec {__version__}, not in your spec; please report it "
        "with the command and the spec (ARCHSPEC_DEBUG=1 prints the traceback)",
        file=sys.stderr,
    )
    return EXIT_BUG


@contextlib.contextmanager
def _terminate_like_interrupt() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so no temporary file outlives a killed command."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _silence_stdout() -> None:
    # Python flushes stdout at exit and would fail again on the closed pipe
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


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
    validate.add_argument("specs", nargs="+", type=Path, metavar="SPEC")
    _add_overrides(validate)
    validate.set_defaults(run=_validate)

    analyze = commands.add_parser(
        "analyze", help="shapes, params, MACs and receptive field per layer"
    )
    analyze.add_argument("spec", type=Path, metavar="SPEC")
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
    compile_.add_argument("spec", type=Path, metavar="SPEC")
    compile_.add_argument(
        "-o",
        "--output",
        required=True,
        type=Path,
        metavar="OUT",
        help="model.py: standalone PyTorch source; weights.pt: the state_dict",
    )
    _add_weights(compile_)
    _add_max_memory(compile_)
    _add_overrides(compile_)
    compile_.set_defaults(run=_compile)

    export = commands.add_parser(
        "export", help="write the network as ONNX, verified against onnxruntime"
    )
    export.add_argument("spec", type=Path, metavar="SPEC")
    export.add_argument("-o", "--output", required=True, type=Path, metavar="OUT.onnx")
    _add_weights(export)
    export.add_argument(
        "--opset", type=int, metavar="N", help="ONNX opset (default 18; 18 and up are supported)"
    )
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
    _add_max_memory(export)
    _add_overrides(export)
    export.set_defaults(run=_export)

    graph = commands.add_parser(
        "graph", help="draw the network: Mermaid (.mmd), Graphviz (.dot), or .svg/.png via dot"
    )
    graph.add_argument("spec", type=Path, metavar="SPEC")
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


def _add_max_memory(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-memory",
        type=_size,
        metavar="SIZE",
        help="memory the command may use (512M, 8G); default: what is free. Work that would "
        "need more is refused before anything is allocated",
    )


def _size(text: str) -> int:
    from archspec.resources import parse_size

    try:
        return parse_size(text)
    except UsageError as error:
        raise argparse.ArgumentTypeError(error.message) from None


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
    parser.add_argument(
        "--variant",
        metavar="NAME",
        help="use one of the spec's variants (a named set of parameter values) before --set",
    )


def _load(args: argparse.Namespace, path: Path) -> Spec:
    """The spec at `path` with the command's --variant, --set and --freeze."""
    from archspec.frontend.loader import load

    return load(path, dict(args.overrides), args.freeze, args.variant)


def _override(text: str) -> tuple[str, Any]:
    """`NAME=VALUE`, the value read as YAML (safely, with the spec's limits)."""
    from archspec.frontend.loader import override_problem
    from archspec.frontend.source import parse_yaml

    name, equals, raw = text.partition("=")
    name = name.strip()
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {shown(text)}")
    if not raw.strip():
        raise argparse.ArgumentTypeError(f"{name}: give a value after '='")
    try:
        value = parse_yaml(raw, f"--set {name}").data
    except ArchspecError as error:
        raise argparse.ArgumentTypeError(f"{name}: {error.diagnostics[0].message}") from None
    problem = override_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{name}: {problem}")
    return name, value


def _batch(text: str) -> int | None:
    if text == "dynamic":
        return None
    if text.isascii() and text.isdigit() and len(text) <= 7 and 1 <= int(text) <= MAX_BATCH:
        return int(text)
    raise argparse.ArgumentTypeError(
        f"expected a batch size from 1 to {MAX_BATCH:,} or 'dynamic', got {shown(text)}"
    )


def _input_shape(text: str) -> tuple[int, ...]:
    parts = text.lower().split("x")
    if not all(part.isascii() and part.isdigit() and len(part) <= 9 for part in parts):
        raise argparse.ArgumentTypeError(
            f"expected sizes joined by x (3x224x224), got {shown(text)}"
        )
    return tuple(int(part) for part in parts)


def _validate(args: argparse.Namespace) -> int:
    from archspec.analysis import analyze

    failed = False
    for path in args.specs:
        try:
            report = analyze(_load(args, path))
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
    from archspec.outputs.render import to_json, to_markdown, to_table

    if args.plot is not None:
        from archspec.files import check_writable
        from archspec.outputs.plots import plot_format

        plot_format(args.plot)  # before the analysis: a bad name fails fast, printing nothing
        check_writable(args.plot)
    report = analyze(_load(args, args.spec), args.input_shape)
    if args.plot is not None:
        from archspec.outputs.plots import check_plottable

        check_plottable(report)  # before printing: a refused plot leaves no half of its output
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
        from archspec.outputs.plots import plot_report

        plot_report(report, args.plot)
    return EXIT_OK


OUTPUT_KINDS = {".py": "PyTorch source", ".pt": "state_dict", ".pth": "state_dict"}


def _compile(args: argparse.Namespace) -> int:
    output: Path = args.output
    if output.suffix not in OUTPUT_KINDS:
        kinds = ", ".join(f"{suffix} ({kind})" for suffix, kind in OUTPUT_KINDS.items())
        raise UsageError(f"cannot tell what to write to {str(output)!r}: use {kinds}")
    source_code = output.suffix == ".py"
    if source_code and args.weights is not None:
        raise UsageError(
            f"{output} is source code and holds no weights: write them with -o weights.pt "
            "(--weights loads them there), or load_state_dict in your code"
        )
    from archspec.analysis import analyze
    from archspec.files import atomic_write, check_readable, check_writable

    check_writable(output)
    if args.weights is not None:
        check_readable(args.weights, "weights")
    spec = _load(args, args.spec)
    report = analyze(spec)
    _print_diagnostics(report.warnings)
    from archspec.backends.budgets import check_compile

    # before torch is imported: a network that cannot be built is refused at once
    check_compile(report, args.weights, allocate=not source_code, max_memory=args.max_memory)
    # torch is imported only now: validate and analyze stay fast
    from archspec.backends.torch import class_name, compile_module

    # source code needs the modules' settings, never their weights: build them on torch's meta
    # device, where a layer of a trillion parameters costs nothing
    module = compile_module(
        spec,
        report,
        args.weights,
        args.strict,
        device="meta" if source_code else None,
        max_memory=args.max_memory,
    )
    if module.weights_report is not None:
        _print_diagnostics(
            [
                Diagnostic(f"weights not loaded: {line}", severity="warning")
                for line in module.weights_report.lines()
            ]
        )
    if source_code:
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
    from archspec.files import check_readable, check_writable

    check_writable(output)
    if args.weights is not None:
        check_readable(args.weights, "weights")
    if args.opset is not None:
        from archspec.backends.opsets import opset_problem

        problem = opset_problem(args.opset)
        if problem:
            raise UsageError(problem)
    spec = _load(args, args.spec)
    from archspec.analysis import analyze
    from archspec.backends.budgets import check_export

    # before torch and onnx are imported: an export that cannot succeed is refused at once
    check_export(analyze(spec), args.batch, args.verify, args.weights, args.max_memory)
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
        max_memory=args.max_memory,
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


def _graph(args: argparse.Namespace) -> int:
    output: Path = args.output
    from archspec.files import check_writable
    from archspec.outputs.diagram import IMAGE_FORMATS, drawing_suffix, graphviz

    suffix = drawing_suffix(output)
    if args.depth is not None and args.depth < 1:
        raise UsageError(f"--depth must be 1 or more, got {args.depth}")
    check_writable(output)
    if suffix in IMAGE_FORMATS:
        graphviz(suffix[1:])  # before the analysis: a missing program fails fast
    from archspec import draw

    diagram = draw(_load(args, args.spec), args.depth)
    diagram.save(output, args.params)
    print(
        f"{output}: {len(diagram.boxes)} boxes, {len(diagram.edges)} edges "
        f"({diagram.skips} skip connections)"
    )
    return EXIT_OK


def _print_diagnostics(diagnostics: Sequence[Diagnostic]) -> None:
    for diagnostic in diagnostics:
        print(diagnostic if diagnostic.position else f"archspec: {diagnostic}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
