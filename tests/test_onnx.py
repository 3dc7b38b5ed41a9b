"""ONNX export: every example exports and verifies; names, metadata, errors and atomic writes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import onnx
import onnxruntime
import pytest
import torch

import archspec
from archspec.backends import budgets, onnx_checks, opsets
from archspec.backends import onnx as backend
from archspec.backends.onnx import ExportError, export_onnx, spec_digest
from archspec.backends.opsets import DEFAULT_OPSET, MIN_OPSET, max_opset, supported_opsets
from archspec.backends.torch import compile_module
from archspec.cli import main
from archspec.ops import OPS

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "archspec" / "zoo").glob("*.yaml"))
LENET5 = ROOT / "archspec" / "zoo" / "lenet5.yaml"

TWO_OUTPUTS = """
name: two_heads
input: [3, 16, 16]
layers:
  - {name: stem, op: conv2d, out_channels: 8, kernel: 3, padding: 1}
  - {name: bn, op: batchnorm2d}
  - {name: act, op: relu}
  - {name: left, op: conv2d, out_channels: 4, kernel: 1, inputs: act}
  - {name: right, op: max_pool2d, kernel: 3, stride: 1, padding: 1, inputs: act}
  - {name: both, op: concat, inputs: [left, right]}
  - {name: pooled, op: adaptive_avg_pool2d}
  - {name: flat, op: flatten}
  - {name: scores, op: softmax}
outputs: [both, scores]
"""

TINY = "name: tiny\ninput: [3, 8, 8]\nlayers:\n  - {op: conv2d, out_channels: 4, kernel: 3}\n"


#: The examples whose export `make test` verifies, with parameters that shrink the slow ones.
#: Torch's exporter takes about 40 ms a layer: the whole zoo would take minutes, and the rest
#: repeat these ops and constructs (`test_every_op_is_exported_somewhere` keeps that true).
#: `benchmarks/export_zoo.py` exports and verifies every example.
EXPORTED = {
    "lenet5": {},
    "vgg16": {},  # 553 MB of weights: an export must hold them at most three times
    "resnet18": {},
    "unet": {"size": 64, "base": 8},  # transposed convolutions, concatenated skips
    "m5": {},
    "r3d_18": {"frames": 4, "size": 32},
}
# The other zoo models export in benchmarks/export_zoo.py; their ops are all reached here.

#: Networks that reach the ops no exported example uses, one per input rank.
EVERY_OP_2D = """
name: every_op_2d
input: [4, 12, 12]
layers:
  - {name: pad, op: pad, padding: [1, 1, 2, 0], mode: reflect}
  - {name: gn, op: group_norm, num_groups: 2}
  - {name: inorm, op: instance_norm, affine: true}
  - {name: lrn, op: local_response_norm, size: 3}
  - {name: elu, op: elu}
  - {name: gelu, op: gelu}
  - {name: mish, op: mish}
  - {name: softplus, op: softplus}
  - {name: prelu, op: prelu, num_parameters: channels}
  - {name: hardswish, op: hardswish}
  - {name: hardsigmoid, op: hardsigmoid}
  - {name: shuffled, op: channel_shuffle, groups: 2}
  - {name: leaky, op: leaky_relu}
  - {name: relu6, op: relu6}
  - {name: sd, op: stochastic_depth, p: 0.1}
  - {name: drop, op: dropout2d}
  - {name: identity, op: identity}
  - {name: shuffle, op: pixel_shuffle, upscale_factor: 2}
  - {name: unshuffle, op: pixel_unshuffle, downscale_factor: 2}
  - {name: first, op: split, sizes: [1, 3], index: 1}
  - {name: crop, op: crop, size: [10, 8]}
  - {name: upsample, op: upsample, inputs: [crop, pad], mode: bilinear}
  - {name: cropped, op: crop, inputs: [upsample, crop]}
  - {name: gate, op: adaptive_max_pool2d}
  - {name: gated, op: mul, inputs: [cropped, gate]}
  - {name: silu, op: silu}
  - {name: sigmoid, op: sigmoid}
  - {name: transpose, op: conv_transpose2d, out_channels: 4, kernel: 3, stride: 2, padding: 1}
  - {name: scores, op: softmax}
  - {name: second_half, op: chunk, chunks: 2, index: 1}
  - {name: pooled, op: mean, dims: [2, 3]}
"""
EVERY_OP_1D = """
name: every_op_1d
input: [2, 32]
layers:
  - {op: conv1d, out_channels: 4, kernel: 3, padding: 1}
  - {op: avg_pool1d, kernel: 2}
  - {op: max_pool1d, kernel: 2}
"""
EVERY_OP_3D = """
name: every_op_3d
input: [2, 4, 8, 8]
layers:
  - {op: conv3d, out_channels: 4, kernel: 3, padding: 1}
  - {op: batchnorm3d}
  - {op: avg_pool3d, kernel: 2}
  - {op: max_pool3d, kernel: [1, 2, 2]}
"""
#: Tokens, channels-last maps and attention (ViT's, Swin's, ConvNeXt's ops), small: the window
#: attention pads a 10x10 map to 12x12 windows of 4 and shifts them.
EVERY_OP_TOKENS = """
name: every_op_tokens
input: [3, 20, 20]
layers:
  - {name: patches, op: conv2d, out_channels: 8, kernel: 2, stride: 2}
  - {name: norm2d, op: layer_norm}
  - {name: last, op: permute, dims: [0, 2, 3, 1]}
  - {name: attn, op: shifted_window_attention, num_heads: 2, window_size: 4, shift_size: 2}
  - {name: merged, op: patch_merging}
  - {name: norm, op: layer_norm}
  - {name: reduce, op: linear, out_features: 16, bias: false}
  - {name: seq, op: flatten, start_dim: 1, end_dim: 2}
  - {name: cls, op: parameter, shape: [1, 1, 16], init: trunc_normal}
  - {name: joined, op: concat, inputs: [cls, seq], dim: 1}
  - {name: pos, op: parameter, shape: [1, 26, 16], init: normal}
  - {name: embedded, op: add, inputs: [joined, pos]}
  - {name: mha, op: multihead_attention, num_heads: 4}
  - {name: swapped, op: transpose, dim0: 1, dim1: 2}
  - {name: regrouped, op: reshape, shape: [-1, 26], layout: CL}
  - {name: viewed, op: view, shape: [16, 26], layout: CL}
  - {name: back, op: permute, dims: [0, 2, 1]}
  - {name: tail, op: slice, dim: 1, start: 1}
  - {name: scale, op: parameter, shape: [16], init: ones}
  - {name: scaled, op: mul, inputs: [tail, scale]}
  - {name: halved, op: scale, factor: 0.5}
  - {name: first, op: select, dim: 1, index: 0}
"""
EVERY_OP = {
    "every_op_2d": EVERY_OP_2D,
    "every_op_1d": EVERY_OP_1D,
    "every_op_3d": EVERY_OP_3D,
    "every_op_tokens": EVERY_OP_TOKENS,
}


def _exported() -> dict[str, archspec.Spec]:
    specs = {
        name: archspec.load(ROOT / "archspec" / "zoo" / f"{name}.yaml", overrides)
        for name, overrides in EXPORTED.items()
    }
    return specs | {name: archspec.load(text) for name, text in EVERY_OP.items()}


def test_every_op_is_exported_somewhere():
    exported = {layer.op_name for spec in _exported().values() for layer in spec.network.layers}
    assert exported == set(OPS), f"ops no export test reaches: {sorted(set(OPS) - exported)}"


@pytest.mark.parametrize("name", [*EXPORTED, *EVERY_OP])
def test_exports_verify(name, tmp_path):
    spec = _exported()[name]
    output = tmp_path / f"{name}.onnx"
    report = export_onnx(spec, output)
    assert report.worst_difference is not None
    assert report.worst_difference <= 1e-4
    assert report.batches == (1, 3)
    model = onnx.load(output)
    layers = {layer.name for layer in archspec.analyze(spec).layers}
    # every convolution and linear layer keeps its name, as node and as tensor
    for node in model.graph.node:
        if node.op_type in {"Conv", "Gemm"}:
            assert node.name.split("/")[0] in layers, node.name
    assert report.checked_shapes >= sum(node.op_type == "Conv" for node in model.graph.node)
    assert model.graph.name == spec.network.name
    _assert_weights_named_after_layers(model, spec)


def _assert_weights_named_after_layers(model, spec, weights=None):
    """Each initializer is the module's tensor under its state_dict key (with its values, when
    the `weights` exported are given), or is named after a layer: a tensor computed from the
    module's (`conv.weight_folded`) or a constant after the node that reads it
    (`flatten/Reshape.shape`)."""
    keys = set(compile_module(spec, device="meta").state_dict())
    layers = {layer.name for layer in archspec.analyze(spec).layers}
    for tensor in model.graph.initializer:
        name = tensor.name
        if name in keys:
            if weights is not None:
                values = torch.from_numpy(onnx.numpy_helper.to_array(tensor).copy())
                assert torch.equal(values, weights[name]), f"{name} is not the module's tensor"
            continue
        assert name.endswith("_folded") or "/" in name, name
        prefixes = {name[:end] for end, character in enumerate(name) if character in "./"}
        assert prefixes & layers, f"{name} is named after no layer"


def test_names_read_like_the_spec(tmp_path):
    export_onnx(archspec.load(LENET5), tmp_path / "lenet.onnx")
    graph = onnx.load(tmp_path / "lenet.onnx").graph
    assert [node.name for node in graph.node][:4] == [
        "conv1/Conv",
        "act1/Tanh",
        "pool1/AveragePool",
        "conv2/Conv",
    ]
    assert [node.output[0] for node in graph.node][:4] == ["conv1", "act1", "pool1", "conv2"]
    assert [value.name for value in graph.input] == ["input"]
    assert [value.name for value in graph.output] == ["fc3"]


FOLDED = """
name: folded
input: [3, 12, 12]
layers:
  - {name: conv, op: conv2d, out_channels: 8, kernel: 3, padding: 1, bias: false}
  - {name: bn, op: batchnorm2d}
  - {name: act, op: relu}
  - {name: biased, op: conv2d, out_channels: 8, kernel: 1}
  - {name: norm, op: batchnorm2d}
  - {name: rows, op: flatten, start_dim: 2}
  - {name: tokens, op: permute, dims: [0, 2, 1]}
  - {name: fc, op: linear, out_features: 4}
  - {name: scale, op: parameter, shape: [4], init: ones}
  - {name: scaled, op: mul, inputs: [fc, scale]}
"""


def _trained(spec):
    """Weights away from their initial values, as training leaves them: a batch norm folded
    into its conv then changes the conv's weight and bias, and no two norms' weights are equal
    (the exporter keeps one of equal tensors)."""
    generator = torch.Generator().manual_seed(0)
    state = archspec.compile(spec).state_dict()
    for key, value in state.items():
        if value.is_floating_point():  # upwards: running variances stay positive
            state[key] = value + 0.1 * torch.rand(value.shape, generator=generator)
    return state


def test_weights_keep_their_keys_and_computed_ones_are_named_after_their_source(tmp_path):
    spec = archspec.load(FOLDED)
    weights = _trained(spec)
    report = export_onnx(spec, tmp_path / "folded.onnx", weights=weights)
    assert report.worst_difference is not None
    model = onnx.load(tmp_path / "folded.onnx")
    assert {tensor.name for tensor in model.graph.initializer} == {
        # batch norms folded into the convs, one without a bias and one with
        "conv.weight_folded",
        "conv.bias_folded",
        "biased.weight_folded",
        "biased.bias_folded",
        "fc.weight_folded",  # transposed for MatMul
        "fc.bias",
        "scale",  # a parameter layer's tensor bears the layer's name, its state_dict key
        "rows/Reshape.shape",
        "scale/Concat.inputs_1",  # the shape its broadcast over the batch takes
        "scale/Concat.inputs_2",
    }
    _assert_weights_named_after_layers(model, spec, weights)
    nodes = {node.name: list(node.input) for node in model.graph.node}
    assert nodes["conv/Conv"] == ["input", "conv.weight_folded", "conv.bias_folded"]
    assert nodes["scale/Expand"][0] == "scale"
    assert nodes["rows/Reshape"] == ["norm", "rows/Reshape.shape"]


#: Zoo models whose exported weights are checked against the ones given, small.
WEIGHTED = {
    # layer scales (parameter layers), linear layers on channels-last maps, shared constants
    "convnext_tiny": {"image_size": 32, "widths": [8, 16, 32, 64], "depths": [1, 1, 2, 1]},
}


@pytest.mark.parametrize("name", WEIGHTED)
def test_zoo_weights_are_named_after_their_layers(name, tmp_path):
    spec = archspec.load(ROOT / "archspec" / "zoo" / f"{name}.yaml", WEIGHTED[name])
    weights = _trained(spec)
    report = export_onnx(spec, tmp_path / f"{name}.onnx", weights=weights)
    assert report.worst_difference is not None
    model = onnx.load(tmp_path / f"{name}.onnx")
    assert model.graph.name == name
    _assert_weights_named_after_layers(model, spec, weights)
    names = {tensor.name for tensor in model.graph.initializer}
    assert "features.1.0.layer_scale" in names
    assert "features.1.0.block.3.weight_folded" in names
    assert "features.1.0.block.2.weight" in names  # not shared with features.0.1's


SHADOWING = """
name: shadowing
input: [4, 6, 6]
layers:
  - {name: shuffle, op: channel_shuffle, groups: 2}
  - {name: transpose, op: relu}
  - {name: val_1, op: identity}
  - {name: grown, op: upsample, scale_factor: 2, mode: bilinear}
  - {name: view, op: conv2d, out_channels: 4, kernel: 1}
"""


@pytest.mark.parametrize("output", ["view", "upsample_bilinear2d", "val_0", "val_3"])
def test_a_layer_named_like_a_tensor_of_the_exporter_keeps_its_name(tmp_path, output):
    """The exporter names its own tensors and constants (`transpose` and `view` in a channel
    shuffle, `val_1`, the Resize's `upsample_bilinear2d`); layers of those names, the output
    among them, must leave each name one tensor, the layer's (onnx.checker and shape inference
    depend on it)."""
    spec = archspec.load(SHADOWING.replace("name: view,", f"name: {output},"))
    report = export_onnx(spec, tmp_path / "shadowing.onnx")
    assert report.worst_difference is not None
    assert report.checked_shapes == 4  # all but the identity, which has no node
    graph = onnx.load(tmp_path / "shadowing.onnx").graph
    outputs = [name for node in graph.node for name in node.output]
    assert len(outputs) == len(set(outputs))
    assert {"shuffle", "transpose", "grown"} <= set(outputs)
    assert [value.name for value in graph.output] == [output]


def test_a_split_read_by_a_folded_conv_keeps_the_conv_s_name_off_its_slice(tmp_path):
    """The exporter places a split's Slice at its reader, in the reader's scope; when that
    reader is a conv folded into its norm, the Slice must not be taken for the conv."""
    spec = archspec.load(
        """
name: split_into_folded_conv
input: [8, 16, 16]
layers:
  - {name: conv0, op: conv2d, out_channels: 8, kernel: 1}
  - {name: relu, op: relu}
  - {name: part, op: split, sizes: [4, 4], index: 0}
  - {name: conv, op: conv2d, out_channels: 4, kernel: 3, stride: 2, padding: 1}
  - {name: bn, op: batchnorm2d}
"""
    )
    report = export_onnx(spec, tmp_path / "split.onnx")
    assert report.worst_difference is not None
    graph = onnx.load(tmp_path / "split.onnx").graph
    assert "conv" not in {name for node in graph.node for name in node.output}


def test_several_outputs_keep_their_layer_names_and_a_dynamic_batch(tmp_path):
    spec = archspec.load(TWO_OUTPUTS)
    export_onnx(spec, tmp_path / "two.onnx")
    model = onnx.load(tmp_path / "two.onnx")
    assert [value.name for value in model.graph.output] == ["both", "scores"]
    batch = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert batch.dim_param == "N"
    session = onnxruntime.InferenceSession(str(tmp_path / "two.onnx"))
    both, scores = session.run(None, {"input": torch.randn(5, 3, 16, 16).numpy()})
    assert both.shape == (5, 12, 16, 16)  # 4 conv channels + 8 pooled ones
    assert scores.shape == (5, 12)


def test_a_fixed_batch_and_opset(tmp_path):
    report = export_onnx(archspec.load(LENET5), tmp_path / "lenet.onnx", opset=20, batch=4)
    model = onnx.load(tmp_path / "lenet.onnx")
    assert report.batches == (4,)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 4
    assert {entry.version for entry in model.opset_import if entry.domain == ""} == {20}


def test_metadata_names_the_spec_version_and_digest(tmp_path):
    spec = archspec.load(LENET5)
    export_onnx(spec, tmp_path / "lenet.onnx", verify=False)
    model = onnx.load(tmp_path / "lenet.onnx")
    # the graph's name is what a viewer shows as the model's title
    assert model.graph.name == "lenet5"
    assert model.producer_name == "archspec"
    assert model.doc_string == f"lenet5, exported by archspec {archspec.__version__}"
    metadata = {prop.key: prop.value for prop in model.metadata_props}
    assert metadata == {
        "archspec.spec": "lenet5",
        "archspec.version": archspec.__version__,
        "archspec.spec_sha256": spec_digest(archspec.analyze(spec)),
        "archspec.opset": "18",
    }
    other = archspec.load(LENET5, overrides={"num_classes": 7})
    assert spec_digest(archspec.analyze(other)) != metadata["archspec.spec_sha256"]


def test_weights_are_exported(tmp_path):
    torch.manual_seed(1)
    state = archspec.compile(LENET5).state_dict()
    export_onnx(archspec.load(LENET5), tmp_path / "lenet.onnx", weights=state)
    initializers = {t.name: t for t in onnx.load(tmp_path / "lenet.onnx").graph.initializer}
    exported = onnx.numpy_helper.to_array(initializers["conv1.weight"])
    assert torch.equal(torch.from_numpy(exported.copy()), state["conv1.weight"])


def test_a_failed_verification_writes_nothing_and_keeps_the_old_file(tmp_path, monkeypatch):
    output = tmp_path / "lenet.onnx"
    output.write_bytes(b"previous")
    monkeypatch.setattr(onnx_checks, "TOLERANCE", -1.0)  # no difference can pass
    with pytest.raises(ExportError, match=r"onnxruntime differs from torch at batch 1"):
        export_onnx(archspec.load(LENET5), output)
    assert output.read_bytes() == b"previous"
    assert list(tmp_path.iterdir()) == [output]


def test_cli_export_prints_one_line_and_errors_exit_2(tmp_path, capsys):
    output = tmp_path / "lenet.onnx"
    assert main(["export", str(LENET5), "-o", str(output), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(
        f"{output}: ONNX opset 18, 12 nodes, dynamic batch; 12 layer shapes match"
    )
    assert "Traceback" not in err
    assert main(["export", str(LENET5), "-o", str(tmp_path / "lenet.pt")]) == 2
    _, err = capsys.readouterr()
    assert "export writes ONNX" in err
    with pytest.raises(SystemExit, match="2"):  # argparse's own usage error
        main(["export", str(LENET5), "-o", str(output), "--batch", "zero"])
    # the range in the message is the CLI's to word
    assert re.search(r"expected a batch size .*or 'dynamic', got 'zero'", capsys.readouterr().err)


def test_ctrl_c_during_export_is_an_interrupt_not_a_failed_export(tmp_path, monkeypatch):
    def interrupted_export(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # torch.export turns this into another error
        raise ValueError("Duplicate dispatch rule")

    monkeypatch.setattr(torch.onnx, "export", interrupted_export)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(archspec.load(LENET5), tmp_path / "lenet.onnx")
    assert list(tmp_path.iterdir()) == []


def _default_opset(model):
    return [entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")]


@pytest.mark.parametrize("opset", [7, 17, 0, -1, 99, True, "18", 18.0])
def test_an_unsupported_opset_fails_before_any_work(opset, tmp_path, monkeypatch):
    monkeypatch.setattr(backend, "analyze", None)  # calling it would raise a TypeError
    top = max_opset()
    with pytest.raises(
        ExportError, match=rf"^error: opset .+: archspec exports opsets 18 to {top}$"
    ):
        export_onnx(archspec.load(TINY), tmp_path / "tiny.onnx", opset=opset)
    assert list(tmp_path.iterdir()) == []


def test_the_opset_just_above_the_range_is_refused(tmp_path):
    with pytest.raises(ExportError, match=rf"opset {max_opset() + 1} is not supported"):
        export_onnx(archspec.load(TINY), tmp_path / "tiny.onnx", opset=max_opset() + 1)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("opset", list(supported_opsets()))
def test_every_supported_opset_is_written_exactly(opset, tmp_path, capfd):
    output = tmp_path / "tiny.onnx"
    # verification is the same code at every opset; the top one runs it, the others only write
    report = export_onnx(archspec.load(TINY), output, opset=opset, verify=opset == max_opset())
    model = onnx.load(output)
    assert _default_opset(model) == [opset]
    assert report.opset == opset
    assert {prop.key: prop.value for prop in model.metadata_props}["archspec.opset"] == str(opset)
    assert capfd.readouterr() == ("", "")  # no converter log records or tracebacks


def test_the_supported_range_starts_at_the_exporters_own_opset():
    from torch.onnx._internal.exporter import _constants

    assert MIN_OPSET == DEFAULT_OPSET == _constants.TORCHLIB_OPSET
    assert max_opset() <= onnx.defs.onnx_opset_version()


def test_the_opset_module_imports_neither_torch_nor_onnx():
    probe = (
        "import sys, archspec.backends.opsets; print(sorted({'torch', 'onnx'} & set(sys.modules)))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert found.stdout.strip() == "[]"


def test_the_top_opset_is_the_newest_onnxruntime_accepts(monkeypatch):
    session = onnxruntime.InferenceSession

    def older_runtime(data, *args, **kwargs):
        if onnx.load_from_string(data).opset_import[0].version > 21:
            raise RuntimeError("Current official support for domain ai.onnx is till opset 21.")
        return session(data, *args, **kwargs)

    monkeypatch.setattr(onnxruntime, "InferenceSession", older_runtime)
    assert opsets._onnxruntime_max(25) == 21


def test_a_model_of_another_opset_than_asked_for_is_not_written(tmp_path, monkeypatch):
    export = backend._export

    def converter_gave_up(module, report, outputs, opset, batch):
        return export(module, report, outputs, DEFAULT_OPSET, batch)

    monkeypatch.setattr(backend, "_export", converter_gave_up)
    with pytest.raises(ExportError, match=r"torch wrote ONNX opset 18 when asked for opset 20"):
        export_onnx(archspec.load(TINY), tmp_path / "tiny.onnx", opset=20, verify=False)
    assert list(tmp_path.iterdir()) == []


HUGE = """
name: huge
input: [1000, 1, 1]
layers:
  - {op: flatten}
  - {name: fc, op: linear, out_features: 700000}
"""


def test_a_network_too_large_for_one_file_is_refused_before_it_is_built(tmp_path, monkeypatch):
    monkeypatch.setattr(backend, "compile_module", None)  # building it would raise a TypeError
    with pytest.raises(
        ExportError,
        match=r"'huge' has 2\.61 GiB of parameters and buffers, more than an ONNX file holds",
    ):
        export_onnx(archspec.load(HUGE), tmp_path / "huge.onnx")
    assert list(tmp_path.iterdir()) == []


def test_buffers_count_towards_the_size_limit(tmp_path, monkeypatch):
    spec = archspec.load(
        TINY.replace("kernel: 3}", "kernel: 3}\n  - {op: batchnorm2d, affine: false}")
    )
    weights = 4 * archspec.analyze(spec).totals.params
    monkeypatch.setattr(budgets, "GRAPH_ROOM", 0)
    monkeypatch.setattr(budgets, "ONNX_LIMIT", weights)  # parameters fit, buffers do not
    with pytest.raises(ExportError, match=r"GiB of parameters and buffers"):
        export_onnx(spec, tmp_path / "tiny.onnx")
    assert list(tmp_path.iterdir()) == []


def test_a_model_protobuf_cannot_serialize_is_an_export_error():
    class TooLarge:
        def SerializeToString(self) -> bytes:
            raise ValueError("Message onnx.ModelProto exceeds maximum protobuf size of 2GB")

    with pytest.raises(ExportError, match=r"cannot serialize the ONNX model of 'tiny': .*2GB"):
        backend._serialize(TooLarge(), "tiny")


def test_a_model_onnxruntime_refuses_is_an_export_error(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise RuntimeError("[ONNXRuntimeError] : 10 : INVALID_GRAPH")

    monkeypatch.setattr(onnxruntime, "InferenceSession", refuse)
    with pytest.raises(ExportError, match=r"onnxruntime cannot load the exported model of 'tiny'"):
        export_onnx(archspec.load(TINY), tmp_path / "tiny.onnx")
    assert list(tmp_path.iterdir()) == []
