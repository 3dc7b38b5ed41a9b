"""ONNX export: every example exports and verifies; names, metadata, errors and atomic writes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import onnx
import onnxruntime
import pytest
import torch

import archspec
from archspec.backends.onnx import ExportError, export_onnx, spec_digest
from archspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
LENET5 = ROOT / "examples" / "lenet5.yaml"

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


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.stem)
def test_every_example_exports_and_verifies(path, tmp_path):
    output = tmp_path / f"{path.stem}.onnx"
    report = export_onnx(archspec.load(path), output)
    assert report.worst_difference is not None
    assert report.worst_difference <= 1e-4
    assert report.batches == (1, 3)
    model = onnx.load(output)
    layers = {layer.name for layer in archspec.analyze(archspec.load(path)).layers}
    # every convolution and linear layer keeps its name, as node and as tensor
    for node in model.graph.node:
        if node.op_type in {"Conv", "Gemm"}:
            assert node.name.split("/")[0] in layers, node.name
    assert report.checked_shapes >= sum(node.op_type == "Conv" for node in model.graph.node)


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
    metadata = {prop.key: prop.value for prop in onnx.load(tmp_path / "lenet.onnx").metadata_props}
    assert metadata == {
        "archspec.spec": "lenet5",
        "archspec.version": archspec.__version__,
        "archspec.spec_sha256": spec_digest(archspec.analyze(spec)),
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
    from archspec.backends import onnx as backend

    output = tmp_path / "lenet.onnx"
    output.write_bytes(b"previous")
    monkeypatch.setattr(backend, "TOLERANCE", -1.0)  # no difference can pass
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
    assert "expected a batch size or 'dynamic', got 'zero'" in capsys.readouterr().err


def test_ctrl_c_during_export_is_an_interrupt_not_a_failed_export(tmp_path, monkeypatch):
    def interrupted_export(*args: object, **kwargs: object) -> None:
        os.kill(os.getpid(), signal.SIGINT)  # torch.export turns this into another error
        raise ValueError("Duplicate dispatch rule")

    monkeypatch.setattr(torch.onnx, "export", interrupted_export)
    with pytest.raises(KeyboardInterrupt):
        export_onnx(archspec.load(LENET5), tmp_path / "lenet.onnx")
    assert list(tmp_path.iterdir()) == []
