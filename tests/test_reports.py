"""Rendered reports against golden files; `pytest --update-goldens` rewrites them."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import pytest

import archspec
from archspec import Report
from archspec.ops import OPS
from archspec.outputs.render import to_json, to_markdown, to_table

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"


def analyze_example(name: str, monkeypatch: pytest.MonkeyPatch) -> Report:
    # a relative path, so the positions in the report do not depend on where the checkout is
    monkeypatch.chdir(ROOT)
    return archspec.analyze(archspec.load(f"archspec/zoo/{name}.yaml"))


def render_table(report: Report) -> str:
    return to_table(report, color=False)


def check_golden(request: pytest.FixtureRequest, name: str, actual: str) -> None:
    path = GOLDEN / name
    if request.config.getoption("--update-goldens"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no golden file {path}; run `pytest --update-goldens` to create it")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                actual.splitlines(keepends=True),
                f"golden/{name}",
                "actual",
            )
        )
        pytest.fail(
            f"report differs from golden/{name}; if the change is intended, run "
            f"`pytest --update-goldens` and review the diff\n{diff}",
            pytrace=False,
        )


@pytest.mark.parametrize("name", ["lenet5", "resnet18"])
def test_markdown_report(request, monkeypatch, name):
    check_golden(request, f"{name}.md", to_markdown(analyze_example(name, monkeypatch)))


def test_table_report_resnet18(request, monkeypatch):
    check_golden(request, "resnet18.txt", render_table(analyze_example("resnet18", monkeypatch)))


def test_json_report_lenet5(request, monkeypatch):
    check_golden(request, "lenet5.json", to_json(analyze_example("lenet5", monkeypatch)) + "\n")


def analyze_layers(
    name: str, input_shape: tuple[int, ...], layers: list[tuple[str, str, dict]]
) -> Report:
    """The report of a network built in Python from ops written as a spec writes them."""
    made = [archspec.Layer(layer, OPS[op].model_validate(fields)) for layer, op, fields in layers]
    return archspec.analyze(archspec.Network(name=name, input=input_shape, layers=made))


#: An audio network on 1 s of 8 kHz sound, (C, L), and a video stem on 16 frames, (C, T, H, W):
#: their fields print one number along L and TxHxW per axis, and serialise as lists of 1 and 3.
SPATIAL_ND = {
    "audio": (
        (1, 8000),
        [
            ("conv1", "conv1d", {"out_channels": 32, "kernel": 80, "stride": 4}),
            ("bn1", "batchnorm1d", {}),
            ("relu1", "relu", {}),
            ("pool1", "max_pool1d", {"kernel": 4}),
            ("conv2", "conv1d", {"out_channels": 32, "kernel": 3, "padding": "same"}),
            ("avgpool", "adaptive_avg_pool1d", {"output_size": 1}),
            ("flatten", "flatten", {}),
            ("fc", "linear", {"out_features": 10}),
        ],
    ),
    "video": (
        (3, 16, 112, 112),
        [
            (
                "stem",
                "conv3d",
                {
                    "out_channels": 64,
                    "kernel": [3, 7, 7],
                    "stride": [1, 2, 2],
                    "padding": [1, 3, 3],
                    "bias": False,
                },
            ),
            ("bn", "batchnorm3d", {}),
            ("relu", "relu", {}),
            (
                "pool",
                "max_pool3d",
                {"kernel": [1, 3, 3], "stride": [1, 2, 2], "padding": [0, 1, 1]},
            ),
            ("avgpool", "adaptive_avg_pool3d", {"output_size": 1}),
            ("flatten", "flatten", {}),
            ("fc", "linear", {"out_features": 400}),
        ],
    ),
}


@pytest.mark.parametrize("name", SPATIAL_ND)
def test_reports_of_audio_and_video(request, name):
    report = analyze_layers(name, *SPATIAL_ND[name])
    check_golden(request, f"{name}.md", to_markdown(report))
    check_golden(request, f"{name}.json", to_json(report) + "\n")


# The goldens hold the published figures, so a regenerated golden with wrong numbers fails here.
PUBLISHED = {
    "lenet5.md": ["61,706", "416,520"],
    "lenet5.json": ['"params": 61706', '"macs": 416520'],
    "resnet18.md": ["11,689,512", "1,814,073,344", "(N, 512, 7, 7)"],
    "resnet18.txt": ["11,689,512", "1,814,073,344", "(N, 512, 7, 7)"],
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_goldens_hold_the_published_figures(name):
    text = (GOLDEN / name).read_text(encoding="utf-8")
    for figure in PUBLISHED[name]:
        assert figure in text, (name, figure)


def test_golden_json_totals():
    data = json.loads((GOLDEN / "lenet5.json").read_text(encoding="utf-8"))
    assert data["totals"]["params"] == 61_706
    assert data["totals"]["macs"] == 416_520
    assert data["layers"][-1]["output_shape"] == ["N", 10]


def test_named_outputs_are_reported_under_their_names():
    report = archspec.analyze(
        archspec.load(
            """
name: two_heads
input: [3, 8, 8]
outputs: {out: classifier, aux: side}
layers:
  - {name: stem, op: conv2d, out_channels: 4, kernel: 3, padding: 1}
  - {name: side, op: conv2d, out_channels: 2, kernel: 1}
  - {name: classifier, op: conv2d, out_channels: 5, kernel: 1, inputs: stem}
"""
        )
    )
    assert report.output_keys == ("out", "aux")
    data = json.loads(to_json(report))
    assert data["outputs"] == ["classifier", "side"]
    assert data["output_keys"] == ["out", "aux"]
    table = render_table(report)
    assert "output out (classifier): (N, 5, 8, 8)" in table
    assert "output aux (side): (N, 2, 8, 8)" in table
