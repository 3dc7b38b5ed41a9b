"""Stage `spec`: the document's Pydantic models and errors positioned at FILE:LINE:COL."""

from __future__ import annotations

import re

import pytest
from pydantic import ValidationError

import archspec
from archspec.errors import SpecError
from archspec.frontend.spec import BlockLayer, GroupLayer, OpLayer, SpecDocument

HEAD = "name: net\ninput: [3, 32, 32]\n"
DIAGNOSTIC = re.compile(r"^net\.yaml:\d+:\d+: error: ")


def document(**fields):
    return SpecDocument.model_validate(
        {"name": "net", "input": [3, 32, 32], "layers": [{"op": "relu"}], **fields}
    )


def load_file(tmp_path, monkeypatch, text):
    """Load `text` from net.yaml in the working directory, so messages start with `net.yaml:`."""
    (tmp_path / "net.yaml").write_text(text)
    monkeypatch.chdir(tmp_path)
    return archspec.load("net.yaml")


def error_lines(tmp_path, monkeypatch, text):
    with pytest.raises(SpecError, match=r"^net\.yaml:") as caught:
        load_file(tmp_path, monkeypatch, text)
    lines = str(caught.value).splitlines()
    assert all(DIAGNOSTIC.match(line) for line in lines), lines
    return lines


# -- the document ----------------------------------------------------------------------------


def test_minimal_document_defaults():
    spec = document()
    assert spec.name == "net"
    assert spec.input == [3, 32, 32]
    assert spec.description == ""
    assert spec.params == {}
    assert spec.blocks == {}
    assert spec.outputs is None
    assert spec.freeze == []


@pytest.mark.parametrize(
    ("entry", "kind"),
    [
        ({"op": "relu"}, OpLayer),
        ({"op": "conv2d", "out_channels": 8, "kernel": 3}, OpLayer),
        ({"block": "basic", "args": {"planes": 64}, "repeat": 2}, BlockLayer),
        ({"layers": [{"op": "relu"}], "name": "stage"}, GroupLayer),
        ({"layers": [{"layers": [{"block": "b"}]}]}, GroupLayer),
    ],
)
def test_layer_entries_are_discriminated_by_their_key(entry, kind):
    layer = document(layers=[entry]).layers[0]
    assert type(layer) is kind


def test_nested_entries_are_discriminated_too():
    layer = document(
        layers=[{"layers": [{"op": "relu"}, {"block": "b"}, {"layers": [{"op": "tanh"}]}]}]
    )
    inner = layer.layers[0].layers
    assert [type(entry) for entry in inner] == [OpLayer, BlockLayer, GroupLayer]


def test_op_entry_keeps_its_op_fields_as_extras():
    layer = document(
        layers=[{"op": "conv2d", "out_channels": "planes * 4", "kernel": [1, 3]}]
    ).layers[0]
    assert isinstance(layer, OpLayer)
    assert layer.op == "conv2d"
    assert layer.model_extra == {"out_channels": "planes * 4", "kernel": [1, 3]}


def test_block_entry_fields():
    entry = {"block": "basic", "args": {"planes": 64}, "first": {"stride": 2}, "repeat": "n"}
    layer = document(layers=[entry]).layers[0]
    assert isinstance(layer, BlockLayer)
    assert (layer.block, layer.args, layer.first, layer.repeat) == (
        "basic",
        {"planes": 64},
        {"stride": 2},
        "n",
    )


def test_entry_without_a_kind_is_an_error():
    with pytest.raises(
        ValidationError, match=r"a layer needs one of the keys `op`, `block` or `layers`"
    ):
        document(layers=[{"name": "x", "inputs": ["input"]}])


def test_entry_that_is_not_a_mapping_is_an_error():
    with pytest.raises(ValidationError, match=r"a layer needs one of the keys"):
        document(layers=["relu"])


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ({"block": "b", "kernel": 3}, "kernel"),
        ({"layers": [{"op": "relu"}], "args": {}}, "args"),
        ({"layers": [{"op": "relu"}], "first": {}}, "first"),
    ],
)
def test_blocks_and_groups_forbid_unknown_keys(entry, field):
    with pytest.raises(ValidationError, match=rf"layers\.0\.\w+Layer\.{field}\n  Extra inputs"):
        document(layers=[entry])


@pytest.mark.parametrize("where", ["inputs", "outputs", "freeze"])
def test_a_single_name_is_accepted_as_a_list(where):
    if where == "inputs":
        assert document(layers=[{"op": "relu", "inputs": "x"}]).layers[0].inputs == ["x"]
    else:
        assert getattr(document(**{where: "x"}), where) == ["x"]


def test_inputs_list_is_kept():
    assert document(layers=[{"op": "add", "inputs": ["a", "b"]}]).layers[0].inputs == ["a", "b"]


@pytest.mark.parametrize("name", ["a.b", "1x", "has space", "a--b", "-a", "a-", "a-.b", ""])
def test_bad_layer_names_are_rejected(name):
    with pytest.raises(ValidationError, match=r"is not a layer name: letters, digits and _"):
        document(layers=[{"op": "relu", "name": name}])


@pytest.mark.parametrize("name", ["conv1", "x_", "Layer_2", "block1-0", "s1-b2-c"])
def test_good_layer_names(name):
    assert document(layers=[{"op": "relu", "name": name}]).layers[0].name == name


def test_dotted_names_are_rejected_everywhere():
    for fields in (
        {"name": "net.v2"},
        {"params": {"a.b": 1}},
        {"blocks": {"a.b": {"layers": [{"op": "relu"}]}}},
        {"layers": [{"block": "a.b"}]},
    ):
        with pytest.raises(ValidationError, match=r"should match pattern"):
            document(**fields)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input": []}, r"at least 1 item"),
        ({"input": [3, 8, 32, 32, 1]}, r"at most 4 items"),
        ({"input": [3, 0, 32]}, r"greater than or equal to 1"),
        ({"input": [3, 10**7, 32]}, r"at most 1000000"),
        ({"layers": []}, r"at least 1 item"),
    ],
)
def test_document_bounds(fields, message):
    with pytest.raises(ValidationError, match=message):
        document(**fields)


def test_block_definition_params_may_be_required():
    spec = document(
        blocks={"b": {"params": {"planes": None, "stride": 1}, "layers": [{"op": "relu"}]}}
    )
    assert spec.blocks["b"].params == {"planes": None, "stride": 1}


# -- positioned errors through load ----------------------------------------------------------


def test_unknown_top_level_key_suggests_the_closest(tmp_path, monkeypatch):
    lines = error_lines(tmp_path, monkeypatch, HEAD + "layers:\n  - {op: relu}\nparms: {a: 1}\n")
    assert lines == [
        "net.yaml:5:1: error: field 'parms': unknown field (did you mean 'params'?); expected one "
        "of name, description, input, layout, params, variants, blocks, layers, outputs, freeze"
    ]


def test_missing_top_level_key(tmp_path, monkeypatch):
    lines = error_lines(tmp_path, monkeypatch, "name: net\nlayers:\n  - {op: relu}\n")
    assert lines == ["net.yaml:1:1: error: field 'input': required field is missing"]


def test_several_errors_are_reported_together(tmp_path, monkeypatch):
    text = HEAD + "layer:\n  - {op: relu}\n"
    lines = error_lines(tmp_path, monkeypatch, text)
    assert lines == [
        "net.yaml:1:1: error: field 'layers': required field is missing",
        "net.yaml:3:1: error: field 'layer': unknown field (did you mean 'layers'?); expected one "
        "of name, description, input, layout, params, variants, blocks, layers, outputs, freeze",
    ]


def test_dotted_layer_name_points_at_the_value(tmp_path, monkeypatch):
    text = HEAD + "layers:\n  - {op: relu}\n  - {op: relu, name: a.b}\n"
    lines = error_lines(tmp_path, monkeypatch, text)
    assert len(lines) == 1
    assert lines[0].startswith(
        "net.yaml:5:22: error: field 'layers.1.name': 'a.b' is not a layer name"
    )


def test_bad_input_dimension_points_at_the_item(tmp_path, monkeypatch):
    lines = error_lines(
        tmp_path, monkeypatch, "name: net\ninput: [3, 0, 32]\nlayers: [{op: relu}]\n"
    )
    assert lines == [
        "net.yaml:2:12: error: field 'input.1': input should be greater than or equal to 1, got 0"
    ]


def test_entry_without_a_kind_points_at_the_entry(tmp_path, monkeypatch):
    text = HEAD + "layers:\n  - {op: relu}\n  -\n    name: x\n    inputs: input\n"
    lines = error_lines(tmp_path, monkeypatch, text)
    assert lines == [
        "net.yaml:6:5: error: field 'layers.1': a layer needs one of the keys "
        "`op`, `block` or `layers`"
    ]


def test_unknown_key_of_a_group_points_at_the_key(tmp_path, monkeypatch):
    text = HEAD + "layers:\n  - layers: [{op: relu}]\n    args: {}\n"
    lines = error_lines(tmp_path, monkeypatch, text)
    assert len(lines) == 1
    assert lines[0].startswith("net.yaml:5:5: error: field 'layers.0.args': unknown field")


def test_unknown_key_of_a_group_suggests_a_group_field(tmp_path, monkeypatch):
    text = HEAD + "layers:\n  - layers: [{op: relu}]\n    repat: 2\n"
    lines = error_lines(tmp_path, monkeypatch, text)
    assert lines[0].startswith(
        "net.yaml:5:5: error: field 'layers.0.repat': unknown field (did you mean 'repeat'?)"
    )
    assert "description" not in lines[0]


def test_error_in_a_block_definition_points_into_blocks(tmp_path, monkeypatch):
    text = HEAD + "blocks:\n  b:\n    params: {x: 1}\n    layers: []\nlayers: [{block: b}]\n"
    lines = error_lines(tmp_path, monkeypatch, text)
    assert lines[0].startswith(
        "net.yaml:6:13: error: field 'blocks.b.layers': list should have at least 1"
    )


def test_text_errors_use_the_file_name_spec():
    with pytest.raises(SpecError, match=r"^<spec>:4:22: error: field 'layers\.0\.name'"):
        archspec.load(HEAD + "layers:\n  - {op: relu, name: a.b}\n")


@pytest.mark.parametrize("text", ["- 1\n- 2\n", "just a word\n", "42\n"])
def test_spec_that_is_not_a_mapping(text):
    with pytest.raises(SpecError, match=r"^<spec>:1:1: error: a spec is a mapping with keys name"):
        archspec.load(text + "\n")


def test_error_diagnostics_carry_positions(tmp_path, monkeypatch):
    with pytest.raises(SpecError, match=r"field 'layer': unknown field") as caught:
        load_file(tmp_path, monkeypatch, HEAD + "layer: []\nextra: 1\n")
    positions = [(d.position.line, d.position.column) for d in caught.value.diagnostics]
    assert sorted(positions) == [(1, 1), (3, 1), (4, 1)]
    assert all(d.position.file == "net.yaml" for d in caught.value.diagnostics)
    assert all(d.severity == "error" for d in caught.value.diagnostics)
