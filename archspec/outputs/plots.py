"""Plot a report: receptive field and feature-map size along the depth, then params and MACs."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from archspec.analysis import LayerReport, Report
from archspec.dependencies import PLOT, require
from archspec.errors import UsageError
from archspec.files import atomic_write

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

#: The formats a plot is written in, by file suffix.
PLOT_FORMATS = {".png": "png", ".svg": "svg"}
#: Figure size in inches at DPI: a PNG is 1200x900 pixels.
FIGURE_SIZE = (12.0, 9.0)
DPI = 100
#: Okabe-Ito colours: told apart with any colour vision, and in greyscale by line style.
FIELD_COLOR = "#0072B2"
SPATIAL_COLOR = "#D55E00"
PARAMS_COLOR = "#009E73"
MACS_COLOR = "#E69F00"
HEAD_SHADE = "#EEEEEE"
#: Horizontal room a rotated tick label needs, in pixels (an 8-point line plus a gap).
LABEL_PITCH_PX = 13
#: Layers up to this count get a marker per layer; deeper nets get plain lines.
MARKER_LIMIT = 60
#: Deeper networks take matplotlib more than ten seconds and are a blur at this width anyway.
MAX_PLOTTED_LAYERS = 10_000


def plot_format(path: Path) -> str:
    """`png` or `svg` from the file name; a UsageError for anything else, or without matplotlib."""
    kind = PLOT_FORMATS.get(path.suffix.lower())
    if kind is None:
        allowed = " or ".join(PLOT_FORMATS)
        raise UsageError(f"cannot tell how to plot to {str(path)!r}: name it *{allowed}")
    require(PLOT)
    return kind


def check_plottable(report: Report) -> None:
    """UsageError for a network too deep to plot in seconds (matplotlib: about 1 ms a layer)."""
    if len(report.layers) > MAX_PLOTTED_LAYERS:
        raise UsageError(
            f"--plot draws at most {MAX_PLOTTED_LAYERS:,} layers; {report.name} has "
            f"{len(report.layers):,} (the table and --format json have them all)"
        )


def plot_report(report: Report, path: Path) -> None:
    """Write the report's depth and cost profile to `path`, a .png or .svg file."""
    kind = plot_format(path)
    figure = _figure(report)
    buffer = io.BytesIO()
    # no date in an SVG, so that re-plotting an unchanged spec changes as little as possible
    metadata = {"Date": None} if kind == "svg" else {}
    figure.savefig(buffer, format=kind, dpi=DPI, metadata=metadata)
    data = buffer.getvalue()
    atomic_write(path, lambda file: file.write(data))


def _figure(report: Report) -> Figure:
    require(PLOT)
    from matplotlib.figure import Figure

    # the object API: no pyplot, no backend switch, no global state
    figure = Figure(figsize=FIGURE_SIZE, dpi=DPI, layout="constrained")
    depth, cost = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    layers = report.layers
    head = _first_global(layers)
    for axes in (depth, cost):
        if head is not None:
            axes.axvspan(head - 0.5, len(layers) - 0.5, color=HEAD_SHADE, zorder=0)
        axes.grid(True, which="major", axis="y", color="#DDDDDD", linewidth=0.6)
        axes.set_axisbelow(True)
    _draw_depth(depth, report, head)
    _draw_cost(cost, layers)
    _label_layers(cost, depth, layers, FIGURE_SIZE[0] * DPI * 0.85)
    figure.suptitle(report.name, fontsize=16, fontweight="bold")
    depth.set_title(_subtitle(report), fontsize=10, color="#444444")
    return figure


def _draw_depth(axes: Axes, report: Report, head: int | None) -> None:
    """Receptive field (input pixels) and feature-map size (cells) along one axis per layer,
    log y: the height H of images and video, the length L of audio."""
    layers = report.layers
    index = range(len(layers))
    rank = len(report.input_shape)
    axis = _plotted_axis(report.input_shape)
    fields = [_field_along(layer, axis) for layer in layers]
    spatial = [
        float(layer.output_shape[1 + axis])
        if axis is not None and len(layer.output_shape) == rank
        else math.nan
        for layer in layers
    ]
    name = "length L" if rank == 2 else "height H"
    marker = "o" if len(layers) <= MARKER_LIMIT else None
    axes.plot(
        index,
        fields,
        color=FIELD_COLOR,
        linewidth=2,
        marker=marker,
        markersize=4,
        drawstyle="steps-mid" if marker is None else "default",
        label="receptive field (input pixels)",
    )
    axes.plot(
        index,
        spatial,
        color=SPATIAL_COLOR,
        linewidth=2,
        linestyle="--",
        marker=marker,
        markersize=4,
        drawstyle="steps-mid" if marker is None else "default",
        label=f"feature map {name} (cells)",
    )
    if head is not None:
        tail = range(head, len(layers))
        axes.plot(
            tail,
            [fields[i] for i in tail],
            linestyle="none",
            marker="D",
            markersize=7,
            color=FIELD_COLOR,
            markeredgecolor="black",
            label="global: every unit sees the whole input",
        )
    if axis is not None:
        size = report.input_shape[1 + axis]
        axes.axhline(size, color="#777777", linewidth=1, linestyle=":")
        axes.annotate(
            f"input {name.split()[0]} {size}",
            (0, size),
            xytext=(2, 3),
            textcoords="offset points",
            fontsize=8,
            color="#555555",
        )
    axes.set_yscale("log", base=2)
    axes.yaxis.set_major_formatter(_plain_formatter())
    axes.set_ylabel("pixels / cells (log scale)")
    axes.legend(loc="best", fontsize=9, framealpha=0.9)


def _draw_cost(axes: Axes, layers: Sequence[LayerReport]) -> None:
    """Parameters and MACs per layer as side-by-side bars, log y; zero counts draw nothing."""
    index = range(len(layers))
    width = 0.42
    params = [layer.params or math.nan for layer in layers]
    macs = [layer.macs or math.nan for layer in layers]
    axes.bar(
        [i - width / 2 for i in index], params, width=width, color=PARAMS_COLOR, label="parameters"
    )
    axes.bar(
        [i + width / 2 for i in index], macs, width=width, color=MACS_COLOR, label="MACs per sample"
    )
    axes.set_yscale("log")
    axes.yaxis.set_major_formatter(_si_formatter())
    axes.set_ylabel("count (log scale)")
    axes.set_xlabel("layer (in order)")
    axes.set_xlim(-0.7, len(layers) - 0.3)
    heaviest = max(index, key=lambda i: layers[i].params)
    if layers[heaviest].params:
        layer = layers[heaviest]
        # the note grows away from the nearer edge, so that it is never cut off
        right = heaviest > len(layers) / 2
        axes.annotate(
            f"largest: {layer.name}, {_si(layer.params)} params",
            (heaviest, layer.params),
            xytext=(4 if right else -4, 8),
            textcoords="offset points",
            ha="right" if right else "left",
            fontsize=8,
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none"},
            arrowprops={"arrowstyle": "-", "color": "#555555", "linewidth": 0.8},
        )
    # above the bars, where the hidden tick labels of the panel above would be
    axes.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, fontsize=9, frameon=False)
    axes.margins(y=0.12)


def _label_layers(
    labelled: Axes, other: Axes, layers: Sequence[LayerReport], width_px: float
) -> None:
    """Ticks at the starts of groups (layer1.0, layer1.1, ...), thinned so that no labels touch."""
    names = [layer.name for layer in layers]
    ticks, depth = _tick_positions(names, width_px)
    labels = _short_labels([names[i] for i in ticks], depth)
    labelled.set_xticks(ticks, labels, rotation=90, fontsize=8)
    other.tick_params(axis="x", labelbottom=False)
    for axes in (labelled, other):
        axes.grid(True, axis="x", color="#E4E4E4", linewidth=0.6)


def _tick_positions(names: Sequence[str], width_px: float) -> tuple[list[int], int]:
    """Indices of group starts to label, and the depth of dotted name parts they are named by.

    A start at depth d is where the first d dotted parts of a name change. The depth is the
    deepest whose starts fit the plot's width at LABEL_PITCH_PX each; within it, starts of
    top-level groups and of larger groups are kept first, and no two kept ones are closer than
    the pitch.
    """
    room = max(2, int(width_px / LABEL_PITCH_PX))
    gap = max(1, math.ceil(LABEL_PITCH_PX * len(names) / width_px))
    parts = [name.split(".") for name in names]
    candidates: dict[int, tuple[int, int]] = {}  # index -> (depth, -span)
    depth = 1
    for level in range(1, max(len(p) for p in parts) + 1):
        starts = [
            i for i in range(len(names)) if i == 0 or parts[i][:level] != parts[i - 1][:level]
        ]
        if level > 1 and len(starts) > room:
            break
        depth = level
        for start, end in zip(starts, [*starts[1:], len(names)], strict=True):
            candidates.setdefault(start, (level, start - end))
    kept: list[int] = []
    last = len(names) - 1
    for index in sorted(candidates, key=lambda i: (i not in (0, last), *candidates[i], i)):
        if all(abs(index - other) >= gap for other in kept):
            kept.append(index)
    return sorted(kept), depth


def _short_labels(names: Sequence[str], depth: int) -> list[str]:
    """Each name cut to the fewest dotted parts (up to `depth`) that tell it from its neighbours.

    `features.1.conv.0.0` between `features.0.0` and `features.2.conv.0.0` becomes `features.1`.
    """
    parts = [name.split(".") for name in names]
    labels = []
    for index, own in enumerate(parts):
        neighbours = parts[max(0, index - 1) : index] + parts[index + 1 : index + 2]
        cut = 1
        while cut < depth and any(own[:cut] == other[:cut] for other in neighbours):
            cut += 1
        labels.append(".".join(own[:cut]))
    return labels


def _first_global(layers: Sequence[LayerReport]) -> int | None:
    for index, layer in enumerate(layers):
        if layer.receptive_field is not None and layer.receptive_field.is_global:
            return index
    return None


def _plotted_axis(input_shape: tuple[int, ...]) -> int | None:
    """The spatial axis plotted: L of (C, L), H of (C, H, W) and of (C, T, H, W); None for (F,).

    Video plots H rather than T: clips are a few frames long, and H is where fields grow.
    """
    spatial = len(input_shape) - 1
    return None if spatial == 0 else max(0, spatial - 2)


def _field_along(layer: LayerReport, axis: int | None) -> float:
    field = layer.receptive_field
    return math.nan if field is None or axis is None else float(field.size[axis])


def _subtitle(report: Report) -> str:
    totals = report.totals
    shape = "x".join(str(dim) for dim in report.input_shape)
    return (
        f"input {shape}  ·  {len(report.layers)} layers  ·  {_si(totals.params)} params  ·  "
        f"{_si(totals.macs)} MACs per sample  ·  grey: global head"
    )


def _si(count: float) -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if count >= scale:
            return f"{count / scale:.3g}{suffix}"
    return f"{count:.3g}"


def _si_formatter() -> FuncFormatter:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: _si(value))


def _plain_formatter() -> FuncFormatter:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda value, _: f"{value:g}")


__all__ = ["PLOT_FORMATS", "plot_report"]
