"""`archspec compile` and the --freeze and --weights flags, run in-process."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

import archspec
from archspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
RESNET18 = str(ROOT / "archspec" / "zoo" / "resnet18.yaml")
LENET5 = str(ROOT / "archspec" / "zoo" / "lenet5.yaml")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pt"
    torch.save(archspec.compile(RESNET18).state_dict(), path)
    return path


def test_compile_to_source_that_imports_and_matches(tmp_path, capsys):
    output = tmp_path / "lenet.py"
    code, out, err = run(capsys, "compile", LENET5, "-o", str(output))
    assert code == 0
    assert "warning: layer 'fc1': holds 78% of all parameters" in err
    assert out == f"{output}: PyTorch source of lenet5 (61,706 params, 61,706 trainable)\n"
    assert "lenet5" in output.read_text().split('"""')[1]
    spec = importlib.util.spec_from_file_location("generated_lenet", output)
    assert spec is not None
    assert spec.loader is not None
    generated = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generated)
    compiled = archspec.compile(LENET5).eval()
    network = generated.Lenet5().eval()
    network.load_state_dict(compiled.state_dict(), strict=True)
    image = torch.randn(2, 1, 32, 32)
    assert torch.equal(network(image), compiled(image))


def test_compile_to_weights(tmp_path, capsys):
    output = tmp_path / "lenet.pt"
    code, _, _ = run(capsys, "compile", LENET5, "-o", str(output))
    assert code == 0
    state = torch.load(output, weights_only=True)
    assert set(state) == set(archspec.compile(LENET5).state_dict())


def test_an_unknown_output_kind_is_a_usage_error(tmp_path, capsys):
    code, out, err = run(capsys, "compile", LENET5, "-o", str(tmp_path / "model.onnx"))
    assert (code, out) == (2, "")
    assert "use .py (PyTorch source), .pt (state_dict), .pth (state_dict)" in err
    assert not (tmp_path / "model.onnx").exists()


def test_transfer_learning_from_the_command_line(tmp_path, capsys, checkpoint):
    output = tmp_path / "finetune.pt"
    code, out, err = run(
        capsys,
        "compile",
        RESNET18,
        "--set",
        "num_classes=10",
        "--weights",
        str(checkpoint),
        "--no-strict",
        "--freeze",
        "*",
        "--freeze",
        "!fc",
        "-o",
        str(output),
    )
    assert code == 0
    assert "weights not loaded: 2 of different shape: fc.weight (network [10, 512], file " in err
    assert out.endswith("(11,181,642 params, 5,130 trainable)\n")
    state = torch.load(output, weights_only=True)
    assert torch.equal(state["conv1.weight"], torch.load(checkpoint)["conv1.weight"])


def test_strict_weights_that_do_not_fit_write_nothing_and_keep_the_old_file(
    tmp_path, capsys, checkpoint
):
    output = tmp_path / "model.pt"
    output.write_bytes(b"previous")
    code, out, err = run(
        capsys,
        "compile",
        RESNET18,
        "--set",
        "num_classes=10",
        "--weights",
        str(checkpoint),
        "-o",
        str(output),
    )
    assert (code, out) == (2, "")
    assert "weights do not fit the network: 2 of different shape" in err
    assert "Traceback" not in err
    assert output.read_bytes() == b"previous"
    assert list(tmp_path.iterdir()) == [output]


def test_analyze_reports_what_freeze_leaves_trainable(capsys):
    code, out, _ = run(
        capsys,
        "analyze",
        RESNET18,
        "--set",
        "num_classes=10",
        "--freeze",
        "*",
        "--freeze",
        "!fc",
        "--format",
        "json",
    )
    assert code == 0
    totals = json.loads(out)["totals"]
    assert (totals["trainable_params"], totals["frozen_params"]) == (5_130, 11_176_512)


def test_a_freeze_pattern_that_matches_nothing_is_an_error(capsys):
    code, out, err = run(capsys, "analyze", LENET5, "--freeze", "conv9")
    assert (code, out) == (2, "")
    assert err.startswith("archspec: error: --freeze: freeze pattern 'conv9' matches no layer")
