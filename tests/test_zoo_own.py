"""The zoo's networks that torchvision does not have: U-Net against a hand-written module, the
YOLOv5-style backbone and neck against Ultralytics' published sizes, and M5 on raw audio."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import archspec

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "archspec" / "zoo"


def _unet_reference():
    spec = importlib.util.spec_from_file_location(
        "unet_reference", ROOT / "benchmarks" / "unet_reference.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("variant", "size", "output"), [(None, 64, 64), ("paper", 188, 4)])
def test_unet_equals_the_hand_written_module(variant, size, output):
    """Keys, parameters, MACs (FlopCounterMode) and outputs, padded and as in the paper."""
    figures = _unet_reference().compare(base=4, variant=variant, size=size)
    assert figures["same keys"]
    assert figures["params"][0] == figures["params"][1]
    assert figures["macs"][0] == figures["macs"][1]
    assert figures["output"] == (1, 2, output, output)
    assert figures["difference"] == 0


def test_the_paper_unet_maps_a_572_tile_to_388():
    report = archspec.analyze(archspec.load(EXAMPLES / "unet.yaml", variant="paper"))
    assert report.input_shape == (1, 572, 572)
    assert report.layers[-1].output_shape == (2, 388, 388)
    # the crops line the skips up with the decoder: no unaligned paths
    assert not [w for w in report.warnings if "different receptive-field centres" in w.message]


#: Ultralytics' YOLOv5 (v6) parameter totals less the Detect head, whose 1x1 convolutions map
#: the three outputs to 3 x 85 channels: (C3 + C4 + C5 + 3) x 255 parameters.
YOLOV5 = {
    "n": 1_872_157 - (64 + 128 + 256 + 3) * 255,
    "s": 7_235_389 - (128 + 256 + 512 + 3) * 255,
    "m": 21_190_557 - (192 + 384 + 768 + 3) * 255,
    None: 46_563_709 - (256 + 512 + 1024 + 3) * 255,
}


@pytest.mark.parametrize("variant", list(YOLOV5))
def test_csp_pan_variants_have_yolov5_sizes_and_three_named_outputs(variant):
    spec = archspec.load(EXAMPLES / "csp_pan.yaml", variant=variant)
    report = archspec.analyze(spec)
    assert report.totals.params == YOLOV5[variant]
    assert spec.network.output_keys == ("p3", "p4", "p5")
    spatial = [report.layer(name).output_shape[1:] for name in report.outputs]
    assert spatial == [(80, 80), (40, 40), (20, 20)]  # strides 8, 16 and 32 of 640


def test_m5_reads_raw_audio_and_its_field_is_counted_in_samples():
    report = archspec.analyze(archspec.load(EXAMPLES / "m5.yaml"))
    assert report.input_shape == (1, 8000)
    field = report.layer("pool4").receptive_field
    assert field is not None
    assert (field.size, field.stride) == ((1772,), (1024,))
    assert report.layers[-1].output_shape == (35,)
