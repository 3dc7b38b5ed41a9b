"""Render an analysis report as a terminal table, Markdown or JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from archspec.analysis import LayerReport, ReceptiveField, Report

if TYPE_CHECKING:
    from rich.console import Console

#: Shown in cells with nothing to count (a ReLU has no parameters).
NOTHING = "-"

HEADERS = ("Layer", "Op", "Output shape", "Params", "MACs", "Receptive field")


def to_json(report: Report) -> str:
    return json.dumps(report.to_json(), indent=2)


def to_markdown(report: Report) -> str:
    right = {"Params", "MACs"}
    lines = [
        f"**{report.name}** — input {_shape(report.input_shape)}",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---:" if header in right else "---" for header in HEADERS) + "|",
    ]
    lines += ["| " + " | ".join(_cells(layer, markdown=True)) + " |" for layer in report.layers]
    lines += ["", *(f"- {line}" for line in summary_lines(report))]
    return "\n".join(lines) + "\n"


def print_table(report: Report, console: Console) -> None:
    from rich.table import Table

    table = Table(
        title=f"{report.name} — input {_shape(report.input_shape)}",
        title_justify="left",
        show_footer=True,
        header_style="bold",
        footer_style="bold",
    )
    totals = report.totals
    footers = ("Total", "", "", f"{totals.params:,}", f"{totals.macs:,}", "")
    for header, footer in zip(HEADERS, footers, strict=True):
        numeric = header in {"Params", "MACs"}
        table.add_column(header, footer, justify="right" if numeric else "left", no_wrap=True)
    for layer in report.layers:
        table.add_row(*_cells(layer, markdown=False), style="dim" if layer.frozen else None)
    console.print(table)
    for line in summary_lines(report):
        console.print(line, highlight=False)


def summary_lines(report: Report) -> list[str]:
    totals = report.totals
    lines = [
        f"params: {totals.params:,} (trainable {totals.trainable_params:,}, "
        f"frozen {totals.frozen_params:,})",
        f"MACs: {totals.macs:,} ({_si(totals.macs)})",
        f"FLOPs: {totals.flops:,} ({_si(totals.flops)})",
        f"activations: {_bytes(totals.activation_bytes)} per sample (float32)",
    ]
    for name in report.outputs:
        layer = report.layer(name)
        lines.append(f"output {name}: {_shape(layer.output_shape)}")
    return lines


def _cells(layer: LayerReport, markdown: bool) -> list[str]:
    name = f"`{layer.name}`" if markdown else layer.name
    params = f"{layer.params:,}" if layer.params else NOTHING
    if layer.frozen:
        params += " (frozen)"
    return [
        name,
        layer.op_name,
        _shape(layer.output_shape),
        params,
        f"{layer.macs:,}" if layer.macs else NOTHING,
        describe_field(layer.receptive_field),
    ]


def describe_field(field: ReceptiveField | None) -> str:
    """`size / stride`, e.g. `35x35 /8`; `global` once a unit sees the whole input."""
    if field is None:
        return NOTHING
    if field.is_global:
        return "global"
    size = _pair(field.size)
    text = f"{size} /{_pair(field.stride)}"
    return text if field.aligned else text + " (unaligned)"


def _pair(values: tuple[int, int]) -> str:
    return str(values[0]) if values[0] == values[1] else f"{values[0]}x{values[1]}"


def _shape(shape: tuple[int, ...]) -> str:
    return "(N, " + ", ".join(str(dim) for dim in shape) + ")"


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
