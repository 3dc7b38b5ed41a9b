"""The commands that take a spec: validate, analyze, compile, export and graph."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from archspec.cli.terminal import (
    Stage,
    diagnostics_json,
    github_annotations,
    print_diagnostics,
    progress,
    shows_progress,
    use_color,
)
from archspec.dependencies import ONNX, TORCH, require
from archspec.errors import ArchspecError, Diagnostic, UsageError

if TYPE_CHECKING:
    from archspec.analysis import Report
    from archspec.frontend.loader import Spec

EXIT_OK = 0
EXIT_INVALID = 2


def spec_source(text: str) -> str | Path:
    """What `load` reads for a SPEC argument: `-` and `zoo:NAME` as they are, any other text as
    a file's name (never as YAML, however it looks)."""
    from archspec.frontend.source import STDIN
    from archspec.zoo import is_zoo_reference

    return text if text == STDIN or is_zoo_reference(text) else Path(text)


def load_spec(args: argparse.Namespace, spec: str) -> Spec:
    """The spec with the command's --variant, --set and --freeze."""
    from archspec.frontend.loader import load

    return load(spec_source(spec), dict(args.overrides), args.freeze, args.variant)


def validate(args: argparse.Namespace) -> int:
    from archspec.analysis import analyze

    found: list[Diagnostic] = []
    failed = False
    for spec in args.specs:
        try:
            report = analyze(load_spec(args, spec))
        except UsageError:
            raise
        except ArchspecError as error:
            found.extend(error.diagnostics)
            failed = True
            if args.format == "text":
                print_diagnostics(error.diagnostics)
            continue
        found.extend(report.warnings)
        totals = report.totals
        summary = (
            f"{spec}: ok ({len(report.layers)} layers, {totals.params:,} params, "
            f"{totals.macs:,} MACs)"
        )
        if args.format == "text":
            print_diagnostics(report.warnings)
            print(summary)
    if args.format == "json":
        print(diagnostics_json(found))
    elif args.format == "github":
        sys.stdout.write(github_annotations(found))
    return EXIT_INVALID if failed else EXIT_OK


#: What `analyze -o FILE` writes, by suffix.
REPORT_FORMATS = {".md": "markdown", ".json": "json", ".txt": "table"}


def analyze(args: argparse.Namespace) -> int:
    from archspec.analysis import analyze as analyze_network

    output_format = _report_format(args.output, args.format)
    if args.output is not None:
        from archspec.files import check_writable

        check_writable(args.output)
    if args.plot is not None:
        from archspec.files import check_writable
        from archspec.outputs.plots import plot_format

        plot_format(args.plot)  # before the analysis: a bad name fails fast, printing nothing
        check_writable(args.plot)
    report = analyze_network(load_spec(args, args.spec), args.input_shape)
    text = _render(report, output_format, args, to_terminal=args.output is None)
    if args.plot is not None:
        from archspec.outputs.plots import check_plottable

        check_plottable(report)  # before printing: a refused plot leaves no half of its output
    print_diagnostics(report.warnings)
    if args.output is None:
        sys.stdout.write(text)
    else:
        from archspec.files import atomic_write

        data = text.encode()
        atomic_write(args.output, lambda file: file.write(data))
        print(f"{args.output}: {output_format} report of {report.name}")
    if args.plot is not None:
        # matplotlib is imported only now: analyze without --plot stays light
        from archspec.outputs.plots import plot_report

        plot_report(report, args.plot)
    return EXIT_OK


def _report_format(output: Path | None, asked: str | None) -> str:
    if output is None:
        return asked or "table"
    by_suffix = REPORT_FORMATS.get(output.suffix.lower())
    if by_suffix is None:
        kinds = ", ".join(f"{suffix} ({kind})" for suffix, kind in REPORT_FORMATS.items())
        raise UsageError(f"cannot tell what to write to {str(output)!r}: use {kinds}")
    if asked is not None and asked != by_suffix:
        raise UsageError(f"--format {asked} does not fit {str(output)!r}, a {by_suffix} file")
    return by_suffix


def _render(report: Report, output_format: str, args: argparse.Namespace, to_terminal: bool) -> str:
    from archspec.outputs.render import to_json, to_markdown, to_table

    if output_format == "json":
        return to_json(report) + "\n"
    if output_format == "markdown":
        return to_markdown(report, depth=args.depth, columns=args.columns)
    width = None
    if to_terminal and sys.stdout.isatty():
        import shutil

        width = shutil.get_terminal_size().columns
    color = to_terminal and use_color(sys.stdout)
    return to_table(report, color, depth=args.depth, columns=args.columns, width=width)


OUTPUT_KINDS = {".py": "PyTorch source", ".pt": "state_dict", ".pth": "state_dict"}


def compile_network(args: argparse.Namespace) -> int:
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
    from archspec.analysis import analyze as analyze_network
    from archspec.files import atomic_write, check_readable, check_writable

    require(TORCH)
    check_writable(output)
    if args.weights is not None:
        check_readable(args.weights, "weights")
    spec = load_spec(args, args.spec)
    report = analyze_network(spec)
    print_diagnostics(report.warnings)
    from archspec.backends.budgets import check_compile

    # before torch is imported: a network that cannot be built is refused at once
    check_compile(report, args.weights, allocate=not source_code, max_memory=args.max_memory)
    with progress(shows_progress(args.quiet)) as stage:
        _say(stage, "importing torch")
        # torch is imported only now: validate and analyze stay fast
        from archspec.backends.torch import class_name, compile_module

        loading = "" if args.weights is None else " and loading the weights"
        _say(stage, f"building the modules{loading}")
        # source code needs the modules' settings, never their weights: build them on torch's
        # meta device, where a layer of a trillion parameters costs nothing
        module = compile_module(
            spec,
            report,
            args.weights,
            args.strict,
            device="meta" if source_code else None,
            max_memory=args.max_memory,
        )
        if source_code:
            from archspec.backends.torch_source import generate_source

            _say(stage, "writing and checking the source")
            source = generate_source(
                module, class_name(spec.name), spec_name=spec.name, input_shape=report.input_shape
            ).encode()
            atomic_write(output, lambda file: file.write(source))
        else:
            import torch

            _say(stage, "writing the weights")
            atomic_write(output, lambda file: torch.save(module.state_dict(), file))
    if module.weights_report is not None:
        print_diagnostics(
            [
                Diagnostic(f"weights not loaded: {line}", severity="warning")
                for line in module.weights_report.lines()
            ]
        )
    print(
        f"{output}: {OUTPUT_KINDS[output.suffix]} of {spec.name} "
        f"({report.totals.params:,} params, {report.totals.trainable_params:,} trainable)"
    )
    return EXIT_OK


def _say(stage: Stage | None, message: str) -> None:
    if stage is not None:
        stage(message)


def export(args: argparse.Namespace) -> int:
    output: Path = args.output
    if output.suffix != ".onnx":
        raise UsageError(f"export writes ONNX: name the output *.onnx, not {str(output)!r}")
    from archspec.files import check_readable, check_writable

    require(ONNX)
    check_writable(output)
    if args.weights is not None:
        check_readable(args.weights, "weights")
    if args.opset is not None:
        from archspec.backends.opsets import opset_problem

        problem = opset_problem(args.opset)
        if problem:
            raise UsageError(problem)
    spec = load_spec(args, args.spec)
    from archspec.analysis import analyze as analyze_network
    from archspec.backends.budgets import check_export

    # before torch and onnx are imported: an export that cannot succeed is refused at once
    check_export(analyze_network(spec), args.batch, args.verify, args.weights, args.max_memory)
    with progress(shows_progress(args.quiet)) as stage:
        _say(stage, "importing torch and onnx")
        from archspec.backends.onnx import export_onnx

        result = export_onnx(
            spec,
            output,
            args.weights,
            args.strict,
            args.opset,
            args.batch,
            args.verify,
            progress=stage,
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


def graph(args: argparse.Namespace) -> int:
    output: Path = args.output
    from archspec.files import check_writable
    from archspec.outputs.diagram import IMAGE_FORMATS, drawing_suffix, graphviz

    suffix = drawing_suffix(output)
    check_writable(output)
    if suffix in IMAGE_FORMATS:
        graphviz(suffix[1:])  # before the analysis: a missing program fails fast
    from archspec import draw

    diagram = draw(load_spec(args, args.spec), args.depth)
    diagram.save(output, args.params)
    print(
        f"{output}: {len(diagram.boxes)} boxes, {len(diagram.edges)} edges "
        f"({diagram.skips} skip connections)"
    )
    return EXIT_OK
