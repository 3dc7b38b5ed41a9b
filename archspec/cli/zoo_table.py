"""`archspec zoo`: the packaged specs with their figures, analysed as they are listed."""

from __future__ import annotations

import json
from dataclasses import dataclass

from archspec.outputs.render import batched_shape, si


@dataclass(frozen=True)
class ZooRow:
    name: str
    title: str
    input_shape: tuple[int, ...]
    layers: int
    params: int
    macs: int
    variants: tuple[str, ...]


def zoo_rows() -> list[ZooRow]:
    from archspec.analysis import analyze
    from archspec.frontend.loader import load
    from archspec.zoo import entries

    rows = []
    for entry in entries():
        spec = load(entry.path)
        report = analyze(spec)
        rows.append(
            ZooRow(
                entry.name,
                entry.title,
                report.input_shape,
                len(report.layers),
                report.totals.params,
                report.totals.macs,
                tuple(spec.document.variants),
            )
        )
    return rows


def zoo_table() -> str:
    header = ("zoo:NAME", "Model", "Input", "Params", "MACs", "Variants")
    rows = [
        (
            f"zoo:{row.name}",
            row.title,
            batched_shape(row.input_shape),
            si(row.params),
            si(row.macs),
            ", ".join(row.variants) or "-",
        )
        for row in zoo_rows()
    ]
    widths = [max(len(cells[i]) for cells in [header, *rows]) for i in range(len(header))]
    right = {3, 4}

    def line(cells: tuple[str, ...]) -> str:
        padded = [
            cell.rjust(width) if i in right else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    lines = [line(header), *(line(cells) for cells in rows)]
    lines.append(f"{len(rows)} specs; any command takes zoo:NAME, and --variant NAME picks a size")
    return "\n".join(lines) + "\n"


def zoo_json() -> str:
    return (
        json.dumps(
            [
                {
                    "name": row.name,
                    "reference": f"zoo:{row.name}",
                    "title": row.title,
                    "input_shape": list(row.input_shape),
                    "layers": row.layers,
                    "params": row.params,
                    "macs": row.macs,
                    "variants": list(row.variants),
                }
                for row in zoo_rows()
            ],
            indent=2,
        )
        + "\n"
    )
