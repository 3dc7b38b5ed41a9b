"""A compiled network, and the module generated from its source, through a training job's life."""

from __future__ import annotations

import copy
import importlib.util
import pickle
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

import archspec
from archspec.backends.frozen import EvalMode, pinned
from archspec.backends.torch_source import generate_source

#: Frozen: a conv, an affine batch norm, a batch norm without parameters (affine: false) and a
#: block whose norm sits one level down; the same block, a norm and the head train.
SPEC = """
name: lifecycle
input: [3, 12, 12]
blocks:
  unit:
    layers:
      - {name: conv, op: conv2d, out_channels: 8, kernel: 3, padding: 1, bias: false}
      - {name: bn, op: batchnorm2d}
      - {name: relu, op: relu}
layers:
  - {name: stem, op: conv2d, out_channels: 8, kernel: 3, padding: 1}
  - {name: stem_bn, op: batchnorm2d}
  - {name: stats, op: batchnorm2d, affine: false}
  - {name: frozen_unit, block: unit}
  - {name: unit, block: unit}
  - {name: bn, op: batchnorm2d}
  - {name: pool, op: adaptive_avg_pool2d, output_size: 1}
  - {name: flatten, op: flatten}
  - {name: fc, op: linear, out_features: 4}
freeze: [stem, stem_bn, stats, frozen_unit]
"""
FROZEN = ("stem", "stem_bn", "stats", "frozen_unit")
FROZEN_NORMS = ("stem_bn", "stats", "frozen_unit.bn")
TRAINING_NORMS = ("unit.bn", "bn")
SHAPE = (3, 12, 12)


def compiled() -> nn.Module:
    """The compiled network, with the same initial weights at every call."""
    torch.manual_seed(0)
    return archspec.compile(SPEC)


def batch(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(4, *SHAPE).to(dtype)


@pytest.fixture
def generated_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> type[nn.Module]:
    """The class `generate_source` writes, imported from a file as a user would import it."""
    name = f"lifecycle_{uuid.uuid4().hex}"
    path = tmp_path / f"{name}.py"
    path.write_text(generate_source(compiled(), "Lifecycle"))
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None
    assert module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    # registered as an import registers it: pickle finds the class through its module's name
    monkeypatch.setitem(sys.modules, name, module)
    module_spec.loader.exec_module(module)
    cls: type[nn.Module] = module.Lifecycle
    return cls


@pytest.fixture(params=["compiled", "generated"])
def build(request: pytest.FixtureRequest) -> Callable[[], nn.Module]:
    """Makes the network, compiled or from generated source, with the same weights each time."""
    if request.param == "compiled":
        return compiled
    cls = request.getfixturevalue("generated_class")

    def generated() -> nn.Module:
        module = cls()
        module.load_state_dict(compiled().state_dict())
        return module

    return generated


def deepcopied(model: nn.Module, directory: Path) -> nn.Module:
    return copy.deepcopy(model)


def averaged(model: nn.Module, directory: Path) -> nn.Module:
    return AveragedModel(model)


def ema(model: nn.Module, directory: Path) -> nn.Module:
    """An exponential moving average of parameters and buffers, updated once."""
    make_ema = pytest.importorskip("torch.optim.swa_utils").get_ema_multi_avg_fn
    average = AveragedModel(model, multi_avg_fn=make_ema(0.999), use_buffers=True)
    average.update_parameters(model)
    return average


def pickled(model: nn.Module, directory: Path) -> nn.Module:
    loaded: nn.Module = pickle.loads(pickle.dumps(model))
    return loaded


def saved(model: nn.Module, directory: Path) -> nn.Module:
    """Through `torch.save` of the whole module, the way checkpoints of `model` are written."""
    path = directory / "model.pt"
    torch.save(model, path)
    loaded: nn.Module = torch.load(path, weights_only=False)
    return loaded


LIFECYCLES: dict[str, Callable[[nn.Module, Path], nn.Module]] = {
    "same": lambda model, directory: model,
    "deepcopy": deepcopied,
    "averaged": averaged,
    "ema": ema,
    "pickle": pickled,
    "torch_save": saved,
}


@pytest.fixture(params=list(LIFECYCLES))
def lifecycle(request: pytest.FixtureRequest) -> Callable[[nn.Module, Path], nn.Module]:
    return LIFECYCLES[request.param]


def network(model: nn.Module) -> nn.Module:
    """The network itself: an AveragedModel keeps its copy in `module`."""
    return model.module if isinstance(model, AveragedModel) else model


def eval_output(model: nn.Module) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        output: torch.Tensor = model(batch())
    return output


def is_frozen(key: str) -> bool:
    return any(key == name or key.startswith(f"{name}.") for name in FROZEN)


def check_trains_like_the_spec(
    model: nn.Module, net: nn.Module | None = None, dtype: torch.dtype = torch.float32
) -> None:
    """In train mode only the unfrozen layers of `net` (by default the network in `model`)
    learn, and its frozen norms keep their statistics."""
    model.train()
    net = net if net is not None else network(model)
    assert not any(net.get_submodule(name).training for name in FROZEN_NORMS)
    assert all(net.get_submodule(name).training for name in TRAINING_NORMS)
    before = {key: value.clone() for key, value in net.state_dict().items()}
    model(batch(dtype)).sum().backward()
    after = net.state_dict()
    for name in FROZEN_NORMS:
        for buffer in ("running_mean", "running_var", "num_batches_tracked"):
            key = f"{name}.{buffer}"
            assert torch.equal(after[key], before[key]), key
    for name in TRAINING_NORMS:
        assert not torch.equal(after[f"{name}.running_mean"], before[f"{name}.running_mean"])
    for key, parameter in net.named_parameters():
        assert (parameter.grad is None) == is_frozen(key), key


def test_the_copy_has_the_same_state_and_outputs(build, lifecycle, tmp_path):
    original = build()
    model = lifecycle(build(), tmp_path)
    expected = original.state_dict()
    state = network(model).state_dict()
    assert list(state) == list(expected)
    assert all(torch.equal(state[key], value) for key, value in expected.items())
    assert torch.equal(eval_output(model), eval_output(original))


def test_frozen_norms_stay_in_eval_mode_and_keep_their_statistics(build, lifecycle, tmp_path):
    model = lifecycle(build(), tmp_path)
    check_trains_like_the_spec(model)
    model.eval()
    assert not any(module.training for module in network(model).modules())
    check_trains_like_the_spec(model)  # train() after eval() pins the frozen norms again


def test_frozen_parameters_stay_frozen(build, lifecycle, tmp_path):
    model = lifecycle(build(), tmp_path)
    frozen = {key: not p.requires_grad for key, p in network(model).named_parameters()}
    assert frozen == {key: is_frozen(key) for key in frozen}
    assert any(frozen.values())
    assert not all(frozen.values())


def test_state_dict_loads_into_a_new_network(build, lifecycle, tmp_path):
    model = lifecycle(build(), tmp_path)
    check_trains_like_the_spec(model)  # statistics and gradients of its own
    fresh = build()
    fresh.load_state_dict(network(model).state_dict(), strict=True)
    assert torch.equal(eval_output(fresh), eval_output(model))
    check_trains_like_the_spec(fresh)


def test_float64_keeps_the_freezing(build, lifecycle, tmp_path):
    expected = eval_output(build())
    model = lifecycle(build(), tmp_path).to(torch.float64)
    assert all(p.dtype == torch.float64 for p in network(model).parameters())
    model.eval()
    with torch.no_grad():
        output = model(batch(torch.float64))
    torch.testing.assert_close(output.float(), expected)
    check_trains_like_the_spec(model, dtype=torch.float64)
    frozen = {key: not p.requires_grad for key, p in network(model).named_parameters()}
    assert frozen == {key: is_frozen(key) for key in frozen}


@pytest.mark.parametrize("name", ["same", "deepcopy", "torch_save"])
def test_torch_compile_captures_the_copy_whole(build, name, tmp_path):
    model = LIFECYCLES[name](build(), tmp_path)
    expected = eval_output(build())
    # fullgraph: dynamo must capture forward in one piece; the eager backend keeps the test fast
    optimized = torch.compile(model, backend="eager", fullgraph=True)
    assert torch.equal(eval_output(optimized), expected)
    check_trains_like_the_spec(optimized, model)


# torch 2.13 deprecates TorchScript; it still works, and users with TorchScript pipelines need it
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("name", ["same", "deepcopy", "averaged"])
def test_torch_jit_script_gives_the_same_output(build, name, tmp_path):
    model = network(LIFECYCLES[name](build(), tmp_path))
    expected = eval_output(build())
    assert torch.equal(eval_output(torch.jit.script(model)), expected)


def test_a_new_interpreter_unpickles_the_pinned_norms(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(compiled(), path)
    # a new process: the EvalMode classes are rebuilt by name on loading, not found in a cache
    check = (
        "import sys, torch\n"
        "model = torch.load(sys.argv[1], weights_only=False).train()\n"
        "print(sorted(name for name, m in model.named_modules() if m.training != model.training))"
    )
    result = subprocess.run(
        [sys.executable, "-c", check, str(path)], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == str(sorted(FROZEN_NORMS))


def test_only_frozen_layers_with_running_statistics_are_pinned():
    model = compiled()
    assert pinned(model) == FROZEN_NORMS
    assert all(isinstance(model.get_submodule(name), nn.BatchNorm2d) for name in FROZEN_NORMS)
    assert not any(isinstance(model.get_submodule(name), EvalMode) for name in TRAINING_NORMS)
    assert repr(model.stats).startswith("EvalModeBatchNorm2d(8, ")


def test_the_generated_source_pins_the_same_norms_with_plain_constructors():
    source = generate_source(compiled(), "Lifecycle")
    # `stats` has no parameters to freeze, only statistics to keep
    assert '    FROZEN = ("stem", "stem_bn", "frozen_unit")\n' in source
    assert '    FROZEN_NORMS = ("stem_bn", "stats", "frozen_unit.bn")\n' in source
    assert "        self.stats = nn.BatchNorm2d(8, affine=False)\n" in source
    assert "EvalMode" not in source


def test_a_norm_without_parameters_is_frozen_as_the_spec_says():
    report = archspec.analyze(archspec.load(SPEC))
    stats = report.layer("stats")
    assert (stats.frozen, stats.params) == (True, 0)
    assert report.layer("frozen_unit.relu").frozen
    assert not report.layer("bn").frozen


def test_the_weights_report_survives_copies(tmp_path):
    model = archspec.compile(SPEC, weights=compiled().state_dict())
    assert model.weights_report is not None
    assert model.weights_report.complete
    assert copy.deepcopy(model).weights_report == model.weights_report
    assert pickled(model, tmp_path).weights_report == model.weights_report
    assert archspec.compile(SPEC).weights_report is None
