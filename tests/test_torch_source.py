"""Generated PyTorch source: imported on its own, it computes what the compiled network does."""

from __future__ import annotations

import ast
import importlib.util
import math
import operator
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from torch import fx, nn

import archspec
from archspec.backends.torch import compile_module
from archspec.backends.torch_source import generate_source
from archspec.errors import GeneratedSourceError

EXAMPLES = Path(__file__).resolve().parent.parent / "archspec" / "zoo"

#: Concat, a chained add of three, several outputs, frozen layers (a block and a conv),
#: in_channels expressions, an unnamed top-level layer ("1") and a value read by two layers.
BRANCHES = """
name: branches
input: [3, 16, 16]
params: {width: 8}
blocks:
  branch:
    params: {k: 3}
    layers:
      - {op: conv2d, out_channels: in_channels * 2, kernel: k, padding: (k - 1) // 2, bias: false}
      - {op: batchnorm2d}
      - {op: relu}
layers:
  - {name: stem, op: conv2d, out_channels: width, kernel: 3, padding: 1}
  - {op: relu}
  - {name: a, block: branch, args: {k: 1}}
  - {name: b, block: branch, inputs: stem, args: {k: 3}}
  - {name: c, block: branch, inputs: stem, args: {k: 5}}
  - {name: cat, op: concat, inputs: [a, b, c, stem]}
  - {name: mix, op: conv2d, out_channels: (in_channels - width) // 3, kernel: 1, groups: 2}
  - {name: res, op: add, inputs: [mix, a, b]}
  - {name: pool, op: adaptive_avg_pool2d, output_size: 1}
  - {name: flatten, op: flatten}
  - {name: drop, op: dropout, p: 0.5}
  - {name: fc, op: linear, out_features: 10}
  - {name: aux, inputs: flatten, op: linear, out_features: 3, bias: false}
outputs: [fc, aux, cat]
freeze: [stem, a]
"""

#: Every module-lowered op, with non-default fields, so each constructor is read back.
EVERY_OP = """
name: every_op
input: [4, 20, 20]
layers:
  - {op: conv2d, out_channels: 8, kernel: [3, 5], padding: same, dilation: 2}
  - {op: batchnorm2d, eps: 0.001, momentum: 0.3}
  - {op: leaky_relu, negative_slope: 0.2}
  - {op: local_response_norm, size: 3, alpha: 0.001, beta: 0.5, k: 2}
  - {op: max_pool2d, kernel: 3, stride: 2, padding: 1, ceil_mode: true}
  - {op: conv2d, out_channels: 8, kernel: 3, groups: in_channels, padding: valid}
  - {op: batchnorm2d, affine: false, track_running_stats: false}
  - {op: gelu, approximate: tanh}
  - {op: avg_pool2d, kernel: 2, padding: 1, count_include_pad: false}
  - {op: relu6}
  - {op: silu}
  - {op: hardswish}
  - {op: sigmoid}
  - {op: tanh}
  - {op: identity}
  - {op: softmax, dim: 2}
  - {op: flatten}
  - {op: dropout, p: 0.25}
  - {op: linear, out_features: 5}
"""


#: Examples whose generated source is checked, one per kind of code it must write: plain
#: sequences, residual adds, in-place activations, depthwise convolutions, branches and concats,
#: chunks and shuffles, archspec's own modules and functions (stochastic depth, upsampling to a
#: second input), named outputs, hyphenated names, 1-D and 3-D layers, transposed convolutions.
#: The rest of the zoo repeats these; each takes seconds to generate, load and run.
SOURCE_EXAMPLES = (
    "lenet5",
    "resnet18",
    "mobilenet_v2",
    "googlenet",
    "shufflenet_v2_x1_0",
    "efficientnet_b0",
    "lraspp_mobilenet_v3_large",
    "regnet_y_400mf",
    "m5",
    "r3d_18",
    "unet",
)


def build(spec_text_or_path: str | Path) -> tuple[fx.GraphModule, tuple[int, ...]]:
    spec = archspec.load(spec_text_or_path)
    shape = archspec.analyze(spec).input_shape
    # a 64x64 crop tests the same code as 224x224 and keeps the whole file fast; Inception
    # needs 75 rows to reach its last block, a video 16 frames for its time strides
    if len(shape) >= 3:  # images and video; audio keeps its length, which its pools need
        shape = (shape[0], *(min(size, 80) for size in shape[1:]))
    torch.manual_seed(0)
    return compile_module(spec, archspec.analyze(spec, input_shape=shape)), shape


def load_generated(source: str, directory: Path) -> type[nn.Module]:
    name = f"generated_{uuid.uuid4().hex}"
    path = directory / f"{name}.py"
    path.write_text(source)
    module_spec = importlib.util.spec_from_file_location(name, path)
    assert module_spec is not None
    assert module_spec.loader is not None
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    classes = [v for v in vars(module).values() if isinstance(v, type) and v.__module__ == name]
    # the network's class comes last, after archspec's own modules it uses (StochasticDepth)
    return classes[-1]


def check_standalone(source: str, directory: Path) -> None:
    """Imports only torch and operator, and passes ruff's pycodestyle and pyflakes rules."""
    tree = ast.parse(source)
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    imported |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= {"torch", "operator"}
    if importlib.util.find_spec("ruff") is None:
        return
    path = directory / "ruff_check.py"
    path.write_text(source)
    ruff = [sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--select", "E,F"]
    result = subprocess.run([*ruff, str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def round_trip(compiled: fx.GraphModule, directory: Path, **header: object) -> nn.Module:
    """The generated class, instantiated with `compiled`'s weights; checks the state_dict."""
    source = generate_source(compiled, type(compiled).__name__, **header)
    check_standalone(source, directory)
    generated = load_generated(source, directory)()
    expected = {key: value.shape for key, value in compiled.state_dict().items()}
    assert {key: value.shape for key, value in generated.state_dict().items()} == expected
    assert list(generated.state_dict()) == list(expected)
    generated.load_state_dict(compiled.state_dict(), strict=True)
    frozen = {key: p.requires_grad for key, p in compiled.named_parameters()}
    assert {key: p.requires_grad for key, p in generated.named_parameters()} == frozen
    return generated


def same_outputs(a: object, b: object) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(map(same_outputs, a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same_outputs(a[key], b[key]) for key in a)
    assert isinstance(a, torch.Tensor)
    assert isinstance(b, torch.Tensor)
    return torch.equal(a, b)


@pytest.mark.parametrize(
    "spec",
    [
        *(pytest.param(EXAMPLES / f"{name}.yaml", id=name) for name in SOURCE_EXAMPLES),
        pytest.param(BRANCHES, id="branches"),
        pytest.param(EVERY_OP, id="every_op"),
    ],
)
def test_generated_module_computes_what_the_compiled_one_does(spec, tmp_path):
    compiled, shape = build(spec)
    generated = round_trip(compiled, tmp_path, input_shape=shape)
    batch = torch.randn(2, *shape)
    compiled.eval()
    generated.eval()
    with torch.no_grad():
        assert same_outputs(generated(batch), compiled(batch))


def test_training_mode_draws_the_same_dropout_and_keeps_frozen_norms(tmp_path):
    compiled, shape = build(BRANCHES)
    generated = round_trip(compiled, tmp_path)
    batch = torch.randn(2, *shape)
    for module in (compiled, generated):
        module.train()
    assert not generated.get_submodule("a.1").training
    assert generated.get_submodule("b.1").training
    torch.manual_seed(1)
    expected = compiled(batch)
    torch.manual_seed(1)
    assert same_outputs(generated(batch), expected)
    # the frozen norm's running statistics stay; the trainable ones move alike
    assert torch.equal(generated.state_dict()["a.1.running_mean"], torch.zeros(16))
    for key, value in compiled.state_dict().items():
        assert torch.equal(generated.state_dict()[key], value), key


@pytest.mark.parametrize(
    "spec",
    [
        *(pytest.param(EXAMPLES / f"{name}.yaml", id=name) for name in SOURCE_EXAMPLES),
        pytest.param(BRANCHES, id="branches"),
        pytest.param(EVERY_OP, id="every_op"),
    ],
)
def test_a_network_on_the_meta_device_gives_the_same_source(spec):
    loaded = archspec.load(spec)
    report = archspec.analyze(loaded)
    meta = compile_module(loaded, report, device="meta")
    assert all(value.is_meta for value in meta.state_dict().values())
    expected = generate_source(compile_module(loaded, report), "Network")
    assert generate_source(meta, "Network") == expected


def test_source_reads_as_written_by_hand():
    compiled, _ = build(EXAMPLES / "resnet18.yaml")
    compiled.meta.update(archspec_spec_name="resnet18", archspec_input_shape=(3, 224, 224))
    source = generate_source(compiled, "ResNet18")
    assert "spec: resnet18\ninput: (N, 3, 224, 224), float\n" in source
    assert "class ResNet18(nn.Module):" in source
    conv1 = "3, 64, kernel_size=(7, 7), stride=(2, 2), padding=(3, 3), bias=False"
    assert f"        self.conv1 = nn.Conv2d(\n            {conv1}\n        )\n" in source
    assert '                "bn1": nn.BatchNorm2d(64),\n' in source
    assert '        self.layer1 = nn.ModuleDict({\n            "0": nn.ModuleDict({\n' in source
    assert '        x = self.layer1["0"].conv1(maxpool)\n' in source
    assert "        x += maxpool\n        del maxpool\n" in source
    assert '        y = self.layer2["0"].downsample["0"](layer1_1_relu2)\n' in source
    assert "FROZEN" not in source
    assert "import operator" not in source


def test_frozen_groups_concat_and_chained_add_read_plainly():
    compiled, _ = build(BRANCHES)
    source = generate_source(compiled, "Branches")
    assert '    FROZEN = ("stem", "a")\n' in source
    assert '    FROZEN_NORMS = ("a.1",)\n' in source
    assert "        cat = torch.cat([a_2, b_2, x, stem], dim=1)\n" in source
    assert "        x += a_2\n        del a_2\n        x += b_2\n        del b_2\n" in source
    assert "        return (x, y, cat)\n" in source


# -- what cannot be written, and says so ---------------------------------------------------------


def graph_module(layer: nn.Module, function: Callable[..., object] | None = None) -> fx.GraphModule:
    """input -> layer (-> function) -> output, as compile_module builds it."""
    root = nn.Module()
    root.add_module("layer", layer)
    graph = fx.Graph()
    value = graph.call_module("layer", (graph.placeholder("input"),))
    if function is not None:
        value = graph.call_function(function, (value,))
    graph.output(value)
    return fx.GraphModule(root, graph)


def halve(x: torch.Tensor) -> torch.Tensor:
    return x / 2


class Scale(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 2 * x


def conv_with_bare_stride() -> nn.Module:
    conv = nn.Conv2d(3, 4, 3)
    conv.stride = 2  # Conv2d itself stores (2, 2): no constructor call builds this
    return conv


def partly_frozen() -> nn.Module:
    conv = nn.Conv2d(3, 4, 3)
    conv.weight.requires_grad_(False)
    return conv


@pytest.mark.parametrize(
    ("module", "message"),
    [
        (
            graph_module(Scale()),
            r"^error: layer 'layer': test_torch_source\.Scale is not in torch\.nn$",
        ),
        (
            graph_module(conv_with_bare_stride()),
            r"^error: layer 'layer': nn\.Conv2d: its constructor arguments cannot",
        ),
        (graph_module(nn.Hardtanh(-math.inf)), r"argument 'min_val' = -inf is not a literal$"),
        (graph_module(nn.Embedding(5, 3)), r"nn\.Embedding keeps no attribute for .*'_weight'"),
        (graph_module(nn.ReLU(), halve), r"uses test_torch_source\.halve, which torch and"),
        (graph_module(partly_frozen()), r"^error: only some parameters of 'layer' are frozen$"),
    ],
    ids=["foreign", "bare_stride", "infinite", "embedding", "function", "partly_frozen"],
)
def test_unwritable_network_is_refused(module, message):
    with pytest.raises(GeneratedSourceError, match=message):
        generate_source(module, "Network")


def test_layer_named_like_a_module_dict_method_is_refused():
    group = nn.Module()
    group.add_module("keys", nn.ReLU())
    root = nn.Module()
    root.add_module("head", group)
    graph = fx.Graph()
    graph.output(graph.call_module("head.keys", (graph.placeholder("input"),)))
    with pytest.raises(
        GeneratedSourceError,
        match=r"layer name 'head\.keys': 'keys' is a method of nn\.ModuleDict$",
    ):
        generate_source(fx.GraphModule(root, graph), "Network")


def test_train_override_it_cannot_mirror_is_refused():
    class Custom(fx.GraphModule):
        def train(self, mode: bool = True) -> Custom:
            return self

    module = graph_module(nn.ReLU())
    module = Custom(module, module.graph)
    with pytest.raises(
        GeneratedSourceError, match=r"Custom overrides train\(\); it cannot be mirrored"
    ):
        generate_source(module, "Network")


def test_bad_class_name_is_refused():
    with pytest.raises(
        GeneratedSourceError, match=r"class name 'class' is not a Python identifier"
    ):
        generate_source(graph_module(nn.ReLU()), "class")


def test_operator_functions_import_operator(tmp_path):
    compiled = graph_module(nn.Linear(3, 3), operator.abs)
    source = generate_source(compiled, "Network")
    assert "import operator\n\nimport torch\n" in source
    generated = round_trip(compiled, tmp_path)
    batch = torch.randn(2, 3)
    assert torch.equal(generated(batch), compiled(batch))


HELPERS = """
name: helpers
input: [3, 16, 16]
layers:
  - {name: down, op: conv2d, out_channels: 4, kernel: 3, stride: 2, padding: 1}
  - {name: sd, op: stochastic_depth, p: 0.2}
  - {name: upsample_like, op: upsample, inputs: [sd, input], mode: bilinear}
  - {name: valid, op: conv2d, out_channels: 4, kernel: 3}
  - {name: crop, op: crop, inputs: [upsample_like, valid]}
  - {name: again, op: crop, inputs: [upsample_like, valid]}
  - {name: cat, op: concat, inputs: [crop, valid, again]}
"""


def test_archspec_helpers_are_copied_into_the_file_which_never_imports_archspec():
    compiled = archspec.compile(HELPERS).eval()
    source = generate_source(compiled, "Helpers")
    assert "import archspec" not in source
    assert "from archspec" not in source
    assert "class StochasticDepth(nn.Module):" in source
    assert "def upsample_like(" in source
    assert "def centre_crop(" in source
    namespace: dict[str, object] = {}
    exec(compile(source, "helpers.py", "exec"), namespace)
    standalone = namespace["Helpers"]()
    standalone.load_state_dict(compiled.state_dict())
    image = torch.randn(2, 3, 16, 16)
    assert torch.equal(standalone.eval()(image), compiled(image))
