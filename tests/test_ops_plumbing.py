"""The plumbing ops (chunk, split, channel_shuffle, pad, crop) and the norms beside batch norm:
torch's edge cases, the errors a spec gets, and the networks they exist for."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from strategies import OP_STRATEGIES
from torch import nn

import archspec
from archspec.backends.torch_source import generate_source
from archspec.errors import ShapeError
from archspec.ops import OPS, TorchCall
from archspec.ops.borders import Pad
from archspec.ops.channels import Chunk

BATCH = 2


def run(op: Any, shapes: list[tuple[int, ...]], tensors: list[torch.Tensor]) -> torch.Tensor:
    lowered = op.to_torch(shapes)
    if isinstance(lowered, TorchCall):
        return lowered.apply(tensors, lambda function, args, kwargs: function(*args, **kwargs))
    result: torch.Tensor = lowered(*tensors)
    return result


# -- chunk and split against torch ----------------------------------------------------------------


def test_chunk_matches_torch_on_every_small_axis():
    """Every size to 12 and every chunk count to 14, including those torch makes fewer parts of:
    the shape or the refusal, and the values of the lowered narrow."""
    found = []
    for size, chunks in itertools.product(range(1, 13), range(1, 15)):
        x = torch.randn(BATCH, 2, size)
        parts = x.chunk(chunks, 2)
        for index in range(chunks):
            op = Chunk(chunks=chunks, index=index, dim=2)
            if index >= len(parts):
                with pytest.raises(ShapeError, match=f"chunk index {index} does not exist"):
                    op.output_shape([(2, size)])
                continue
            if op.output_shape([(2, size)]) != tuple(parts[index].shape[1:]):
                found.append(f"{size} in {chunks}, part {index}")
            elif not torch.equal(run(op, [(2, size)], [x]), parts[index]):
                found.append(f"{size} in {chunks}, part {index}: values")
    assert not found, f"{len(found)} disagreements, e.g. {found[:3]}"


def test_chunk_names_the_parts_torch_makes_when_chunks_do_not_divide():
    op = Chunk(chunks=4, index=1)
    assert op.warnings([(5, 3, 3)]) == [
        "chunks (=4) do not divide dim 1 (=5): torch makes 3 parts of 2, the last of 1"
    ]
    with pytest.raises(ShapeError, match=r"torch chunks dim 1 \(=5\) into 3 parts of 2, the last"):
        Chunk(chunks=4, index=3).output_shape([(5, 3, 3)])
    assert Chunk(chunks=2, index=1).warnings([(6, 3, 3)]) == []


@pytest.mark.parametrize(
    ("name", "fields", "match"),
    [
        ("chunk", {"chunks": 2, "index": 2}, r"index \(=2\) must be below chunks \(=2\)"),
        ("split", {"sizes": [2, 2], "index": 2}, r"below the number of sizes \(=2\)"),
        ("split", {"sizes": [], "index": 0}, "at least 1 item"),
        ("chunk", {"chunks": 2, "index": 0, "dim": 0}, "greater than or equal to 1"),
        ("pad", {"padding": [1, 2, 3]}, r"a \(before, after\) pair per spatial axis, got 3"),
        ("pad", {"padding": 1, "mode": "reflect", "value": 1}, "mode reflect pads with the input"),
        ("pad", {"padding": 1, "mode": "mirror"}, "'constant', 'reflect', 'replicate'"),
        ("pad", {"padding": -1}, "greater than or equal to 0"),
        ("crop", {"size": 0}, "greater than or equal to 1"),
        ("group_norm", {"num_groups": 0}, "greater than or equal to 1"),
        ("channel_shuffle", {"groups": True}, "expected an integer, got true"),
    ],
)
def test_fields_are_validated(name, fields, match):
    with pytest.raises(ValidationError, match=match):
        OPS[name].model_validate(fields)


@pytest.mark.parametrize(
    ("name", "fields", "inputs", "match"),
    [
        ("split", {"sizes": [2, 3], "index": 0}, [(6, 4, 4)], r"add up to 5, but dim 1 has 6"),
        ("chunk", {"chunks": 2, "index": 0, "dim": 4}, [(6, 4, 4)], "dim 4 does not exist"),
        ("channel_shuffle", {"groups": 4}, [(6, 4, 4)], r"groups \(=4\) to divide .* \(=6\)"),
        ("channel_shuffle", {"groups": 2}, [(6,)], r"\(C, L\), \(C, H, W\) or \(C, T, H, W\)"),
        ("group_norm", {"num_groups": 4}, [(6, 4, 4)], r"num_groups \(=4\) to divide .*\(=6\)"),
        ("instance_norm", {}, [(6, 1, 1)], "more than one position per channel"),
        ("batchnorm1d", {}, [(6, 4, 4)], r"\(C,\) or \(C, L\), got \(6, 4, 4\)"),
        ("batchnorm3d", {}, [(6, 4, 4)], r"\(C, T, H, W\), got \(6, 4, 4\)"),
        ("pad", {"padding": [1, 1]}, [(3, 4, 4)], r"4 padding values \(\[top, bottom, left, r"),
        ("pad", {"padding": 4, "mode": "reflect"}, [(3, 4, 9)], r"top \(=4\) is not below H"),
        ("pad", {"padding": [0, 0, 0, 6], "mode": "circular"}, [(3, 9, 5)], r"right \(=6\)"),
        ("crop", {}, [(3, 8, 8), (3, 9, 8)], "cannot grow H from 8 to 9: input 1 is larger"),
        ("crop", {}, [(3, 8, 8)], "`size` or a second input"),
        ("crop", {"size": 4}, [(3, 8, 8), (3, 4, 4)], "not both"),
        ("crop", {"size": [4, 4]}, [(3, 8)], r"has 2 values, but .* 1 spatial axes \(L\)"),
        ("crop", {}, [(3, 8, 8), (3, 4)], r"of input 0's rank"),
    ],
)
def test_shapes_that_do_not_fit_are_refused_with_the_values(name, fields, inputs, match):
    with pytest.raises(ShapeError, match=match):
        OPS[name].model_validate(fields).output_shape(inputs)


# -- pad and crop against torch -------------------------------------------------------------------


def _torch_pad_shape(mode: str, pads: tuple[int, ...], shape: tuple[int, ...]) -> Any:
    try:
        return tuple(F.pad(torch.zeros(1, *shape), pads, mode=mode).shape[1:])
    except RuntimeError:
        return None


def test_pad_limits_and_shapes_match_torch():
    """Exhaustive over small sizes and paddings: accepted exactly when torch accepts, same shape."""
    found = []
    for mode, size, before, after in itertools.product(
        ("constant", "reflect", "replicate", "circular"), range(1, 6), range(7), range(7)
    ):
        shape = (1, size, 3)
        try:
            ours = Pad(padding=[before, after, 0, 0], mode=mode).output_shape([shape])
        except ShapeError:
            ours = None
        theirs = _torch_pad_shape(mode, (0, 0, before, after), shape)
        if ours != theirs:
            found.append(f"{mode} {before}/{after} of {size}: archspec {ours}, torch {theirs}")
    assert not found, f"{len(found)} disagreements, e.g. {found[:3]}"


def test_pad_order_is_the_shapes_and_not_torchs():
    x = torch.zeros(1, 1, 2, 3)
    y = run(Pad(padding=[1, 2, 3, 4], value=1.0), [(1, 2, 3)], [x])
    assert y.shape == (1, 1, 2 + 1 + 2, 3 + 3 + 4)
    assert torch.equal(y[0, 0, 1:3, 3:6], torch.zeros(2, 3))  # top 1, left 3
    assert y.sum() == y.numel() - 6


def test_crop_takes_the_centre_and_says_when_it_cannot():
    crop = OPS["crop"].model_validate({})
    x = torch.arange(9 * 8.0).reshape(1, 1, 9, 8)
    y = run(crop, [(1, 9, 8), (5, 4, 4)], [x, torch.zeros(1, 5, 4, 4)])
    assert torch.equal(y, x[:, :, 2:6, 2:6])  # 5 rows dropped: 2 above, 3 below
    assert crop.warnings([(1, 9, 8), (5, 4, 4)]) == [
        "crop of H from 9 to 4 is off-centre by half a pixel: it drops 2 at the top and 3 at "
        "the bottom"
    ]


# -- what the facets promise --------------------------------------------------------------------

PLUMBING = ["batchnorm1d", "batchnorm3d", "group_norm", "instance_norm"]
PLUMBING += ["chunk", "split", "channel_shuffle", "pad", "crop"]


@pytest.mark.parametrize(
    "name", [name for name in PLUMBING if not OPS[name].output_kept_for_backward]
)
@given(data=st.data())
def test_an_output_not_kept_for_backward_may_be_overwritten(name, data):
    """What `output_kept_for_backward = False` allows: an in-place activation on the output. It
    must not write into the input (the output is no view of it), nor break the backward."""
    case = data.draw(OP_STRATEGIES[name], label="case")
    op = OPS[name].model_validate(case.fields)
    module = op.to_torch(case.inputs)
    assert isinstance(module, nn.Module)
    module.eval()
    source = torch.randn(BATCH, *case.inputs[0]).requires_grad_()
    gradients = []
    for in_place in (False, True):
        scaled = source * 2.0  # its backward keeps no output, so it may be overwritten
        output = module(scaled)
        assert output.untyped_storage().data_ptr() != scaled.untyped_storage().data_ptr()
        result = torch.relu_(output) if in_place else torch.relu(output)
        (gradient,) = torch.autograd.grad(result.sum(), source)
        gradients.append(gradient)
    torch.testing.assert_close(gradients[0], gradients[1])


def test_groups_of_one_value_are_flagged_and_give_the_bias():
    op = OPS["group_norm"].model_validate({"num_groups": 3})
    (message,) = op.warnings([(3, 1, 1)])
    assert "the output is the bias whatever the input" in message
    module = op.to_torch([(3, 1, 1)]).double()  # torch's fused formula rounds x - mean in float
    with torch.no_grad():
        module.bias.uniform_(-1, 1)
        output = module(torch.randn(BATCH, 3, 1, 1, dtype=torch.float64))
    torch.testing.assert_close(output, module.bias.reshape(1, 3, 1, 1).expand(BATCH, 3, 1, 1))


# -- the networks they exist for ----------------------------------------------------------------

SHUFFLE_UNIT = """
name: shuffle_unit
input: [8, 16, 16]
layers:
  - {name: left, op: chunk, chunks: 2, index: 0}
  - name: right
    op: split
    sizes: ["in_channels // 2", "in_channels // 2"]
    index: 1
    inputs: input
  - name: branch2             # torchvision's InvertedResidual, stride 1
    layers:
      - {op: conv2d, out_channels: 4, kernel: 1, bias: false}
      - {op: batchnorm2d}
      - {op: relu}
      - {op: conv2d, out_channels: 4, kernel: 3, padding: 1, groups: 4, bias: false}
      - {op: batchnorm2d}
      - {op: conv2d, out_channels: 4, kernel: 1, bias: false}
      - {op: batchnorm2d}
      - {op: relu}
  - {name: cat, op: concat, inputs: [left, branch2]}
  - {name: shuffle, op: channel_shuffle, groups: 2}
"""


def _shuffle_unit_by_hand(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """ShuffleNet v2's unit as torchvision writes it, with the compiled network's layers."""
    x1, x2 = x.chunk(2, dim=1)
    for index in range(8):
        x2 = model.get_submodule(f"branch2.{index}")(x2)
    out = torch.cat((x1, x2), dim=1)
    batch, channels, height, width = out.shape
    out = out.view(batch, 2, channels // 2, height, width).transpose(1, 2).contiguous()
    return out.view(batch, channels, height, width)


def test_a_shufflenet_v2_unit_computes_what_torchvision_writes():
    spec = archspec.load(SHUFFLE_UNIT)
    report = archspec.analyze(spec)
    assert report.layer("shuffle").output_shape == (8, 16, 16)
    assert report.warnings == ()
    model = archspec.compile(spec).eval()
    x = torch.randn(BATCH, 8, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(model(x), _shuffle_unit_by_hand(model, x))


def test_a_shufflenet_v2_unit_becomes_standalone_source():
    model = archspec.compile(SHUFFLE_UNIT).eval()
    namespace: dict[str, Any] = {}
    exec(compile(generate_source(model, "ShuffleUnit"), "shuffle_unit.py", "exec"), namespace)
    standalone = namespace["ShuffleUnit"]()
    standalone.load_state_dict(model.state_dict())
    x = torch.randn(1, 8, 16, 16)
    assert torch.equal(standalone.eval()(x), model(x))


UNET_PIECE = """
name: unet_piece
input: [3, 32, 32]
layers:
  - {name: down, op: conv2d, out_channels: 4, kernel: 3}       # 30 x 30
  - {name: deep1, op: conv2d, out_channels: 6, kernel: 3}      # 28 x 28
  - {name: deep2, op: conv2d, out_channels: 6, kernel: 3}      # 26 x 26
  - {name: skip, op: crop, inputs: [down, deep2]}              # down's centre 26 x 26
  - {name: cat, op: concat, inputs: [skip, deep2]}
  - {name: pad, op: pad, padding: [1, 1, 2, 2], mode: reflect}
  - {name: norm, op: group_norm, num_groups: 2}
  - {name: fixed, op: crop, size: [20, 24]}
"""


def test_a_unet_skip_is_cropped_to_the_deeper_path_and_centred_on_it():
    report = archspec.analyze(UNET_PIECE)
    assert report.layer("skip").output_shape == (4, 26, 26)
    assert report.layer("cat").output_shape == (10, 26, 26)
    assert report.layer("fixed").output_shape == (10, 20, 24)
    # the crop's shift puts the skip's unit 0 on input pixel 3, where deep2's is: no warning
    # that the paths meeting at the concat are centred apart
    skip, deep = report.layer("skip").receptive_field, report.layer("deep2").receptive_field
    assert skip is not None
    assert deep is not None
    assert skip.offset == deep.offset == (3, 3)
    assert not [warning for warning in report.warnings if "'cat'" in warning.message]
    model = archspec.compile(UNET_PIECE).eval()
    x = torch.randn(BATCH, 3, 32, 32)
    with torch.no_grad():
        down = model.down(x)
        deep = model.deep2(model.deep1(down))
        cat = torch.cat((down[:, :, 2:28, 2:28], deep), dim=1)
        expected = model.norm(F.pad(cat, (2, 2, 1, 1), mode="reflect"))[:, :, 4:24, 3:27]
        torch.testing.assert_close(model(x), expected)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_the_crop_to_a_second_input_compiles_to_torchscript():
    model = archspec.compile(UNET_PIECE).eval()
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(torch.jit.script(model)(x), model(x))


PLUMBING_NET = """
name: plumbing
input: [6, 12, 10]
layers:
  - {name: pad, op: pad, padding: [2, 1, 0, 3], mode: circular}
  - {name: grouped, op: group_norm, num_groups: 3}
  - {name: instance, op: instance_norm, affine: true, inputs: pad}
  - {name: part, op: chunk, chunks: 3, index: 2, dim: 3, inputs: instance}
  - {name: rows, op: split, sizes: [5, 4, 6], index: 1, dim: 2, inputs: grouped}
  - {name: small, op: crop, inputs: [instance, rows]}
  - {name: fixed, op: crop, size: 3, inputs: grouped}
  - {name: replicate, op: pad, padding: 1, mode: replicate}
  - {name: shuffle, op: channel_shuffle, groups: 3}
outputs: [small, part, shuffle]
"""


def test_the_plumbing_ops_export_to_onnx_and_match_onnxruntime(tmp_path):
    exported = archspec.export_onnx(PLUMBING_NET, tmp_path / "plumbing.onnx")
    assert exported.worst_difference is not None
    assert exported.worst_difference < 1e-4
