"""Every registered op against torch: static shape, parameters and MACs equal the real module's."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError
from strategies import OP_STRATEGIES, OpCase
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from archspec.errors import ShapeError
from archspec.ops import OPS, Op, Shape, TorchCall
from archspec.ops.base import TorchTensor

BATCH = 2

# torch warns, once per process, that 'same' padding with an even kernel copies the input: a
# performance notice about a legal convolution, nothing to do with the shapes checked here
pytestmark = pytest.mark.filterwarnings(
    "ignore:Using padding='same' with even kernel lengths:UserWarning"
)


def run_lowered(op: Op, inputs: Sequence[Shape]) -> tuple[torch.Tensor, int]:
    """Lower `op` and run it on random (BATCH, *shape) inputs: its output and parameter count.

    Modules run in training mode, as built: in eval mode nn.MultiheadAttention may take a fused
    kernel whose products FlopCounterMode does not see."""
    lowered = op.to_torch(inputs)
    tensors = [torch.randn(BATCH, *shape) for shape in inputs]
    if isinstance(lowered, TorchTensor):  # a learned tensor, then its call on it and the inputs
        tensor = torch.empty(lowered.shape)
        getattr(nn.init, lowered.init)(tensor, **lowered.init_kwargs)
        output = lowered.call.apply([tensor, *tensors], lambda f, args, kwargs: f(*args, **kwargs))
        return output, tensor.numel()
    if not isinstance(lowered, TorchCall):
        return lowered.train()(*tensors), sum(p.numel() for p in lowered.parameters())
    call = functools.partial(lowered.function, **lowered.kwargs)
    if lowered.packed:
        return call(tensors), 0
    if lowered.chained:
        return functools.reduce(call, tensors), 0
    return call(*tensors), 0


def build(name: str, case: OpCase) -> Op:
    op = OPS[name].model_validate(case.fields)
    low, high = op.arity
    assert low <= len(case.inputs) <= (high or len(case.inputs)), "the strategy broke the arity"
    return op


def test_every_op_has_a_strategy():
    missing = sorted(set(OPS) - set(OP_STRATEGIES))
    unknown = sorted(set(OP_STRATEGIES) - set(OPS))
    assert not missing, f"ops without a strategy in tests/strategies.py: {missing}"
    assert not unknown, f"strategies for ops that are not registered: {unknown}"


@pytest.mark.parametrize("name", sorted(OPS))
@given(data=st.data())
def test_static_shape_and_params_match_torch(name, data):
    case = data.draw(OP_STRATEGIES[name], label="case")
    op = build(name, case)
    shape = op.output_shape(case.inputs)
    params = op.param_count(case.inputs)
    with torch.no_grad():
        output, torch_params = run_lowered(op, case.inputs)
    assert tuple(output.shape) == (BATCH, *shape)
    assert params == torch_params


@pytest.mark.parametrize("name", sorted(OPS))
@given(data=st.data())
def test_macs_match_torch_flop_counter(name, data):
    """FlopCounterMode counts 2 FLOPs per multiply-accumulate of convolutions and matrix products
    (bias excluded) and nothing for other ops, so it is an independent count of every op's MACs.

    Attention runs on torch's math kernel, as matrix products: FlopCounterMode has no formula
    for the fused CPU kernel scaled_dot_product_attention picks otherwise (nor for the fused
    nn.MultiheadAttention of eval mode, which run_lowered avoids)."""
    case = data.draw(OP_STRATEGIES[name], label="case")
    op = build(name, case)
    shape = op.output_shape(case.inputs)
    with (
        torch.no_grad(),
        sdpa_kernel(SDPBackend.MATH),
        FlopCounterMode(display=False) as counter,
    ):
        run_lowered(op, case.inputs)
    assert 2 * BATCH * op.macs(case.inputs, shape) == counter.get_total_flops()


def _archspec_pool(name: str, fields: dict[str, object], shape: Shape) -> Shape | None:
    try:
        return OPS[name].model_validate(fields).output_shape([shape])
    except (ValidationError, ShapeError):
        return None


def _torch_pool(name: str, fields: dict[str, Any], shape: Shape) -> Shape | None:
    kernel, stride, padding, ceil_mode = (
        fields[key] for key in ("kernel", "stride", "padding", "ceil_mode")
    )
    try:
        if name == "max_pool2d":
            module: nn.Module = nn.MaxPool2d(
                kernel, stride, padding, fields["dilation"], ceil_mode=ceil_mode
            )
        else:
            module = nn.AvgPool2d(kernel, stride, padding, ceil_mode)
        return tuple(module(torch.zeros(BATCH, *shape)).shape[1:])
    except RuntimeError:
        return None


def pool_disagreements(
    name: str, *, paddings: str, ceil_mode: bool, sizes: Sequence[int]
) -> list[str]:
    """Where archspec and torch differ on a pool: accepted or not, and the output shape.

    Exhaustive over a small grid, so the verdict never depends on what hypothesis happens to draw.
    paddings: "legal" stays within torch's p <= k // 2; "any" goes up to 3 whatever the kernel.
    """
    found = []
    dilations = (1, 2, 3) if name == "max_pool2d" else (1,)
    for kernel, stride, dilation, size in itertools.product(
        range(1, 5), (None, 1, 2), dilations, sizes
    ):
        for padding in range(kernel // 2 + 1 if paddings == "legal" else 4):
            fields: dict[str, Any] = {
                "kernel": kernel,
                "stride": stride,
                "padding": padding,
                "ceil_mode": ceil_mode,
            }
            if name == "max_pool2d":
                fields["dilation"] = dilation
            shape = (1, size, size)
            ours, theirs = _archspec_pool(name, fields, shape), _torch_pool(name, fields, shape)
            if ours != theirs:
                found.append(f"{fields} at {shape}: archspec {ours}, torch {theirs}")
    return found


@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_pool_padding_limit_matches_torch(name):
    found = pool_disagreements(name, paddings="any", ceil_mode=False, sizes=[12])
    assert not found, f"{len(found)} disagreements, e.g. {found[:3]}"


@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize("name", ["max_pool2d", "avg_pool2d"])
def test_pool_shapes_match_torch_on_small_inputs(name, ceil_mode):
    """Inputs from 1 pixel up, where windows can be wider than the input; legal padding only.

    In ceil_mode torch keeps a window wider than the padded input when it starts inside it.
    """
    found = pool_disagreements(name, paddings="legal", ceil_mode=ceil_mode, sizes=range(1, 9))
    assert not found, f"{len(found)} disagreements, e.g. {found[:3]}"
