"""Stage `expansion`: groups, blocks and repeats expanded into layers with dotted names."""

from __future__ import annotations

import pytest
from timing import within

import archspec
from archspec.errors import SpecError, UsageError
from archspec.frontend import budget
from archspec.frontend.expressions import Deferred
from archspec.ir import Layer, Network, Pending

HEAD = "name: net\ninput: [3, 32, 32]\n"


def expand(body: str, overrides: dict[str, object] | None = None) -> Network:
    return archspec.load(HEAD + body, overrides).network


def wiring(graph: Network) -> dict[str, tuple[str, ...]]:
    """Each layer, in order, with the layers it reads."""
    return {layer.name: layer.inputs for layer in graph.in_order()}


def fields(layer: Layer) -> dict[str, object]:
    """The fields the spec gives the layer's op, as validated (or still deferred)."""
    if isinstance(layer.op, Pending):
        return dict(layer.op.fields)
    return {name: getattr(layer.op, name) for name in layer.op.model_fields_set if name != "op"}


# -- naming ----------------------------------------------------------------------------------


SEQUENTIAL = """
layers:
  - name: features
    layers:
      - {op: conv2d, out_channels: 8, kernel: 3}
      - {op: relu}
  - name: classifier
    layers:
      - {op: flatten}
      - {op: linear, out_features: 10}
"""


def test_groups_are_numbered_like_sequential():
    graph = expand(SEQUENTIAL)
    assert wiring(graph) == {
        "features.0": ("input",),
        "features.1": ("features.0",),
        "classifier.0": ("features.1",),
        "classifier.1": ("classifier.0",),
    }
    assert graph.outputs == ("classifier.1",)
    assert graph.input == (3, 32, 32)
    assert len(graph.layers) == 4
    assert archspec.load(HEAD + SEQUENTIAL).graph.has_edge("input", "features.0")
    assert graph.layer("classifier.1").op_name == "linear"


def test_unnamed_layers_and_groups_are_numbered_at_every_level():
    graph = expand(
        """
layers:
  - {op: relu}
  - layers:
      - {op: relu6}
      - layers: [{op: tanh}, {op: sigmoid}]
  - {name: head, op: identity}
  - {op: silu}
"""
    )
    assert list(graph.order) == ["0", "1.0", "1.1.0", "1.1.1", "head", "3"]


def test_block_instances_are_numbered_and_first_overrides_only_instance_0():
    graph = expand(
        """
blocks:
  basic:
    params: {planes: null, stride: 1}
    layers:
      - {name: conv1, op: conv2d, out_channels: planes, kernel: 3, stride: stride, padding: 1}
      - {name: relu, op: relu}
layers:
  - {name: layer1, block: basic, repeat: 3, args: {planes: 8}, first: {stride: 2, planes: 4}}
  - {name: single, block: basic, args: {planes: 16}, first: {stride: 2}}
"""
    )
    assert list(graph.order) == [
        "layer1.0.conv1",
        "layer1.0.relu",
        "layer1.1.conv1",
        "layer1.1.relu",
        "layer1.2.conv1",
        "layer1.2.relu",
        "single.conv1",
        "single.relu",
    ]
    conv = {name: fields(graph.layer(name)) for name in graph.order if name.endswith("conv1")}
    assert conv["layer1.0.conv1"]["stride"] == (2, 2)
    assert conv["layer1.0.conv1"]["out_channels"] == 4
    assert [conv[f"layer1.{i}.conv1"]["stride"] for i in (1, 2)] == [(1, 1), (1, 1)]
    assert [conv[f"layer1.{i}.conv1"]["out_channels"] for i in (1, 2)] == [8, 8]
    assert conv["single.conv1"]["stride"] == (2, 2)  # no repeat: the one instance is the first
    assert graph.layer("layer1.1.conv1").inputs == ("layer1.0.relu",)
    assert graph.layer("single.conv1").inputs == ("layer1.2.relu",)


def test_named_group_repeat():
    graph = expand("layers:\n  - {name: stage, repeat: 2, layers: [{op: relu}, {op: tanh}]}\n")
    assert wiring(graph) == {
        "stage.0.0": ("input",),
        "stage.0.1": ("stage.0.0",),
        "stage.1.0": ("stage.0.1",),
        "stage.1.1": ("stage.1.0",),
    }


def test_repeat_count_may_be_an_expression():
    graph = expand(
        "params: {depth: 2}\nlayers:\n  - {name: s, repeat: depth + 1, layers: [{op: relu}]}\n"
    )
    assert list(graph.order) == ["s.0.0", "s.1.0", "s.2.0"]


MOBILENET = """
params: {width: 1.0}
blocks:
  conv_bn:
    params: {out: null, kernel: 3, stride: 1, groups: 1}
    layers:
      - {op: conv2d, out_channels: out, kernel: kernel, stride: stride, groups: groups, bias: false}
      - {op: batchnorm2d}
      - {op: relu6}
  inverted_residual:
    params: {channels: null, stride: 1, expand: 6, residual: true}
    layers:
      - name: conv
        layers:
          - {block: conv_bn, when: expand != 1, args: {out: in_channels * expand, kernel: 1}}
          - {block: conv_bn, args: {out: in_channels, stride: stride, groups: in_channels}}
          - {op: conv2d, out_channels: "make_divisible(channels * width, 8)", kernel: 1}
          - {op: batchnorm2d}
      - {name: add, op: add, when: residual, inputs: [conv, input]}
layers:
  - name: features
    layers:
      - {block: conv_bn, args: {out: 32, stride: 2}}
      - block: inverted_residual
        repeat: 1
        args: {channels: 16, expand: 1}
        first: {residual: false}
      - block: inverted_residual
        repeat: 2
        args: {channels: 24}
        first: {stride: 2, residual: false}
      - {block: conv_bn, args: {out: 64, kernel: 1}}
  - {name: pool, op: adaptive_avg_pool2d, output_size: 1}
"""


def test_unnamed_repeats_are_spliced_into_the_parent():
    graph = expand(MOBILENET)
    tops = {".".join(name.split(".")[:2]) for name in graph.order}
    assert tops == {"features.0", "features.1", "features.2", "features.3", "features.4", "pool"}
    # features.1 has expand 1: its expansion block is absent and takes no number.
    assert [n for n in graph.order if n.startswith("features.1.")] == [
        "features.1.conv.0.0",
        "features.1.conv.0.1",
        "features.1.conv.0.2",
        "features.1.conv.1",
        "features.1.conv.2",
    ]
    assert [n for n in graph.order if n.startswith("features.3.")] == [
        "features.3.conv.0.0",
        "features.3.conv.0.1",
        "features.3.conv.0.2",
        "features.3.conv.1.0",
        "features.3.conv.1.1",
        "features.3.conv.1.2",
        "features.3.conv.2",
        "features.3.conv.3",
        "features.3.add",
    ]
    assert "features.2.add" not in graph.order  # first: {residual: false}
    assert fields(graph.layer("features.2.conv.1.0"))["stride"] == 2
    assert fields(graph.layer("features.3.conv.1.0"))["stride"] == 1
    assert graph.layer("features.3.add").inputs == ("features.3.conv.3", "features.2.conv.3")
    assert graph.layer("features.4.0").inputs == ("features.3.add",)
    assert graph.layer("features.2.conv.0.0").inputs == ("features.1.conv.2",)


def test_in_channels_stays_deferred_through_block_arguments():
    graph = expand(MOBILENET)
    expand_conv = graph.layer("features.2.conv.0.0")
    assert isinstance(expand_conv.op, Pending)  # validated once in_channels is known
    assert isinstance(fields(expand_conv)["out_channels"], Deferred)
    assert fields(expand_conv)["out_channels"].resolve({"in_channels": 16}) == 96
    depthwise = graph.layer("features.2.conv.1.0")
    assert fields(depthwise)["groups"].resolve({"in_channels": 96}) == 96
    projection = graph.layer("features.2.conv.2")
    assert fields(projection)["out_channels"] == 24
    assert projection.op.kernel == (1, 1)


# -- when ------------------------------------------------------------------------------------


def test_removed_layer_passes_its_input_to_whatever_names_it():
    body = """
params: {use: false}
layers:
  - {name: a, op: conv2d, out_channels: 8, kernel: 3}
  - {name: b, op: relu, when: use}
  - {name: c, op: add, inputs: [a, b]}
  - {op: tanh}
"""
    # b is absent and takes no number: the unnamed tanh is 2 without it and 3 with it.
    assert wiring(expand(body)) == {"a": ("input",), "c": ("a", "a"), "2": ("c",)}
    assert wiring(expand(body, {"use": True})) == {
        "a": ("input",),
        "b": ("a",),
        "c": ("a", "b"),
        "3": ("c",),
    }


def test_chains_of_removed_layers_pass_through():
    graph = expand(
        """
layers:
  - {name: a, op: relu}
  - {name: b, op: relu6, when: false}
  - {name: c, op: tanh, when: "1 > 2", inputs: b}
  - {name: d, op: sigmoid, inputs: c}
outputs: [c, d]
"""
    )
    assert wiring(graph) == {"a": ("input",), "d": ("a",)}
    assert graph.outputs == ("a", "d")


def test_removed_group_with_an_explicit_input():
    graph = expand(
        """
blocks:
  basic:
    params: {downsample: false}
    layers:
      - {name: conv, op: conv2d, out_channels: 8, kernel: 3, padding: 1}
      - name: downsample
        when: downsample
        inputs: input
        layers:
          - {op: conv2d, out_channels: 8, kernel: 1}
          - {op: batchnorm2d}
      - {name: add, op: add, inputs: [conv, downsample]}
layers:
  - {name: stem, op: relu}
  - {name: layer, block: basic, repeat: 2, first: {downsample: true}}
"""
    )
    assert wiring(graph) == {
        "stem": ("input",),
        "layer.0.conv": ("stem",),
        "layer.0.downsample.0": ("stem",),
        "layer.0.downsample.1": ("layer.0.downsample.0",),
        "layer.0.add": ("layer.0.conv", "layer.0.downsample.1"),
        "layer.1.conv": ("layer.0.add",),
        "layer.1.add": ("layer.1.conv", "layer.0.add"),
    }


def test_absent_children_take_no_number():
    graph = expand(
        """
params: {deep: false}
layers:
  - name: f
    layers:
      - {op: relu}
      - {op: relu6, when: deep}
      - {op: sigmoid}
      - {op: tanh, when: not deep}
      - {op: silu, when: deep}
      - {op: gelu}
"""
    )
    assert list(graph.order) == ["f.0", "f.1", "f.2", "f.3"]
    assert [graph.layer(n).op_name for n in graph.order] == ["relu", "sigmoid", "tanh", "gelu"]
    assert graph.layer("f.1").inputs == ("f.0",)


def test_when_must_give_a_boolean():
    with pytest.raises(SpecError, match=r"`when: width` gives 8, not true or false"):
        expand("params: {width: 8}\nlayers:\n  - {op: relu}\n  - {op: tanh, when: width}\n")


def test_when_cannot_use_in_channels():
    with pytest.raises(SpecError, match=r"`when` cannot use in_channels"):
        expand("layers:\n  - {op: relu}\n  - {op: tanh, when: in_channels > 3}\n")


def test_all_layers_removed():
    with pytest.raises(SpecError, match=r"^<spec>:4:3: error: the network has no layers$"):
        expand("layers:\n  - {op: relu, when: false}\n")


# -- references ------------------------------------------------------------------------------


def test_dotted_references_reach_into_groups():
    graph = expand(
        """
layers:
  - name: stage
    layers:
      - {op: conv2d, out_channels: 8, kernel: 3}
      - {op: relu}
      - {name: inner, layers: [{op: relu6}, {op: tanh}]}
  - {name: skip, op: add, inputs: [stage.1, stage.inner.0]}
  - {name: whole, op: add, inputs: [stage, stage.inner]}
"""
    )
    assert graph.layer("skip").inputs == ("stage.1", "stage.inner.0")
    assert graph.layer("whole").inputs == ("stage.inner.1", "stage.inner.1")


def test_dotted_references_reach_into_block_instances():
    graph = expand(
        """
blocks:
  b:
    layers:
      - {name: conv1, op: conv2d, out_channels: 4, kernel: 1}
      - {name: relu, op: relu}
layers:
  - {name: layer1, block: b, repeat: 2}
  - {name: tap, op: add, inputs: [layer1.0.conv1, layer1.1]}
"""
    )
    assert graph.layer("tap").inputs == ("layer1.0.conv1", "layer1.1.relu")


def test_unknown_part_of_a_dotted_reference():
    with pytest.raises(SpecError, match=r"unknown layer name 'stage\.5': no '5' inside"):
        expand(
            "layers:\n  - {name: stage, layers: [{op: relu}]}\n  - {op: tanh, inputs: stage.5}\n"
        )


def test_unknown_reference_suggests_a_name():
    with pytest.raises(
        SpecError,
        match=r"^<spec>:5:33: error: .*unknown layer name 'conv2' \(did you mean 'conv1'\?\)$",
    ):
        expand("layers:\n  - {name: conv1, op: relu}\n  - {name: x, op: tanh, inputs: conv2}\n")


def test_a_block_cannot_see_an_outer_layer():
    body = """
blocks:
  b:
    layers:
      - {op: add, inputs: [input, stem]}
layers:
  - {name: stem, op: relu}
  - {block: b}
"""
    with pytest.raises(SpecError, match=r"^<spec>:7:35: error: .*unknown layer name 'stem'$"):
        expand(body)


def test_a_block_cannot_see_its_callers_arguments():
    body = """
blocks:
  inner:
    layers:
      - {op: conv2d, out_channels: p, kernel: 1}
  outer:
    params: {p: null}
    layers:
      - {block: inner}
layers:
  - {block: outer, args: {p: 4}}
"""
    with pytest.raises(
        SpecError, match=r"field 'out_channels': input should be a valid integer.*got 'p'"
    ):
        expand(body)


def test_a_block_sees_spec_parameters():
    graph = expand(
        """
params: {width: 12}
blocks:
  b:
    layers:
      - {name: conv, op: conv2d, out_channels: width, kernel: 1}
layers:
  - {name: x, block: b}
"""
    )
    assert fields(graph.layer("x.conv"))["out_channels"] == 12


def test_a_group_sees_outer_layers():
    graph = expand(
        """
layers:
  - {name: stem, op: relu}
  - {name: body, layers: [{op: tanh}, {op: add, inputs: ['0', stem]}]}
"""
    )
    assert graph.layer("body.1").inputs == ("body.0", "stem")


def test_input_inside_a_block_is_the_block_input():
    graph = expand(
        """
blocks:
  residual:
    layers:
      - {name: conv, op: conv2d, out_channels: 3, kernel: 3, padding: 1}
      - {name: add, op: add, inputs: [input, conv]}
      - {name: again, op: add, inputs: [add, input]}
layers:
  - {name: stem, op: relu}
  - {name: r, block: residual, repeat: 2}
"""
    )
    assert graph.layer("r.0.add").inputs == ("stem", "r.0.conv")
    assert graph.layer("r.0.again").inputs == ("r.0.add", "stem")
    assert graph.layer("r.1.add").inputs == ("r.0.again", "r.1.conv")


def test_block_entry_with_an_explicit_input():
    graph = expand(
        """
blocks:
  b:
    layers: [{name: act, op: relu}]
layers:
  - {name: a, op: tanh}
  - {name: c, op: sigmoid}
  - {name: x, block: b, inputs: a}
"""
    )
    assert graph.layer("x.act").inputs == ("a",)


def test_several_outputs():
    graph = expand(
        """
layers:
  - {name: a, op: relu}
  - {name: b, op: relu6, inputs: input}
  - {name: c, op: sigmoid, inputs: a}
  - {name: stage, layers: [{op: tanh}, {op: silu}]}
outputs: [a, c, stage.0, stage]
"""
    )
    assert graph.outputs == ("a", "c", "stage.0", "stage.1")


def test_single_output_as_a_word():
    assert expand("layers:\n  - {name: a, op: relu}\n  - {op: tanh}\noutputs: a\n").outputs == (
        "a",
    )


def test_unknown_output():
    with pytest.raises(
        SpecError,
        match=r"^<spec>:5:11: error: .*unknown layer name 'haed' \(did you mean 'head'\?\)$",
    ):
        expand("layers:\n  - {name: head, op: relu}\noutputs: [haed]\n")


# -- freeze ----------------------------------------------------------------------------------

FREEZE = """
blocks:
  b:
    layers:
      - {name: conv1, op: conv2d, out_channels: 4, kernel: 1}
      - {name: relu, op: relu}
layers:
  - {name: conv1, op: conv2d, out_channels: 4, kernel: 1}
  - {name: layer1, block: b, repeat: 2}
  - {name: layer10, block: b}
freeze: {patterns}
"""


@pytest.mark.parametrize(
    ("patterns", "frozen"),
    [
        ("[conv1]", {"conv1"}),
        ("[layer1]", {"layer1.0.conv1", "layer1.0.relu", "layer1.1.conv1", "layer1.1.relu"}),
        ("['layer1.*']", {"layer1.0.conv1", "layer1.0.relu", "layer1.1.conv1", "layer1.1.relu"}),
        ("[layer1.0]", {"layer1.0.conv1", "layer1.0.relu"}),
        ("[layer1.1.conv1, conv1]", {"layer1.1.conv1", "conv1"}),
        ("['*.conv1']", {"layer1.0.conv1", "layer1.1.conv1", "layer10.conv1"}),
        (
            "['layer1*']",
            {
                "layer1.0.conv1",
                "layer1.0.relu",
                "layer1.1.conv1",
                "layer1.1.relu",
                "layer10.conv1",
                "layer10.relu",
            },
        ),
        ("layer10", {"layer10.conv1", "layer10.relu"}),
    ],
)
def test_freeze_patterns_mark_exactly_the_right_layers(patterns, frozen):
    graph = expand(FREEZE.replace("{patterns}", patterns))
    assert {layer.name for layer in graph.in_order() if layer.frozen} == frozen


def test_nothing_is_frozen_by_default():
    graph = expand(FREEZE.replace("freeze: {patterns}", ""))
    assert not any(layer.frozen for layer in graph.in_order())


def test_freeze_pattern_that_matches_nothing():
    with pytest.raises(
        SpecError,
        match=r"^<spec>:13:17: error: freeze pattern 'conv2' matches no layer "
        r"\(did you mean 'conv1'\?\)$",
    ):
        expand(FREEZE.replace("{patterns}", "[conv1, conv2]"))


# -- parameters and overrides ----------------------------------------------------------------


def test_overrides_re_evaluate_dependent_parameters():
    body = """
params: {w: 8, w2: w * 2}
layers:
  - {name: c, op: conv2d, out_channels: w2, kernel: 1}
"""
    spec = archspec.load(HEAD + body)
    assert spec.params == {"w": 8, "w2": 16}
    assert fields(spec.network.layer("c"))["out_channels"] == 16
    spec = archspec.load(HEAD + body, overrides={"w": 16})
    assert spec.params == {"w": 16, "w2": 32}
    assert fields(spec.network.layer("c"))["out_channels"] == 32


def test_overrides_reach_blocks_conditions_and_repeats():
    body = """
params: {depth: 1, bias: false, width: 4}
blocks:
  b:
    layers: [{name: conv, op: conv2d, out_channels: width * 2, kernel: 1, bias: bias}]
layers:
  - {name: s, block: b, repeat: depth}
  - {name: extra, op: relu, when: depth > 2}
"""
    graph = expand(body, {"depth": 3, "bias": True, "width": 5})
    assert list(graph.order) == ["s.0.conv", "s.1.conv", "s.2.conv", "extra"]
    assert fields(graph.layer("s.2.conv")) == {"out_channels": 10, "kernel": (1, 1), "bias": True}


def test_override_may_be_an_expression_over_earlier_parameters():
    spec = archspec.load(HEAD + "params: {a: 2, b: 3}\nlayers: [{op: relu}]\n", {"b": "a * 10"})
    assert spec.params == {"a": 2, "b": 20}


def test_unknown_override_suggests_a_parameter():
    with pytest.raises(
        UsageError,
        match=r"no parameter 'widht' \(did you mean 'width'\?\); its parameters: width, depth",
    ):
        expand("params: {width: 8, depth: 2}\nlayers: [{op: relu}]\n", {"widht": 16})


def test_parameter_errors_point_at_the_parameter():
    with pytest.raises(SpecError, match=r"^<spec>:3:19: error: parameter 'b': .*unknown name 'c'"):
        expand("params: {a: 1, b: c + 1}\nlayers: [{op: relu}]\n")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "layers:\n  - {name: g, layers: [{op: relu}], repeat: -1}\n",
            "<spec>:4:45: error: layer 'g': repeat must be an integer from 0 to 200000, got -1",
        ),
        (
            "params: {a: 1, b: c + 1}\nlayers: [{op: relu}]\n",
            "<spec>:3:19: error: parameter 'b': unknown name 'c' in expression; known names: a, "
            "in_channels, in_shape",
        ),
    ],
)
def test_wrapped_expression_errors_read_once(body, expected):
    # An ExpressionError inside a diagnostic is its message, not its rendering ("error: error:").
    with pytest.raises(SpecError, match=r"^<spec>:") as caught:
        expand(body)
    assert str(caught.value) == expected


# -- order, errors and limits ----------------------------------------------------------------


def test_order_follows_the_spec_when_the_graph_allows():
    graph = expand(
        """
layers:
  - {name: z, op: relu}
  - {name: a, op: tanh, inputs: input}
  - {name: m, op: add, inputs: [z, a]}
  - {name: b, op: sigmoid, inputs: input}
"""
    )
    assert list(graph.order) == ["z", "a", "m", "b"]


def test_order_puts_a_forward_reference_first():
    graph = expand(
        """
layers:
  - {name: x, op: add, inputs: [input, y]}
  - {name: y, op: relu, inputs: input}
  - {name: z, op: sigmoid, inputs: input}
outputs: [x, z]
"""
    )
    assert list(graph.order) == ["y", "x", "z"]
    order = graph.order
    for producer, consumer in {(p, layer.name) for layer in graph.in_order() for p in layer.inputs}:
        if producer != "input":
            assert order.index(producer) < order.index(consumer)


def test_cycle_names_its_layers():
    with pytest.raises(SpecError, match=r"^<spec>:4:5: error: cycle between layers: x -> y -> x$"):
        expand(
            "layers:\n"
            "  - {name: x, op: add, inputs: [input, y]}\n"
            "  - {name: y, op: relu, inputs: x}\n"
        )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "layers:\n  - {name: a, op: relu}\n  - {name: a, op: tanh}\n",
            r"<spec>:5:12: error: duplicate layer name 'a'",
        ),
        ("layers:\n  - {name: input, op: relu}\n", r"a layer cannot be named 'input'"),
        ("layers:\n  - {op: relu, inputs: [input, input]}\n", r"relu takes 1 input, got 2"),
        ("layers:\n  - {op: add}\n", r"'0': add takes 2 to 1,024 inputs, got 1"),
        ("layers:\n  - {op: rleu}\n", r"unknown op 'rleu' \(did you mean 'relu'\?\); known ops: "),
        ("layers:\n  - {block: nope}\n", r"unknown block 'nope'"),
        (
            "blocks:\n  basic: {layers: [{op: relu}]}\nlayers:\n  - {block: basik}\n",
            r"unknown block 'basik' \(did you mean 'basic'\?\)",
        ),
        (
            "blocks:\n  b: {params: {planes: null}, layers: [{op: relu}]}\n"
            "layers:\n  - {block: b}\n",
            r"block 'b' needs argument 'planes'",
        ),
        (
            "blocks:\n  b: {params: {planes: 1}, layers: [{op: relu}]}\n"
            "layers:\n  - {block: b, args: {plane: 2}}\n",
            r"block 'b' has no parameter 'plane' \(did you mean 'planes'\?\); it takes planes",
        ),
        (
            "layers:\n  - {op: conv2d, out_channels: 8, kernal: 3}\n",
            r"conv2d field 'kernal': unknown field \(did you mean 'kernel'\?\)",
        ),
        (
            "layers:\n  - {name: g, layers: [{op: relu}], repeat: 1.5}\n",
            r"field 'layers\.0\.repeat': input should be a valid integer",
        ),
        (
            "layers:\n  - {name: g, layers: [{op: relu}], repeat: '-1'}\n",
            r"repeat must be an integer from 0",
        ),
        ("layers:\n  - {name: g, layers: [{op: relu}], repeat: 200001}\n", r"got 200001"),
        (
            "layers:\n  - {op: conv2d, out_channels: 8 // 0, kernel: 1}\n",
            r"field 'out_channels': .*division by zero",
        ),
    ],
)
def test_expansion_errors(body, message):
    with pytest.raises(SpecError, match=message):
        expand(body)


def test_independent_errors_are_reported_together():
    with pytest.raises(SpecError, match=r"unknown op") as caught:
        expand("layers:\n  - {op: rleu}\n  - {op: tanh, inputs: nowhere}\n  - {op: sigmod}\n")
    assert sorted(d.position.line for d in caught.value.diagnostics) == [4, 5, 6]


def test_block_recursion_is_an_error():
    body = "blocks:\n  b:\n    layers: [{op: relu}, {block: b}]\nlayers:\n  - {block: b}\n"
    with (
        within(2.0),
        pytest.raises(
            SpecError,
            match=r"blocks nest deeper than 32 levels .*does block 'b' instantiate itself",
        ),
    ):
        expand(body)


def test_layer_limit(monkeypatch):
    monkeypatch.setattr(budget, "MAX_LAYERS", 50)
    body = "layers:\n  - {layers: [{layers: [{op: relu}], repeat: 8}], repeat: 8}\n"
    with pytest.raises(
        SpecError, match=r"^<spec>:4:\d+: error: the spec expands to more than 50 layers$"
    ):
        expand(body)


def test_layer_limit_allows_specs_below_it(monkeypatch):
    monkeypatch.setattr(budget, "MAX_LAYERS", 200)
    graph = expand("layers:\n  - {layers: [{layers: [{op: relu}], repeat: 8}], repeat: 8}\n")
    assert len(graph.layers) == 64
    assert graph.order[-1] == "7.7.0"


def test_a_spec_of_exactly_the_layer_limit_loads(monkeypatch):
    monkeypatch.setattr(budget, "MAX_LAYERS", 64)
    graph = expand("layers:\n  - {layers: [{op: relu}], repeat: 64}\n")
    assert len(graph.layers) == 64


def test_repeats_past_the_layer_limit_fail_quickly():
    body = "layers:\n  - {layers: [{layers: [{op: relu}], repeat: 1000}], repeat: 1000}\n"
    with within(0.5), pytest.raises(SpecError, match=r"expands to more than 200000"):
        expand(body)


def test_a_repeat_of_zero_leaves_the_entry_out():
    network = expand(
        "params: {depth: 1}\nlayers:\n"
        "  - {name: first, op: conv2d, out_channels: 4, kernel: 1}\n"
        "  - {name: rest, layers: [{op: relu}], repeat: depth - 1}\n"
        "  - {name: head, op: relu, inputs: rest}\n"
    )
    assert wiring(network) == {"first": ("input",), "head": ("first",)}
