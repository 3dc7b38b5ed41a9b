"""`archspec graph`: Mermaid and DOT against golden files, collapsing by depth, rendering."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import archspec
from archspec.cli import main
from archspec.outputs.diagram import Diagram

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden" / "graphs"
CASES = [("lenet5", None), ("resnet18", 2)]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def diagram_of(name: str, depth: int | None) -> Diagram:
    return archspec.draw(ROOT / "archspec" / "zoo" / f"{name}.yaml", depth)


@pytest.mark.parametrize(("name", "depth"), CASES)
@pytest.mark.parametrize(("suffix", "render"), [(".mmd", Diagram.mermaid), (".dot", Diagram.dot)])
def test_drawing_matches_golden(name, depth, suffix, render, request):
    actual = render(diagram_of(name, depth))
    path = GOLDEN / f"{name}{'-depth' + str(depth) if depth else ''}{suffix}"
    if request.config.getoption("--update-goldens"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(actual)
        return
    assert actual == path.read_text()


def test_depth_collapses_resnet50_to_about_a_dozen_boxes():
    diagram = diagram_of("resnet50", 1)
    assert [box.name for box in diagram.boxes] == [
        "input",
        "conv1",
        "bn1",
        "relu",
        "maxpool",
        "layer1",
        "layer2",
        "layer3",
        "layer4",
        "avgpool",
        "flatten",
        "fc",
    ]
    assert diagram.boxes[5].op == "32 layers"
    assert diagram.boxes[5].params == sum(
        layer.params
        for layer in archspec.analyze(
            archspec.load(ROOT / "archspec" / "zoo" / "resnet50.yaml")
        ).layers
        if layer.name.startswith("layer1.")
    )
    assert len(diagram_of("resnet50", None).boxes) == 176  # every layer and the input


def test_a_residual_block_is_drawn_as_usually_sketched():
    diagram = diagram_of("resnet18", 3)
    names = [box.name for box in diagram.boxes]
    add = names.index("layer1.0.add")
    assert diagram.boxes[add].merge == "+"
    into_add = {names[edge.source]: edge.skip for edge in diagram.edges if edge.target == add}
    assert into_add == {"layer1.0.bn2": False, "maxpool": True}
    shortcut = names.index("layer2.0.downsample")
    into_shortcut = [edge for edge in diagram.edges if edge.target == shortcut]
    assert [(names[edge.source], edge.skip) for edge in into_shortcut] == [("layer1.1.relu2", True)]


def test_merges_are_drawn_with_their_op_s_drawing_symbol():
    spec = archspec.load(
        """
name: branches
input: [3, 8, 8]
layers:
  - {name: left, op: conv2d, out_channels: 4, kernel: 1}
  - {name: right, op: conv2d, out_channels: 4, kernel: 1, inputs: input}
  - {name: joined, op: concat, inputs: [left, right]}
  - {name: squeezed, op: conv2d, out_channels: 4, kernel: 1}
  - {name: summed, op: add, inputs: [squeezed, left]}
"""
    )
    merges = {box.name: box.merge for box in archspec.draw(spec).boxes}
    assert merges == {
        "input": None,
        "left": None,
        "right": None,
        "joined": "||",
        "squeezed": None,
        "summed": "+",
    }


def test_resampling_and_channel_parts_are_marked():
    spec = archspec.load(
        """
name: marks
input: [4, 8, 8]
layers:
  - {name: part, op: chunk, chunks: 2, index: 0}
  - {name: down, op: pixel_unshuffle, downscale_factor: 2}
  - {name: up, op: upsample, scale_factor: 2}
  - {name: grown, op: conv_transpose2d, out_channels: 2, kernel: 2, stride: 2}
  - {name: conv, op: conv2d, out_channels: 2, kernel: 1}
"""
    )
    ops = {box.name: box.op for box in archspec.draw(spec).boxes}
    assert ops == {
        "input": "",
        "part": "\N{PITCHFORK} chunk",
        "down": "\N{DOWNWARDS ARROW} pixel_unshuffle",
        "up": "\N{UPWARDS ARROW} upsample",
        "grown": "\N{UPWARDS ARROW} conv_transpose2d",
        "conv": "conv2d",
    }


def test_mermaid_marks_skips_as_dotted_and_merges_as_circles():
    text = diagram_of("resnet18", 3).mermaid()
    assert '(("+"))' in text
    assert "-.->" in text


def test_cli_writes_mermaid_and_refuses_unknown_suffixes(tmp_path, capsys):
    output = tmp_path / "net.mmd"
    assert (
        main(
            [
                "graph",
                str(ROOT / "archspec" / "zoo" / "resnet50.yaml"),
                "-o",
                str(output),
                "--depth",
                "1",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == f"{output}: 12 boxes, 11 edges (0 skip connections)\n"
    assert output.read_text().startswith("flowchart TD\n")
    assert (
        main(
            ["graph", str(ROOT / "archspec" / "zoo" / "lenet5.yaml"), "-o", str(tmp_path / "a.txt")]
        )
        == 2
    )
    assert "use .mmd, .dot, .svg, .png" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
@pytest.mark.parametrize("suffix", [".svg", ".png"])
def test_renders_images_with_graphviz(tmp_path, suffix):
    output = tmp_path / f"net{suffix}"
    assert (
        main(
            [
                "graph",
                str(ROOT / "archspec" / "zoo" / "resnet18.yaml"),
                "-o",
                str(output),
                "--depth",
                "2",
                "--params",
            ]
        )
        == 0
    )
    data = output.read_bytes()
    assert data.startswith(PNG_SIGNATURE) if suffix == ".png" else b"<svg" in data[:400]


def test_missing_graphviz_is_a_clear_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    output = tmp_path / "net.svg"
    assert main(["graph", str(ROOT / "archspec" / "zoo" / "lenet5.yaml"), "-o", str(output)]) == 2
    assert "needs Graphviz's `dot` program (Debian/Ubuntu: apt install graphviz" in (
        capsys.readouterr().err
    )
    assert not output.exists()


def test_a_network_built_in_python_draws_and_saves(tmp_path):
    network = archspec.Network(
        "tiny",
        (3, 8, 8),
        [
            archspec.Layer("conv", archspec.ops.Conv2d(out_channels=4, kernel=3, padding=1)),
            archspec.Layer("act", archspec.ops.ReLU()),
            archspec.Layer("skip", archspec.ops.Conv2d(out_channels=4, kernel=1), ("input",)),
            archspec.Layer("add", archspec.ops.Add(), ("act", "skip")),
        ],
    )
    diagram = archspec.draw(network)
    assert [box.name for box in diagram.boxes] == ["input", "conv", "act", "skip", "add"]
    assert diagram.skips == 2  # input -> skip and skip -> add leave the main flow
    diagram.save(tmp_path / "tiny.dot", params=True)
    assert (tmp_path / "tiny.dot").read_text() == diagram.dot(params=True)
    with pytest.raises(archspec.ArchspecError, match=r"cannot tell how to draw .*tiny\.jpg"):
        diagram.save(tmp_path / "tiny.jpg")
    assert not (tmp_path / "tiny.jpg").exists()
