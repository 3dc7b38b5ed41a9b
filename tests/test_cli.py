"""The `archspec` command: exit codes, output formats, overrides, and a torch-free start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from archspec.cli import main

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(str(path) for path in (ROOT / "archspec" / "zoo").glob("*.yaml"))
LENET5 = str(ROOT / "archspec" / "zoo" / "lenet5.yaml")
RESNET18 = str(ROOT / "archspec" / "zoo" / "resnet18.yaml")

BAD_SPEC = """\
name: bad
input: [6, 8, 8]
layers:
  - {name: conv1, op: conv2d, out_channels: 8, kernel: 3, groups: 4}
"""


@pytest.fixture
def bad_spec(tmp_path: Path) -> str:
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_SPEC)
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# -- validate -----------------------------------------------------------------------------------


def test_validate_every_example(capsys):
    assert len(EXAMPLES) >= 8
    code, out, _ = run(capsys, "validate", *EXAMPLES)
    assert code == 0
    lines = out.splitlines()
    assert [line.split(": ok (")[0] for line in lines] == EXAMPLES
    assert all(" layers, " in line and line.endswith(" MACs)") for line in lines)
    assert f"{LENET5}: ok (12 layers, 61,706 params, 416,520 MACs)" in lines
    assert f"{RESNET18}: ok (69 layers, 11,689,512 params, 1,814,073,344 MACs)" in lines


def test_validate_reports_bad_and_good_specs(capsys, bad_spec):
    code, out, err = run(capsys, "validate", bad_spec, LENET5)
    assert code == 2
    assert (
        f"{bad_spec}:4:5: error: layer 'conv1': conv2d expects groups (=4) to divide "
        "in_channels (=6)" in err.splitlines()
    )
    assert out.splitlines() == [f"{LENET5}: ok (12 layers, 61,706 params, 416,520 MACs)"]
    assert "Traceback" not in err


def test_validate_prints_warnings_with_positions(capsys):
    code, _, err = run(capsys, "validate", LENET5)
    assert code == 0
    assert err.startswith(f"{LENET5}:15:5: warning: layer 'fc1': holds 78% of all parameters")


def test_validate_unreadable_file(capsys, tmp_path):
    missing = str(tmp_path / "missing.yaml")
    code, out, err = run(capsys, "validate", missing, LENET5)
    assert code == 2
    assert f"cannot read spec {missing!r}" in err
    assert out.count(": ok (") == 1


# -- analyze ------------------------------------------------------------------------------------


def test_analyze_json(capsys):
    code, out, err = run(capsys, "analyze", RESNET18, "--format", "json")
    assert code == 0
    assert err == ""  # resnet18 earns no warning
    data = json.loads(out)
    assert data["name"] == "resnet18"
    assert data["input_shape"] == ["N", 3, 224, 224]
    assert data["totals"]["params"] == 11_689_512
    assert data["totals"]["macs"] == 1_814_073_344
    assert data["layers"][-1]["output_shape"] == ["N", 1000]


def test_analyze_json_keeps_warnings_off_stdout(capsys):
    code, out, err = run(capsys, "analyze", LENET5, "--format", "json")
    assert code == 0
    data = json.loads(out)  # stdout is nothing but the report
    assert [warning["line"] for warning in data["warnings"]] == [15]
    assert "warning: layer 'fc1'" in err


def test_analyze_markdown(capsys):
    code, out, _ = run(capsys, "analyze", LENET5, "--format", "markdown")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "**lenet5** — input (N, 1, 32, 32)"
    assert "| `conv1` | conv2d | (N, 6, 28, 28) | 156 | 117,600 | 5 /1 |" in lines
    assert "| `fc3` | linear | (N, 10) | 850 | 840 | global |" in lines
    assert "- params: 61,706 (trainable 61,706, frozen 0)" in lines


@pytest.mark.parametrize("explicit", [True, False], ids=["--format table", "default"])
def test_analyze_table(capsys, explicit):
    code, out, _ = run(capsys, "analyze", RESNET18, *(["--format", "table"] if explicit else []))
    assert code == 0
    assert out.startswith("resnet18 — input (N, 3, 224, 224)")
    rows = out.splitlines()
    # a pipe gets whole rows: each layer on one line, never a wrapped cell
    (last,) = [row for row in rows if " layer4.1.relu2 " in row]
    assert "(N, 512, 7, 7)" in last
    assert "435 /32" in last
    (total,) = [row for row in rows if " Total " in row]
    assert "11,689,512" in total
    assert "1,814,073,344" in total


def test_analyze_set_changes_the_head(capsys):
    code, out, _ = run(capsys, "analyze", RESNET18, "--set", "num_classes=10", "--format", "json")
    assert code == 0
    data = json.loads(out)
    fc = data["layers"][-1]
    assert fc["name"] == "fc"
    assert fc["output_shape"] == ["N", 10]
    # 10 x (512 + 1)
    assert fc["params"] == 5130
    assert data["totals"]["params"] == 11_689_512 - 513_000 + 5130


def test_validate_set_changes_the_head(capsys):
    code, out, _ = run(capsys, "validate", LENET5, "--set", "num_classes=2")
    assert code == 0
    # fc3: 2 x (84 + 1) = 170 instead of 850
    assert out == f"{LENET5}: ok (12 layers, 61,026 params, 415,848 MACs)\n"


def test_analyze_set_unknown_parameter(capsys):
    code, out, err = run(capsys, "analyze", LENET5, "--set", "nonexistent=1")
    assert code == 2
    assert out == ""
    assert err == (
        "archspec: error: the spec has no parameter 'nonexistent'; its parameters: num_classes\n"
    )


def test_analyze_set_misspelt_parameter_suggests(capsys):
    code, out, err = run(capsys, "analyze", LENET5, "--set", "num_clases=10")
    assert code == 2
    assert out == ""
    assert "no parameter 'num_clases' (did you mean 'num_classes'?)" in err
    assert "Traceback" not in err


def test_analyze_set_invalid_value_points_at_the_layer(capsys):
    code, out, err = run(capsys, "analyze", LENET5, "--set", "num_classes=0")
    assert code == 2
    assert out == ""
    assert err.startswith(
        f"{LENET5}:19:43: error: layer 'fc3': linear field 'out_features': "
        "input should be greater than or equal to 1, got 0"
    )


def test_analyze_set_boolean_size_is_an_error(capsys):
    code, out, _ = run(capsys, "analyze", LENET5, "--set", "num_classes=true", "--format", "json")
    assert code == 2
    assert out == ""


def test_analyze_input_shape(capsys):
    code, out, _ = run(
        capsys, "analyze", RESNET18, "--input-shape", "3x320x320", "--format", "markdown"
    )
    assert code == 0
    assert out.startswith("**resnet18** — input (N, 3, 320, 320)")
    (row,) = [line for line in out.splitlines() if line.startswith("| `layer4.1.relu2` |")]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert (cells[2], cells[5]) == ("(N, 512, 10, 10)", "435 /32")


def test_analyze_input_shape_not_sizes(capsys):
    with pytest.raises(SystemExit, match=r"^2$"):
        main(["analyze", LENET5, "--input-shape", "abc"])
    out, err = capsys.readouterr()
    assert out == ""
    assert "argument --input-shape: expected sizes joined by x (3x224x224), got 'abc'" in err


def test_analyze_input_shape_out_of_range(capsys):
    code, out, err = run(capsys, "analyze", LENET5, "--input-shape", "1x0x32")
    assert code == 2
    assert out == ""
    assert (
        err == "archspec: error: input shape must be 1 to 4 sizes from 1 to 1000000 ([F], "
        "[C, L], [C, H, W] or [C, T, H, W]), got [1, 0, 32]\n"
    )


def test_analyze_input_shape_too_small(capsys):
    code, out, err = run(capsys, "analyze", LENET5, "--input-shape", "1x8x8")
    assert code == 2
    assert out == ""  # a bad spec writes no output
    assert err.startswith(f"{LENET5}:11:5: error: layer 'conv2': conv2d kernel 5")


def test_analyze_bad_spec_writes_nothing_to_stdout(capsys, bad_spec):
    code, out, err = run(capsys, "analyze", bad_spec, "--format", "json")
    assert code == 2
    assert out == ""
    assert err == (
        f"{bad_spec}:4:5: error: layer 'conv1': conv2d expects groups (=4) to divide "
        "in_channels (=6)\n"
    )


def test_expression_error_says_error_once(capsys, tmp_path):
    path = tmp_path / "expr.yaml"
    path.write_text(
        "name: t\ninput: [4]\nparams: {n: 2}\nlayers:\n"
        "  - {name: fc, op: linear, out_features: n + foo}\n"
    )
    code, _, err = run(capsys, "validate", str(path))
    assert code == 2
    assert "unknown name 'foo'" in err
    assert err.count("error:") == 1


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit, match=r"^2$"):
        main([])
    assert "required: COMMAND" in capsys.readouterr().err


# -- start-up cost ------------------------------------------------------------------------------

CHILD = """\
import contextlib, io, sys
import archspec.cli
with contextlib.redirect_stdout(io.StringIO()) as out:
    code = archspec.cli.main({argv!r})
assert code == 0, code
assert out.getvalue(), "no output"
heavy = sorted(name for name in ("torch", "onnx", "rich", "argcomplete") if name in sys.modules)
assert not heavy, heavy
print("torch-free", code)
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["analyze", "archspec/zoo/resnet50.yaml", "--format", "json"],
        ["validate", "archspec/zoo/resnet50.yaml"],
        ["analyze", "zoo:resnet101", "--depth", "1"],
        ["zoo"],
        ["schema"],
    ],
    ids=["analyze", "validate", "analyze-zoo", "zoo", "schema"],
)
def test_cli_never_imports_torch_or_onnx(argv):
    child = subprocess.run(
        [sys.executable, "-c", CHILD.format(argv=argv)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout == "torch-free 0\n"
