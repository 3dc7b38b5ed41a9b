"""Render an analysis report as a terminal table, Markdown or JSON."""

from __future__ import annotations

from archspec.analysis import LayerReport, ReceptiveField, Report
from archspec.analysis.receptive_field import format_rational
from archspec.ops.base import Rational
from archspec.ops.layouts import default_layout, features_alike, layout_of

#: Shown in cells with nothing to count (a ReLU has no parameters).
NOTHING = "-"

HEADERS = ("Layer", "Op", "Output shape", "Params", "MACs", "Receptive field")


def to_json(report: Report) -> str:
    import json  # only JSON output needs it: the table is the common, quick case

    return json.dumps(report.to_json(), indent=2)


def to_markdown(report: Report) -> str:
    right = {"Params", "MACs"}
    lines = [
        f"**{report.name}** — input {batched_shape(report.input_shape)}",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---:" if header in right else "---" for header in HEADERS) + "|",
    ]
    lines += ["| " + " | ".join(_cells(layer, markdown=True)) + " |" for layer in report.layers]
    lines += ["", *(f"- {line}" for line in summary_lines(report))]
    return "\n".join(lines) + "\n"


def to_table(report: Report, color: bool = False) -> str:
    """A boxed table of every layer with a totals row, then the summary lines.

    Drawn here rather than with rich: rich takes 0.3 s for a 175-layer table, longer than
    loading and analysing the network.
    """
    totals = report.totals
    rows = [_cells(layer, markdown=False) for layer in report.layers]
    footer = ["Total", "", "", f"{totals.params:,}", f"{totals.macs:,}", ""]
    widths = [
        max(len(row[i]) for row in [list(HEADERS), footer, *rows]) for i in range(len(HEADERS))
    ]
    numeric = [header in {"Params", "MACs"} for header in HEADERS]

    def line(cells: list[str], edge: str, style: str = "") -> str:
        padded = [
            cell.rjust(width) if right else cell.ljust(width)
            for cell, width, right in zip(cells, widths, numeric, strict=True)
        ]
        text = edge + edge.join(f" {cell} " for cell in padded) + edge
        return f"{style}{text}{_RESET}" if style and color else text

    def rule(left: str, fill: str, joint: str, right: str) -> str:
        return left + joint.join(fill * (width + 2) for width in widths) + right

    out = [f"{report.name} — input {batched_shape(report.input_shape)}"]
    out.append(rule("┏", "━", "┳", "┓"))
    out.append(line(list(HEADERS), "┃", _BOLD))
    out.append(rule("┡", "━", "╇", "┩"))
    for layer, cells in zip(report.layers, rows, strict=True):
        out.append(line(cells, "│", _DIM if layer.frozen else ""))
    out.append(rule("├", "─", "┼", "┤"))
    out.append(line(footer, "│", _BOLD))
    out.append(rule("└", "─", "┴", "┘"))
    out.extend(summary_lines(report))
    return "\n".join(out) + "\n"


_BOLD = "\x1b[1m"
_DIM = "\x1b[2m"
_RESET = "\x1b[0m"


def summary_lines(report: Report) -> list[str]:
    totals = report.totals
    lines = [
        f"params: {totals.params:,} (trainable {totals.trainable_params:,}, "
        f"frozen {totals.frozen_params:,})",
        f"MACs: {totals.macs:,} ({_si(totals.macs)})",
        f"FLOPs: {totals.flops:,} ({_si(totals.flops)})",
        f"activations: {_bytes(totals.activation_bytes)} per sample (float32)",
    ]
    keys = report.output_keys or report.outputs
    for key, name in zip(keys, report.outputs, strict=True):
        shown = key if key == name else f"{key} ({name})"
        lines.append(f"output {shown}: {batched_shape(report.layer(name).output_shape)}")
    return lines


def _cells(layer: LayerReport, markdown: bool) -> list[str]:
    name = f"`{layer.name}`" if markdown else layer.name
    params = f"{layer.params:,}" if layer.params else NOTHING
    if layer.frozen:
        params += " (frozen)"
    return [
        name,
        layer.op_name,
        batched_shape(layer.output_shape),
        params,
        f"{layer.macs:,}" if layer.macs else NOTHING,
        describe_field(layer.receptive_field),
    ]


def describe_field(field: ReceptiveField | None) -> str:
    """`size /stride`, per axis joined by x (`3x7x7 /1x2x2` along T, H, W), one number when
    every axis agrees (`9 /2` along L, `35 /8` for a square field); `global` once a unit sees
    the whole input."""
    if field is None:
        return NOTHING
    if field.is_global:
        return "global"
    if field.constant:
        return "none (learned)"
    text = f"{_per_axis(field.size)} /{_per_axis(field.stride)}"
    return text if field.aligned else text + " (unaligned)"


def _per_axis(values: tuple[Rational, ...]) -> str:
    first = values[0]
    if all(value == first for value in values):
        return format_rational(first)
    return "x".join(format_rational(value) for value in values)


def batched_shape(shape: tuple[int, ...]) -> str:
    """`(N, 64, 56, 56)`; a layout other than channels first is named: `(N, 56, 56, 96) HWC`."""
    layout = layout_of(shape)
    # features picked (C) or flattened (F) are alike: only other layouts are named
    plain = features_alike(layout) == features_alike(default_layout(len(shape)))
    named = "" if plain else f" {layout}"
    return "(N, " + ", ".join(str(dim) for dim in shape) + ")" + named


def _si(count: int) -> str:
    for scale, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K")):
        if count >= scale:
            return f"{count / scale:.2f} {suffix}"
    return str(count)


def _bytes(count: int) -> str:
    for scale, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if count >= scale:
            return f"{count / scale:.1f} {suffix}"
    return f"{count} B"
