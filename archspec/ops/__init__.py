"""Every op archspec knows, one class per op; importing this package fills the registry."""

from archspec.ops import activation, conv, linear, merge, norm, pooling, structure
from archspec.ops.base import GLOBAL, POINTWISE, Op, Shape, TorchCall, Window
from archspec.ops.registry import OPS, lookup, register

__all__ = [
    "GLOBAL",
    "OPS",
    "POINTWISE",
    "Op",
    "Shape",
    "TorchCall",
    "Window",
    "activation",
    "conv",
    "linear",
    "lookup",
    "merge",
    "norm",
    "pooling",
    "register",
    "structure",
]
