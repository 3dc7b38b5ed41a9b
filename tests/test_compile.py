"""archspec.compile: the module torch sees, weights, freezing and the runtimes it must work in."""

from __future__ import annotations

import operator
from pathlib import Path

import pytest
import torch
from torch import nn

import archspec
from archspec.backends.torch import compile_module
from archspec.backends.weights import WeightsError

ROOT = Path(__file__).resolve().parent.parent
RESNET18 = ROOT / "archspec" / "zoo" / "resnet18.yaml"
LENET5 = ROOT / "archspec" / "zoo" / "lenet5.yaml"

TWO_OUTPUTS = """
name: two_heads
input: [3, 16, 16]
layers:
  - {name: stem, op: conv2d, out_channels: 8, kernel: 3, padding: 1}
  - {name: bn, op: batchnorm2d}
  - {name: left, op: conv2d, out_channels: 4, kernel: 1, inputs: bn}
  - {name: right, op: conv2d, out_channels: 4, kernel: 1, inputs: bn}
  - {name: both, op: concat, inputs: [left, right]}
  - {name: sum, op: add, inputs: [left, right, left]}
outputs: [both, sum]
"""


@pytest.fixture(scope="module")
def resnet18_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pt"
    torch.save(archspec.compile(RESNET18).state_dict(), path)
    return path


def test_state_dict_keys_are_the_dotted_names():
    keys = set(archspec.compile(RESNET18).state_dict())
    assert {"conv1.weight", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight"} <= keys
    assert {"layer2.0.downsample.1.running_mean", "fc.bias"} <= keys


def test_forward_is_straight_line_code():
    code = archspec.compile(RESNET18).code
    assert "for " not in code
    assert code.count("\n") > 60  # one statement per layer


def test_several_outputs_come_back_as_a_tuple():
    both, total = archspec.compile(TWO_OUTPUTS)(torch.randn(2, 3, 16, 16))
    assert both.shape == (2, 8, 16, 16)
    assert total.shape == (2, 4, 16, 16)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_runs_in_both_modes(mode):
    module = archspec.compile(LENET5)
    getattr(module, mode)()
    assert module(torch.randn(2, 1, 32, 32)).shape == (2, 10)


# torch 2.13 deprecates TorchScript; it still works, and users with TorchScript pipelines need it
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_torch_jit_script_gives_the_same_output():
    module = archspec.compile(TWO_OUTPUTS).eval()
    image = torch.randn(2, 3, 16, 16)
    for ours, scripted in zip(module(image), torch.jit.script(module)(image), strict=True):
        assert torch.equal(ours, scripted)


def test_torch_compile_traces_the_whole_graph_without_breaks():
    module = archspec.compile(TWO_OUTPUTS).eval()
    image = torch.randn(2, 3, 16, 16)
    # fullgraph: dynamo must capture forward in one piece; the eager backend keeps the test fast
    compiled = torch.compile(module, backend="eager", fullgraph=True)
    for ours, theirs in zip(module(image), compiled(image), strict=True):
        assert torch.equal(ours, theirs)


def test_torch_export_gives_the_same_output():
    module = archspec.compile(LENET5).eval()
    image = torch.randn(2, 1, 32, 32)
    exported = torch.export.export(module, (image,))
    assert torch.equal(exported.module()(image), module(image))


def test_frozen_layers_do_not_train_and_frozen_norms_keep_their_statistics():
    spec = archspec.load(RESNET18, overrides={"num_classes": 10}, freeze=["*", "!fc"])
    module = archspec.compile(spec, input_shape=(3, 64, 64)).train()
    trainable = {name for name, p in module.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    assert not module.bn1.training
    assert module.fc.training
    running = module.get_submodule("layer1.0.bn1").running_mean.clone()
    module(torch.randn(4, 3, 64, 64)).sum().backward()
    assert torch.equal(module.get_submodule("layer1.0.bn1").running_mean, running)
    assert module.conv1.weight.grad is None
    assert module.fc.weight.grad is not None


def test_frozen_parameter_count_matches_the_analysis():
    spec = archspec.load(RESNET18, freeze=["layer1", "conv1"])
    module = archspec.compile(spec)
    trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
    assert trainable == archspec.analyze(spec).totals.trainable_params


def test_weights_load_exactly(resnet18_weights):
    module = archspec.compile(RESNET18, weights=resnet18_weights)
    saved = torch.load(resnet18_weights, weights_only=True)
    assert all(torch.equal(module.state_dict()[key], value) for key, value in saved.items())
    assert module.weights_report is not None
    assert module.weights_report.complete


def test_a_replaced_head_fails_strict_loading_with_the_keys_named(resnet18_weights):
    spec = archspec.load(RESNET18, overrides={"num_classes": 10})
    with pytest.raises(
        WeightsError, match=r"fc\.weight \(network \[10, 512\], file \[1000, 512\]\)"
    ):
        archspec.compile(spec, weights=resnet18_weights)


def test_non_strict_loading_keeps_what_fits_and_reports_the_rest(resnet18_weights):
    spec = archspec.load(RESNET18, overrides={"num_classes": 10})
    module = archspec.compile(spec, weights=resnet18_weights, strict=False)
    report = module.weights_report
    assert report is not None
    assert [key for key, _, _ in report.mismatched] == ["fc.weight", "fc.bias"]
    assert report.missing == ()
    assert report.unexpected == ()
    saved = torch.load(resnet18_weights, weights_only=True)
    assert torch.equal(module.conv1.weight, saved["conv1.weight"])


def test_missing_and_unexpected_keys_are_reported(resnet18_weights):
    saved = torch.load(resnet18_weights, weights_only=True)
    saved["extra.weight"] = torch.zeros(1)
    del saved["layer4.1.bn2.running_var"]
    report = archspec.compile(RESNET18, weights=saved, strict=False).weights_report
    assert report is not None
    assert report.missing == ("layer4.1.bn2.running_var",)
    assert report.unexpected == ("extra.weight",)
    assert "1 missing from the file: layer4.1.bn2.running_var" in report.lines()


def test_checkpoint_wrapping_a_state_dict_is_unwrapped(tmp_path, resnet18_weights):
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3, "state_dict": torch.load(resnet18_weights)}, path)
    assert archspec.compile(RESNET18, weights=path).weights_report.complete


def test_a_file_that_is_not_a_state_dict_is_refused(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("not a checkpoint")
    with pytest.raises(WeightsError, match=r"cannot read weights from"):
        archspec.compile(LENET5, weights=path)


def test_a_pickled_object_is_not_executed(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": nn.ReLU()}, path)  # an object, not tensors: weights_only refuses it
    with pytest.raises(WeightsError, match=r"cannot read weights from"):
        archspec.compile(LENET5, weights=path)


def test_a_missing_weights_file_is_named(tmp_path):
    with pytest.raises(WeightsError, match=r"No such file or directory"):
        archspec.compile(LENET5, weights=tmp_path / "none.pt")


def test_weights_cannot_be_loaded_into_a_network_on_the_meta_device(resnet18_weights):
    with pytest.raises(ValueError, match=r"^weights cannot be loaded into a network built on the"):
        compile_module(archspec.load(RESNET18), weights=resnet18_weights, device="meta")


def test_a_network_on_the_meta_device_is_frozen_like_any_other():
    spec = archspec.load(RESNET18, freeze=["*", "!fc"])
    module = compile_module(spec, device="meta").train()
    assert all(value.is_meta for value in module.state_dict().values())
    trainable = {name for name, p in module.named_parameters() if p.requires_grad}
    assert trainable == {"fc.weight", "fc.bias"}
    assert not module.get_submodule("layer1.0.bn1").training


def test_activations_overwrite_only_outputs_nobody_else_needs():
    module = archspec.compile(
        """
name: inplace
input: [3, 8, 8]
layers:
  - {name: conv, op: conv2d, out_channels: 4, kernel: 3, padding: 1}
  - {name: act, op: relu}
  - {name: gate, op: sigmoid}
  - {name: after_gate, op: relu}
  - {name: shared, op: conv2d, out_channels: 4, kernel: 1}
  - {name: left, op: relu}
  - {name: right, op: relu, inputs: shared}
  - {name: sum, op: add, inputs: [left, right]}
"""
    )
    # conv's output feeds act alone; sigmoid's backward reads its output; shared has two readers
    assert module.act.inplace
    assert not module.after_gate.inplace
    assert not module.left.inplace
    assert not module.right.inplace
    image = torch.randn(2, 3, 8, 8, requires_grad=True)
    module(image).sum().backward()  # autograd accepts every in-place write
    assert image.grad is not None


def test_a_residual_add_overwrites_the_branch_it_alone_reads_even_through_pass_throughs():
    module = archspec.compile(
        """
name: residual_in_place
input: [4, 6, 6]
layers:
  - {name: stem, op: conv2d, out_channels: 4, kernel: 1}
  - {name: plain_bn, op: batchnorm2d}
  - {name: plain, op: add, inputs: [plain_bn, stem]}
  - {name: dropped_bn, op: batchnorm2d}
  - {name: dropped, op: stochastic_depth, p: 0.5}
  - {name: through, op: add, inputs: [dropped, plain]}
  - {name: shared_bn, op: batchnorm2d}
  - {name: shared_drop, op: dropout, p: 0.5}
  - {name: shared, op: add, inputs: [shared_drop, shared_bn]}
  - {name: squeezed, op: mean, dims: [1], keepdim: true}
  - {name: stretched, op: add, inputs: [squeezed, shared]}
"""
    )
    adds = {
        node.meta["archspec_layer"]: node.target
        for node in module.graph.nodes
        if node.op == "call_function" and "archspec_layer" in node.meta
    }
    # stochastic depth's output is its input at inference: it may be overwritten only because
    # dropped_bn's output has no other reader
    assert adds["plain"] is operator.iadd
    assert adds["through"] is operator.iadd
    # shared_bn is read by dropout and by the add: writing the dropout's output would change it
    assert adds["shared"] is operator.add
    # input 0 of one channel cannot hold four
    assert adds["stretched"] is operator.add
    image = torch.randn(2, 4, 6, 6, requires_grad=True)
    module(image).sum().backward()  # training: autograd accepts every in-place write
    module.eval()

    def by_hand(x: torch.Tensor) -> torch.Tensor:
        stem = module.stem(x)
        plain = module.plain_bn(stem) + stem
        through = module.dropped_bn(plain) + plain
        shared = module.shared_bn(through) * 2
        return shared.mean(1, keepdim=True) + shared

    results = []
    for forward in (module, by_hand):
        leaf = image.detach().clone().requires_grad_()
        output = forward(leaf)
        (output * torch.arange(output.numel()).reshape(output.shape)).sum().backward()
        results.append((output.detach(), leaf.grad))
    torch.testing.assert_close(results[0], results[1])


def test_compiled_network_prints_its_groups_readably():
    text = repr(archspec.compile("zoo:resnet50"))
    assert "(layer1): Group(3 children, 215,808 params\n" in text
    # equal blocks print once, as torch's ModuleList prints them
    assert "    (1-2): 2 x Group(9 children, 70,400 params\n" in text
    assert "Module(" not in text
    assert text.count("\n") < 140  # every one of ResNet-50's 175 layers took a line
