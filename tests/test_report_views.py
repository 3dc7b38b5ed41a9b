"""Views of a report: folding by depth, chosen columns, tables fitted to a width, notebook reprs."""

from __future__ import annotations

import dataclasses
import functools
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_reports import check_golden

import archspec
from archspec import Report
from archspec.analysis.folding import count_label, fold, view_depth
from archspec.errors import Diagnostic, UsageError
from archspec.ops import OPS
from archspec.outputs.columns import COLUMNS, select_columns
from archspec.outputs.render import to_markdown, to_table

ROOT = Path(__file__).resolve().parent.parent
FOLDED = ["resnet50", "densenet121", "vit_b_16", "unet", "inception_v3"]
ALL_COLUMNS = list(COLUMNS)


@functools.cache
def zoo(name: str) -> Report:
    return archspec.analyze(f"zoo:{name}")


def depths(report: Report) -> list[int | None]:
    deepest = max(layer.name.count(".") for layer in report.layers) + 1
    return [None, *range(1, deepest + 2)]


@pytest.mark.parametrize("name", FOLDED)
def test_folded_rows_add_up_to_the_totals_at_every_depth(name):
    report = zoo(name)
    totals = report.totals
    for depth in depths(report):
        rows = fold(report, depth)
        held = [layer.name for row in rows for layer in row.layers]
        assert sorted(held) == sorted(layer.name for layer in report.layers)  # each once
        for figure in ("params", "trainable_params", "macs", "flops", "activation_bytes"):
            assert sum(getattr(row, figure) for row in rows) == getattr(totals, figure), figure
        names = {row.name for row in rows} | {archspec.ir.INPUT}
        for row in rows:
            assert row.output_shape == row.layers[-1].output_shape
            assert row.receptive_field == row.layers[-1].receptive_field
            assert set(row.inputs) <= names - {row.name}
    assert len(fold(report)) == len(report.layers)


def test_resnet50_at_depth_1_is_its_stem_four_stages_and_head():
    rows = fold(zoo("resnet50"), 1)
    assert [row.name for row in rows] == [
        *("conv1", "bn1", "relu", "maxpool"),
        *("layer1", "layer2", "layer3", "layer4"),
        *("avgpool", "flatten", "fc"),
    ]
    layer2 = rows[5]
    assert (layer2.op, layer2.inputs, layer2.output_shape) == (
        "42 layers",
        ("layer1",),
        (512, 28, 28),
    )
    assert layer2.params == sum(
        layer.params for layer in zoo("resnet50").layers if layer.name.startswith("layer2.")
    )
    assert (rows[0].op, rows[0].inputs) == ("conv2d", ("input",))
    assert [row.inputs for row in fold(zoo("resnet50"), 2)[4:6]] == [("maxpool",), ("layer1.0",)]


def test_a_group_of_equal_blocks_is_counted_as_repeats():
    assert count_label("encoder", ["encoder.0.a", "encoder.0.b", "encoder.1.a", "encoder.1.b"]) == (
        "2 \N{MULTIPLICATION SIGN} 2 layers"
    )
    assert count_label("stage", ["stage.0.a", "stage.0.b", "stage.1.a"]) == "3 layers"
    encoder = fold(zoo("vit_b_16"), 2)
    assert [row.op for row in encoder if row.name == "encoder.layers"] == [
        "12 \N{MULTIPLICATION SIGN} 11 layers"
    ]


def network(layers: list[tuple[str, str, dict, bool]]) -> Report:
    made = [
        archspec.Layer(name, OPS[op].model_validate(fields), frozen=frozen)
        for name, op, fields, frozen in layers
    ]
    return archspec.analyze(archspec.Network(name="net", input=(3, 8, 8), layers=made))


def test_a_group_is_frozen_when_all_its_layers_are():
    conv = {"out_channels": 3, "kernel": 3, "padding": 1}
    report = network(
        [
            ("stem.conv", "conv2d", conv, True),
            ("stem.relu", "relu", {}, True),
            ("body.conv", "conv2d", conv, True),
            ("body.head", "conv2d", conv, False),
        ]
    )
    stem, body = fold(report, 1)
    assert (stem.frozen, body.frozen) == (True, False)
    assert (body.params, body.trainable_params) == (168, 84)
    table = to_table(report, depth=1, columns="layer,params,trainable")
    assert "84 (frozen)" in table
    assert "168 (84 frozen)" in table


@pytest.mark.parametrize("depth", [0, -1, True])
def test_a_depth_below_1_is_refused(depth):
    with pytest.raises(UsageError, match="a folding depth is at least 1"):
        fold(zoo("resnet50"), depth)


def test_default_columns_are_the_six_of_before():
    assert [column.header for column in select_columns()] == [
        *("Layer", "Op", "Output shape", "Params", "MACs", "Receptive field")
    ]


def test_columns_are_chosen_by_name_in_the_order_given():
    table = to_table(zoo("resnet50"), depth=1, columns=["params", "Layer", "output_shape"])
    header = table.splitlines()[2]
    assert header.split("┃")[1:-1] == ["     Params ", " Layer   ", " Output shape      "]
    markdown = to_markdown(zoo("resnet50"), depth=1, columns="layer, inputs,flops,activations")
    assert "| Layer | Inputs | FLOPs | Activations |\n|---|---|---:|---:|\n" in markdown
    layer2 = [layer for layer in zoo("resnet50").layers if layer.name.startswith("layer2.")]
    flops = sum(layer.flops for layer in layer2)
    assert f"| `layer2` | `layer1` | {flops:,} | 40.2 MiB |" in markdown
    assert sum(layer.activation_bytes for layer in layer2) / 2**20 == pytest.approx(40.2, abs=0.05)


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        (
            "layer,parms",
            r"unknown column 'parms' \(did you mean 'params'\?\); columns are layer, op",
        ),
        (["receptive"], r"did you mean 'receptive-field'"),
        ("layer,op,layer", "column 'layer' is chosen twice"),
        ([], "no columns chosen; choose from layer, op, inputs"),
    ],
)
def test_an_unknown_column_names_the_columns_and_the_nearest(columns, message):
    with pytest.raises(UsageError, match=message):
        to_table(zoo("resnet50"), columns=columns)


def long_names() -> Report:
    conv = {"out_channels": 4, "kernel": 1}
    block = "a_rather_long_encoder_stage_name.block_with_a_long_name"
    return network(
        [
            (f"{block}.pointwise_convolution_one", "conv2d", conv, False),
            (f"{block}.pointwise_convolution_two", "conv2d", conv, False),
            ("head_with_a_name_much_longer_than_any_terminal_column", "relu", {}, False),
        ]
    )


@pytest.mark.parametrize("width", [60, 80, 120])
@pytest.mark.parametrize("name", ["resnet50", "inception_v3", "long names"])
@pytest.mark.parametrize("columns", [None, ALL_COLUMNS])
def test_a_table_fits_the_width_it_is_given(width, name, columns):
    report = long_names() if name == "long names" else zoo(name)
    for depth in (None, 2):
        table = to_table(report, depth=depth, columns=columns, width=width)
        assert max(len(line) for line in table.splitlines()) <= width
        if "dropped to fit" in table:
            unfitted = to_table(report, depth=depth, columns=columns)
            assert max(len(line) for line in unfitted.splitlines()) > width


def test_fitting_cuts_long_names_first_then_drops_columns_from_the_right():
    report = long_names()
    wide = to_table(report, columns="layer,op,params")
    fitted = to_table(report, columns="layer,op,params", width=60)
    assert re.search("│ a_rather_long_encod\N{HORIZONTAL ELLIPSIS}se_convolution_one │", fitted)
    assert "dropped" not in fitted
    assert fitted.splitlines()[2].split("┃")[1:-1][1:] == wide.splitlines()[2].split("┃")[1:-1][1:]
    narrow = to_table(zoo("resnet50"), depth=1, width=60)
    assert "dropped to fit width 60: MACs, Receptive field\n" in narrow
    assert to_table(zoo("resnet50"), depth=1, width=200) == to_table(zoo("resnet50"), depth=1)


def test_resnet50_at_depth_1_matches_golden(request):
    report = zoo("resnet50")
    check_golden(request, "resnet50-depth1.txt", to_table(report, depth=1))
    check_golden(request, "resnet50-depth1.md", to_markdown(report, depth=1))
    check_golden(
        request, "resnet50-depth2-w80.txt", to_table(report, depth=2, columns=ALL_COLUMNS, width=80)
    )


def test_reprs_are_one_short_line():
    report = zoo("resnet50")
    assert repr(report) == (
        "<Report resnet50: 175 layers, input (N, 3, 224, 224), 25,557,032 params, 4.09 G MACs>"
    )
    assert repr(report.layer("layer1.0.conv1")) == (
        "<LayerReport layer1.0.conv1: conv2d -> (N, 64, 56, 56), 4,096 params, 12,845,056 MACs>"
    )
    assert repr(fold(report, 1)[4]).startswith("<Row layer1: 32 layers -> (N, 256, 56, 56), ")
    assert max(len(repr(x)) for x in (report, *report.layers, *fold(report, 1))) < 120


def test_a_missing_layer_names_the_nearest():
    report = zoo("resnet50")
    with pytest.raises(KeyError, match=r"no layer 'layer1.0.conv' in resnet50 \(did you mean "):
        report.layer("layer1.0.conv")
    with pytest.raises(KeyError, match=r"'layer1' is a group of 32 layers \(layer1.0.conv1 "):
        report.layer("layer1")
    with pytest.raises(KeyError, match=r"^\"no layer 'zzz' in resnet50\"$"):
        report.layer("zzz")


def test_the_notebook_view_folds_a_large_network_to_at_most_40_rows():
    assert view_depth(zoo("resnet50")) == 2
    assert len(fold(zoo("resnet50"), 2)) == 23
    assert view_depth(long_names()) is None
    for name in FOLDED:
        assert len(fold(zoo(name), view_depth(zoo(name)))) <= 40 or view_depth(zoo(name)) == 1


def with_hostile_text(report: Report) -> Report:
    warning = Diagnostic("layer 'x': <b>bold</b> & *stars* | pipe", severity="warning")
    return dataclasses.replace(report, name="<script>net", warnings=(warning,))


def test_markdown_repr_has_the_totals_and_escaped_warnings():
    text = with_hostile_text(zoo("resnet50"))._repr_markdown_()
    assert "**&lt;script&gt;net** — input (N, 3, 224, 224), depth 2: 23 rows" in text
    assert "- params: 25,557,032 (trainable 25,557,032, frozen 0)" in text
    assert "- warning: layer 'x': &lt;b&gt;bold&lt;/b&gt; &amp; \\*stars\\* \\| pipe" in text
    assert "<" not in text
    assert zoo("resnet50").to_markdown(depth=1) == to_markdown(zoo("resnet50"), depth=1)


class TagChecker(HTMLParser):
    """Fails on a closing tag that does not close the innermost open one."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.open.append(tag)

    def handle_endtag(self, tag):
        assert self.open.pop() == tag


def test_html_repr_is_well_formed_and_escapes_every_text():
    text = with_hostile_text(zoo("resnet50"))._repr_html_()
    checker = TagChecker()
    checker.feed(text)
    checker.close()
    assert checker.open == []
    assert "<script>" not in text
    assert "<b>" not in text
    assert "&lt;script&gt;net" in text
    assert "layer &#x27;x&#x27;: &lt;b&gt;bold&lt;/b&gt; &amp; *stars*" in text
    assert '<th style="text-align: right">25,557,032</th>' in text
    assert "<li>params: 25,557,032 (trainable 25,557,032, frozen 0)</li>" in text
    assert text.count("<tr") == 1 + 23 + 1  # header, rows at depth 2, totals


def test_importing_the_analysis_leaves_the_renderers_unloaded():
    code = (
        "import sys, archspec.analysis; "
        "print(sorted(m for m in sys.modules if m.startswith('archspec.outputs')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout == "[]\n"
