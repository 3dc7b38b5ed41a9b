"""A report as a notebook shows it: a table folded to a readable depth, totals and warnings."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from archspec.analysis import Report
from archspec.analysis.folding import VIEW_ROWS, fold, view_depth
from archspec.outputs.columns import Cell, select_columns
from archspec.outputs.render import folding_note, summary_lines, to_markdown
from archspec.outputs.text import NOTHING, batched_shape, escape_markdown


def markdown_view(report: Report, max_rows: int = VIEW_ROWS) -> str:
    """The Markdown report folded to the deepest depth of at most `max_rows` rows (every layer
    of a small network), then its warnings."""
    text = to_markdown(report, view_depth(report, max_rows))
    if report.warnings:
        text += "\n**Warnings**\n\n"
        text += "".join(f"- {escape_markdown(str(warning))}\n" for warning in report.warnings)
    return text


def html_view(report: Report, max_rows: int = VIEW_ROWS) -> str:
    """The same as `markdown_view`, as an HTML fragment: every text escaped."""
    depth = view_depth(report, max_rows)
    columns = select_columns()
    rows = fold(report, depth)
    title = f"<strong>{escape(report.name)}</strong> — input " + escape(
        batched_shape(report.input_shape) + folding_note(rows, depth)
    )
    right = ' style="text-align: right"'
    aligned = [right if column.right else "" for column in columns]
    out = ['<div class="archspec-report">', f"<p>{title}</p>", "<table>", "<thead><tr>"]
    out += [
        f"<th{a}>{escape(column.header)}</th>" for a, column in zip(aligned, columns, strict=True)
    ]
    out += ["</tr></thead>", "<tbody>"]
    for row in rows:
        faint = ' style="opacity: 0.6" title="frozen"' if row.frozen else ""
        cells = [_html_cell(column.cell(row)) for column in columns]
        tds = "".join(f"<td{a}>{c}</td>" for a, c in zip(aligned, cells, strict=True))
        out.append(f"<tr{faint}>{tds}</tr>")
    totals = [column.total(report.totals) if column.total else "" for column in columns]
    totals[0] = totals[0] or "Total"
    out += ["</tbody>", "<tfoot><tr>"]
    out += [f"<th{a}>{escape(total)}</th>" for a, total in zip(aligned, totals, strict=True)]
    out += ["</tr></tfoot>", "</table>", _html_list(summary_lines(report))]
    if report.warnings:
        out += ["<p><strong>Warnings</strong></p>", _html_list(map(str, report.warnings))]
    out.append("</div>")
    return "\n".join(out) + "\n"


def _html_cell(cell: Cell) -> str:
    if isinstance(cell, str):
        return escape(cell)
    return ", ".join(f"<code>{escape(name)}</code>" for name in cell) or NOTHING


def _html_list(lines: Iterable[str]) -> str:
    items = "".join(f"<li>{escape(line)}</li>" for line in lines)
    return f"<ul>{items}</ul>"
