"""Every registered op states every facet itself: no facet silently defaults on `Op`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Literal

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from strategies import OP_STRATEGIES

from archspec.ops import GLOBAL, OPS, POINTWISE, Op, Shape, TorchCall, Window
from archspec.ops.base import SHAPE_ONLY, ParameterFree
from archspec.ops.layouts import ANY_LAYOUT, LayoutRule

#: The methods every op defines; Op declares them abstract.
FACET_METHODS = frozenset({"output_shape", "param_count", "macs", "flops", "window", "to_torch"})
#: The class attributes every op sets; Op declares them without a value.
FACET_CLASS_VARS = frozenset(
    {
        "arity",
        "output_kept_for_backward",
        "output_is_input",
        "running_statistics",
        "drawing_symbol",
        "drawing_mark",
        "runs_in_place",
        "takes_layout",
    }
)


def missing_facets(cls: type[Op]) -> list[str]:
    """The facets `cls` leaves to `Op`: methods found on Op itself, class attributes never set."""
    missing = []
    for name in sorted(FACET_METHODS):
        owner = next(klass for klass in cls.__mro__ if name in vars(klass))
        if owner is Op or getattr(getattr(cls, name), "__isabstractmethod__", False):
            missing.append(name)
    missing += [name for name in sorted(FACET_CLASS_VARS) if not hasattr(cls, name)]
    # the module that overwrites its input is a facet of the ops that claim one
    if getattr(cls, "runs_in_place", False) and cls.to_torch_in_place is Op.to_torch_in_place:
        missing.append("to_torch_in_place")
    return missing


def test_op_declares_every_facet_without_a_value():
    assert Op.__abstractmethods__ == FACET_METHODS
    unset = {name for name in Op.__class_vars__ if name not in vars(Op)}
    assert unset == FACET_CLASS_VARS


@pytest.mark.parametrize("name", sorted(OPS))
def test_every_op_states_every_facet(name):
    assert missing_facets(OPS[name]) == []


class _Complete(ParameterFree, Op):
    """A made-up op with every facet; never registered."""

    op: Literal["made_up"] = "made_up"
    arity: ClassVar[tuple[int, int | None]] = (1, 1)
    output_kept_for_backward: ClassVar[bool] = True
    output_is_input: ClassVar[bool] = False
    running_statistics: ClassVar[bool] = False
    drawing_symbol: ClassVar[str | None] = None
    drawing_mark: ClassVar[str | None] = None
    runs_in_place: ClassVar[bool] = False
    takes_layout: ClassVar[LayoutRule] = ANY_LAYOUT

    def output_shape(self, inputs: Sequence[Shape]) -> Shape:
        return inputs[0]

    def flops(self, inputs: Sequence[Shape], output: Shape) -> int:
        return 0

    def window(self, inputs: Sequence[Shape]) -> Window:
        return POINTWISE

    def to_torch(self, inputs: Sequence[Shape]) -> torch.nn.Module:
        return torch.nn.Identity()


def _without(facet: str) -> type[Op]:
    """A copy of _Complete that leaves `facet` out (the class attribute or the method)."""
    namespace = {
        key: value
        for key, value in vars(_Complete).items()
        if key in FACET_METHODS | FACET_CLASS_VARS and key != facet
    }
    namespace["__annotations__"] = {"op": Literal["made_up"]}
    namespace["op"] = "made_up"
    bases: tuple[type, ...] = (Op,) if facet in {"param_count", "macs"} else (ParameterFree, Op)
    if facet in {"param_count", "macs"}:  # without the mixin, restate the one not left out
        other = "macs" if facet == "param_count" else "param_count"
        namespace[other] = getattr(ParameterFree, other)
    return type(Op)(f"Without_{facet}", bases, namespace)


def test_the_made_up_op_passes_the_check():
    assert missing_facets(_Complete) == []
    assert _Complete().window([(1,)]) == POINTWISE


@pytest.mark.parametrize("facet", sorted(FACET_METHODS | FACET_CLASS_VARS))
def test_an_op_missing_one_facet_is_caught(facet):
    incomplete = _without(facet)
    assert missing_facets(incomplete) == [facet]
    if facet in FACET_METHODS:  # abc refuses to build it too, long before any test
        with pytest.raises(TypeError, match=f"abstract.*{facet}"):
            incomplete()


def test_an_op_running_in_place_without_the_module_is_caught():
    in_place = type("InPlace", (_Complete,), {"runs_in_place": True})
    assert missing_facets(in_place) == ["to_torch_in_place"]


@pytest.mark.parametrize("name", sorted(OPS))
@given(data=st.data())
def test_window_is_a_step_or_one_per_input(name, data):
    case = data.draw(OP_STRATEGIES[name], label="case")
    steps = OPS[name].model_validate(case.fields).window(case.inputs)
    if isinstance(steps, tuple):
        assert len(steps) == len(case.inputs)
    for window in steps if isinstance(steps, tuple) else (steps,):
        if window not in (GLOBAL, SHAPE_ONLY):
            assert isinstance(window, Window)
            assert all(type(size) is int for size in (*window.kernel, *window.dilation))
            assert min(*window.kernel, *window.dilation) >= 1
            assert min(window.stride) > 0


@pytest.mark.parametrize("name", sorted(OPS))
@given(data=st.data())
def test_a_module_runs_in_place_exactly_when_torch_gives_it_an_inplace_option(name, data):
    case = data.draw(OP_STRATEGIES[name], label="case")
    op = OPS[name].model_validate(case.fields)
    lowered = op.to_torch(case.inputs)
    if not isinstance(lowered, TorchCall):  # a call runs in place by its own function (iadd)
        assert op.runs_in_place == hasattr(lowered, "inplace")
    if not op.runs_in_place:
        with pytest.raises(NotImplementedError, match=r"in ?place"):
            op.to_torch_in_place(case.inputs)


def _run(lowered: torch.nn.Module | TorchCall, inputs: list[torch.Tensor]) -> torch.Tensor:
    if isinstance(lowered, TorchCall):
        return lowered.apply(inputs, lambda function, args, kwargs: function(*args, **kwargs))
    return lowered(*inputs)


@pytest.mark.parametrize("name", sorted(name for name, cls in OPS.items() if cls.runs_in_place))
@given(data=st.data())
def test_the_in_place_lowering_overwrites_input_0_with_the_same_values_and_gradients(name, data):
    case = data.draw(OP_STRATEGIES[name], label="case")
    op = OPS[name].model_validate(case.fields)
    # float64: float32 rounds in-place ELU apart
    sources = [torch.randn(2, *shape, dtype=torch.float64) for shape in case.inputs]
    in_place = op.to_torch_in_place(case.inputs)
    if isinstance(in_place, torch.nn.Module):
        assert in_place.inplace is True
    results = []
    for lowered in (op.to_torch(case.inputs), in_place):
        leaves = [source.clone().requires_grad_() for source in sources]
        scaled = [leaf * 2.0 for leaf in leaves]  # its backward keeps no output: overwritable
        torch.manual_seed(0)  # dropout draws one mask for both modules
        output = _run(lowered, scaled)
        (output * torch.arange(output.numel()).reshape(output.shape)).sum().backward()
        results.append((output.detach(), [leaf.grad for leaf in leaves]))
    if case.inputs[0] == op.output_shape(case.inputs):  # else input 0 cannot hold the output
        assert output.data_ptr() == scaled[0].data_ptr()  # it wrote into input 0
    (expected, expected_grads), (actual, actual_grads) = results
    torch.testing.assert_close(actual, expected)
    torch.testing.assert_close(actual_grads, expected_grads)
