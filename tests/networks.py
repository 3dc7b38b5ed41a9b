"""A hypothesis strategy for whole random networks, written as spec YAML, that torch can run.

Chains of conv2d (kernel, stride, padding incl. same/valid, dilation, groups), max and average
pooling (ceil_mode, dilation), residual blocks joined by `add`, and two branches joined by
`concat`; every merge joins paths of one stride and one window centre, so receptive fields are
exact. Shapes are tracked with torch on the meta device: a block torch rejects is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import yaml
from hypothesis import strategies as st
from torch import nn


def _meta(module: nn.Module, shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """Output shape of `module` by torch's own rules, without computing anything."""
    # batch 2: in training mode batch norm refuses a batch of one 1x1 map
    c, h, w = module(torch.empty(2, *shape, device="meta")).shape[1:]
    return c, h, w


def _pair(draw: st.DrawFn, low: int, high: int) -> tuple[int, int]:
    first = draw(st.integers(low, high))
    return (first, first) if draw(st.booleans()) else (first, draw(st.integers(low, high)))


def _conv(
    name: str, in_channels: int, out: int, kernel: tuple[int, int], **fields: Any
) -> dict[str, Any]:
    """A conv2d layer entry, and the module that torch would build for it (under key `torch`)."""
    stride, padding = fields.get("stride", (1, 1)), fields.get("padding", (0, 0))
    dilation, groups = fields.get("dilation", (1, 1)), fields.get("groups", 1)
    module = nn.Conv2d(in_channels, out, kernel, stride, padding, dilation, groups, device="meta")
    entry = {"name": name, "op": "conv2d", "out_channels": out, "kernel": list(kernel)}
    entry.update(
        {key: list(value) if isinstance(value, tuple) else value for key, value in fields.items()}
    )
    return {**entry, "torch": module}


class _Builder:
    """Appends layers while tracking the shape with torch; a block torch rejects is dropped."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        self.shape = shape
        self.layers: list[dict[str, Any]] = []
        self.last = "input"

    def name(self) -> str:
        return f"l{len(self.layers)}"

    def add(self, entries: list[dict[str, Any]], shapes: dict[str, tuple[int, int, int]]) -> None:
        self.layers += [{k: v for k, v in entry.items() if k != "torch"} for entry in entries]
        self.last = entries[-1]["name"]
        self.shape = shapes[self.last]


def _run(
    entries: list[dict[str, Any]], shape: tuple[int, int, int], last: str
) -> dict[str, tuple[int, int, int]]:
    """Shapes of each entry by torch's rules (add and concat by their definitions)."""
    shapes = {last: shape}
    previous = last
    for entry in entries:
        sources = [shapes[name] for name in entry.get("inputs", [previous])]
        if entry["op"] == "add":
            assert len(set(sources)) == 1, f"the generator built an add of {sources}"
            shapes[entry["name"]] = sources[0]
        elif entry["op"] == "concat":
            assert len({s[1:] for s in sources}) == 1, f"the generator built a concat of {sources}"
            shapes[entry["name"]] = (sum(s[0] for s in sources), *sources[0][1:])
        else:
            shapes[entry["name"]] = _meta(entry["torch"], sources[0])
        previous = entry["name"]
    return shapes


@st.composite
def _conv_block(draw: st.DrawFn, b: _Builder) -> list[dict[str, Any]]:
    in_channels = b.shape[0]
    groups = draw(st.sampled_from([g for g in range(1, in_channels + 1) if in_channels % g == 0]))
    fields: dict[str, Any] = {"dilation": _pair(draw, 1, 2), "groups": groups}
    mode = draw(st.sampled_from(["explicit", "explicit", "same", "valid"]))
    if mode == "same":
        fields["padding"] = "same"
    else:
        fields["stride"] = _pair(draw, 1, 2)
        fields["padding"] = _pair(draw, 0, 3) if mode == "explicit" else "valid"
    out = groups * draw(st.integers(1, max(1, 6 // groups)))
    entries = [_conv(b.name(), in_channels, out, _pair(draw, 1, 5), **fields)]
    if draw(st.booleans()):
        entries.append({"name": f"l{len(b.layers) + 1}", "op": "relu", "torch": nn.ReLU()})
    return entries


@st.composite
def _pool_block(draw: st.DrawFn, b: _Builder) -> list[dict[str, Any]]:
    kernel = _pair(draw, 1, 3)
    # torch's limit, p <= k // 2 (tests/test_ops.py checks archspec keeps it too)
    padding = (draw(st.integers(0, kernel[0] // 2)), draw(st.integers(0, kernel[1] // 2)))
    stride = _pair(draw, 1, 2) if draw(st.booleans()) else None
    ceil_mode = draw(st.booleans())
    entry: dict[str, Any] = {
        "name": b.name(),
        "kernel": list(kernel),
        "padding": list(padding),
        "ceil_mode": ceil_mode,
    }
    if stride is not None:
        entry["stride"] = list(stride)
    if draw(st.booleans()):
        dilation = _pair(draw, 1, 2)
        entry.update(op="max_pool2d", dilation=list(dilation))
        entry["torch"] = nn.MaxPool2d(kernel, stride, padding, dilation, ceil_mode=ceil_mode)
    else:
        entry["op"] = "avg_pool2d"
        entry["torch"] = nn.AvgPool2d(kernel, stride, padding, ceil_mode)
    return [entry]


@st.composite
def _residual_block(draw: st.DrawFn, b: _Builder) -> list[dict[str, Any]]:
    """Two convs plus a shortcut, joined by `add`: identity, or a strided 1x1 conv (ResNet)."""
    start, channels, n = b.last, b.shape[0], len(b.layers)
    if draw(st.booleans()):  # identity shortcut: 'same'-size convs, odd kernels centred by padding
        entries = []
        for index in range(2):
            kernel = (draw(st.sampled_from([1, 3, 5])), draw(st.sampled_from([1, 3, 5])))
            dilation = _pair(draw, 1, 2)
            padding = tuple(d * (k - 1) // 2 for k, d in zip(kernel, dilation, strict=True))
            entries.append(
                _conv(
                    f"l{n + index}", channels, channels, kernel, dilation=dilation, padding=padding
                )
            )
        entries.append({"name": f"l{n + 2}", "op": "add", "inputs": [f"l{n + 1}", start]})
    else:  # downsampling: 3x3/2 then 3x3 on the main path, 1x1/2 on the shortcut
        out = draw(st.integers(1, 6))
        entries = [
            _conv(f"l{n}", channels, out, (3, 3), stride=(2, 2), padding=(1, 1)),
            {"name": f"l{n + 1}", "op": "batchnorm2d", "torch": nn.BatchNorm2d(out, device="meta")},
            _conv(f"l{n + 2}", out, out, (3, 3), padding=(1, 1)),
            {**_conv(f"l{n + 3}", channels, out, (1, 1), stride=(2, 2)), "inputs": [start]},
            {"name": f"l{n + 4}", "op": "add", "inputs": [f"l{n + 2}", f"l{n + 3}"]},
        ]
    return [*entries, {"name": f"l{n + len(entries)}", "op": "relu", "torch": nn.ReLU()}]


@st.composite
def _concat_block(draw: st.DrawFn, b: _Builder) -> list[dict[str, Any]]:
    """Two convs of one stride on the same input, concatenated; their windows share a centre:
    d(k-1)/2 - p is equal, hence the output sizes too."""
    start, channels, n = b.last, b.shape[0], len(b.layers)
    stride = _pair(draw, 1, 2)
    kernels, dilations, paddings = [], [], []
    for _ in range(2):  # height, then width
        k_a, d_a = draw(st.integers(1, 5)), draw(st.integers(1, 2))
        extent_a = d_a * (k_a - 1) + 1
        d_b = 1 if extent_a % 2 == 0 else draw(st.integers(1, 2))  # even extents need d odd
        k_b = draw(
            st.sampled_from([k for k in range(1, 6) if (d_b * (k - 1) + 1) % 2 == extent_a % 2])
        )
        p_a = draw(st.integers(0, 3))
        p_b = p_a + (d_b * (k_b - 1) + 1 - extent_a) // 2
        shift = max(0, -p_b)
        kernels.append((k_a, k_b))
        dilations.append((d_a, d_b))
        paddings.append((p_a + shift, p_b + shift))
    branches = []
    for index in range(2):
        kernel = (kernels[0][index], kernels[1][index])
        dilation = (dilations[0][index], dilations[1][index])
        padding = (paddings[0][index], paddings[1][index])
        entry = _conv(
            f"l{n + index}",
            channels,
            draw(st.integers(1, 4)),
            kernel,
            stride=stride,
            dilation=dilation,
            padding=padding,
        )
        branches.append({**entry, "inputs": [start]})
    return [*branches, {"name": f"l{n + 2}", "op": "concat", "inputs": [f"l{n}", f"l{n + 1}"]}]


@dataclass(frozen=True)
class Network:
    """A random spec: layers as YAML-ready dicts, at any input size (every block is size-safe)."""

    channels: int
    height: int
    width: int
    layers: tuple[dict[str, Any], ...]

    def text(self, height: int | None = None, width: int | None = None) -> str:
        shape = [self.channels, height or self.height, width or self.width]
        return yaml.safe_dump(
            {"name": "random", "input": shape, "layers": list(self.layers)}, sort_keys=False
        )


@st.composite
def networks(draw: st.DrawFn) -> Network:
    odd = st.integers(8, 32).map(lambda half: 2 * half + 1)  # 17 .. 65
    channels, height, width = draw(st.integers(1, 4)), draw(odd), draw(odd)
    b = _Builder((channels, height, width))
    for _ in range(draw(st.integers(1, 4))):
        block = draw(st.sampled_from([_conv_block, _pool_block, _residual_block, _concat_block]))
        try:
            entries = draw(block(b))
            shapes = _run(entries, b.shape, b.last)
        except RuntimeError:  # torch rejects this block at this size: leave it out
            continue
        b.add(entries, shapes)
    if not b.layers:
        b.add([{"name": "l0", "op": "identity"}], {"l0": b.shape})
    return Network(channels, height, width, tuple(b.layers))
