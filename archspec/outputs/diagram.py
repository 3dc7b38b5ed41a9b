"""Draw a network: boxes for layers (or for whole groups below a depth), as Mermaid or DOT."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from archspec.analysis import LayerReport, Report
from archspec.analysis.folding import fold, group_of
from archspec.errors import UsageError
from archspec.files import atomic_write
from archspec.ir import INPUT
from archspec.ops.base import SHAPE_ONLY, Shape
from archspec.outputs.text import batched_shape

#: Graphviz's layout grows faster than linearly: beyond this a drawing takes minutes.
MAX_RENDERED_BOXES = 3000
RENDER_SECONDS = 120


@dataclass(frozen=True)
class Box:
    """One node of the picture: a layer, or a group of layers collapsed into one."""

    name: str
    op: str  # the op, or "N layers" for a collapsed group
    shape: Shape
    params: int
    merge: str | None = None  # the symbol of an add or concat drawn as a circle
    detail: str = ""  # of a collapsed group: the ops that compute (`multihead_attention, linear`)
    learned: bool = False  # a learned tensor (a class token): it reads no data


@dataclass(frozen=True)
class Edge:
    source: int
    target: int
    skip: bool  # not from the box just before: a skip connection
    shape_only: bool = False  # the target reads only the source's size (its batch, its H x W)


#: What a drawing can be saved as, by file suffix: text (Mermaid, DOT) or Graphviz's images.
DRAWING_FORMATS = (".mmd", ".dot", ".svg", ".png")
IMAGE_FORMATS = (".svg", ".png")


@dataclass(frozen=True)
class Diagram:
    """A network's picture: boxes in network order and the edges between them."""

    name: str
    boxes: tuple[Box, ...]
    edges: tuple[Edge, ...]

    @property
    def skips(self) -> int:
        return sum(edge.skip for edge in self.edges)

    def mermaid(self, params: bool = False) -> str:
        """A Mermaid flowchart: renders in GitHub, Jupyter and most Markdown notes."""
        return _mermaid(self, params)

    def dot(self, params: bool = False) -> str:
        """Graphviz DOT; skip connections are dashed."""
        return _dot(self, params)

    def render(self, file_format: str, params: bool = False) -> bytes:
        """ "svg" or "png", drawn by Graphviz's `dot` program (UsageError if it is missing)."""
        return _render(self, file_format, params)

    def save(self, path: str | Path, params: bool = False) -> None:
        """Write the drawing in the format its suffix names (.mmd, .dot, .svg, .png), whole or
        not at all."""
        path = Path(path)
        suffix = drawing_suffix(path)
        if suffix == ".mmd":
            data = self.mermaid(params).encode()
        elif suffix == ".dot":
            data = self.dot(params).encode()
        else:
            data = self.render(suffix[1:], params)
        atomic_write(path, lambda file: file.write(data))


def drawing_suffix(path: Path) -> str:
    """The suffix of a drawing's path, UsageError unless one of DRAWING_FORMATS."""
    if path.suffix not in DRAWING_FORMATS:
        raise UsageError(f"cannot tell how to draw {str(path)!r}: use {', '.join(DRAWING_FORMATS)}")
    return path.suffix


def build_diagram(report: Report, depth: int | None = None) -> Diagram:
    """Boxes in network order; with `depth`, layers below it merge into their group's box
    (ResNet-50 at depth 1: stem, layer1..layer4, head)."""
    boxes = [Box(INPUT, "", report.input_shape, 0)]
    position = {INPUT: 0}
    for row in fold(report, depth):
        last = row.layers[-1]
        single = len(row.layers) == 1
        boxes.append(
            Box(
                name=row.name,
                op=_marked(last) if single else row.op,
                shape=row.output_shape,
                params=row.params,
                merge=last.op.drawing_symbol if single else None,
                detail="" if single else _computing_ops(row.layers),
                learned=single and not _data_inputs(last),
            )
        )
        position[row.name] = len(boxes) - 1
    pairs: dict[tuple[int, int], bool] = {}  # ordered, without repeats: whether shape only
    for layer in report.layers:
        target = position[group_of(layer.name, depth)]
        data = _data_inputs(layer)
        for producer in layer.inputs:
            source = position[producer if producer == INPUT else group_of(producer, depth)]
            if source != target:
                pairs[source, target] = pairs.get((source, target), True) and producer not in data
    # the main flow: a box's first input, when that box is also its source's first reader;
    # the rest (a shortcut leaving the block input, rejoining at the add) are skip connections.
    # Sizes read and learned tensors joining in are neither.
    first_reader: dict[int, int] = {}
    first_input: dict[int, int] = {}
    for (source, target), shape_only in pairs.items():
        if not shape_only and not boxes[source].learned:
            first_reader.setdefault(source, target)
            first_input.setdefault(target, source)
    edges = tuple(
        Edge(
            source,
            target,
            skip=not (shape_only or boxes[source].learned)
            and not (first_reader.get(source) == target and first_input.get(target) == source),
            shape_only=shape_only,
        )
        for (source, target), shape_only in pairs.items()
    )
    return Diagram(report.name, tuple(boxes), edges)


def _data_inputs(layer: LayerReport) -> set[str]:
    """The inputs whose values the layer reads: not those read for their size alone."""
    steps = layer.op.window(layer.input_shapes)
    per_input = steps if isinstance(steps, tuple) else (steps,) * len(layer.inputs)
    return {name for name, step in zip(layer.inputs, per_input, strict=True) if step != SHAPE_ONLY}


#: Ops a collapsed group's box names, at most: the first few that compute tell what it is.
NAMED_OPS = 3


def _computing_ops(layers: Sequence[LayerReport]) -> str:
    """The distinct ops of a group that multiply by weights or resample, in order."""
    named = [_marked(layer) for layer in layers if layer.macs or layer.op.drawing_mark]
    return ", ".join(list(dict.fromkeys(named))[:NAMED_OPS])


def _marked(layer: LayerReport) -> str:
    """The op's name, after its mark: `↑ upsample`."""
    mark = layer.op.drawing_mark
    return f"{mark} {layer.op_name}" if mark else layer.op_name


def _label(box: Box, params: bool) -> list[str]:
    lines = [part for part in (box.name, box.op, box.detail) if part]
    lines.append(batched_shape(box.shape))
    if params and box.params:
        lines.append(f"{box.params:,} params")
    return lines


def _mermaid(diagram: Diagram, params: bool) -> str:
    lines = ["flowchart TD"]
    for index, box in enumerate(diagram.boxes):
        if box.merge:
            lines.append(f'    n{index}(("{box.merge}"))')
        else:
            text = "<br/>".join(_escape_mermaid(part) for part in _label(box, params))
            lines.append(f'    n{index}["{text}"]')
    for edge in diagram.edges:
        arrow = "-.->" if edge.skip or edge.shape_only else "-->"
        lines.append(f"    n{edge.source} {arrow} n{edge.target}")
    return "\n".join(lines) + "\n"


def _dot(diagram: Diagram, params: bool) -> str:
    lines = [
        f"digraph {_quote(diagram.name)} {{",
        "    rankdir=TB;",
        '    node [shape=box, style="rounded,filled", fillcolor="#f4f6fb", fontname="Helvetica"];',
        '    edge [color="#555555"];',
    ]
    for index, box in enumerate(diagram.boxes):
        if box.merge:
            lines.append(
                f"    n{index} [shape=circle, label={_quote(box.merge)}, "
                'fillcolor="#ffe9b3", tooltip=' + _quote(box.name) + "];"
            )
        else:
            label = "\\n".join(_escape_dot(part) for part in _label(box, params))
            learned = ', fillcolor="#e3f4e1"' if box.learned else ""
            lines.append(f'    n{index} [label="{label}"{learned}];')
    for edge in diagram.edges:
        style = ' [style=dashed, color="#c0392b"]' if edge.skip else ""
        if edge.shape_only:
            style = ' [style=dotted, color="#aaaaaa", arrowhead=none]'  # its size, not its values
        lines.append(f"    n{edge.source} -> n{edge.target}{style};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def graphviz(file_format: str) -> str:
    """The path of Graphviz's `dot` program; UsageError saying how to install it if missing."""
    program = shutil.which("dot")
    if program is None:
        raise UsageError(
            f"drawing .{file_format} needs Graphviz's `dot` program (Debian/Ubuntu: apt install "
            "graphviz; macOS: brew install graphviz); .mmd and .dot need nothing"
        )
    return program


def _render(diagram: Diagram, file_format: str, params: bool) -> bytes:
    program = graphviz(file_format)
    if len(diagram.boxes) > MAX_RENDERED_BOXES:
        raise UsageError(
            f"{len(diagram.boxes):,} boxes are too many for Graphviz to lay out (at most "
            f"{MAX_RENDERED_BOXES:,}): fold groups with --depth K, or write .mmd or .dot"
        )
    try:
        done = subprocess.run(
            [program, f"-T{file_format}"],
            input=diagram.dot(params).encode(),
            capture_output=True,
            check=False,
            timeout=RENDER_SECONDS,
        )
    except subprocess.TimeoutExpired as error:
        raise UsageError(
            f"Graphviz took more than {RENDER_SECONDS} s to lay out the drawing: fold groups "
            "with --depth K, or write .mmd or .dot"
        ) from error
    except OSError as error:
        raise UsageError(f"cannot run Graphviz's dot ({program}): {error.strerror}") from error
    if done.returncode != 0:
        raise UsageError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout


def _quote(text: str) -> str:
    return '"' + _escape_dot(text) + '"'


def _escape_dot(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _escape_mermaid(text: str) -> str:
    return text.replace('"', "#quot;")
