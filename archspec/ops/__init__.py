"""Every op archspec knows, one class per op; importing this package fills the registry.

`from archspec import ops` gives each op class by name (`ops.Conv2d(out_channels=8, kernel=3)`)
for building a `Network` in Python.
"""

from archspec.ops import activation, conv, linear, merge, norm, pooling, structure
from archspec.ops.activation import (
    GELU,
    Hardswish,
    LeakyReLU,
    ReLU,
    ReLU6,
    Sigmoid,
    SiLU,
    Softmax,
    Tanh,
)
from archspec.ops.base import GLOBAL, POINTWISE, Op, Shape, TorchCall, Window
from archspec.ops.conv import Conv2d
from archspec.ops.linear import Linear
from archspec.ops.merge import Add, Concat
from archspec.ops.norm import BatchNorm2d, LocalResponseNorm
from archspec.ops.pooling import AdaptiveAvgPool2d, AvgPool2d, MaxPool2d
from archspec.ops.registry import OPS, build_op, lookup, register
from archspec.ops.structure import Dropout, Flatten, Identity

__all__ = [
    "GELU",
    "GLOBAL",
    "OPS",
    "POINTWISE",
    "AdaptiveAvgPool2d",
    "Add",
    "AvgPool2d",
    "BatchNorm2d",
    "Concat",
    "Conv2d",
    "Dropout",
    "Flatten",
    "Hardswish",
    "Identity",
    "LeakyReLU",
    "Linear",
    "LocalResponseNorm",
    "MaxPool2d",
    "Op",
    "ReLU",
    "ReLU6",
    "Shape",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "TorchCall",
    "Window",
    "activation",
    "build_op",
    "conv",
    "linear",
    "lookup",
    "merge",
    "norm",
    "pooling",
    "register",
    "structure",
]
