"""SqueezeNet 1.1, DenseNet-121, GoogLeNet and Inception-v3: torchvision's parameter and MAC counts.

Static analysis only, no torch: the figures were checked against torchvision 0.29.1 (the models
built with aux_logits=False and transform_input=False where those exist), whose weights load into
the compiled examples with strict=True and give identical logits
(`benchmarks/torchvision_parity.py`).
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pytest

import archspec

EXAMPLES = Path(__file__).resolve().parent.parent / "archspec" / "zoo"


class Published(NamedTuple):
    """What torchvision states of a model, and what the example expands to."""

    params: int  # torchvision's parameter total, without the auxiliary heads
    macs: int  # exact; torchvision's meta "_ops" is this in G, to 3 decimals
    gflops: float  # torchvision's meta "_ops", GFLOPS counted as multiply-accumulates
    input: tuple[int, int, int]
    layers: int


ZOO = {
    "squeezenet1_1": Published(1_235_496, 349_151_936, 0.349, (3, 224, 224), 66),
    "densenet121": Published(7_978_856, 2_834_161_664, 2.834, (3, 224, 224), 427),
    "googlenet": Published(6_624_904, 1_498_376_192, 1.498, (3, 224, 224), 197),
    "inception_v3": Published(23_834_568, 5_713_216_096, 5.713, (3, 299, 299), 310),
}


@pytest.mark.parametrize("name", ZOO)
def test_params_and_macs_match_torchvision(name):
    published = ZOO[name]
    totals = archspec.analyze(archspec.load(EXAMPLES / f"{name}.yaml")).totals
    assert (totals.params, totals.trainable_params) == (published.params, published.params)
    assert totals.macs == published.macs
    assert round(totals.macs / 1e9, 3) == published.gflops


@pytest.mark.parametrize("name", ZOO)
def test_input_output_and_layer_count(name):
    published = ZOO[name]
    spec = archspec.load(EXAMPLES / f"{name}.yaml")
    report = archspec.analyze(spec)
    assert report.input_shape == published.input
    assert len(spec.network.outputs) == 1
    assert report.layer(spec.network.outputs[0]).output_shape == (1000,)
    assert len(report.layers) == published.layers


def test_the_class_count_is_a_parameter():
    spec = archspec.load(EXAMPLES / "inception_v3.yaml", overrides={"num_classes": 10})
    report = archspec.analyze(spec)
    assert report.layer("fc").output_shape == (10,)
    # the head shrinks from 2048 x 1000 + 1000 to 2048 x 10 + 10 parameters
    assert report.totals.params == ZOO["inception_v3"].params - 2049 * 990
