"""Receptive fields measured: backpropagate from one output position, see which pixels it reached.

The static field of a unit is its centre (offset + index * stride) and size, clipped to the image;
the measured one is the bounding box of the non-zero input gradient once the network is a positive
average (tests/oracle.py). No number here comes from the recurrence archspec uses. Random networks
(tests/networks.py) are also checked layer by layer against torch's shapes and parameters.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings
from networks import Network, networks
from oracle import (
    FieldProbe,
    layer_params,
    layer_shapes,
    make_positive_average,
    positive_image,
    spatial_layers,
    static_box,
)

import archspec
from archspec.analysis import ReceptiveField
from archspec.backends.torch import compile_module

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# torch warns, once per process, that 'same' padding with an even kernel copies the input: a
# performance notice about a legal convolution, nothing to do with what is checked here
pytestmark = pytest.mark.filterwarnings(
    "ignore:Using padding='same' with even kernel lengths:UserWarning"
)

#: Input sizes other than the spec's own, so that the corner unit's field ends inside the image.
#: MobileNetV2's last field (491 pixels) reaches pixel 245 from the corner. ResNet-101's (971)
#: would need 512x512, seconds of compute; at 224 its fields are clipped on both sides.
ZOO_SIZES = {"mobilenet_v2": 256}


def measured_mismatches(
    report: archspec.Report,
    module: Any,
    layers: list[str],
    units: dict[str, list[tuple[int, int]]],
    dtype: torch.dtype,
) -> list[str]:
    """Compare, unit by unit, the gradient's bounding box with the report's clipped field."""
    make_positive_average(module)
    module.to(dtype)
    probe = FieldProbe(module, layers, positive_image(report.input_shape, dtype))
    spatial = (report.input_shape[1], report.input_shape[2])
    found = []
    for name in layers:
        field = report.layer(name).receptive_field
        assert field is not None
        for row, col in units[name]:
            expected = static_box(field, row, col, spatial)
            measured = probe.box(name, row, col)
            if measured != expected:
                found.append(f"{name} unit ({row}, {col}): static {expected}, measured {measured}")
    return found


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda path: path.stem)
def test_zoo_fields_match_gradients(path):
    """A middle layer and the last spatial one: their top-left unit and a central one."""
    spec = archspec.load(path)
    size = ZOO_SIZES.get(path.stem)
    report = archspec.analyze(spec, (spec.graph.input_shape[0], size, size) if size else None)
    chosen = spatial_layers(report)
    if not chosen:
        pytest.skip(f"{path.stem} has no layer with a spatial receptive field")
    chosen = [chosen[len(chosen) // 2], chosen[-1]]
    units = {
        layer.name: [(0, 0), (layer.output_shape[1] // 2, layer.output_shape[2] // 2)]
        for layer in chosen
    }
    # float32 keeps the large nets fast: the smallest non-zero gradient, at a field's far corner,
    # is about 1e-15 here (ResNet-50, MobileNetV2), far above float32's smallest normal, 1e-38
    module = compile_module(spec, report)
    found = measured_mismatches(report, module, list(units), units, torch.float32)
    assert not found


@settings(deadline=None)
@given(network=networks())
def test_random_networks_match_torch(network):
    spec = archspec.load(network.text())
    report = archspec.analyze(spec)
    torch.manual_seed(0)
    module = compile_module(spec, report)
    shapes = layer_shapes(module, torch.randn(2, *report.input_shape))
    assert shapes == {layer.name: layer.output_shape for layer in report.layers}
    assert layer_params(module, report) == {layer.name: layer.params for layer in report.layers}


def _inside(field: ReceptiveField, axis: int, count: int, extent: int) -> int | None:
    """The middle one of the units whose field lies wholly inside the image along `axis`."""
    half = (field.size[axis] - 1) / 2
    centres = [field.offset[axis] + i * field.stride[axis] for i in range(count)]
    inside = [
        i for i, centre in enumerate(centres) if centre - half >= 0 and centre + half < extent
    ]
    return inside[len(inside) // 2] if inside else None


def _fitting_unit(network: Network) -> tuple[archspec.Spec, archspec.Report, int, int]:
    """The spec at the drawn size, or grown (odd sizes, per axis) until a unit of its last layer
    has a field the image holds whole; with that unit's (row, col)."""
    height, width = network.height, network.width
    while True:
        spec = archspec.load(network.text(height, width))
        report = archspec.analyze(spec)
        last = report.layers[-1]
        field = last.receptive_field
        assert field is not None
        row = _inside(field, 0, last.output_shape[1], height)
        col = _inside(field, 1, last.output_shape[2], width)
        if row is not None and col is not None:
            return spec, report, row, col
        assert height + width < 10_000, f"no unit of {last.name} fits whole in {height}x{width}"
        if row is None:
            height = max(height + 2, field.size[0] | 1)
        if col is None:
            width = max(width + 2, field.size[1] | 1)


@settings(deadline=None)
@given(network=networks())
def test_random_network_field_matches_gradients(network):
    """A unit of the last layer whose field the image holds whole, so nothing is clipped.

    Its extreme pixels are then reached along chains of real (not padding) units, so the measured
    box must equal the static one exactly, dilation holes and dropped edges notwithstanding.
    """
    spec, report, row, col = _fitting_unit(network)
    last = report.layers[-1]
    assert last.receptive_field is not None
    assert last.receptive_field.aligned, "the generator joins only paths of one centre and stride"
    module = compile_module(spec, report)
    units = {last.name: [(row, col)]}
    assert not measured_mismatches(report, module, [last.name], units, torch.float64)
