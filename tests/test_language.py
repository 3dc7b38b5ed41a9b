"""The language features that scale and shape whole architectures: variants, named outputs,
name templates, splicing blocks, relative and computed inputs, torch-style names."""

from __future__ import annotations

import pytest

import archspec
from archspec.cli import main
from archspec.errors import SpecError, UsageError

SCALED = """\
name: scaled
input: [3, 32, 32]
params: {depth: 1, width: 1.0}
variants:
  n: {depth: 1, width: 0.25}
  s: {depth: 2, width: 0.5}
layers:
  - {op: conv2d, out_channels: "int(64 * width)", kernel: 3, padding: 1}
  - name: body
    repeat: depth
    layers: [{op: conv2d, out_channels: in_channels, kernel: 3, padding: 1}]
"""


def test_a_variant_replaces_parameters_and_set_replaces_the_variant():
    assert archspec.load(SCALED).params == {"depth": 1, "width": 1.0}
    small = archspec.load(SCALED, variant="s")
    assert small.params == {"depth": 2, "width": 0.5}
    assert small.network.layer("0").op.out_channels == 32
    assert [layer.name for layer in small.network.layers][-2:] == ["body.0.0", "body.1.0"]
    assert archspec.load(SCALED, {"width": 2.0}, variant="n").params == {"depth": 1, "width": 2.0}


def test_an_unknown_variant_names_the_ones_there_are():
    with pytest.raises(UsageError, match=r"no variant 'm'; its variants: n, s"):
        archspec.load(SCALED, variant="m")


def test_a_variant_setting_an_undeclared_parameter_is_positioned():
    text = SCALED.replace("s: {depth: 2, width: 0.5}", "s: {depth: 2, widht: 0.5}")
    with pytest.raises(SpecError) as raised:
        archspec.load(text)
    (diagnostic,) = raised.value.diagnostics
    assert "variant 's' sets 'widht', which is not a parameter (did you mean 'width'?)" in str(
        diagnostic
    )
    assert diagnostic.position is not None
    assert diagnostic.position.line == 6


def test_the_command_takes_a_variant(tmp_path, capsys):
    spec = tmp_path / "scaled.yaml"
    spec.write_text(SCALED)
    assert main(["validate", str(spec), "--variant", "n"]) == 0
    assert "2 layers" in capsys.readouterr().out
    assert main(["validate", str(spec), "--variant", "x"]) == 2


SEGMENTER = """\
name: segmenter
input: [3, 32, 32]
params: {aux_loss: false}
layers:
  - {name: backbone, op: conv2d, out_channels: 8, kernel: 3, padding: 1}
  - {name: classifier, op: conv2d, out_channels: 4, kernel: 1}
  - {name: aux_classifier, op: conv2d, out_channels: 4, kernel: 1, inputs: backbone, when: aux_loss}
outputs:
  out: classifier
  aux: {layer: aux_classifier, when: aux_loss}
"""


@pytest.mark.parametrize("aux_loss", [False, True])
def test_named_outputs_come_back_as_a_dict_and_an_optional_head_follows_its_parameter(
    aux_loss, tmp_path
):
    import onnx
    import torch

    spec = archspec.load(SEGMENTER, {"aux_loss": aux_loss})
    keys = ("out", "aux") if aux_loss else ("out",)
    assert spec.network.output_keys == keys
    module = archspec.compile(spec).eval()
    result = module(torch.randn(2, 3, 32, 32))
    assert isinstance(result, dict)
    assert tuple(result) == keys
    assert all(value.shape == (2, 4, 32, 32) for value in result.values())
    assert ("aux_classifier.weight" in module.state_dict()) == aux_loss
    archspec.export_onnx(spec, tmp_path / "seg.onnx")
    assert [output.name for output in onnx.load(tmp_path / "seg.onnx").graph.output] == list(keys)


def test_generated_source_returns_the_named_outputs():
    import torch

    from archspec.backends.torch_source import generate_source

    compiled = archspec.compile(archspec.load(SEGMENTER, {"aux_loss": True})).eval()
    source = generate_source(compiled, "Segmenter")
    assert "-> dict[str, torch.Tensor]:" in source
    namespace: dict[str, object] = {}
    exec(compile(source, "segmenter.py", "exec"), namespace)
    standalone = namespace["Segmenter"]()
    standalone.load_state_dict(compiled.state_dict())
    image = torch.randn(1, 3, 32, 32)
    expected, found = compiled(image), standalone.eval()(image)
    assert list(found) == ["out", "aux"]
    assert all(torch.equal(found[key], expected[key]) for key in expected)


def test_output_keys_must_be_one_distinct_name_per_output():
    layers = (archspec.Layer("a", archspec.ops.ReLU()), archspec.Layer("b", archspec.ops.ReLU()))
    with pytest.raises(archspec.ArchspecError, match="output key 'x' is given twice"):
        archspec.Network("n", (3, 8, 8), layers, ("a", "b"), ("x", "x"))
    with pytest.raises(archspec.ArchspecError, match="1 output keys for 2 outputs"):
        archspec.Network("n", (3, 8, 8), layers, ("a", "b"), ("x",))


DENSE = """\
name: dense
input: [3, 16, 16]
blocks:
  dense_layer:
    params: {growth: 4}
    layers:
      - {name: norm1, op: batchnorm2d}
      - {name: conv1, op: conv2d, out_channels: growth, kernel: 3, padding: 1}
      - {name: cat, op: concat, inputs: [input, conv1]}
layers:
  - name: denseblock1
    layers:
      - {name: "denselayer{i + 1}", block: dense_layer, repeat: 3}
  - {name: "transition{2 * 2}", op: conv2d, out_channels: 8, kernel: 1}
"""


def test_a_name_template_names_each_repeated_instance():
    network = archspec.load(DENSE).network
    names = [layer.name for layer in network.layers]
    assert names[:3] == [
        "denseblock1.denselayer1.norm1",
        "denseblock1.denselayer1.conv1",
        "denseblock1.denselayer1.cat",
    ]
    assert "denseblock1.denselayer3.cat" in names
    assert names[-1] == "transition4"
    # each instance reads the one before, as an unnamed repeat does
    assert network.layer("denseblock1.denselayer2.norm1").inputs == ("denseblock1.denselayer1.cat",)
    assert archspec.analyze(network).layer("denseblock1.denselayer3.cat").output_shape[0] == 15


def test_a_template_that_gives_no_name_is_positioned():
    text = DENSE.replace('"denselayer{i + 1}"', '"dense-{i}-"')
    with pytest.raises(SpecError) as raised:
        archspec.load(text)
    first = str(raised.value.diagnostics[0])
    assert first.startswith("<spec>:13:16: error: name 'dense-{i}-' gives 'dense-0-' is not a")
    text = DENSE.replace('"denselayer{i + 1}"', '"dense{i / 2}"')
    with pytest.raises(SpecError, match=r"\{i / 2\} gives 0.0, not a number or a word"):
        archspec.load(text)


VGG_BN = """\
name: vgg_bn
input: [3, 32, 32]
blocks:
  conv_bn_relu:
    params: {width: null}
    layers:
      - {op: conv2d, out_channels: width, kernel: 3, padding: 1}
      - {op: batchnorm2d}
      - {op: relu}
layers:
  - name: features
    layers:
      - {block: conv_bn_relu, args: {width: 8}, splice: true}
      - {op: max_pool2d, kernel: 2}
      - {block: conv_bn_relu, args: {width: 16}, splice: true, repeat: 2}
"""


def test_a_spliced_block_takes_the_next_numbers_of_its_sequence():
    names = [layer.name for layer in archspec.load(VGG_BN).network.layers]
    assert names == [f"features.{index}" for index in range(10)]
    network = archspec.load(VGG_BN).network
    assert network.layer("features.4").op.out_channels == 16
    assert network.layer("features.7").inputs == ("features.6",)


def test_spliced_blocks_naming_a_layer_alike_are_refused():
    text = VGG_BN.replace("- {op: relu}", "- {name: act, op: relu}")
    with pytest.raises(SpecError, match=r"duplicate layer name 'features.act'"):
        archspec.load(text)


REGNET_NAMES = """\
name: hyphens
input: [3, 16, 16]
layers:
  - name: trunk_output
    layers:
      - name: block1
        layers:
          - {name: block1-0, op: conv2d, out_channels: 4, kernel: 3, padding: 1}
          - {name: block1-1, op: relu}
      - {name: tap, op: add, inputs: [block1.block1-0, block1.block1-1]}
  - {name: head-out, op: conv2d, out_channels: 2, kernel: 1}
"""


def test_hyphenated_names_compile_and_generate_source_as_torch_allows():
    import torch

    from archspec.backends.torch_source import generate_source

    compiled = archspec.compile(REGNET_NAMES).eval()
    keys = list(compiled.state_dict())
    assert keys == [
        "trunk_output.block1.block1-0.weight",
        "trunk_output.block1.block1-0.bias",
        "head-out.weight",
        "head-out.bias",
    ]
    namespace: dict[str, object] = {}
    exec(compile(generate_source(compiled, "Hyphens"), "hyphens.py", "exec"), namespace)
    standalone = namespace["Hyphens"]()
    standalone.load_state_dict(compiled.state_dict())
    image = torch.randn(1, 3, 16, 16)
    assert torch.equal(standalone.eval()(image), compiled(image))


RELATIVE = """\
name: relative
input: [3, 16, 16]
params: {use_left: true}
layers:
  - {name: stem, op: conv2d, out_channels: 4, kernel: 3, padding: 1}
  - {op: relu}
  - {op: conv2d, out_channels: 4, kernel: 3, padding: 1}
  - {name: skip, op: add, inputs: [-1, -3]}
  - name: branches
    layers:
      - {name: left, op: conv2d, out_channels: 4, kernel: 1}
      - {name: right, op: conv2d, out_channels: 4, kernel: 3, padding: 1, inputs: -2}
      - {name: chosen, op: relu, inputs: "{'left' if use_left else 'right'}"}
"""


def test_inputs_count_entries_back_and_templates_choose_a_sibling():
    network = archspec.load(RELATIVE).network
    assert network.layer("skip").inputs == ("2", "stem")
    # -2 from the group's second entry: the group's own input
    assert network.layer("branches.right").inputs == ("skip",)
    assert network.layer("branches.chosen").inputs == ("branches.left",)
    flipped = archspec.load(RELATIVE, {"use_left": False}).network
    assert flipped.layer("branches.chosen").inputs == ("branches.right",)


def test_an_input_reaching_before_its_sequence_is_positioned():
    text = RELATIVE.replace("inputs: [-1, -3]", "inputs: [-1, -5]")
    with pytest.raises(SpecError, match=r"8:\d+: error: layer 'skip': input -5 reaches before"):
        archspec.load(text)


def test_input_sizes_may_be_expressions_over_parameters():
    text = "name: n\ninput: [3, size, size]\nparams: {size: 64}\nvariants: {big: {size: 96}}\n"
    text += "layers:\n  - {op: conv2d, out_channels: 4, kernel: 3}\n"
    assert archspec.load(text).network.input == (3, 64, 64)
    assert archspec.load(text, variant="big").network.input == (3, 96, 96)
    with pytest.raises(SpecError, match=r"2:12: error: input size 'size' gives 0, not a size"):
        archspec.load(text, {"size": 0})


def test_a_repeated_block_sees_its_instance_index_in_its_arguments():
    text = """\
name: stages
input: [3, 32, 32]
blocks:
  stage:
    params: {planes: null, stride: 1}
    layers:
      - {name: conv, op: conv2d, out_channels: planes, kernel: 3, stride: stride, padding: 1}
layers:
  - name: "stage{i + 1}"
    block: stage
    repeat: 3
    args: {planes: "8 * 2 ** i", stride: "1 if i == 0 else 2"}
"""
    report = archspec.analyze(archspec.load(text))
    assert [layer.output_shape for layer in report.layers] == [
        (8, 32, 32),
        (16, 16, 16),
        (32, 8, 8),
    ]


COMPUTED_OPS = """\
name: acts
input: [3, 8, 8]
params: {act: hardswish}
blocks:
  unit:
    params: {act: relu}
    layers:
      - {name: conv, op: conv2d, out_channels: 4, kernel: 3, padding: 1}
      - {name: act, op: "{act}"}
layers:
  - {name: default, block: unit}
  - {name: passed, block: unit, args: {act: act}}
  - {name: word, block: unit, args: {act: silu}}
  - {name: chosen, op: "{'gelu' if act == 'hardswish' else 'relu'}"}
"""


def test_an_op_may_be_named_by_a_parameter():
    ops = {layer.name: layer.op_name for layer in archspec.load(COMPUTED_OPS).network.layers}
    assert ops == {
        "default.conv": "conv2d",
        "default.act": "relu",
        "passed.conv": "conv2d",
        "passed.act": "hardswish",
        "word.conv": "conv2d",
        "word.act": "silu",
        "chosen": "gelu",
    }
    module = archspec.compile(COMPUTED_OPS)
    assert type(module.passed.act).__name__ == "Hardswish"


def test_a_computed_op_that_names_no_op_says_what_it_gave():
    with pytest.raises(SpecError, match=r"9:\d+: error: layer 'passed.act': op '\{act\}' gives "):
        archspec.load(COMPUTED_OPS, {"act": "swish"})


ALTERNATIVES = """\
name: alternatives
input: [4, 8, 8]
params: {groups: 2}
layers:
  - {name: c, op: conv2d, out_channels: 8, kernel: 3, padding: 1, when: groups == 1}
  - name: c
    when: groups > 1
    layers:
      - {op: conv2d, out_channels: 4, kernel: 3, padding: 1}
      - {op: conv2d, out_channels: 4, kernel: 5, padding: 2, inputs: input}
      - {op: concat, inputs: [0, 1]}
  - {name: act, op: relu, inputs: c}
"""


def test_alternatives_left_out_by_when_may_share_a_name():
    mixed = archspec.load(ALTERNATIVES).network
    assert [layer.name for layer in mixed.layers] == ["c.0", "c.1", "c.2", "act"]
    assert mixed.layer("act").inputs == ("c.2",)
    single = archspec.load(ALTERNATIVES, {"groups": 1}).network
    assert [layer.name for layer in single.layers] == ["c", "act"]
    both = ALTERNATIVES.replace("when: groups == 1", "when: groups >= 1")
    with pytest.raises(SpecError, match=r"6:11: error: duplicate layer name 'c'"):
        archspec.load(both)


def test_in_channels_inside_a_list_argument_waits_for_the_shape():
    text = """\
name: late_list
input: [3, 8, 8]
blocks:
  b:
    params: {k: null}
    layers:
      - {name: conv, op: conv2d, out_channels: "k[0] * 2", kernel: 1}
      - {name: act, op: "{'relu' if k[0] == 3 else 'sigmoid'}"}
layers:
  - {name: s, block: b, args: {k: [in_channels]}}
"""
    # a name is given before shapes are known: an error, not a silent sigmoid
    with pytest.raises(SpecError, match=r"8:\d+: error: layer 's.act': op .* uses in_channels"):
        archspec.load(text)
    act = "\n      - {name: act, op: \"{'relu' if k[0] == 3 else 'sigmoid'}\"}"
    resolved = text.replace(act, "")
    assert archspec.analyze(archspec.load(resolved)).layer("s.conv").output_shape == (6, 8, 8)


def test_a_computed_op_that_fails_is_one_error():
    with pytest.raises(SpecError) as caught:
        archspec.load(COMPUTED_OPS.replace('op: "{act}"', 'op: "{unknown}"'))
    assert len(caught.value.diagnostics) == 1
    assert "unknown name 'unknown'" in str(caught.value)
