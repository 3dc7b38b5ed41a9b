"""The elementwise family end to end: specs using each op loaded, analysed, compiled and run;
stochastic depth in training; the shape errors; backward facets checked against autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import archspec
import archspec.ops.elementwise  # registers mean, dropout2d, stochastic_depth
from archspec.ops import OPS, Shape
from archspec.ops.torch_modules import StochasticDepth

BATCH = 4


def spec_of(*layers: str, shape: Shape = (8, 6, 6)) -> str:
    lines = "".join(f"  - {layer}\n" for layer in layers)
    return f"name: net\ninput: {list(shape)}\nlayers:\n{lines}"


def squeeze_excitation(gate: str) -> str:
    return spec_of(
        "{name: squeeze, op: adaptive_avg_pool2d, output_size: 1}",
        "{name: reduce, op: conv2d, out_channels: 4, kernel: 1}",
        "{name: relu, op: relu}",
        "{name: expand, op: conv2d, out_channels: 16, kernel: 1}",
        f"{{name: gate, op: {gate}}}",
        "{name: scale, op: mul, inputs: [input, gate]}",
        shape=(16, 8, 8),
    )


@pytest.mark.parametrize(
    ("gate", "function"), [("hardsigmoid", F.hardsigmoid), ("sigmoid", torch.sigmoid)]
)
def test_squeeze_excitation_block_loads_analyses_compiles_and_runs(gate, function):
    spec = archspec.load(squeeze_excitation(gate))
    report = archspec.analyze(spec)
    scale = report.layer("scale")
    assert report.layer("gate").output_shape == (16, 1, 1)
    assert scale.output_shape == (16, 8, 8)
    assert report.totals.params == (16 * 4 + 4) + (4 * 16 + 16)
    assert scale.flops == 16 * 8 * 8  # one multiply per output element
    assert scale.receptive_field is not None
    assert scale.receptive_field.is_global  # the gate averages the whole map
    model = archspec.compile(spec).eval()
    x = torch.randn(BATCH, 16, 8, 8)
    with torch.no_grad():
        hidden = F.relu(model.reduce(x.mean(dim=(2, 3), keepdim=True)))
        expected = x * function(model.expand(hidden))
        torch.testing.assert_close(model(x), expected)


#: One spec per op, with what its output and parameter count must be at input (8, 6, 6).
END_TO_END = [
    ("{op: mul, inputs: [input, input]}", (8, 6, 6), 0),
    # spatial attention: a (1, H, W) map stretched over the channels
    (
        "{name: avg, op: mean, dims: [1], keepdim: true}",
        "{name: att, op: sigmoid}",
        "{op: mul, inputs: [input, att]}",
        (8, 6, 6),
        0,
    ),
    # a per-channel bias from the global average, added back to every position
    (
        "{name: pooled, op: adaptive_avg_pool2d, output_size: 1}",
        "{op: add, inputs: [input, pooled]}",
        (8, 6, 6),
        0,
    ),
    ("{op: hardsigmoid}", (8, 6, 6), 0),
    ("{op: mish}", (8, 6, 6), 0),
    ("{op: elu, alpha: 0.5}", (8, 6, 6), 0),
    ("{op: softplus, beta: 2, threshold: 10}", (8, 6, 6), 0),
    ("{op: prelu}", (8, 6, 6), 1),
    ("{op: prelu, num_parameters: channels, init: 0.1}", (8, 6, 6), 8),
    ("{op: mean, dims: [2, 3]}", (8,), 0),
    ("{op: mean, dims: 3, keepdim: true}", (8, 6, 1), 0),
    ("{op: dropout2d, p: 0.2}", (8, 6, 6), 0),
    ("{op: stochastic_depth, p: 0.3, mode: batch}", (8, 6, 6), 0),
]


@pytest.mark.parametrize("case", END_TO_END, ids=lambda case: case[-3])
def test_each_op_loads_analyses_compiles_and_runs_in_both_modes(case):
    *layers, shape, params = case
    spec = archspec.load(spec_of(*layers))
    report = archspec.analyze(spec)
    assert report.layers[-1].output_shape == shape
    assert report.totals.params == params
    model = archspec.compile(spec)
    assert sum(p.numel() for p in model.parameters()) == params
    x = torch.randn(BATCH, 8, 6, 6)
    for mode in (model.train, model.eval):
        mode()
        assert model(x).shape == (BATCH, *shape)


def test_prelu_starts_from_init():
    model = archspec.compile(spec_of("{name: act, op: prelu, num_parameters: channels, init: 0.1}"))
    torch.testing.assert_close(model.act.weight, torch.full((8,), 0.1))


# -- shape errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        (
            [
                "{name: gate, op: conv2d, out_channels: 4, kernel: 6}",
                "{op: mul, inputs: [input, gate]}",
            ],
            r"layer '1': mul cannot broadcast \(8, 6, 6\) and \(4, 1, 1\) \(input 1\): along C, "
            r"8 and 4 differ and neither is 1",
        ),
        (
            ["{name: flat, op: flatten}", "{op: mul, inputs: [input, flat]}"],
            r"mul expects inputs of one rank .*got \(8, 6, 6\) and \(288,\) \(input 1\)",
        ),
        (
            ["{name: pooled, op: avg_pool2d, kernel: 2}", "{op: add, inputs: [input, pooled]}"],
            r"add expects inputs of one shape .*got \(8, 6, 6\) and \(8, 3, 3\) \(input 1\); "
            r"strides differ on the paths",
        ),
        (
            [
                "{name: a, op: mean, dims: 2, keepdim: true}",
                "{name: b, op: avg_pool2d, kernel: [2, 1], inputs: input}",
                "{op: mul, inputs: [a, b, input]}",
            ],
            r"mul cannot broadcast \(8, 3, 6\) and \(8, 6, 6\) \(inputs 1 and 2\): "
            r"along H, 3 and 6",
        ),
        (["{op: mean, dims: [4]}"], r"mean dim 4 does not exist in an input of rank 4"),
        (
            ["{op: mean, dims: [1, 2, 3]}"],
            r"mean over dims \[1, 2, 3\] averages every axis of \(8, 6, 6\) away.*keepdim: true",
        ),
        (
            ["{op: flatten}", "{op: dropout2d}"],
            r"dropout2d expects an input of shape \(C, H, W\), got \(288,\)",
        ),
    ],
)
def test_shape_errors_name_the_values(layers, message):
    with pytest.raises(archspec.ArchspecError, match=message):
        archspec.analyze(archspec.load(spec_of(*layers)))


@pytest.mark.parametrize(
    ("layer", "message"),
    [
        (
            "{op: prelu, num_parameters: true}",
            r"'num_parameters': expected 1 or 'channels', got true",
        ),
        ("{op: prelu, num_parameters: 8}", r"'num_parameters': input should be 1 or 'channels'"),
        ("{op: mean, dims: [2, 2]}", r"'dims': dim 2 is listed twice"),
        ("{op: mean, dims: [true]}", r"'dims': expected axis numbers, got true"),
        ("{op: mean, dims: []}", r"'dims': expected at least one axis"),
        ("{op: mean, dims: [0]}", r"'dims.0': input should be greater than or equal to 1"),
        ("{op: stochastic_depth}", r"stochastic_depth field 'p': required field is missing"),
        ("{op: stochastic_depth, p: 0.1, mode: rows}", r"'mode': input should be 'row' or 'batch'"),
        ("{op: dropout2d, p: 1}", r"dropout2d field 'p': input should be less than 1"),
        ("{op: softplus, beta: 0}", r"softplus field 'beta': input should be greater than 0"),
    ],
)
def test_field_errors_name_the_field(layer, message):
    with pytest.raises(archspec.ArchspecError, match=message):
        archspec.load(spec_of(layer))


# -- stochastic depth -----------------------------------------------------------------------------


def _drawn(module: nn.Module, samples: int, seed: int) -> torch.Tensor:
    """The per-sample factor the module applies to a batch of ones: (samples,)."""
    torch.manual_seed(seed)
    out = module(torch.ones(samples, 3, 2, 2, dtype=torch.float64))
    factors = out.flatten(1)
    assert (factors == factors[:, :1]).all(), "a sample was partly dropped"
    return factors[:, 0]


def test_stochastic_depth_row_drops_whole_samples_and_scales_survivors():
    module = StochasticDepth(0.25, "row").train()
    factors = _drawn(module, 4000, seed=0)
    assert factors.unique().tolist() == [0.0, 1 / 0.75]
    assert abs((factors == 0).float().mean().item() - 0.25) < 0.03
    assert abs(factors.mean().item() - 1) < 0.05  # survivors scaled: the expectation holds


def test_stochastic_depth_batch_drops_the_whole_batch_or_nothing():
    module = StochasticDepth(0.5, "batch").train()
    draws = [_drawn(module, 16, seed) for seed in range(40)]
    assert all(len(set(factors.tolist())) == 1 for factors in draws)  # one draw per batch
    assert {factors[0].item() for factors in draws} == {0.0, 2.0}


@pytest.mark.parametrize("mode", ["row", "batch"])
def test_stochastic_depth_is_the_identity_in_eval_and_at_p_0(mode):
    x = torch.randn(BATCH, 3, 2, 2)
    assert StochasticDepth(0.5, mode).eval()(x) is x
    assert StochasticDepth(0.0, mode).train()(x) is x


def test_stochastic_depth_module_refuses_what_the_op_refuses():
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\), got 1"):
        StochasticDepth(1, "row")
    with pytest.raises(ValueError, match=r"mode is 'row' or 'batch', got 'rows'"):
        StochasticDepth(0.1, "rows")


RESIDUAL_WITH_STOCHASTIC_DEPTH = spec_of(
    "{name: conv, op: conv2d, out_channels: 8, kernel: 3, padding: 1}",
    "{name: drop, op: stochastic_depth, p: 0.5}",
    "{name: add, op: add, inputs: [input, drop]}",
)


def test_compiled_stochastic_depth_has_no_state_and_drops_only_in_training():
    model = archspec.compile(RESIDUAL_WITH_STOCHASTIC_DEPTH).double()
    assert set(model.state_dict()) == {"conv.weight", "conv.bias"}
    x = torch.randn(64, 8, 6, 6, dtype=torch.float64)
    with torch.no_grad():
        branch = model.conv(x)
        torch.manual_seed(0)
        trained = model.train()(x)
        evaluated = model.eval()(x)
    torch.testing.assert_close(evaluated, x + branch)
    # each sample keeps its input and either drops the branch or doubles it (p = 0.5)
    dropped = torch.isclose(trained, x).flatten(1).all(1)
    doubled = torch.isclose(trained, x + 2 * branch).flatten(1).all(1)
    assert (dropped ^ doubled).all()
    assert dropped.any()
    assert doubled.any()


# torch 2.13 deprecates TorchScript; it still works, and users with TorchScript pipelines need it
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_compiled_stochastic_depth_exports_scripts_and_compiles():
    model = archspec.compile(RESIDUAL_WITH_STOCHASTIC_DEPTH).eval()
    x = torch.randn(2, 8, 6, 6)
    expected = model(x)
    assert torch.equal(torch.export.export(model, (x,)).module()(x), expected)
    assert torch.equal(torch.jit.script(model)(x), expected)
    compiled = torch.compile(model, backend="eager", fullgraph=True)
    assert torch.equal(compiled(x), expected)
    model.train()
    torch.manual_seed(0)
    scripted = torch.jit.script(model)(x)
    torch.manual_seed(0)
    assert torch.equal(scripted, model(x))


# -- backward facets ------------------------------------------------------------------------------

#: Each op whose output_kept_for_backward is False, with inputs it accepts.
OVERWRITABLE = [
    ("hardsigmoid", [(3, 4, 4)]),
    ("mish", [(3, 4, 4)]),
    ("softplus", [(3, 4, 4)]),
    ("prelu", [(3, 4, 4)]),
    ("mul", [(3, 4, 4), (3, 1, 1)]),
    ("add", [(3, 4, 4), (1, 4, 4)]),
    ("mean", [(3, 4, 4)]),
    ("concat", [(3, 4, 4), (2, 4, 4)]),
]


@pytest.mark.parametrize(("name", "inputs"), OVERWRITABLE, ids=[name for name, _ in OVERWRITABLE])
def test_an_output_not_kept_for_backward_can_be_overwritten(name, inputs):
    """What the compiler does with it: the next layer overwrites it in place (ReLU here)."""
    fields = {"dims": [2]} if name == "mean" else {}
    op = OPS[name].model_validate(fields)
    assert op.output_kept_for_backward is False
    lowered = op.to_torch(inputs)
    sources = [torch.randn(BATCH, *shape, dtype=torch.float64) for shape in inputs]
    grads = []
    for relu in (torch.relu, torch.relu_):
        leaves = [source.clone().requires_grad_() for source in sources]
        arguments = [leaf * 1.0 for leaf in leaves]
        if isinstance(lowered, nn.Module):
            output = lowered.double()(*arguments)
        else:
            output = lowered.apply(
                arguments, lambda function, args, kwargs: function(*args, **kwargs)
            )
        (relu(output) * torch.arange(output.numel()).reshape(output.shape)).sum().backward()
        grads.append([leaf.grad for leaf in leaves])
    for expected, actual in zip(*grads, strict=True):
        torch.testing.assert_close(actual, expected)
