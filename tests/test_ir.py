"""The IR: a Network built in Python, checked when made, and taken by every later stage."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import archspec
from archspec.ir import Layer, Network, NetworkError
from archspec.ops.activation import ReLU
from archspec.ops.conv import Conv2d
from archspec.ops.linear import Linear
from archspec.ops.merge import Add
from archspec.ops.norm import BatchNorm2d
from archspec.ops.pooling import AdaptiveAvgPool2d, MaxPool2d
from archspec.ops.structure import Flatten

ROOT = Path(__file__).resolve().parent.parent


def basic_block(
    prefix: str, planes: int, stride: int, downsample: bool, source: str
) -> list[Layer]:
    """torchvision's BasicBlock, written the way a second frontend would emit it."""
    layers = [
        Layer(
            f"{prefix}.conv1",
            Conv2d(out_channels=planes, kernel=3, stride=stride, padding=1, bias=False),
            (source,),
        ),
        Layer(f"{prefix}.bn1", BatchNorm2d()),
        Layer(f"{prefix}.relu1", ReLU()),
        Layer(f"{prefix}.conv2", Conv2d(out_channels=planes, kernel=3, padding=1, bias=False)),
        Layer(f"{prefix}.bn2", BatchNorm2d()),
    ]
    shortcut = source
    if downsample:
        layers += [
            Layer(
                f"{prefix}.downsample.0",
                Conv2d(out_channels=planes, kernel=1, stride=stride, bias=False),
                (source,),
            ),
            Layer(f"{prefix}.downsample.1", BatchNorm2d()),
        ]
        shortcut = f"{prefix}.downsample.1"
    layers += [
        Layer(f"{prefix}.add", Add(), (f"{prefix}.bn2", shortcut)),
        Layer(f"{prefix}.relu2", ReLU()),
    ]
    return layers


def resnet18() -> Network:
    layers = [
        Layer("conv1", Conv2d(out_channels=64, kernel=7, stride=2, padding=3, bias=False)),
        Layer("bn1", BatchNorm2d()),
        Layer("relu", ReLU()),
        Layer("maxpool", MaxPool2d(kernel=3, stride=2, padding=1)),
    ]
    last = "maxpool"
    for stage, planes in enumerate((64, 128, 256, 512), start=1):
        for index in range(2):
            first = index == 0 and stage > 1
            prefix = f"layer{stage}.{index}"
            layers += basic_block(prefix, planes, 2 if first else 1, first, last)
            last = f"{prefix}.relu2"
    layers += [
        Layer("avgpool", AdaptiveAvgPool2d(output_size=1), (last,)),
        Layer("flatten", Flatten()),
        Layer("fc", Linear(out_features=1000)),
    ]
    return Network("resnet18", (3, 224, 224), tuple(layers))


def test_resnet18_built_in_python_has_the_report_of_the_yaml_file():
    from_python = archspec.analyze(resnet18())
    from_yaml = archspec.analyze(ROOT / "archspec" / "zoo" / "resnet18.yaml")
    assert from_python.to_json() == {**from_yaml.to_json(), "warnings": []}
    assert from_python.totals.params == 11_689_512
    assert from_python.totals.macs == 1_814_073_344


def test_resnet18_built_in_python_compiles_to_torchvisions_keys():
    module = archspec.compile(resnet18())
    expected = archspec.compile(ROOT / "archspec" / "zoo" / "resnet18.yaml").state_dict()
    assert {key: value.shape for key, value in module.state_dict().items()} == {
        key: value.shape for key, value in expected.items()
    }


def test_a_layer_without_inputs_reads_the_previous_one():
    network = Network("n", (3, 8, 8), (Layer("a", ReLU()), Layer("b", ReLU())))
    assert [layer.inputs for layer in network.layers] == [("input",), ("a",)]
    assert network.outputs == ("b",)


@pytest.mark.parametrize(
    ("layers", "message"),
    [
        ((Layer("a", ReLU(), ("b",)),), r"layer 'a': unknown input 'b'"),
        ((Layer("a", Add()),), r"layer 'a': add takes 2 to 1,024 inputs, got 1"),
        (
            (Layer("a", ReLU()), Layer("b", Add(), ("a",) * 1025)),
            r"layer 'b': add takes 2 to 1,024 inputs, got 1025",
        ),
        ((Layer("a", ReLU()), Layer("a", ReLU())), r"duplicate layer name 'a'"),
        ((Layer("input", ReLU()),), r"cannot be named 'input'"),
        (
            (Layer("a", ReLU(), ("b",)), Layer("b", ReLU(), ("a",))),
            r"cycle between layers: a -> b -> a",
        ),
        ((), r"at least one layer"),
    ],
)
def test_a_network_that_cannot_exist_is_refused_when_made(layers, message):
    with pytest.raises(NetworkError, match=message):
        Network("n", (3, 8, 8), layers)


def test_an_unknown_output_is_refused():
    with pytest.raises(NetworkError, match=r"unknown output 'b'"):
        Network("n", (3, 8, 8), (Layer("a", ReLU()),), outputs=("b",))


def test_a_network_is_frozen():
    network = Network("n", (3, 8, 8), (Layer("a", ReLU()),))
    with pytest.raises(AttributeError):
        network.name = "m"  # type: ignore[misc]


def test_a_network_built_in_python_never_imports_yaml():
    code = (
        "import sys, torch, archspec\n"
        "from archspec.ir import Layer, Network\n"
        "from archspec.ops.conv import Conv2d\n"
        "net = Network('n', (3, 8, 8), (Layer('c', Conv2d(out_channels=4, kernel=3)),))\n"
        "archspec.analyze(net); archspec.compile(net)(torch.randn(1, 3, 8, 8))\n"
        "archspec.draw(net).mermaid()\n"
        "assert 'yaml' not in sys.modules, 'yaml was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_analyze_takes_a_path():
    assert archspec.analyze(str(ROOT / "archspec" / "zoo" / "lenet5.yaml")).totals.params == 61_706


def test_every_registered_op_is_exposed_by_its_class_name():
    from archspec import ops

    for name, op_class in ops.OPS.items():
        assert getattr(ops, op_class.__name__) is op_class, name
        assert op_class.__name__ in ops.__all__
    network = archspec.Network(
        "n",
        (3, 8, 8),
        (
            archspec.Layer("c", ops.Conv2d(out_channels=4, kernel=3)),
            archspec.Layer("r", ops.ReLU()),
        ),
    )
    assert archspec.analyze(network).totals.params == 112
