"""Render an analysis report as a terminal table, Markdown or JSON."""

from __future__ import annotations

from collections.abc import Sequence

from archspec.analysis import Report
from archspec.analysis.folding import Row, fold
from archspec.outputs.columns import Cell, Column, select_columns
from archspec.outputs.table import draw_table
from archspec.outputs.text import (
    NOTHING,
    batched_shape,
    byte_size,
    describe_field,
    escape_markdown,
    markdown_code,
    si,
)

__all__ = [
    "NOTHING",
    "batched_shape",
    "byte_size",
    "describe_field",
    "si",
    "summary_lines",
    "to_json",
    "to_markdown",
    "to_table",
]

#: Columns chosen by name: `"layer,op,params"`, a list of names, or None for the defaults.
Columns = str | Sequence[str] | None


def to_json(report: Report) -> str:
    import json  # only JSON output needs it: the table is the common, quick case

    return json.dumps(report.to_json(), indent=2)


def to_markdown(report: Report, depth: int | None = None, columns: Columns = None) -> str:
    """A Markdown table, one row per layer or per group below `depth` (see `fold`), of the
    `columns` chosen (see `select_columns`), then the totals as a list."""
    chosen = select_columns(columns)
    rows = fold(report, depth)
    title = f"**{escape_markdown(report.name)}** — input {batched_shape(report.input_shape)}"
    lines = [title + folding_note(rows, depth), ""]
    lines += markdown_table(chosen, rows)
    lines += ["", *(f"- {line}" for line in summary_lines(report))]
    return "\n".join(lines) + "\n"


def markdown_table(columns: Sequence[Column], rows: Sequence[Row]) -> list[str]:
    """The lines of a Markdown table of `rows`: names as code, figures aligned right."""
    lines = [
        "| " + " | ".join(column.header for column in columns) + " |",
        "|" + "|".join("---:" if column.right else "---" for column in columns) + "|",
    ]
    for row in rows:
        cells = [_markdown_cell(column.cell(row)) for column in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _markdown_cell(cell: Cell) -> str:
    if isinstance(cell, str):
        return cell.replace("|", "\\|")
    return ", ".join(markdown_code(name) for name in cell) or NOTHING


def to_table(
    report: Report,
    color: bool = False,
    depth: int | None = None,
    columns: Columns = None,
    width: int | None = None,
) -> str:
    """A boxed table of every layer (or, with `depth`, of every group below it) with a totals
    row, then the summary lines. With `width`, no line is wider when it can be helped: long
    names are cut in their middle, then columns dropped from the right, and a line says which.
    """
    chosen = select_columns(columns)
    rows = fold(report, depth)
    header = [column.header for column in chosen]
    body = [[_plain(column.cell(row)) for column in chosen] for row in rows]
    footer = [_total(column, report) for column in chosen]
    if not footer[0]:
        footer[0] = "Total"
    table, dropped = draw_table(
        chosen, [header, *body, footer], [row.frozen for row in rows], color, width
    )
    title = f"{report.name} — input {batched_shape(report.input_shape)}"
    above = [title + folding_note(rows, depth)]
    below = [f"dropped to fit width {width}: {', '.join(dropped)}"] if dropped else []
    below += summary_lines(report)
    if width is not None:
        above, below = _wrapped(above, width), _wrapped(below, width)
    return "\n".join([*above, *table, *below]) + "\n"


def _plain(cell: Cell) -> str:
    return cell if isinstance(cell, str) else ", ".join(cell) or NOTHING


def _total(column: Column, report: Report) -> str:
    return column.total(report.totals) if column.total else ""


def folding_note(rows: Sequence[Row], depth: int | None) -> str:
    """`, depth 1: 11 rows` after a folded report's title; nothing unfolded."""
    return "" if depth is None else f", depth {depth}: {len(rows):,} rows"


def _wrapped(lines: list[str], width: int) -> list[str]:
    import textwrap  # only a table fitted to a width needs it

    out = []
    for line in lines:
        out += textwrap.wrap(line, max(width, 8), subsequent_indent="  ") or [""]
    return out


def summary_lines(report: Report) -> list[str]:
    totals = report.totals
    lines = [
        f"params: {totals.params:,} (trainable {totals.trainable_params:,}, "
        f"frozen {totals.frozen_params:,})",
        f"MACs: {totals.macs:,} ({si(totals.macs)})",
        f"FLOPs: {totals.flops:,} ({si(totals.flops)})",
        f"activations: {byte_size(totals.activation_bytes)} per sample (float32)",
    ]
    keys = report.output_keys or report.outputs
    for key, name in zip(keys, report.outputs, strict=True):
        shown = key if key == name else f"{key} ({name})"
        lines.append(f"output {shown}: {batched_shape(report.layer(name).output_shape)}")
    return lines
