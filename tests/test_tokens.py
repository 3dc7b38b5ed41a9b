"""Tokens, layouts and attention: ConvNeXt, ViT and Swin against torchvision's figures, layout
errors, learned tensors, and receptive fields through tokens measured by gradients."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from oracle import FieldProbe, make_positive_average, positive_image

import archspec
from archspec.backends.torch import compile_module
from archspec.backends.torch_source import generate_source
from archspec.errors import SpecError
from archspec.ops.layouts import layout_of
from archspec.outputs.diagram import build_diagram

EXAMPLES = Path(__file__).resolve().parent.parent / "archspec" / "zoo"

#: torchvision's meta of each size: (num_params, MACs whose G to 3 decimals is its "_ops").
PUBLISHED = {
    ("convnext_tiny", None): (28_589_128, 4.456),
    ("convnext_tiny", "small"): (50_223_688, 8.684),
    ("convnext_tiny", "base"): (88_591_464, 15.355),
    ("convnext_tiny", "large"): (197_767_336, 34.361),
    ("vit_b_16", None): (86_567_656, 17.564),
    ("vit_b_16", "b_32"): (88_224_232, 4.409),
    ("vit_b_16", "l_16"): (304_326_632, 61.555),
    ("vit_b_16", "l_32"): (306_535_400, 15.378),
    ("vit_b_16", "h_14"): (632_045_800, 167.295),
    ("swin_t", None): (28_288_354, 4.491),
    ("swin_t", "s"): (49_606_258, 8.741),
    ("swin_t", "b"): (87_768_224, 15.431),
    ("swin_t", "v2_t"): (28_351_570, 5.94),
    ("swin_t", "v2_s"): (49_737_442, 11.546),
    ("swin_t", "v2_b"): (87_930_848, 20.325),
}


def analyze(text: str) -> archspec.Report:
    return archspec.analyze(archspec.load(text))


def error_of(text: str) -> str:
    with pytest.raises(SpecError) as caught:
        analyze(text)
    return str(caught.value)


@pytest.mark.parametrize(("name", "variant"), PUBLISHED, ids=lambda value: str(value))
def test_every_size_matches_torchvision(name, variant):
    params, gflops = PUBLISHED[name, variant]
    totals = archspec.analyze(archspec.load(EXAMPLES / f"{name}.yaml", variant=variant)).totals
    assert totals.params == params
    assert round(totals.macs / 1e9, 3) == gflops


def test_vit_at_384_and_518_pixels_matches_the_swag_weights():
    # the position embedding follows the image size: (384 / 16)^2 + 1 = 577 tokens
    report = archspec.analyze(archspec.load(EXAMPLES / "vit_b_16.yaml", {"image_size": 384}))
    assert (report.totals.params, round(report.totals.macs / 1e9, 3)) == (86_859_496, 55.484)
    huge = archspec.load(EXAMPLES / "vit_b_16.yaml", {"image_size": 518}, variant="h_14")
    totals = archspec.analyze(huge).totals
    assert (totals.params, round(totals.macs / 1e9, 3)) == (633_470_440, 1016.717)


def test_layouts_follow_the_axes():
    report = archspec.analyze(archspec.load(EXAMPLES / "swin_t.yaml"))
    layouts = {layer.name: layout_of(layer.output_shape) for layer in report.layers}
    assert layouts["features.0.0"] == "CHW"
    assert layouts["features.0.1"] == "HWC"
    assert layouts["features.2.merge"] == "HWC"
    assert layouts["permute"] == "CHW"
    assert layouts["flatten"] == "F"
    vit = archspec.analyze(archspec.load(EXAMPLES / "vit_b_16.yaml"))
    assert layout_of(vit.layer("patches").output_shape) == "CL"
    assert layout_of(vit.layer("tokens").output_shape) == "LC"
    assert layout_of(vit.layer("class_features").output_shape) == "C"


CONV_ON_CHANNELS_LAST = """
name: wrong_layout
input: [3, 16, 16]
layers:
  - {name: stem, op: conv2d, out_channels: 8, kernel: 4, stride: 4}
  - {name: last, op: permute, dims: [0, 2, 3, 1]}
  - {name: conv, op: conv2d, out_channels: 8, kernel: 3}
"""


def test_an_op_given_another_layout_names_both_and_the_permute_that_fits():
    message = error_of(CONV_ON_CHANNELS_LAST)
    assert "layer 'conv': conv2d expects channels first" in message
    assert "got a channels-last (H, W, C) map of size (4, 4, 8)" in message
    assert "permute with dims [0, 3, 1, 2] (batch axis 0) first" in message


def test_attention_on_a_map_says_to_make_tokens():
    message = error_of(
        "name: x\ninput: [8, 4, 4]\nlayers:\n  - {op: multihead_attention, num_heads: 2}\n"
    )
    assert "multihead_attention expects tokens (L, C), got a (C, H, W) map" in message


def test_paths_of_two_layouts_may_not_meet():
    # (4, 4, 4) both ways: torch would add them without a word
    message = error_of("""
name: x
input: [4, 4, 4]
layers:
  - {name: last, op: permute, dims: [0, 2, 3, 1]}
  - {name: sum, op: add, inputs: [last, input]}
""")
    assert "add joins paths of different layouts: a channels-last (H, W, C) map from 'last'" in (
        message
    )
    assert "a (C, H, W) map from 'input'" in message


def test_the_input_layout_is_declared_and_checked():
    report = analyze("""
name: sequence
input: [10, 32]
layout: LC
layers:
  - {op: multihead_attention, num_heads: 4}
  - {op: linear, out_features: 8}
""")
    assert layout_of(report.input_shape) == "LC"
    assert report.layers[-1].output_shape == (10, 8)
    with pytest.raises(SpecError, match="input layout must be 2 distinct letters"):
        archspec.load("name: x\ninput: [10, 32]\nlayout: LL\nlayers:\n  - {op: relu}\n")


def test_in_channels_is_the_last_axis_of_tokens_and_in_shape_the_whole_shape():
    report = analyze("""
name: x
input: [10, 32]
layout: LC
layers:
  - {name: wider, op: linear, out_features: 2 * in_channels}
  - {name: flat, op: reshape, shape: ["in_shape[0] * in_shape[1]"]}
""")
    assert report.layer("wider").output_shape == (10, 64)
    assert report.layer("flat").output_shape == (640,)


@pytest.mark.parametrize(
    ("shape", "expected"),
    [([1, 1, 8], (1, 8)), ([5, 1], (5, 1)), ([8], (1, 8)), ([1, 5, 8], (5, 8))],
)
def test_a_parameter_meets_its_input_as_torch_broadcasting_would(shape, expected):
    report = analyze(f"""
name: x
input: [5, 8]
layout: LC
layers:
  - {{name: p, op: parameter, shape: {shape}}}
""")
    assert report.layer("p").output_shape == expected


def test_a_parameter_whose_batch_axis_is_not_one_is_refused():
    message = error_of("""
name: x
input: [5, 8]
layout: LC
layers:
  - {name: p, op: parameter, shape: [2, 5, 8]}
""")
    assert "its first is the batch axis, which must be 1" in message


TINY_VIT = {
    "image_size": 32,
    "patch_size": 8,
    "num_layers": 1,
    "num_heads": 2,
    "hidden_dim": 16,
    "mlp_dim": 32,
    "num_classes": 5,
}


def test_tokens_see_their_patch_and_attention_sees_everything():
    spec = archspec.load(EXAMPLES / "vit_b_16.yaml", TINY_VIT)
    report = archspec.analyze(spec)
    tokens = report.layer("tokens").receptive_field
    assert tokens is not None
    assert (tokens.size, tokens.stride) == ((8, 8), (8, 8))
    class_token = report.layer("class_token").receptive_field
    assert class_token is not None
    assert class_token.constant
    joined = report.layer("joined").receptive_field
    assert joined is not None
    assert joined.size == (8, 8)  # the class token joins with no field of its own
    attention = report.layer("encoder.layers.encoder_layer_0.self_attention").receptive_field
    assert attention is not None
    assert attention.is_global
    # measured: token k of the 4x4 patches reaches exactly its patch; after attention, all
    module = compile_module(spec, report)
    make_positive_average(module)
    layers = ["tokens", "encoder.layers.encoder_layer_0.self_attention"]
    probe = FieldProbe(module, layers, positive_image(report.input_shape, torch.float32))
    for token in (0, 5, 15):
        row, column = divmod(token, 4)
        patch = ((8 * row, 8 * row + 7), (8 * column, 8 * column + 7))
        assert probe.box("tokens", (token,), report.layer("tokens").output_shape) == patch
    whole = ((0, 31), (0, 31))
    shape = report.layer(layers[1]).output_shape
    assert probe.box(layers[1], (0,), shape) == whole  # the class token's output too


def test_window_attention_is_global_where_one_window_holds_the_map():
    report = archspec.analyze(archspec.load(EXAMPLES / "swin_t.yaml", {"image_size": 224}))
    assert report.layer("features.7.0.attn").receptive_field.is_global  # 7x7 map, window 7
    stage3 = report.layer("features.5.0.attn").receptive_field  # 14x14 map, window 7
    assert not stage3.is_global
    before = report.layer("features.5.0.norm1").receptive_field
    # a bound of 2w - 1 = 13 tokens at the map's stride of 16
    assert stage3.size[0] - before.size[0] == 12 * 16


def test_attention_counts_its_score_maps_in_activation_memory():
    spec = archspec.load(EXAMPLES / "vit_b_16.yaml")
    layer = archspec.analyze(spec).layer("encoder.layers.encoder_layer_0.self_attention")
    tokens, features, heads = 197, 768, 12
    expected = tokens * features + heads * tokens * tokens + 3 * tokens * features
    assert layer.activation_bytes == 4 * expected


def test_learned_tensors_are_keyed_by_their_layer_and_frozen_with_it():
    spec = archspec.load(EXAMPLES / "vit_b_16.yaml", TINY_VIT, freeze=["class_token"])
    module = compile_module(spec)
    shapes = {key: tuple(value.shape) for key, value in module.state_dict().items()}
    assert shapes["class_token"] == (1, 1, 16)
    assert shapes["encoder.pos_embedding"] == (1, 17, 16)
    assert not module.class_token.requires_grad
    assert module.get_parameter("encoder.pos_embedding").requires_grad
    assert torch.equal(module.class_token, torch.zeros(1, 1, 16))


def test_generated_source_builds_the_same_transformers():
    for name, overrides in (
        ("vit_b_16", TINY_VIT),
        ("convnext_tiny", {"image_size": 32, "widths": [8, 16, 32, 64], "depths": [1, 1, 1, 1]}),
        ("swin_t", {"image_size": 32, "embed_dim": 8, "num_heads": [1, 2, 4, 8]}),
        ("swin_t", {"image_size": 32, "embed_dim": 8, "num_heads": [1, 2, 4, 8], "version": 2}),
    ):
        spec = archspec.load(EXAMPLES / f"{name}.yaml", overrides)
        module = compile_module(spec).eval()
        namespace: dict[str, object] = {}
        exec(compile(generate_source(module, "Generated"), name, "exec"), namespace)
        generated = namespace["Generated"]().eval()  # type: ignore[operator]
        generated.load_state_dict(module.state_dict(), strict=True)
        image = torch.randn(2, *spec.network.input)
        with torch.no_grad():
            assert torch.equal(generated(image), module(image)), name


def test_a_drawing_reads_like_the_paper_figure():
    report = archspec.analyze(archspec.load(EXAMPLES / "vit_b_16.yaml"))
    diagram = build_diagram(report, depth=2)
    boxes = {box.name: box for box in diagram.boxes}
    assert boxes["class_token"].learned
    assert boxes["encoder.layers"].op == "12 \N{MULTIPLICATION SIGN} 11 layers"
    assert boxes["encoder.layers"].detail == "multihead_attention, linear"
    names = [box.name for box in diagram.boxes]
    # the class token reads the tokens for their batch size only: a dotted edge, no data
    edge = next(
        edge
        for edge in diagram.edges
        if names[edge.source] == "tokens" and names[edge.target] == "class_token"
    )
    assert edge.shape_only
    assert "style=dotted" in diagram.dot()


def test_tokens_that_do_not_match_a_fixed_position_embedding_say_what_to_set():
    spec = archspec.load(EXAMPLES / "vit_b_16.yaml")
    with pytest.raises(SpecError) as caught:
        archspec.analyze(spec, (3, 112, 112))
    message = str(caught.value)
    assert "add expects as many tokens on both paths, got 50 and 197" in message
    assert "'encoder.pos_embedding' is a learned tensor of the shape the spec gives it" in message


def test_tokens_of_unequal_width_want_a_linear_projection():
    message = error_of("""
name: x
input: [10, 32]
layout: LC
layers:
  - {name: wide, op: linear, out_features: 64}
  - {name: sum, op: add, inputs: [wide, input]}
""")
    assert "add expects equal channels, got 64 and 32 (input 1); a linear layer" in message


def test_a_class_token_joined_in_front_keeps_every_patch_field():
    report = archspec.analyze(archspec.load(EXAMPLES / "vit_b_16.yaml", TINY_VIT))
    for name in ("joined", "encoder.embedded", "encoder.layers.encoder_layer_0.ln_1"):
        field = report.layer(name).receptive_field
        assert field is not None
        assert (field.size, field.is_global) == ((8, 8), False), name


def test_a_token_mlp_mixes_positions_when_told_to():
    mixer = """
name: token_mixing
input: [16, 8]
layout: LC
layers:
  - {name: swap, op: transpose, dim0: 1, dim1: 2}
  - {name: mix, op: linear, out_features: 16, over: positions}
  - {name: back, op: transpose, dim0: 1, dim1: 2}
"""
    assert "over: positions" in error_of(mixer.replace(", over: positions", ""))
    spec = archspec.load(mixer)
    report = archspec.analyze(spec)
    assert layout_of(report.layer("back").output_shape) == "LC"
    assert report.layer("mix").receptive_field.is_global  # every token reads all of them
    module = compile_module(spec).eval()
    x = torch.randn(2, 16, 8)
    with torch.no_grad():
        expected = (x.transpose(1, 2) @ module.mix.weight.T + module.mix.bias).transpose(1, 2)
        assert torch.allclose(module(x), expected)
