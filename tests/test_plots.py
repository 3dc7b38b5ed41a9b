"""`archspec analyze --plot`: PNG and SVG files, suffix errors, and matplotlib kept optional."""

from __future__ import annotations

import itertools
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from archspec.analysis import analyze
from archspec.cli import main
from archspec.errors import UsageError
from archspec.frontend.loader import load
from archspec.ir import Layer, Network
from archspec.ops import OPS
from archspec.outputs.plots import (
    DPI,
    FIGURE_SIZE,
    _plotted_axis,
    _short_labels,
    _tick_positions,
    plot_report,
)

pytest.importorskip("matplotlib")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "archspec" / "zoo"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, which must come right after the signature."""
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR"
    assert length == 13
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.mark.parametrize("name", ["resnet18", "lenet5"])
def test_png_is_an_image_of_the_figure_size(tmp_path, capsys, name):
    out = tmp_path / f"{name}.png"
    assert main(["analyze", str(EXAMPLES / f"{name}.yaml"), "--plot", str(out)]) == 0
    assert "fc" in capsys.readouterr().out  # the report is still printed
    assert png_size(out.read_bytes()) == (1200, 900)
    assert (round(FIGURE_SIZE[0] * DPI), round(FIGURE_SIZE[1] * DPI)) == (1200, 900)
    assert [path.name for path in tmp_path.iterdir()] == [out.name]  # no temporary file left


def test_svg_is_xml_with_an_svg_root(tmp_path, capsys):
    out = tmp_path / "resnet18.svg"
    code = main(
        ["analyze", str(EXAMPLES / "resnet18.yaml"), "--format", "json", "--plot", str(out)]
    )
    assert code == 0
    capsys.readouterr()
    root = ET.parse(out).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    text = out.read_text()
    assert "resnet18" in text  # the title, kept as text
    assert "<dc:date>" not in text  # no date written into the file


def test_plot_replaces_an_existing_file(tmp_path):
    out = tmp_path / "lenet5.png"
    out.write_bytes(b"old")
    plot_report(analyze(load(EXAMPLES / "lenet5.yaml")), out)
    assert out.read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize(
    ("shape", "axis"), [((16,), None), ((1, 8000), 0), ((3, 32, 32), 0), ((3, 16, 112, 112), 1)]
)
def test_the_plotted_axis_is_length_or_height(shape, axis):
    # (F,) has none; (C, L) plots L; (C, H, W) and (C, T, H, W) plot H, not T
    assert _plotted_axis(shape) == axis


@pytest.mark.parametrize("rank", [1, 3])
def test_audio_and_video_reports_plot(tmp_path, rank):
    layers = [
        ("conv", f"conv{rank}d", {"out_channels": 4, "kernel": 3, "stride": 2}),
        ("relu", "relu", {}),
        ("pool", f"max_pool{rank}d", {"kernel": 2}),
        ("avgpool", f"adaptive_avg_pool{rank}d", {"output_size": 1}),
    ]
    made = [Layer(name, OPS[op].model_validate(fields)) for name, op, fields in layers]
    shape = (1, 64) if rank == 1 else (3, 8, 32, 32)
    out = tmp_path / "net.png"
    plot_report(analyze(Network(name="net", input=shape, layers=made)), out)
    assert png_size(out.read_bytes()) == (1200, 900)


@pytest.mark.parametrize("suffix", [".pdf", ".jpg", ""])
def test_bad_suffix_is_a_usage_error_and_writes_nothing(tmp_path, capsys, suffix):
    out = tmp_path / f"plot{suffix}"
    assert main(["analyze", str(EXAMPLES / "lenet5.yaml"), "--plot", str(out)]) == 2
    err = capsys.readouterr().err
    assert ".png or .svg" in err
    assert str(out) in err
    assert list(tmp_path.iterdir()) == []


def test_missing_matplotlib_is_a_clear_usage_error(tmp_path, monkeypatch):
    # a None entry in sys.modules makes `import matplotlib.figure` raise ImportError
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    out = tmp_path / "lenet5.png"
    with pytest.raises(
        UsageError, match=r"--plot needs matplotlib, .*: pip install 'archspec-nn\[plot\]'"
    ):
        plot_report(analyze(load(EXAMPLES / "lenet5.yaml")), out)
    assert not out.exists()


def test_missing_matplotlib_exits_2_with_the_hint(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    out = tmp_path / "lenet5.svg"
    assert main(["analyze", str(EXAMPLES / "lenet5.yaml"), "--plot", str(out)]) == 2
    assert "archspec: error: --plot needs matplotlib" in capsys.readouterr().err
    assert not out.exists()


CHILD = """\
import contextlib, io, sys
import archspec.cli
with contextlib.redirect_stdout(io.StringIO()):
    code = archspec.cli.main({argv!r})
heavy = sorted(name for name in ("matplotlib", "archspec.plots", "torch") if name in sys.modules)
print(code, heavy)
"""


def test_analyze_without_plot_does_not_import_matplotlib():
    argv = ["analyze", "archspec/zoo/resnet50.yaml"]
    child = subprocess.run(
        [sys.executable, "-c", CHILD.format(argv=argv)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout == "0 []\n"


# -- tick labels -------------------------------------------------------------------------------


def test_ticks_of_a_deep_net_are_sparse_and_never_touch():
    names = [layer.name for layer in analyze(load(EXAMPLES / "resnet50.yaml")).layers]
    width_px = 1000.0
    ticks, depth = _tick_positions(names, width_px)
    gap = min(b - a for a, b in itertools.pairwise(ticks))
    assert gap * width_px / len(names) >= 13  # pixels between neighbouring labels
    assert depth == 2  # blocks (layer2.0), not every conv
    assert ticks[0] == 0
    assert ticks[-1] == len(names) - 1  # the head is always named
    labels = _short_labels([names[i] for i in ticks], depth)
    assert {"conv1", "layer1.0", "layer4.2", "fc"} <= set(labels)


def test_ticks_of_a_small_net_name_every_layer():
    names = [layer.name for layer in analyze(load(EXAMPLES / "lenet5.yaml")).layers]
    ticks, depth = _tick_positions(names, 1000.0)
    assert ticks == list(range(len(names)))
    assert _short_labels([names[i] for i in ticks], depth) == names


def test_short_labels_drop_parts_the_neighbours_do_not_need():
    names = ["features.0.0", "features.1.conv.0.0", "features.2.conv.0.0", "classifier.1"]
    assert _short_labels(names, 3) == ["features.0", "features.1", "features.2", "classifier"]
