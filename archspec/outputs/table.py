"""A boxed text table, fitted to a width: long text cut in its middle, then columns dropped."""

from __future__ import annotations

from collections.abc import Sequence

from archspec.outputs.columns import Column
from archspec.outputs.text import elide

BOLD = "\x1b[1m"
DIM = "\x1b[2m"
RESET = "\x1b[0m"


def draw_table(
    columns: Sequence[Column],
    grid: Sequence[Sequence[str]],
    dim: Sequence[bool],
    color: bool = False,
    width: int | None = None,
) -> tuple[list[str], list[str]]:
    """The lines of a table whose first row of `grid` is the header and last the footer (both
    bold), each body row dimmed where `dim` says; and the headers of the columns dropped to fit
    `width` characters.

    Drawn here rather than with rich: rich takes 0.3 s for a 175-layer table, longer than
    loading and analysing the network.
    """
    kept, widths = fit(columns, grid, width)
    shown = [columns[i] for i in kept]
    cells = [[elide(row[i], size) for i, size in zip(kept, widths, strict=True)] for row in grid]

    def line(row: list[str], edge: str, style: str = "") -> str:
        padded = [
            cell.rjust(size) if column.right else cell.ljust(size)
            for cell, size, column in zip(row, widths, shown, strict=True)
        ]
        text = edge + edge.join(f" {cell} " for cell in padded) + edge
        return f"{style}{text}{RESET}" if style and color else text

    def rule(left: str, fill: str, joint: str, right: str) -> str:
        return left + joint.join(fill * (size + 2) for size in widths) + right

    out = [rule("┏", "━", "┳", "┓"), line(cells[0], "┃", BOLD), rule("┡", "━", "╇", "┩")]
    out += [
        line(row, "│", DIM if faint else "") for row, faint in zip(cells[1:-1], dim, strict=True)
    ]
    out += [rule("├", "─", "┼", "┤"), line(cells[-1], "│", BOLD), rule("└", "─", "┴", "┘")]
    dropped = [column.header for i, column in enumerate(columns) if i not in kept]
    return out, dropped


def fit(
    columns: Sequence[Column], grid: Sequence[Sequence[str]], width: int | None
) -> tuple[list[int], list[int]]:
    """The indexes of the columns kept and their widths: each as wide as its widest cell, or,
    when the table would be wider than `width`, text columns narrowed (the widest first, down to
    their minimums) and then the last column that is not essential dropped, until it fits.
    A table that cannot fit keeps its first and its essential columns at their narrowest."""
    natural = [max(len(row[i]) for row in grid) for i in range(len(columns))]
    kept = list(range(len(columns)))
    if width is None:
        return kept, natural
    floors = [_floor(column, size) for column, size in zip(columns, natural, strict=True)]
    while True:
        budget = width - 3 * len(kept) - 1  # a space each side of every cell, and the edges
        widths = _narrowed([natural[i] for i in kept], [floors[i] for i in kept], budget)
        droppable = [i for i in kept[1:] if not columns[i].essential]
        if sum(widths) <= budget or not droppable:
            return kept, widths
        kept.remove(droppable[-1])


def _floor(column: Column, natural: int) -> int:
    """How narrow a column may get: its minimum, never less than its header, never wider than
    its cells need."""
    if column.min_width is None:
        return natural
    return min(natural, max(column.min_width, len(column.header)))


def _narrowed(widths: list[int], floors: list[int], budget: int) -> list[int]:
    """`widths` narrowed, the widest first and none below its floor, to add up to `budget`
    if they can."""
    widths = list(widths)
    excess = sum(widths) - budget
    while excess > 0:
        wide = [i for i, size in enumerate(widths) if size > floors[i]]
        if not wide:
            break
        widest = max(wide, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths
